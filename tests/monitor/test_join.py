"""The prediction/actual join: matching, lateness, expiry, caps, duplicates, offsets."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from monitor.clock import micros
from monitor.join import Joiner, JoinPolicy

P = ("predictions", 0)  # topic-partitions the records are read from
A = ("actuals", 0)
SENSOR, DEMAND = ("readings.sensor", 0), ("readings.demand", 0)
MINUTE, HOUR = 60_000_000, 3_600_000_000  # in microseconds, as the join's clocks count


def joiner(**policy: Any) -> Joiner:
    return Joiner(JoinPolicy(**policy))


def test_prediction_then_actual_makes_one_pair(build: SimpleNamespace) -> None:
    join = joiner()
    join.add_prediction(build.prediction(1, value=12.5), P, 0)
    assert join.take().pairs == []
    join.add_actual(build.observation(1, 10.0), A, 0)
    out = join.take()
    assert [(p.prediction_id, p.predicted, p.actual, p.error) for p in out.pairs] == [
        ("seq-1-m-1-1", 12.5, 10.0, 2.5)
    ]
    assert out.pairs[0].metric == "temperature" and out.expired == []
    assert join.pending == 0


def test_actual_then_prediction_matches_from_the_buffer(build: SimpleNamespace) -> None:
    join = joiner()
    join.add_prediction(build.prediction(0), P, 0)  # makes the metric tracked
    join.add_actual(build.observation(0), A, 0)
    join.add_actual(build.observation(3, 7.0), A, 1)
    join.take()
    join.add_prediction(build.prediction(3, value=9.0), P, 1)
    assert [p.error for p in join.take().pairs] == [2.0]


def test_one_actual_scores_every_prediction_waiting_for_it(build: SimpleNamespace) -> None:
    join = joiner()
    join.add_prediction(build.prediction(5, pid="a", model="seq"), P, 0)
    join.add_prediction(build.prediction(5, pid="b", model="other", value=11.0), P, 1)
    join.add_prediction(build.prediction(5, pid="c", metric="pressure"), P, 2)
    join.add_actual(build.observation(5, 10.0), A, 0)
    assert sorted((p.prediction_id, p.error) for p in join.take().pairs) == [
        ("a", 0.0),
        ("b", 1.0),
    ]
    assert join.pending == 1  # the pressure forecast still waits


def test_prediction_expires_when_its_entity_passes_target_plus_lateness(
    build: SimpleNamespace,
) -> None:
    join = joiner(lateness_s=600)  # 10 minutes
    join.add_prediction(build.prediction(10), P, 0)
    join.add_actual(build.observation(20, entity="m-1", metric="pressure"), A, 0)
    assert join.take().expired == []  # watermark 20 = target + lateness: still in time
    join.add_actual(build.observation(20.5, metric="pressure"), A, 1)
    out = join.take()
    assert [(e.prediction.prediction_id, e.reason) for e in out.expired] == [
        ("seq-1-m-1-10", "late")
    ]
    join.add_actual(build.observation(10), A, 2)  # the actual, too late
    assert join.take().pairs == []


def test_watermarks_are_per_entity(build: SimpleNamespace) -> None:
    join = joiner(lateness_s=60)
    join.add_prediction(build.prediction(1, entity="slow"), P, 0)
    join.add_actual(build.observation(500, entity="fast"), A, 0)
    assert join.take().expired == []
    join.add_actual(build.observation(1, entity="slow", value=9.0), A, 1)
    assert [p.entity_id for p in join.take().pairs] == ["slow"]


def test_a_prediction_arriving_after_its_window_expires_at_once(build: SimpleNamespace) -> None:
    join = joiner(lateness_s=60, actual_buffer_s=60)
    join.add_actual(build.observation(100, metric="pressure"), A, 0)
    join.add_prediction(build.prediction(10), P, 0)
    out = join.take()
    assert [e.reason for e in out.expired] == ["late"]
    assert join.pending == 0


def test_duplicates_and_remembered_ids_are_skipped(build: SimpleNamespace) -> None:
    join = joiner()
    join.remember(["seq-1-m-1-2"])
    join.add_prediction(build.prediction(1), P, 0)
    join.add_prediction(build.prediction(1), P, 1)  # the worker replayed it
    join.add_prediction(build.prediction(2), P, 2)  # paired before a restart
    join.add_actual(build.observation(1), A, 0)
    join.add_actual(build.observation(2), A, 1)
    out = join.take()
    assert [p.prediction_id for p in out.pairs] == ["seq-1-m-1-1"]
    assert out.duplicates == 2
    join.add_prediction(build.prediction(1), P, 3)  # matched already
    assert join.take().duplicates == 1


def test_caps_evict_and_count_against_coverage(build: SimpleNamespace) -> None:
    join = joiner(max_pending_per_entity=2, max_pending_total=3)
    for n in (3, 1, 2):
        join.add_prediction(build.prediction(n, entity="a"), P, n)
    out = join.take()
    # the earliest target of the entity goes first
    assert [(e.prediction.prediction_id, e.reason) for e in out.expired] == [
        ("seq-1-a-1", "entity_cap")
    ]
    join.add_prediction(build.prediction(7, entity="b"), P, 7)
    join.add_prediction(build.prediction(8, entity="c"), P, 8)
    out = join.take()
    # the overall cap evicts the prediction that arrived first
    assert [(e.prediction.prediction_id, e.reason) for e in out.expired] == [
        ("seq-1-a-3", "total_cap")
    ]
    assert join.pending == 3


def test_actual_caps_drop_the_oldest(build: SimpleNamespace) -> None:
    join = joiner(max_actuals_per_entity=2, max_actuals_total=3)
    for n in range(3):
        join.add_actual(build.observation(n, entity="a"), A, n)
    join.add_actual(build.observation(0, entity="b"), A, 3)
    join.add_actual(build.observation(1, entity="b"), A, 4)
    out = join.take()
    assert out.dropped_actuals == {"entity_cap": 1, "total_cap": 1}
    assert join.buffered == 3
    join.add_prediction(build.prediction(0, entity="a"), P, 0)  # evicted: waits
    join.add_prediction(build.prediction(2, entity="a"), P, 1)  # buffered: pairs
    assert [p.prediction_id for p in join.take().pairs] == ["seq-1-a-2"]


def test_old_actuals_leave_the_buffer_behind_the_watermark(build: SimpleNamespace) -> None:
    join = joiner(actual_buffer_s=300, lateness_s=3600)
    join.add_actual(build.observation(0), A, 0)
    join.add_actual(build.observation(10), A, 1)
    assert join.buffered == 1
    join.add_prediction(build.prediction(0), P, 0)
    assert join.take().pairs == [] and join.pending == 1


@pytest.mark.parametrize(
    ("kind", "metric", "expected"),
    [("risk", None, "risk"), ("risk", "failure", "failure"), ("forecast", "pm2.5", "pm2.5")],
)
def test_metric_of_each_kind(
    build: SimpleNamespace, kind: str, metric: str | None, expected: str
) -> None:
    join = joiner()
    assert join.metric_of(build.prediction(1, kind=kind, metric=metric)) == expected


def test_imputations_and_forecasts_without_metric_are_ignored(build: SimpleNamespace) -> None:
    join = joiner()
    join.add_prediction(build.prediction(1, kind="imputation"), P, 0)
    join.add_prediction(build.prediction(2, metric=None), P, 1)
    out = join.take()
    assert out.ignored == {"imputation": 1, "no_metric": 1}
    assert join.pending == 0


def test_risk_predictions_pair_with_risk_labels(build: SimpleNamespace) -> None:
    join = joiner()
    join.add_prediction(build.prediction(1, kind="risk", metric=None, value=2.0), P, 0)
    join.add_actual(build.observation(1, 3.0, metric="risk"), A, 0)
    [pair] = join.take().pairs
    assert (pair.metric, pair.error) == ("risk", -1.0)


def test_offsets_never_pass_a_held_record(build: SimpleNamespace) -> None:
    join = joiner(actual_buffer_s=0)
    join.add_prediction(build.prediction(1), P, 10)
    join.add_prediction(build.prediction(2), P, 11)
    assert join.commit_offset(P, 12) == 10
    join.add_actual(build.observation(1), A, 0)
    assert join.commit_offset(P, 12) == 11
    join.add_actual(build.observation(2), A, 1)
    assert join.commit_offset(P, 12) == 12
    assert join.commit_offset(A, 2) == 2  # nothing buffered (buffer 0 s)


def test_forget_drops_state_of_revoked_partitions(build: SimpleNamespace) -> None:
    join = joiner()
    join.add_prediction(build.prediction(1), ("predictions", 1), 5)
    join.add_prediction(build.prediction(2), P, 6)
    join.add_actual(build.observation(0), ("actuals", 1), 3)
    join.forget({("predictions", 1), ("actuals", 1)})
    assert join.pending == 1 and join.buffered == 0
    assert join.commit_offset(("predictions", 1), 9) == 9


def idle_joiner(**policy: Any) -> Joiner:
    """A join whose scans are never held back by the wall clock."""
    return Joiner(JoinPolicy(**policy), pace=iter(range(0, 10**9, 10)).__next__)


def test_a_quiet_entity_stops_holding_its_predictions_and_offsets(
    build: SimpleNamespace,
) -> None:
    join = idle_joiner(lateness_s=600, idle_expiry_s=3600)  # 10 min; an hour of label time
    target = micros(build.at(30))
    # Kafka times: a live forecast (target 30) produced at minute 0; a replayed one from
    # long ago produced at minute 60; a forecast for next week; the label clock follows
    # the readings of a busy machine on the same partition number.
    join.add_prediction(build.prediction(30, entity="quiet"), P, 10, target - 30 * MINUTE)
    join.add_prediction(build.prediction(-600, entity="replayed"), P, 11, target + 30 * MINUTE)
    join.add_prediction(build.prediction(7 * 24 * 60, entity="weekly"), P, 12, target)

    def labels_until(kafka_us: int) -> None:
        join.labels.read(A, kafka_us)
        join.expire_idle()

    labels_until(target + 10 * MINUTE + HOUR - MINUTE)  # not before target + lateness + 1 h
    assert join.take().expired == [] and join.commit_offset(P, 13) == 10
    labels_until(target + 10 * MINUTE + HOUR)  # the next scan, a minute of label time later
    out = join.take()
    assert [(e.prediction.entity_id, e.reason) for e in out.expired] == [("quiet", "idle")]
    assert join.commit_offset(P, 13) == 11  # the offset is free to move on
    # The replayed one waits an hour of label time after its own; its actual may come.
    join.labels.read(A, target + 80 * MINUTE)
    join.add_actual(build.observation(-600, entity="replayed"), A, 1)
    assert [p.entity_id for p in join.take().pairs] == ["replayed"]
    # Next week's forecast is not idle a day later.
    labels_until(target + 24 * HOUR)
    assert join.take().expired == [] and join.pending == 1


def test_the_slowest_label_topic_still_being_read_holds_the_clock(
    build: SimpleNamespace,
) -> None:
    join = idle_joiner(lateness_s=0, idle_expiry_s=3600)
    start = micros(build.at(0))
    join.add_prediction(build.prediction(0, entity="a"), P, 0, start)
    # a catch-up: demand is read up to now while sensor readings are still hours behind
    join.labels.read(DEMAND, start + 5 * HOUR)
    join.labels.read(SENSOR, start + 30 * MINUTE)
    join.expire_idle()
    assert join.take().expired == []
    join.labels.caught_up(DEMAND)  # nothing more on demand; sensor is still being read
    join.expire_idle()
    assert join.take().expired == []
    join.labels.caught_up(SENSOR)  # everything read: the newest time counts
    join.expire_idle()
    assert [e.prediction.entity_id for e in join.take().expired] == ["a"]


def test_labels_move_only_their_partition_number_and_leave_with_it(
    build: SimpleNamespace,
) -> None:
    join = idle_joiner(lateness_s=0, idle_expiry_s=3600)
    start = micros(build.at(0))
    join.add_prediction(build.prediction(0, entity="a"), P, 0, start)
    join.add_prediction(build.prediction(0, entity="b"), ("predictions", 1), 0, start)
    join.labels.read(("actuals", 1), start + 2 * HOUR)
    join.expire_idle()
    assert [e.prediction.entity_id for e in join.take().expired] == ["b"]
    # a revoked partition's clock goes with it: its records are read again, older
    join.forget({("actuals", 1), ("predictions", 1)})
    join.add_prediction(build.prediction(0, entity="d"), ("predictions", 1), 0, start)
    join.labels.read(A, start + 3 * HOUR)  # a scan is due; partition 1 has no clock now
    join.expire_idle()
    assert [e.prediction.entity_id for e in join.take().expired] == ["a"]
    assert join.pending == 1  # "d" waits for labels of its own partition number
    never = idle_joiner(idle_expiry_s=0)
    never.add_prediction(build.prediction(0), P, 0, start)
    never.labels.read(A, start + 1000 * HOUR)
    never.expire_idle()
    assert never.take().expired == [] and never.pending == 1


def test_idle_scans_are_paced_by_the_wall_clock_too(build: SimpleNamespace) -> None:
    wall = [100.0]
    join = Joiner(JoinPolicy(lateness_s=0, idle_expiry_s=3600), pace=lambda: wall[0])
    start = micros(build.at(0))
    join.labels.read(A, start)
    join.expire_idle()  # the first scan
    join.add_prediction(build.prediction(0), P, 0, start)
    join.labels.read(A, start + 2 * HOUR)
    join.expire_idle()  # due in label time, not yet in wall-clock time
    assert join.take().expired == []
    wall[0] += 5.0
    join.expire_idle()
    assert [e.reason for e in join.take().expired] == ["idle"]


def test_a_label_partition_holds_the_clock_until_it_is_heard_from(
    build: SimpleNamespace,
) -> None:
    join = idle_joiner(lateness_s=0, idle_expiry_s=3600)
    start = micros(build.at(0))
    join.labels.assigned([SENSOR, DEMAND])
    join.add_prediction(build.prediction(0), P, 0, start)
    join.labels.read(DEMAND, start + 5 * HOUR)  # demand fetched first; sensor not yet
    join.expire_idle()
    assert join.take().expired == []
    join.labels.caught_up(SENSOR)  # an empty sensor partition: its end is all there is
    join.labels.caught_up(DEMAND)
    join.labels.read(SENSOR, start)  # then a record: sensor is behind again
    join.expire_idle()
    assert join.take().expired == []
    join.labels.caught_up(SENSOR)
    join.expire_idle()
    assert [e.reason for e in join.take().expired] == ["idle"]
