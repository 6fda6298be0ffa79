"""Store failures: bad records are told apart from outages."""

import pytest
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from storage.errors import StoreError, is_bad_data


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("no ts"),
        TypeError("not a number"),
        KeyError("request_id"),
        IntegrityError("INSERT", {}, Exception("null value")),
        DataError("INSERT", {}, Exception("out of range")),
    ],
)
def test_refused_records_are_bad_data(exc):
    assert is_bad_data(exc)


@pytest.mark.parametrize(
    "exc", [OperationalError("SELECT", {}, Exception("down")), OSError("reset"), RuntimeError()]
)
def test_outages_are_not_bad_data(exc):
    assert not is_bad_data(exc)


def test_store_errors_are_sqlalchemys():
    assert issubclass(OperationalError, StoreError)
