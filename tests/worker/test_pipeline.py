"""ScoringPipeline end to end on consumed records (no broker) with small real models."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pandas as pd
import pytest

from events.catalog import codec_for
from events.dlq import read_dead_letter
from events.ids import derive_id
from models.cache import ModelCache
from models.demand import DemandModel
from models.features import frame_rows, spec_from_metadata
from models.frames import ENTITY, PRODUCT, TS
from models.maintenance import MaintenanceModel
from models.store import ModelStore
from worker.errors import UnknownStreamError
from worker.pipeline import ScoringPipeline, build_pipeline
from worker.records import BatchResult, OutRecord
from worker.replay import Record, frame_records
from worker.settings import WorkerSettings

SENSOR = "readings.sensor"
DEMAND = "readings.demand"


def decoded(records: list[OutRecord], topic: str) -> list[Any]:
    codec = codec_for(topic)
    return [codec.decode(r.value) for r in records if r.topic == topic]


def origins(records: list[Any]) -> dict[tuple[str, pd.Timestamp], tuple[str, int, int]]:
    """(entity, ts) -> (topic, partition, offset) of each consumed record."""
    found = {}
    for record in records:
        message = codec_for(record.topic()).decode(record.value())
        entity = getattr(message, "entity_id", None) or message.product_id
        found[(entity, pd.Timestamp(message.ts))] = (
            record.topic(),
            record.partition(),
            record.offset(),
        )
    return found


def produced(result: BatchResult) -> list[tuple[str, bytes | None, bytes | None]]:
    return sorted((r.topic, r.key, r.value) for r in result.records)


def test_machine_readings_get_exactly_the_outputs_of_the_champions(
    pipeline: ScoringPipeline, cache: ModelCache, worker_data: Any
) -> None:
    frame = worker_data.machines()
    records = worker_data.sensor_records(frame)
    result = worker_data.run(pipeline, records, batch=50)
    where = origins(records)
    expected_alerts, expected_risks = {}, {}
    for name in ("anomaly", "maintenance"):
        loaded = cache.get(name)
        rows = frame_rows(spec_from_metadata(loaded.info.metadata), frame)
        scores = loaded.model.predict_batch(rows.matrix)
        flag, score = np.asarray(scores.flag), np.asarray(scores.score)
        value, level = np.asarray(scores.value), np.asarray(scores.level)
        for i, (entity, ts) in enumerate(zip(rows.frame[ENTITY], rows.frame[TS], strict=True)):
            origin = where[(entity, pd.Timestamp(ts))]
            if name == "anomaly" and flag[i]:
                expected_alerts[derive_id(*origin, name)] = float(score[i])
            if name == "maintenance":
                expected_risks[derive_id(*origin, name, "risk")] = float(value[i])
                if flag[i]:
                    expected_alerts[derive_id(*origin, name, "alert")] = float(level[i])
    alerts = {a.alert_id: a.score for a in decoded(result.records, "alerts")}
    risks = {p.prediction_id: p.value for p in decoded(result.records, "predictions")}
    assert len(risks) == len(records)
    assert risks == pytest.approx(expected_risks, rel=1e-12)
    assert alerts == pytest.approx(expected_alerts, rel=1e-12)
    assert expected_alerts, "the test data should raise at least one alert"
    assert result.versions == {("anomaly", None): 1, ("maintenance", None): 1}
    assert set(result.model_seconds) == {"anomaly", "maintenance"}
    assert set(result.feature_seconds) == {"anomaly", "maintenance"}
    assert all(seconds > 0 for seconds in result.feature_seconds.values())
    assert Counter(r.kind for r in result.records) == {
        "prediction": len(records),
        "alert": len(expected_alerts),
    }


def test_bad_records_go_to_the_dlq_while_the_rest_of_the_batch_is_scored(
    pipeline: ScoringPipeline, worker_data: Any
) -> None:
    good = worker_data.sensor_records()[:30]
    valid = good[0]
    bad = [
        replace(valid, source_offset=1000, source_value=b"not json"),
        replace(valid, source_offset=1001, source_value=None),
        replace(valid, source_offset=1002, source_value=b'{"schema":1,"entity_id":"m"}'),
        replace(valid, source_offset=1003, source_key=b"someone-else"),
        replace(valid, source_topic="readings.unknown", source_offset=7),
    ]
    result = pipeline.process(good[:10] + bad + good[10:])
    dead = [r for r in result.records if r.kind == "dlq"]
    reasons = [read_dead_letter(r.key, r.value, r.headers) for r in dead]
    assert [(d.source.offset, d.reason) for d in reasons] == [
        (1000, "invalid_json"),
        (1001, "empty"),
        (1002, "missing_field"),
        (1003, "key_mismatch"),
        (7, "processing"),
    ]
    assert [r.topic for r in dead] == ["dlq.readings.sensor"] * 4 + ["dlq.readings.unknown"]
    assert dead[0].value == b"not json"
    assert result.dlq_reasons == {
        (SENSOR, "invalid_json"): 1,
        (SENSOR, "empty"): 1,
        (SENSOR, "missing_field"): 1,
        (SENSOR, "key_mismatch"): 1,
        ("readings.unknown", "processing"): 1,
    }
    assert len(decoded(result.records, "predictions")) == len(good)


def stamped(record: Record, ahead: timedelta) -> Record:
    """``record`` with its reading stamped ``ahead`` of its record's Kafka timestamp."""
    codec = codec_for(SENSOR)
    reading = codec.decode(record.value())
    moved = msgspec.structs.replace(reading, ts=reading.ts + ahead)
    return replace(record, source_offset=record.offset() + 10_000, source_value=codec.encode(moved))


