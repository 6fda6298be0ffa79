"""Retention: a prune drops the predictions of whole old audit blocks and old monitor results,
in batches, records itself in the audit log, and leaves a chain that still verifies."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select, update

from core.config import AppConfig
from core.timeutil import Window
from monitors.runner import run_monitors, store_results
from storage.audit import PRUNE, verify
from storage.retention import PruneResult, RetentionError, plan_prune, prune
from storage.schema import audit_log, monitor_results, predictions
from storage.writer import upsert_monitor_results, write_predictions
from tests.storage.records import make_records

NOW = datetime(2026, 12, 10, tzinfo=UTC)
DAYS = 6  # days of traffic, the last one ending at NOW
PER_DAY = 40  # predictions a day, one minute apart, written as one block


def _day_start(day: int) -> datetime:
    return NOW - timedelta(days=DAYS - day)


def _keep_into(day: int) -> float:
    """A retention whose cutoff falls inside `day`'s block (20 of its 40 minutes)."""
    return DAYS - day - 20 / (24 * 60)


def _results_from(cutoff: datetime) -> list[datetime]:
    """The ends of the monitor results a prune at `cutoff` keeps."""
    ends = [_result(day, hour)["window_end"] for day in range(DAYS) for hour in range(24)]
    return sorted(end for end in ends if end >= cutoff)


def _fill(engine: Engine, days: range = range(DAYS)) -> None:
    """One write (one audit block) a day, sealed when the day ends, and hourly monitor results."""
    for day in days:
        records = make_records(PER_DAY, seed=day, start=_day_start(day), step_s=60.0)
        write_predictions(engine, records, now=_day_start(day + 1))
        upsert_monitor_results(engine, [_result(day, hour) for hour in range(24)])


def _result(day: int, hour: int) -> dict[str, Any]:
    start = _day_start(day) + timedelta(hours=hour)
    return {
        "monitor": "class_shift",
        "metric": "chi_square",
        "model_name": "ticket_classifier",
        "model_version": "v1",
        "tenant": "*",
        "window_start": start,
        "window_end": start + timedelta(hours=1),
        "value": 1.0,
        "status": "ok",
        "n": 10,
        "computed_at": start + timedelta(hours=1),
    }


def _partitioned(engine: Engine) -> bool:
    """Whether the store drops whole partitions (PostgreSQL, storage.partitions)."""
    return engine.dialect.name == "postgresql"


def _request_ids(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(select(predictions.c.request_id)).scalars())


def _ids_of_days(days: range) -> set[str]:
    return {r["request_id"] for day in days for r in make_records(PER_DAY, seed=day)}


def _result_ends(engine: Engine) -> list[datetime]:
    with engine.connect() as connection:
        ends = connection.execute(select(monitor_results.c.window_end)).scalars()
        return sorted(end.replace(tzinfo=UTC) if end.tzinfo is None else end for end in ends)


