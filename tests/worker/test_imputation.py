"""Gap filling and metric forecasts on sensor readings (the sequence family, or fallbacks)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from driftline.generator import generate_air
from events.catalog import codec_for
from models.cache import ModelCache
from models.features import frame_rows, spec_from_metadata
from models.frames import ENTITY, TS
from models.registry import Registry
from models.store import ModelStore
from worker.pipeline import ScoringPipeline
from worker.records import OutRecord
from worker.replay import frame_records

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

SENSOR = "readings.sensor"
TINY_SEQUENCE = {"metric": "pm25", "seq_len": 8, "units": 4, "epochs": 2, "batch_size": 32}


def decoded(records: list[OutRecord], topic: str) -> list[Any]:
    codec = codec_for(topic)
    return [codec.decode(r.value) for r in records if r.topic == topic]


def air(periods: int = 120, seed: int = 4) -> pd.DataFrame:
    return generate_air(entities=2, periods=periods, seed=seed, gap_rate=0.08)


def by_reading(messages: list[Any]) -> dict[tuple[str, pd.Timestamp], Any]:
    return {(m.entity_id, pd.Timestamp(m.ts)): m for m in messages}


def test_gaps_without_a_sequence_model_take_the_last_value_in_the_window(
    empty_pipeline: ScoringPipeline, worker_data: Any
) -> None:
    frame = air()
    records = frame_records(frame, SENSOR, partitions=2, kind="air")
    result = worker_data.run(empty_pipeline, records)
    imputed = by_reading(decoded(result.records, "readings.imputed"))
    metrics = [c for c in frame.columns if c not in (ENTITY, TS)]
    window = empty_pipeline.sensor.state.length
    ordered = frame.sort_values([ENTITY, TS])
    # the last observation among the window's earlier readings
    last = ordered.groupby(ENTITY)[metrics].ffill(limit=window - 1)
    expected = {}
    for i in np.flatnonzero(ordered[metrics].isna().any(axis=1).to_numpy()):
        row, filled = ordered.iloc[i], last.iloc[i]
        fills = {m: float(filled[m]) for m in metrics if pd.isna(row[m]) and pd.notna(filled[m])}
        if fills:
            expected[(row[ENTITY], pd.Timestamp(row[TS]))] = fills
    assert expected, "the generated air data should have gaps"
    assert set(imputed) == set(expected)
    for reading, fills in expected.items():
        message = imputed[reading]
        assert message.imputed == list(fills)
        assert {m: message.values[m] for m in fills} == fills
        assert (message.model, message.version) == ("sequence", 0)
    assert decoded(result.records, "predictions") == []  # no forecast without a champion


@pytest.fixture(scope="module")
def sequence_store(tmp_path_factory: pytest.TempPathFactory, worker_data: Any) -> Path:
    root = tmp_path_factory.mktemp("sequence") / "store"
    worker_data.train(
        Registry(root, actor="tests"),
        "sequence",
        TINY_SEQUENCE,
        air(periods=200, seed=9),
        key="pm25",
    )
    return root


@pytest.mark.slow
def test_sequence_champion_forecasts_and_fills_its_metric(
    sequence_store: Path, worker_data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ModelStore(sequence_store)
    cache = ModelCache(store, worker_data.CACHE_BYTES)
    pipeline = ScoringPipeline(store, cache)
    frame = air()
    records = frame_records(frame, SENSOR, partitions=2, kind="air")
    result = worker_data.run(pipeline, records[:150])
    loaded = cache.get("sequence", "pm25")
    rows = frame_rows(spec_from_metadata(loaded.info.metadata), frame)
    forecast = np.asarray(loaded.model.predict_batch(rows.matrix).value)
    filled = np.asarray(loaded.model.impute_rows(rows.matrix).value)  # type: ignore[attr-defined]
    index = {
        (e, pd.Timestamp(t)): i
        for i, (e, t) in enumerate(zip(rows.frame[ENTITY], rows.frame[TS], strict=True))
    }
    predictions = decoded(result.records, "predictions")
    assert len(predictions) == 150  # every reading carries pm25
    for p in predictions:
        assert (p.model, p.key, p.metric, p.version, p.fallback) == (
            "sequence",
            "pm25",
            "pm25",
            1,
            False,
        )
        assert p.target_ts - p.made_at == timedelta(hours=1)
        assert p.value == pytest.approx(
            forecast[index[(p.entity_id, pd.Timestamp(p.made_at))]], rel=1e-6
        )
    by_model = [m for m in decoded(result.records, "readings.imputed") if m.imputed == ["pm25"]]
    assert by_model, "the generated data should have readings whose only gap is pm25"
    for message in by_model:
        assert message.version == 1
        expected = filled[index[(message.entity_id, pd.Timestamp(message.ts))]]
        assert message.values["pm25"] == pytest.approx(expected, rel=1e-6)
    monkeypatch.setattr(loaded.model, "predict_batch", _broken)
    later = pipeline.process(records[150:])
    fallback = decoded(later.records, "predictions")
    assert fallback and {(p.key, p.version, p.fallback) for p in fallback} == {("pm25", 0, True)}
    gaps = [m for m in decoded(later.records, "readings.imputed") if m.imputed == ["pm25"]]
    assert gaps and {m.version for m in gaps} == {1}  # gap filling still works
    assert later.versions[("sequence", "pm25")] == 1


def _broken(features: Any) -> Any:
    raise RuntimeError("the network failed")
