"""Per-entity state: the windows it gives equal what training cuts from the same history."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.features import DemandSpec, FeatureSpec, SensorSpec, SeriesSpec, frame_rows
from models.frames import ENTITY, PRODUCT, TS
from models.sequence_window import SequenceSpec
from worker.intake import epoch_ns
from worker.rings import Rings
from worker.state import MAX_ENTITY_METRICS, StreamState

METRICS = ("power", "temperature", "vibration", "runtime", "production")
T0 = pd.Timestamp("2024-03-01", tz="UTC")
HOUR_NS = 3_600_000_000_000

ValuesOf = Callable[[dict[str, Any]], Mapping[str, float | None]]


def ns(hours: int) -> int:
    return int(T0.value) + hours * HOUR_NS


def stream_features(
    frame: pd.DataFrame,
    entity: str,
    values_of: ValuesOf,
    specs: Sequence[FeatureSpec],
    batch: int = 37,
) -> dict[tuple[str, pd.Timestamp], list[np.ndarray]]:
    """Push ``frame`` reading by reading (time order, odd batch size) through a state sized
    for every spec; feature rows per (entity, ts), one per spec."""
    state = StreamState(max(spec.history_needed for spec in specs))
    ordered = frame.sort_values([TS, entity], kind="stable").to_dict("records")
    rows: dict[tuple[str, pd.Timestamp], list[np.ndarray]] = {}
    for start in range(0, len(ordered), batch):
        part = ordered[start : start + batch]
        entities = [str(r[entity]) for r in part]
        stamps = [epoch_ns(pd.Timestamp(r[TS]).to_pydatetime()) for r in part]
        wheres = [("t", 0)] * len(part)
        accepted, snapshot = state.push_batch(
            entities, [values_of(r) for r in part], stamps, wheres
        )
        assert accepted == list(range(len(part)))
        ts = np.asarray(stamps, dtype=np.int64).astype("datetime64[ns]")
        names = np.asarray(entities, dtype=object)
        per_spec = [
            spec.rows(snapshot.windows(spec.inputs, spec.history_needed), ts, names)
            for spec in specs
        ]
        for i, record in enumerate(part):
            rows[(str(record[entity]), pd.Timestamp(record[TS]))] = [m[i] for m in per_spec]
    return rows


def assert_same_as_training(
    frame: pd.DataFrame, entity: str, values_of: ValuesOf, specs: Sequence[FeatureSpec]
) -> None:
    streamed = stream_features(frame, entity, values_of, specs)
    for k, spec in enumerate(specs):
        expected = frame_rows(spec, frame)
        keys = zip(expected.frame[entity], expected.frame[TS], strict=True)
        got = np.vstack([streamed[(str(e), pd.Timestamp(t))][k] for e, t in keys])
        np.testing.assert_array_equal(got, expected.matrix, err_msg=f"{spec.kind} spec {k}")


def test_sensor_windows_give_the_training_features_of_every_spec(worker_data: Any) -> None:
    frame = worker_data.machines(periods=90)
    rng = np.random.default_rng(5)
    frame.loc[rng.random(len(frame)) < 0.1, "vibration"] = np.nan  # sensor dropouts
    late = (frame[ENTITY] == "machine-001") & (frame[TS] < frame[TS].min() + pd.Timedelta("20h"))
    frame.loc[late, "production"] = np.nan  # a metric that machine reports only later

    def values_of(row: dict[str, Any]) -> dict[str, float | None]:
        values = {m: None if pd.isna(row[m]) else float(row[m]) for m in METRICS}
        if row[ENTITY] == "machine-001" and values["production"] is None:
            del values["production"]  # absent from the reading, not null
        return values

    specs: list[FeatureSpec] = [
        SensorSpec(METRICS, window=24, rolling=(6, 12), features=("rz", "crz")),
        SensorSpec(
            METRICS,
            window=12,
            lags=(1, 3),
            rolling=(3, 6),
            features=("value", "lag", "mean", "std", "z", "diff", "vol", "slope"),
            calendar=("hour", "dow"),
        ),
        SequenceSpec(("temperature", "power", "production"), seq_len=8),
        SeriesSpec("temperature", season=24),
    ]
    assert_same_as_training(frame, ENTITY, values_of, specs)


def test_demand_windows_give_the_training_features(worker_data: Any) -> None:
    frame = worker_data.products(periods=70)
    frame.loc[frame.index % 9 == 4, "price"] = np.nan

    def values_of(row: dict[str, Any]) -> dict[str, float | None]:
        price = None if pd.isna(row["price"]) else float(row["price"])
        return {"quantity": float(row["quantity"]), "price": price, "promo": float(row["promo"])}

    daily = DemandSpec.for_step(86_400.0, price=True, promo=True)
    specs: list[FeatureSpec] = [
        daily.with_products(["product-000", "product-002"]),
        SeriesSpec("quantity", season=7, entity=PRODUCT),
    ]
    assert_same_as_training(frame, PRODUCT, values_of, specs)


def test_replayed_and_out_of_order_readings_change_nothing() -> None:
    state = StreamState(4)
    state.push_batch(["a", "a"], [{"x": 1.0}, {"x": 2.0}], [ns(1), ns(2)], [("t", 0)] * 2)
    before = state.window("a")
    accepted, snapshot = state.push_batch(
        ["a", "a", "a"],
        [{"x": 9.0}, {"x": 8.0}, {"x": 3.0}],
        [ns(2), ns(1), ns(3)],
        [("t", 0)] * 3,
    )
    assert accepted == [2]
    assert len(snapshot) == 1
    after = state.window("a")
    assert before is not None and after is not None
    assert after[1][:, 0].tolist()[-3:] == [1.0, 2.0, 3.0]


def test_forget_drops_only_entities_of_the_given_partitions() -> None:
    state = StreamState(3)
    state.push_batch(["a", "b", "c"], [{"x": 1.0}] * 3, [ns(1)] * 3, [("s", 0), ("s", 1), ("d", 0)])
    assert state.forget([("s", 0), ("d", 0)]) == 2
    assert state.window("a") is None and state.window("c") is None
    assert state.window("b") is not None


def test_an_entity_is_forgotten_by_the_partition_it_was_last_seen_on() -> None:
    state = StreamState(3)
    state.push_batch(["a", "a"], [{"x": 1.0}, {"x": 2.0}], [ns(1), ns(2)], [("s", 0), ("s", 2)])
    assert state.forget([("s", 0)]) == 0
    assert state.forget([("s", 2)]) == 1


def test_a_refused_reading_does_not_move_its_entity_to_another_partition() -> None:
    # Partition 0 is newly assigned while the entity lives on partition 1; the warm-up
    # reads its older readings there (before the key moved): all refused, none moves it.
    state = StreamState(3)
    state.push_batch(["a", "a"], [{"x": 1.0}, {"x": 2.0}], [ns(2), ns(3)], [("s", 1)] * 2)
    assert state.warm(["a"], [{"x": 0.5, "y": 1.0}], [ns(1)], [("s", 0)]) == 0
    assert state.forget([("s", 0)]) == 0
    window = state.window("a")
    assert window is not None and window[0] == ("x",)  # a refused reading adds no metric
    assert state.forget([("s", 1)]) == 1


def test_growing_keeps_the_readings_held_and_still_refuses_replays() -> None:
    state = StreamState(3)
    state.push_batch(
        ["a"] * 5, [{"x": float(i)} for i in range(5)], [ns(i) for i in range(5)], [("t", 0)] * 5
    )
    assert state.require(6) and not state.require(4)
    accepted, snapshot = state.push_batch(
        ["a", "a"], [{"x": 99.0}, {"x": 5.0}], [ns(4), ns(5)], [("t", 0)] * 2
    )
    assert accepted == [1]
    window = snapshot.windows(("x",), 6)[0, :, 0]
    np.testing.assert_array_equal(window, [np.nan, np.nan, 2.0, 3.0, 4.0, 5.0])


def test_a_new_metric_joins_the_window_with_an_empty_past() -> None:
    state = StreamState(3)
    state.push_batch(["a", "a"], [{"x": 1.0}, {"x": 2.0}], [ns(1), ns(2)], [("t", 0)] * 2)
    _, snapshot = state.push_batch(["a"], [{"x": 3.0, "y": 7.0}], [ns(3)], [("t", 0)])
    windows = snapshot.windows(("y", "x", "never"), 3)[0]
    np.testing.assert_array_equal(windows[:, 0], [np.nan, np.nan, 7.0])
    np.testing.assert_array_equal(windows[:, 1], [1.0, 2.0, 3.0])
    assert np.isnan(windows[:, 2]).all()


def test_snapshot_pads_windows_longer_than_the_state_and_picks_rows() -> None:
    state = StreamState(2)
    _, snapshot = state.push_batch(
        ["a", "b", "a"],
        [{"x": 1.0}, {"y": 5.0}, {"x": 2.0}],
        [ns(1), ns(1), ns(2)],
        [("t", 0)] * 3,
    )
    windows = snapshot.windows(("x", "y"), 4, rows=[2, 1])
    np.testing.assert_array_equal(windows[0, :, 0], [np.nan, np.nan, 1.0, 2.0])
    np.testing.assert_array_equal(windows[1, :, 1], [np.nan, np.nan, np.nan, 5.0])
    assert snapshot.metrics() == ("x", "y")
    assert snapshot.metrics([1]) == ("y",)
    np.testing.assert_array_equal(snapshot.last_observed("x", [0, 1, 2]), [1.0, np.nan, 2.0])


def test_an_entity_tracks_a_bounded_number_of_metrics() -> None:
    state = StreamState(2)
    many = {f"m{i}": float(i) for i in range(MAX_ENTITY_METRICS + 10)}
    state.push_batch(["a", "a"], [many, many], [ns(1), ns(2)], [("t", 0)] * 2)
    held = state.window("a")
    assert held is not None
    assert len(held[0]) == MAX_ENTITY_METRICS
    assert held[1].shape == (2, MAX_ENTITY_METRICS)


def test_ever_new_metric_names_neither_grow_the_state_nor_flood_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = StreamState(2)
    full = {f"m{i}": float(i) for i in range(MAX_ENTITY_METRICS)}
    state.push_batch(["a"], [full], [ns(1)], [("t", 0)])
    with caplog.at_level("WARNING", logger="worker.state"):
        for hour in range(2, 40):
            # a producer bug: every reading brings metric names never seen before
            reading = {**full, f"new{hour}a": 1.0, f"new{hour}b": 2.0}
            accepted, _ = state.push_batch(["a"], [reading], [ns(hour)], [("t", 0)])
            assert accepted == [0]
    held = state.window("a")
    assert held is not None and held[0] == tuple(full)
    assert len(state._layouts) == len(state._rings) == 1
    assert caplog.messages == []  # the layout was full before: nothing more to say


def test_entities_of_many_metric_sets_hold_little_more_than_their_rings() -> None:
    state = StreamState(4)
    pool = [f"m{i}" for i in range(8)]
    rng = np.random.default_rng(3)
    entities = [f"e{i}" for i in range(300)]
    readings = [dict.fromkeys(rng.choice(pool, 4, replace=False).tolist(), 1.0) for _ in entities]
    state.push_batch(entities, readings, [ns(1)] * 300, [("t", 0)] * 300)
    rings = state._rings.values()
    assert len(rings) > 100  # metric sets in the order each entity first reported them
    assert sum(r.slots for r in rings) <= 2 * len(entities)


def test_layouts_no_entity_uses_are_forgotten() -> None:
    state = StreamState(2)
    # each entity moves through layouts (x), (x, y), (x, y, z): the first two empty out
    for hour, metrics in enumerate(("x", "xy", "xyz"), start=1):
        state.push_batch(
            ["a", "b"], [dict.fromkeys(metrics, 1.0)] * 2, [ns(hour)] * 2, [("t", 0)] * 2
        )
    assert list(state._layouts) == [("x", "y", "z")]
    state.forget([("t", 0)])
    assert state._layouts == {} and state._rings == {}


def test_state_length_must_hold_a_window() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        StreamState(1)


def test_past_the_bound_the_entities_with_the_oldest_readings_are_dropped() -> None:
    dropped: list[int] = []
    state = StreamState(3, max_entities=20, on_evict=dropped.append)
    old = [f"e{i}" for i in range(20)]
    # e0..e9 scored live at hour 2; e10..e19 warmed afterwards from history of hour 1:
    # pushed later, but their readings are older
    state.push_batch(old[:10], [{"x": 2.0}] * 10, [ns(2)] * 10, [("t", 0)] * 10)
    state.warm(old[10:], [{"x": 1.0}] * 10, [ns(1)] * 10, [("t", 0)] * 10)
    assert len(state) == 20 and dropped == []
    # one entity too many: one plus a twentieth of the bound go, the oldest readings first
    state.push_batch(["new"], [{"x": 1.0}], [ns(3)], [("t", 0)])
    assert len(state) == 19 and dropped == [2]
    held = {e for e in [*old, "new"] if state.window(e) is not None}
    assert len(held & set(old[10:])) == 8 and set(old[:10]) | {"new"} <= held
    # a dropped entity that comes back starts like a new one (its last time is forgotten)
    [gone, *_] = sorted(set(old) - held)
    accepted, _ = state.push_batch([gone], [{"x": 7.0}], [ns(1)], [("t", 0)])
    window = state.window(gone)
    assert accepted == [0] and window is not None
    assert np.isnan(window[1][:-1, 0]).all() and window[1][-1, 0] == 7.0


def test_the_bound_holds_even_when_one_batch_brings_more_entities() -> None:
    dropped: list[int] = []
    state = StreamState(3, max_entities=4, on_evict=dropped.append)
    many = [f"e{i}" for i in range(10)]
    stamps = [ns(10 - i) for i in range(10)]  # the later in the batch, the older
    accepted, snapshot = state.push_batch(many, [{"x": 1.0}] * 10, stamps, [("t", 0)] * 10)
    assert accepted == list(range(10)) and len(snapshot) == 10  # every reading is scored
    assert dropped == [6] and {e for e in many if state.window(e)} == set(many[:4])
    with pytest.raises(ValueError, match="max_entities"):
        StreamState(3, max_entities=0)


class Reference:
    """What the state should hold, the plain way: every entity's accepted readings."""

    def __init__(self, length: int) -> None:
        self.length = length
        self.held: dict[str, list[Mapping[str, float | None]]] = {}
        self.names: dict[str, list[str]] = {}
        self.last: dict[str, int] = {}

    def push(
        self, entity: str, values: Mapping[str, float | None], stamp: int
    ) -> tuple[tuple[str, ...], np.ndarray] | None:
        """The metric names and window right after pushing (None: refused)."""
        if entity in self.last and stamp <= self.last[entity]:
            return None
        self.last[entity] = stamp
        names = self.names.setdefault(entity, [])
        names.extend(name for name in values if name not in names)
        held = self.held.setdefault(entity, [])
        held.append(values)
        del held[: -self.length]
        window = np.full((self.length, len(names)), np.nan)
        for t, reading in enumerate(held[::-1]):
            row = [np.nan if reading.get(n) is None else reading[n] for n in names]
            window[self.length - 1 - t] = row
        return tuple(names), window

    def grow(self, length: int) -> None:
        self.length = length

    def forget(self, entities: list[str]) -> None:
        for entity in entities:
            del self.held[entity], self.names[entity], self.last[entity]