def test_a_reading_from_the_future_is_dead_lettered_and_its_entity_keeps_scoring(
    store_dir: Path, worker_data: Any
) -> None:
    records = worker_data.sensor_records()
    early, late = records[:60], records[60:]
    wrong_clock = stamped(early[-1], timedelta(days=2))

    def scored(pipeline: ScoringPipeline, extra: list[Record]) -> tuple[BatchResult, BatchResult]:
        worker_data.run(pipeline, early)
        return pipeline.process(extra), worker_data.run(pipeline, late)

    def fresh(**kwargs: Any) -> ScoringPipeline:
        store = ModelStore(store_dir)
        return ScoringPipeline(store, ModelCache(store, worker_data.CACHE_BYTES), **kwargs)

    _, expected = scored(fresh(), [])
    refused, got = scored(fresh(), [wrong_clock])
    [letter] = [read_dead_letter(r.key, r.value, r.headers) for r in refused.records]
    assert (letter.source.offset, letter.reason) == (wrong_clock.offset(), "future_timestamp")
    assert letter.error_class == "worker.errors.FutureTimestampError"
    assert "172800 s after its record's Kafka timestamp" in letter.message
    assert refused.dlq_reasons == {(SENSOR, "future_timestamp"): 1}
    # nothing of the entity is refused as stale later: the outputs are those of a clean run
    assert got.stale == {} and produced(got) == produced(expected)
    assert len(got.records) >= len(late)

    # within the hour Kafka itself allows, the reading is scored
    accepted, after = scored(fresh(), [stamped(early[-1], timedelta(minutes=30))])
    assert [r.kind for r in accepted.records] == ["prediction"]
    assert after.stale == {}
    # with the check off too, and then it silences its entity for two days
    accepted, after = scored(fresh(max_future_s=0), [wrong_clock])
    assert [r.kind for r in accepted.records] == ["prediction"]
    until_ms = early[-1].timestamp()[1] + 2 * 86_400_000
    silenced = [r for r in late if r.key() == wrong_clock.key() and r.timestamp()[1] <= until_ms]
    assert after.stale == {SENSOR: len(silenced)} and len(silenced) >= 47


def test_a_record_without_a_timestamp_is_not_checked(
    pipeline: ScoringPipeline, worker_data: Any
) -> None:
    record = stamped(worker_data.sensor_records()[0], timedelta(days=400))
    untimed = replace(record, timestamp_ms=None)
    assert untimed.timestamp() == (0, -1)
    result = pipeline.process([untimed])
    assert result.dlq_reasons == {} and [r.kind for r in result.records] == ["prediction"]


def test_past_its_entity_bound_the_pipeline_still_scores_every_reading(
    store_dir: Path, worker_data: Any
) -> None:
    store = ModelStore(store_dir)
    bounded = ScoringPipeline(store, ModelCache(store, worker_data.CACHE_BYTES), max_entities=2)
    records = worker_data.sensor_records()  # three machines, in time order
    results = [bounded.process(records[i : i + 30]) for i in range(0, len(records), 30)]
    assert len(bounded.sensor.state) == 2
    predictions = [p for r in results for p in decoded(r.records, "predictions")]
    assert len(predictions) == len(records)  # scored, from shorter windows


