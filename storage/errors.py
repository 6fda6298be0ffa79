"""What a store failure means: an outage to wait out, or records the store refuses."""

from __future__ import annotations

from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

# What a store's callers catch without importing SQLAlchemy.
StoreError = SQLAlchemyError  # any failure of the store or of talking to it
DatabaseError = DBAPIError  # the database refused a statement (its driver error is `.orig`)
BadUrlError = (ArgumentError, NoSuchModuleError)  # a URL that names no usable database

__all__ = ["BadUrlError", "DatabaseError", "StoreError", "is_bad_data"]


def is_bad_data(exc: BaseException) -> bool:
    """Whether the store refused the records themselves (retrying them cannot help)."""
    if isinstance(exc, ValueError | TypeError | KeyError):
        return True
    # PEP 249 names these classes the same in every driver; SQLAlchemy wraps them alike.
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"IntegrityError", "DataError"})