def test_batched_pushes_give_the_windows_of_pushing_one_reading_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # entities gaining metrics mid-batch, nulls, stale and replayed readings, more entities
    # than a layout's first slots, a longer state, and most entities forgotten (their
    # rings compacted): windows as read one by one
    rng = np.random.default_rng(11)
    state, reference = StreamState(3), Reference(3)
    compacted: list[int] = []
    compact = Rings.compact

    def counted(rings: Rings) -> dict[int, int]:
        compacted.append(rings.used)
        return compact(rings)

    monkeypatch.setattr(Rings, "compact", counted)
    clock = {f"e{i}": 0 for i in range(30)}
    for batch in range(40):
        if batch == 20:
            assert state.require(7)
            reference.grow(7)
        if batch == 30:  # partitions 1-3 revoked: their entities start afresh if they return
            gone = [e for e in clock if int(e[1:]) % 4]
            assert state.forget([("t", 1), ("t", 2), ("t", 3)]) == len(gone)
            reference.forget(gone)
            assert compacted
        entities = [f"e{i}" for i in rng.integers(0, 30, size=60)]
        values: list[dict[str, float | None]] = []
        stamps: list[int] = []
        for entity in entities:
            metrics = ["a", "b", "c", "d"][: 1 + int(rng.integers(0, 2 + batch // 10))]
            reading = {m: None if rng.random() < 0.1 else float(rng.normal()) for m in metrics}
            values.append(dict(reversed(reading.items())) if rng.random() < 0.2 else reading)
            clock[entity] += int(rng.integers(-1, 3))  # some stale, some replayed
            stamps.append(ns(clock[entity]))
        wheres = [("t", int(e[1:]) % 4) for e in entities]
        accepted, snapshot = state.push_batch(entities, values, stamps, wheres)
        expected = [
            reference.push(e, v, s) for e, v, s in zip(entities, values, stamps, strict=True)
        ]
        assert accepted == [i for i, pushed in enumerate(expected) if pushed is not None]
        for row, i in enumerate(accepted):
            pushed = expected[i]
            assert pushed is not None
            names, window = pushed
            got = snapshot.windows(names, reference.length, [row])[0]
            np.testing.assert_array_equal(got, window, err_msg=f"batch {batch} reading {i}")
    for entity, names in reference.names.items():
        held = state.window(entity)
        assert held is not None and held[0] == tuple(names)


def test_windows_of_one_layout_pick_columns_rows_and_lengths() -> None:
    state = StreamState(3)
    values = [{"x": float(i), "y": -float(i), "z": 10.0 * i} for i in range(5)]
    entities = ["a", "b", "a", "b", "a"]
    _, snapshot = state.push_batch(
        entities, values, [ns(1), ns(1), ns(2), ns(2), ns(3)], [("t", 0)] * 5
    )
    nan = np.nan
    a_last = [[0.0, -0.0, 0.0], [2.0, -2.0, 20.0], [4.0, -4.0, 40.0]]  # row 4, x y z
    full = snapshot.windows(("x", "y", "z"), 3)
    np.testing.assert_array_equal(full[4], a_last)
    np.testing.assert_array_equal(full[1], [[nan] * 3, [nan] * 3, [1.0, -1.0, 10.0]])
    np.testing.assert_array_equal(snapshot.windows(("y", "z"), 2)[4], [r[1:] for r in a_last[1:]])
    reordered = snapshot.windows(("z", "x"), 3)[4]
    np.testing.assert_array_equal(reordered, [[r[2], r[0]] for r in a_last])
    picked = snapshot.windows(("x",), 5, rows=[4, 1])
    np.testing.assert_array_equal(picked[:, :, 0], [[nan, nan, 0.0, 2.0, 4.0], [nan] * 4 + [1.0]])
    with pytest.raises(ValueError, match="read-only"):
        full[4, 0, 0] = 99.0  # a view of the snapshot: models must not write into it
    np.testing.assert_array_equal(snapshot.windows(("x", "y", "z"), 3)[4], a_last)