def test_an_output_the_contracts_refuse_dead_letters_its_reading(
    pipeline: ScoringPipeline, worker_data: Any
) -> None:
    frame = pd.DataFrame(
        {
            PRODUCT: ["product-001"] * 2,
            TS: [datetime(2099, 12, 30, tzinfo=UTC), datetime(2099, 12, 31, tzinfo=UTC)],
            "quantity": [3.0, 4.0],
        }
    )
    result = pipeline.process(worker_data.demand_records(frame))
    (forecast,) = decoded(result.records, "predictions")
    assert forecast.target_ts == datetime(2099, 12, 31, tzinfo=UTC)
    (dead,) = [r for r in result.records if r.kind == "dlq"]
    assert read_dead_letter(dead.key, dead.value, dead.headers).reason == "processing"
    assert result.dlq_reasons == {(DEMAND, "processing"): 1}


def test_outputs_and_ids_are_the_same_on_every_run(store_dir: Path, worker_data: Any) -> None:
    records = worker_data.sensor_records() + worker_data.demand_records()
    runs = []
    for _ in range(2):
        store = ModelStore(store_dir)
        fresh = ScoringPipeline(store, ModelCache(store, worker_data.CACHE_BYTES))
        runs.append(produced(worker_data.run(fresh, records)))
    assert runs[0] == runs[1]
    assert len(runs[0]) > len(records)


def test_replayed_readings_are_counted_and_give_no_new_output(
    pipeline: ScoringPipeline, worker_data: Any
) -> None:
    records = worker_data.sensor_records()[:40]
    first = pipeline.process(records)
    again = pipeline.process(records)
    assert len(first.records) >= len(records)
    assert again.records == []
    assert again.stale == {SENSOR: len(records)}


def test_restart_warmed_with_history_scores_as_an_uninterrupted_worker(
    store_dir: Path, worker_data: Any
) -> None:
    sensor, demand = worker_data.sensor_records(), worker_data.demand_records()
    a, b = len(sensor) * 2 // 3, len(demand) * 2 // 3
    history, rest = sensor[:a] + demand[:b], sensor[a:] + demand[b:]

    def fresh() -> ScoringPipeline:
        store = ModelStore(store_dir)
        return ScoringPipeline(store, ModelCache(store, worker_data.CACHE_BYTES))

    uninterrupted = fresh()
    worker_data.run(uninterrupted, history, batch=100)
    expected = worker_data.run(uninterrupted, rest, batch=100)
    restarted = fresh()
    for start in range(0, len(history), 64):  # the runtime warms in chunks
        restarted.warm(history[start : start + 64])
    got = worker_data.run(restarted, rest, batch=37)
    assert produced(got) == produced(expected)
    assert len(expected.records) >= len(rest)  # every reading has at least one output
    cold = worker_data.run(fresh(), rest, batch=37)  # control: the warm-up is what matters
    assert produced(cold) != produced(expected)


def test_forget_drops_the_state_of_revoked_partitions(
    pipeline: ScoringPipeline, worker_data: Any
) -> None:
    records = worker_data.sensor_records()
    pipeline.process(records)
    by_partition: dict[int, set[bytes | None]] = {}
    for record in records:
        by_partition.setdefault(record.partition(), set()).add(record.key())
    revoked = next(p for p, keys in by_partition.items() if keys)
    kept = {k for p, keys in by_partition.items() if p != revoked for k in keys}
    pipeline.forget([(SENSOR, revoked)])
    state = pipeline.sensor.state
    assert all(state.window(k.decode()) is None for k in by_partition[revoked] if k)
    assert all(state.window(k.decode()) is not None for k in kept if k)
    assert len(state) == len(kept)


