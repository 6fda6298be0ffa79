"""The releases table: insert and read back, newest first, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.releases import get_release, insert_release, latest_release, list_releases

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _insert(engine, n: int, parent_id: int | None) -> int:
    return insert_release(
        engine,
        bento_tag=f"servewatch:r{n}",
        model_tags=[f"risk_scorer:v{n}", "ticket_router:v1"],
        config_digest=f"{n:064x}",
        config={
            "routing": {"score_risk": {"default": {"model": "risk_scorer", "version": f"v{n}"}}}
        },
        parent_id=parent_id,
        created_at=T0 + timedelta(minutes=n),
        created_by="alice",
    )


def test_a_release_reads_back_as_written(store_engine):
    release_id = _insert(store_engine, 1, None)
    record = get_release(store_engine, release_id)
    assert record is not None
    assert record.bento_tag == "servewatch:r1"
    assert record.model_tags == ["risk_scorer:v1", "ticket_router:v1"]
    assert record.config_digest == f"{1:064x}"
    assert record.config["routing"]["score_risk"]["default"]["version"] == "v1"
    assert record.parent_id is None
    assert record.created_at == T0 + timedelta(minutes=1)
    assert record.created_by == "alice"


def test_releases_list_newest_first_and_name_their_parent(store_engine):
    assert latest_release(store_engine) is None
    first = _insert(store_engine, 1, None)
    second = _insert(store_engine, 2, first)
    assert [r.id for r in list_releases(store_engine)] == [second, first]
    assert [r.id for r in list_releases(store_engine, limit=1)] == [second]
    latest = latest_release(store_engine)
    assert latest is not None
    assert latest.parent_id == first


def test_an_unknown_release_is_none(store_engine):
    assert get_release(store_engine, 404) is None


def test_the_audit_event_names_the_release_and_seals_a_block(store_engine):
    from sqlalchemy import select

    from core.contracts import AuditEvent
    from storage.audit import verify
    from storage.schema import audit_log

    event = AuditEvent(kind="release", ts=T0, actor="alice", details={"action": "built"})
    release_id = insert_release(
        store_engine,
        bento_tag=None,
        model_tags=[],
        config_digest="0" * 64,
        config={},
        parent_id=None,
        created_at=T0,
        created_by="alice",
        audit=event,
    )
    with store_engine.connect() as connection:
        rows = connection.execute(select(audit_log)).mappings().all()
    assert [r["details"] for r in rows] == [{"action": "built", "release_id": release_id}]
    assert verify(store_engine).ok