def _prune_events(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        statement = select(audit_log.c.details).where(audit_log.c.kind == PRUNE)
        return list(connection.execute(statement).scalars())


def _prune(
    engine: Engine, keep_days: float | None, results_days: float | None = None, **kwargs: Any
) -> PruneResult:
    plan = plan_prune(engine, now=NOW, keep_days=keep_days, monitor_results_keep_days=results_days)
    return prune(engine, plan, now=NOW, actor="ops", **kwargs)


def test_a_prune_removes_exactly_the_rows_older_than_the_cutoff(store_engine):
    _fill(store_engine)
    result = _prune(store_engine, keep_days=2, results_days=3)

    assert result.predictions == 4 * PER_DAY
    assert _request_ids(store_engine) == _ids_of_days(range(4, DAYS))
    assert _result_ends(store_engine) == _results_from(_day_start(3))
    assert result.monitor_results == DAYS * 24 - len(_results_from(_day_start(3)))


def test_a_block_holding_a_row_newer_than_the_cutoff_is_kept_whole(store_engine):
    _fill(store_engine)
    result = _prune(store_engine, keep_days=_keep_into(3))

    assert result.predictions == 3 * PER_DAY
    assert _request_ids(store_engine) == _ids_of_days(range(3, DAYS))
    assert result.plan.prune.last_block == 3


def test_a_late_block_of_old_rows_waits_for_the_blocks_before_it(store_engine):
    _fill(store_engine, range(4))
    # A replay sealed after day 3 brings records of day 0: older than day 3's, prunable only
    # once day 3 is.
    late = make_records(5, seed=99, start=_day_start(0) + timedelta(hours=12))
    write_predictions(store_engine, late, now=_day_start(4))

    first = _prune(store_engine, keep_days=_keep_into(3))  # day 3 is not old enough yet
    assert {r["request_id"] for r in late} <= _request_ids(store_engine)
    assert first.predictions == 3 * PER_DAY

    later = _prune(store_engine, keep_days=1)
    assert later.predictions == PER_DAY + len(late)
    assert _request_ids(store_engine) == set()


def test_a_second_prune_changes_nothing_and_records_nothing(store_engine):
    _fill(store_engine)
    _prune(store_engine, keep_days=2, results_days=2)
    kept = _request_ids(store_engine)

    again = _prune(store_engine, keep_days=2, results_days=2)

    assert (again.predictions, again.monitor_results) == (0, 0)
    assert again.plan.empty
    assert _request_ids(store_engine) == kept
    assert len(_prune_events(store_engine)) == 1


def test_a_plan_deletes_nothing(store_engine):
    _fill(store_engine)
    plan = plan_prune(store_engine, now=NOW, keep_days=2, monitor_results_keep_days=3)

    assert plan.prune.predictions == 4 * PER_DAY
    assert plan.prune.monitor_results == DAYS * 24 - len(_results_from(_day_start(3)))
    assert len(_request_ids(store_engine)) == DAYS * PER_DAY
    assert len(_result_ends(store_engine)) == DAYS * 24
    assert _prune_events(store_engine) == []


def test_small_batches_delete_the_same_rows_and_report_each_batch(store_engine):
    _fill(store_engine)
    batches: list[tuple[str, int]] = []
    result = _prune(
        store_engine,
        keep_days=2,
        results_days=3,
        batch_rows=7,
        progress=lambda *b: batches.append(b),
    )

    assert _request_ids(store_engine) == _ids_of_days(range(4, DAYS))
    assert sum(rows for table, rows in batches if table == "predictions") == result.predictions
    assert sum(rows for table, rows in batches if table == "monitor_results") == (
        result.monitor_results
    )
    assert _result_ends(store_engine) == _results_from(_day_start(3))
    # A partition dropped whole (PostgreSQL) is reported at once, with the rows it held.
    dropped = sum(p.rows for p in result.plan.partitions if p.name in result.dropped)
    reports = list(batches)
    for partition in result.plan.partitions:
        if partition.name in result.dropped and partition.rows:
            reports.remove(("predictions", partition.rows))
    assert max(rows for _table, rows in reports) <= 7
    assert len(reports) > (result.predictions - dropped + result.monitor_results) // 7


def test_monitor_results_are_kept_without_their_retention(store_engine):
    _fill(store_engine)
    result = _prune(store_engine, keep_days=2)

    assert result.monitor_results == 0
    assert len(_result_ends(store_engine)) == DAYS * 24


def test_the_prune_is_an_audit_event_naming_its_blocks_and_rows(store_engine):
    _fill(store_engine)
    result = _prune(store_engine, keep_days=2, results_days=3)

    (event,) = _prune_events(store_engine)
    assert event == asdict(result.plan.prune)
    assert (event["first_block"], event["last_block"]) == (1, 4)
    assert (event["predictions"], event["monitor_results"]) == (
        result.predictions,
        result.monitor_results,
    )
    assert event["predictions_before"] == "2026-12-08T00:00:00Z"
    assert len(event["last_block_hash"]) == 64


def test_after_prunes_the_chain_verifies_and_names_the_pruned_blocks(store_engine):
    _fill(store_engine)
    _prune(store_engine, keep_days=4)
    _prune(store_engine, keep_days=2)

    result = verify(store_engine)

    assert result.ok, result.reason
    assert result.pruned is not None
    assert (result.pruned.last_block, result.pruned.predictions, result.pruned.prunes) == (
        4,
        4 * PER_DAY,
        2,
    )
    assert result.blocks == DAYS + 2  # a block per day and one per prune event


def test_a_changed_prediction_in_the_kept_range_still_fails_verification(store_engine):
    _fill(store_engine)
    _prune(store_engine, keep_days=2)
    kept = sorted(_ids_of_days(range(4, DAYS)))[0]
    with store_engine.begin() as connection:
        connection.execute(
            update(predictions)
            .where(predictions.c.request_id == kept)
            .values(predicted_class="forged", confidence=0.99)
        )

    result = verify(store_engine)

    assert not result.ok
    assert f"prediction {kept} no longer says" in (result.reason or "")


def test_a_prediction_forged_into_the_pruned_range_fails_verification(store_engine):
    _fill(store_engine)
    _prune(store_engine, keep_days=2)
    forged = make_records(1, seed=123, start=_day_start(0))[0]
    with store_engine.begin() as connection:
        connection.execute(insert(predictions).values(**_columns(forged)))

    result = verify(store_engine)

    assert not result.ok
    assert "has no audit row" in (result.reason or "")


def _columns(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k in predictions.c and k != "probabilities"}


def test_monitors_compute_the_same_results_on_the_kept_rows(store_engine):
    _fill(store_engine)
    config = AppConfig()
    window = Window(_day_start(5), _day_start(5) + timedelta(hours=12))
    reference = Window(_day_start(4), _day_start(5))
    before = run_monitors(store_engine, window, config, reference_window=reference)

    _prune(store_engine, keep_days=2, results_days=2)
    after = run_monitors(store_engine, window, config, reference_window=reference)
    store_results(store_engine, after, computed_at=NOW)

    assert [asdict(r) for r in after.results] == [asdict(r) for r in before.results]
    assert any(r.n > 0 for r in after.results)


def test_a_stale_plan_plans_again_instead_of_pruning_twice(store_engine):
    _fill(store_engine)
    stale = plan_prune(store_engine, now=NOW, keep_days=_keep_into(3))
    _prune(store_engine, keep_days=_keep_into(3))

    again = prune(store_engine, stale, now=NOW, actor="ops")

    assert again.predictions == 0
    events = _prune_events(store_engine)
    assert sum(e["predictions"] for e in events) == 3 * PER_DAY
    assert verify(store_engine).pruned.predictions == 3 * PER_DAY  # type: ignore[union-attr]


class Interrupted(Exception):
    """What stops a prune after its first batch (a crash, a Ctrl-C)."""


def _interrupt(_table: str, _rows: int) -> None:
    raise Interrupted


@pytest.mark.parametrize("later_days", [0, 1])
def test_the_next_prune_finishes_an_interrupted_one(store_engine, later_days):
    _fill(store_engine)
    with pytest.raises(Interrupted):
        _prune(store_engine, keep_days=_keep_into(3), batch_rows=7, progress=_interrupt)
    # One batch went, or on PostgreSQL the first day's partition, dropped whole.
    gone = PER_DAY if _partitioned(store_engine) else 7
    assert len(_request_ids(store_engine)) == DAYS * PER_DAY - gone

    # The same retention (no new block to take), or one a day shorter (day 3 too).
    result = _prune(store_engine, keep_days=_keep_into(3 + later_days))

    assert _request_ids(store_engine) == _ids_of_days(range(3 + later_days, DAYS))
    assert result.predictions == (3 + later_days) * PER_DAY - gone
    events = _prune_events(store_engine)
    assert len(events) == 1 + later_days  # finishing the first prune records nothing
    pruned = verify(store_engine).pruned
    assert pruned is not None
    assert pruned.predictions == (3 + later_days) * PER_DAY


def test_a_prune_told_to_stop_between_batches_is_finished_by_the_next(store_engine):
    _fill(store_engine)
    one_batch = iter([True])
    first = _prune(
        store_engine,
        keep_days=2,
        results_days=3,
        batch_rows=7,
        keep_going=lambda: next(one_batch, False),
    )
    # One batch: of predictions, or on PostgreSQL of the first partition's request ids (its
    # rows go when it is dropped, by the next prune).
    went = 0 if _partitioned(store_engine) else 7
    assert (first.predictions, first.monitor_results, first.finished) == (went, 0, False)

    second = _prune(store_engine, keep_days=2, results_days=3)

    assert second.finished
    assert second.predictions == 4 * PER_DAY - went
    assert _request_ids(store_engine) == _ids_of_days(range(4, DAYS))
    assert _result_ends(store_engine) == _results_from(_day_start(3))
    assert verify(store_engine).pruned.predictions == 4 * PER_DAY  # type: ignore[union-attr]


def test_an_empty_store_has_nothing_to_prune(store_engine):
    result = _prune(store_engine, keep_days=1, results_days=1)

    assert (result.predictions, result.monitor_results) == (0, 0)
    assert verify(store_engine).pruned is None


def test_a_prune_of_monitor_results_only_keeps_every_prediction(store_engine):
    _fill(store_engine)
    result = _prune(store_engine, keep_days=None, results_days=3)

    assert (result.predictions, result.plan.prune.predictions_before) == (0, None)
    assert len(_request_ids(store_engine)) == DAYS * PER_DAY
    assert _result_ends(store_engine) == _results_from(_day_start(3))
    assert verify(store_engine).ok


def test_a_prune_needs_a_retention_for_some_table(store_engine):
    with pytest.raises(RetentionError, match="no retention given"):
        plan_prune(store_engine, now=NOW, keep_days=None)


@pytest.mark.parametrize("days", [0, -1])
def test_a_retention_must_be_positive(store_engine, days):
    with pytest.raises(RetentionError, match="positive number of days"):
        plan_prune(store_engine, now=NOW, keep_days=days)


def test_the_store_counts_agree_with_the_prune(store_engine):
    _fill(store_engine)
    result = _prune(store_engine, keep_days=2, results_days=3)
    with store_engine.connect() as connection:
        left = connection.execute(select(func.count()).select_from(predictions)).scalar_one()
    assert left == DAYS * PER_DAY - result.predictions