def test_demand_is_served_per_product_then_globally(
    pipeline: ScoringPipeline, worker_data: Any
) -> None:
    records = worker_data.demand_records()
    result = worker_data.run(pipeline, records)
    forecasts = decoded(result.records, "predictions")
    assert len(forecasts) == len(records)
    keys = {(f.entity_id, f.key, f.version, f.fallback) for f in forecasts}
    assert keys == {
        ("product-000", "product-000", 1, False),
        ("product-001", None, 1, False),
        ("product-002", None, 1, False),
    }
    assert all(f.target_ts - f.made_at == timedelta(days=1) for f in forecasts)
    assert all(f.metric == "quantity" and f.kind == "forecast" for f in forecasts)
    assert result.versions == {("demand", "product-000"): 1, ("demand", None): 1}


def test_a_challenger_scores_the_same_readings_into_the_shadow_topic(
    pipeline: ScoringPipeline, cache: ModelCache, registry: Any, worker_data: Any
) -> None:
    sales = worker_data.products(periods=120, seed=5)
    challenger = worker_data.train(registry, "demand", worker_data.DEMAND_PARAMS, sales)
    registry.set_challenger("demand", challenger)
    cache.get("demand")  # a challenger is held beside a champion this worker serves
    assert cache.sync_challengers([("demand", None)]).changed == {("demand", None): challenger}
    records = worker_data.demand_records()
    result = worker_data.run(pipeline, records)
    champion = [f for f in decoded(result.records, "predictions") if f.key is None]
    shadow = decoded(result.records, "predictions.shadow")
    assert len(champion) == len(shadow) > 0  # the unkeyed champion's readings, scored twice
    assert {f.version for f in champion} == {1} and {f.version for f in shadow} == {challenger}
    assert {(f.entity_id, f.target_ts) for f in shadow} == {
        (f.entity_id, f.target_ts) for f in champion
    }
    assert not {f.prediction_id for f in shadow} & {f.prediction_id for f in champion}
    assert [f.value for f in shadow] != [f.value for f in champion]
    assert result.versions[("demand", None)] == 1  # the champion served the batch
    # rejected: the store no longer names it, and shadow scoring stops
    registry.reject("demand", challenger, reason="lost")
    cache.sync_challengers()
    later = pipeline.process(worker_data.demand_records(worker_data.products(periods=61))[-3:])
    assert decoded(later.records, "predictions") and not decoded(
        later.records, "predictions.shadow"
    )


def test_a_maintenance_challenger_shadows_risk_predictions_but_raises_no_alert(
    pipeline: ScoringPipeline, cache: ModelCache, registry: Any, worker_data: Any
) -> None:
    labelled = worker_data.history(seed=9)
    challenger = worker_data.train(registry, "maintenance", worker_data.MAINTENANCE, labelled)
    registry.set_challenger("maintenance", challenger)
    cache.get("maintenance")
    assert cache.sync_challengers([("maintenance", None)]).changed
    shadowed = worker_data.run(pipeline, worker_data.sensor_records())
    shadow = decoded(shadowed.records, "predictions.shadow")
    risks = [p for p in decoded(shadowed.records, "predictions") if p.kind == "risk"]
    assert shadow and len(shadow) == len(risks)
    assert {p.version for p in shadow} == {challenger} and {p.kind for p in shadow} == {"risk"}
    assert all(
        a.version == 1 for a in decoded(shadowed.records, "alerts") if a.type == "maintenance"
    )


def test_the_maintenance_challenger_is_taken_before_demand_scores(
    pipeline: ScoringPipeline,
    cache: ModelCache,
    registry: Any,
    worker_data: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Demand scores before the maintenance risks are emitted, and its models' loads may
    evict the challenger from the cache: the batch keeps the challenger it started with."""
    challenger = worker_data.train(
        registry, "maintenance", worker_data.MAINTENANCE, worker_data.history(seed=9)
    )
    registry.set_challenger("maintenance", challenger)
    cache.get("maintenance")
    assert cache.sync_challengers([("maintenance", None)]).changed
    planned = pipeline.demand.plan
    evicted: list[bool] = []

    def plan_then_evict(readings: Any) -> Any:
        evicted.append(True)
        return planned(readings)

    lookup = type(pipeline.serving).challenger

    def challenger_until_evicted(serving: Any, name: str, key: str | None = None) -> Any:
        return None if evicted else lookup(serving, name, key)

    monkeypatch.setattr(pipeline.demand, "plan", plan_then_evict)
    monkeypatch.setattr(type(pipeline.serving), "challenger", challenger_until_evicted)
    records = worker_data.sensor_records() + worker_data.demand_records()
    result = worker_data.run(pipeline, records, len(records))  # one batch of both streams
    shadow = decoded(result.records, "predictions.shadow")
    risks = [p for p in decoded(result.records, "predictions") if p.kind == "risk"]
    assert evicted and risks and len(shadow) == len(risks)
    assert {p.version for p in shadow} == {challenger}


def test_without_champions_fallbacks_serve_with_version_0(
    empty_pipeline: ScoringPipeline, worker_data: Any
) -> None:
    frame = worker_data.machines()
    spike = frame.index[(frame[ENTITY] == "machine-002")][80]
    frame.loc[spike, "power"] *= 4  # far outside the machine's usual level
    result = worker_data.run(empty_pipeline, worker_data.sensor_records(frame))
    alerts = decoded(result.records, "alerts")
    assert decoded(result.records, "predictions") == []  # no maintenance without a model
    assert alerts and all(a.version == 0 and a.type == "anomaly" for a in alerts)
    spiked = pd.Timestamp(frame.loc[spike, TS])
    assert any(a.entity_id == "machine-002" and pd.Timestamp(a.ts) == spiked for a in alerts)
    demand = worker_data.run(empty_pipeline, worker_data.demand_records())
    forecasts = decoded(demand.records, "predictions")
    assert len(forecasts) == len(worker_data.demand_records())
    assert all(f.fallback and f.version == 0 and f.key is None for f in forecasts)
    assert demand.versions == {("demand", None): 0}


def test_history_needed_per_topic_and_overall(pipeline: ScoringPipeline) -> None:
    assert pipeline.history_needed(SENSOR) == 48  # the configured minimum beats 24
    assert pipeline.history_needed() == max(
        pipeline.history_needed(SENSOR), pipeline.history_needed(DEMAND)
    )


def test_build_pipeline_from_worker_settings(store_dir: Path, worker_data: Any) -> None:
    settings = WorkerSettings(model_store=store_dir, input_topics=[SENSOR], alerts_topic="al")
    cache = ModelCache(ModelStore(store_dir), worker_data.CACHE_BYTES)
    built = build_pipeline(settings, cache)
    result = built.process(worker_data.sensor_records()[:60] + worker_data.demand_records()[:3])
    assert {r.topic for r in result.records} >= {"predictions", "dlq.readings.demand"}
    with pytest.raises(UnknownStreamError, match="custom"):
        build_pipeline(WorkerSettings(model_store=store_dir, input_topics=["custom"]), cache)
    ahead = stamped(worker_data.sensor_records()[0], timedelta(days=400))
    for bound, reasons in ((3600.0, {(SENSOR, "future_timestamp"): 1}), (0.0, {})):
        chosen = settings.model_copy(update={"max_future_s": bound})
        assert build_pipeline(chosen, cache).process([ahead]).dlq_reasons == reasons
    one = build_pipeline(settings.model_copy(update={"max_entities": 1}), cache)
    one.process(worker_data.sensor_records()[:6])
    assert len(one.sensor.state) == 1


def test_record_accessors_match_a_consumed_message() -> None:
    record = Record("t", 2, 5, b"k", b"v", (("h", b"1"),), 1_700_000_000_000)
    assert (record.topic(), record.partition(), record.offset()) == ("t", 2, 5)
    assert (record.key(), record.value(), record.headers()) == (b"k", b"v", [("h", b"1")])
    assert record.timestamp() == (1, 1_700_000_000_000)
    stamps = [
        r.timestamp()[1]
        for r in frame_records(
            pd.DataFrame(
                {
                    ENTITY: ["a", "a"],
                    TS: ["2024-01-01T01:00Z", "2024-01-01T00:00Z"],
                    "x": [1.0, np.nan],
                }
            ),
            SENSOR,
        )
    ]
    assert stamps == sorted(stamps)


def test_maintenance_scores_on_the_helper_thread_with_the_same_outputs(
    store_dir: Path, worker_data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two scoring threads change where the maintenance model runs, not what comes out."""
    callers: list[str] = []
    predict = MaintenanceModel.predict_batch

    def recorded(model: MaintenanceModel, features: Any) -> Any:
        callers.append(threading.current_thread().name)
        return predict(model, features)

    monkeypatch.setattr(MaintenanceModel, "predict_batch", recorded)
    records = worker_data.sensor_records() + worker_data.demand_records()
    outputs, threads = {}, {}
    for count in (1, 2):
        callers.clear()
        store = ModelStore(store_dir)
        pipeline = ScoringPipeline(
            store, ModelCache(store, worker_data.CACHE_BYTES), scoring_threads=count
        )
        result = worker_data.run(pipeline, records)
        outputs[count] = [(r.topic, r.key, r.value, r.headers) for r in result.records]
        threads[count] = set(callers)
    assert outputs[1] == outputs[2]  # the same records, in the same order
    assert threads[1] == {threading.main_thread().name}
    assert threads[2] and all(name.startswith("scoring") for name in threads[2])
    one = build_pipeline(
        WorkerSettings(model_store=store_dir, scoring_threads=1),
        ModelCache(ModelStore(store_dir), worker_data.CACHE_BYTES),
    )
    assert one.sensor.helper is None
    with pytest.raises(ValueError, match="scoring_threads"):
        WorkerSettings(scoring_threads=3)


def test_demand_scores_while_the_helper_thread_scores_maintenance(
    store_dir: Path, worker_data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a batch of both streams, the demand model runs before the caller waits for the
    maintenance model: the maintenance call here returns only once demand has scored."""
    demand_scored = threading.Event()
    seen_by_maintenance: list[bool] = []
    maintenance, demand = MaintenanceModel.predict_batch, DemandModel.predict_batch

    def waits_for_demand(model: MaintenanceModel, features: Any) -> Any:
        seen_by_maintenance.append(demand_scored.wait(timeout=30.0))
        return maintenance(model, features)

    def announces(model: DemandModel, features: Any) -> Any:
        demand_scored.set()
        return demand(model, features)

    store = ModelStore(store_dir)
    pipeline = ScoringPipeline(store, ModelCache(store, worker_data.CACHE_BYTES))
    sensor, products = worker_data.sensor_records(), worker_data.demand_records()
    pipeline.warm(sensor[:-50] + products[:-20])
    monkeypatch.setattr(MaintenanceModel, "predict_batch", waits_for_demand)
    monkeypatch.setattr(DemandModel, "predict_batch", announces)
    result = pipeline.process(sensor[-50:] + products[-20:])
    pipeline.close()
    assert seen_by_maintenance == [True]
    kinds = Counter(codec_for(r.topic).decode(r.value).kind for r in result.records
                    if r.topic == "predictions")  # fmt: skip
    assert kinds["risk"] > 0 and kinds["forecast"] == 20


def test_a_failing_demand_stream_still_ends_the_sensor_batch(
    pipeline: ScoringPipeline, worker_data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sensor batch is finished (the helper's maintenance taken) before an error of
    the demand stream leaves ``process``: no helper work outlives its batch."""
    started = pipeline.sensor.start
    finished: list[BatchResult] = []

    def recorded(readings: Any, result: BatchResult, dead: Any) -> Any:
        finish = started(readings, result, dead)

        def recording() -> None:
            finish()
            finished.append(result)

        return recording

    def failing(*_: Any) -> None:
        raise RuntimeError("demand stream failed")

    monkeypatch.setattr(pipeline.sensor, "start", recorded)
    monkeypatch.setattr(pipeline.demand, "process", failing)
    records = worker_data.sensor_records()[:60] + worker_data.demand_records()[:10]
    with pytest.raises(RuntimeError, match="demand stream failed"):
        pipeline.process(records)
    assert len(finished) == 1
    assert any(r.kind == "prediction" for r in finished[0].records)  # the risks came out


def test_closing_stops_the_helper_thread_and_later_batches_still_score(
    store_dir: Path, worker_data: Any
) -> None:
    store = ModelStore(store_dir)
    pipeline = ScoringPipeline(store, ModelCache(store, worker_data.CACHE_BYTES))
    records = worker_data.sensor_records()
    before = set(threading.enumerate())
    first = pipeline.process(records[:100])  # starts the helper thread
    helpers = [t for t in set(threading.enumerate()) - before if t.name.startswith("scoring")]
    assert helpers and first.records
    pipeline.close()
    assert not any(t.is_alive() for t in helpers)
    assert pipeline.process(records[100:200]).records  # on the caller's thread alone
    pipeline.close()  # a second close does nothing
