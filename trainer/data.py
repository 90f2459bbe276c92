"""Training data: a window of readings as canonical frames (``models.frames`` layouts).

* demand (long): ``product_id, ts, quantity`` + ``price`` (when any reading has one) +
  ``promo`` (0/1);
* sensor (wide): ``entity_id, ts, <metric>...`` in first-seen metric order, NaN = missing,
  + ``is_anomaly``/``risk`` joined from the labels (``actuals`` with metric ``is_anomaly``
  or ``risk``) when a family learns or is judged from them.

Readings come from Kafka (:func:`trainer.replay.read_window`) or from imported CSV files
(``TRAINER_DEMAND_CSV`` / ``TRAINER_SENSOR_CSV`` / ``TRAINER_LABELS_CSV``, read with
``models.csvio``). A CSV has no Kafka timestamps: its window is the last ``window`` length of
the file's own readings ending no later than the window's end. Duplicate (entity, ts)
readings keep the last one, as the CSV readers do.

A Kafka replay reads the records *produced* in the window (``offsets_for_times`` can only
look up record timestamps). With ``TRAINER_WINDOW_CLOCK=event`` those readings are then cut,
as a CSV is, to the window's length of their own ``ts`` ending at the newest one: for a live
stream this changes nothing, but history published in a burst (a backfill, a catch-up, a
test) would otherwise be all "recent", and a model retrained after a drift would learn
mostly the regime that drifted away.

The families build their features from these frames with ``models.features.frame_rows``, the
code the worker uses for its live rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, Literal

import numpy as np
import pandas as pd

from events import Actual, DemandReading, SensorReading, codec_for, topics
from models.csvio import CsvError, read_demand_csv, read_labels_csv, read_sensor_csv
from models.frames import (
    ENTITY,
    IS_ANOMALY,
    PRICE,
    PRODUCT,
    PROMO,
    QUANTITY,
    RISK,
    TS,
    metric_columns,
    normalise,
)
from models.training import KEYED_BY_METRIC
from trainer.errors import DataError
from trainer.replay import ConsumerFactory, Window, read_window
from trainer.settings import TrainerSettings

Source = Literal["demand", "sensor"]
DEMAND_FAMILIES: Final = frozenset({"demand"})
LABELLED_FAMILIES: Final = frozenset({"anomaly", "maintenance"})
LABEL_METRICS: Final = (IS_ANOMALY, RISK)


def source_of(family: str) -> Source:
    """Which readings a family trains on."""
    return "demand" if family in DEMAND_FAMILIES else "sensor"


def demand_frame(readings: Sequence[DemandReading]) -> pd.DataFrame:
    """Canonical long demand frame of ``readings`` (any order)."""
    price = np.array([np.nan if r.price is None else r.price for r in readings], dtype=np.float64)
    frame = pd.DataFrame(
        {
            PRODUCT: [r.product_id for r in readings],
            TS: pd.to_datetime([r.ts for r in readings], utc=True),
            QUANTITY: np.array([r.quantity for r in readings], dtype=np.float64),
            PRICE: price,
            PROMO: np.array([r.promo for r in readings], dtype=np.int64),
        }
    )
    if not np.isfinite(price).any():
        frame = frame.drop(columns=PRICE)
    return _canonical(frame, PRODUCT)


def sensor_frame(readings: Sequence[SensorReading], kind: str | None = None) -> pd.DataFrame:
    """Canonical wide sensor frame of ``readings`` of ``kind`` (all kinds when None)."""
    chosen = [r for r in readings if kind is None or r.kind == kind]
    values = pd.DataFrame.from_records([r.values for r in chosen], index=range(len(chosen)))
    keys = pd.DataFrame(
        {
            ENTITY: [r.entity_id for r in chosen],
            TS: pd.to_datetime([r.ts for r in chosen], utc=True),
        }
    )
    frame = pd.concat([keys, values.astype(np.float64)], axis=1)
    return _canonical(frame, ENTITY)


def labels_frame(actuals: Sequence[Actual]) -> pd.DataFrame:
    """``entity_id, ts, is_anomaly, risk`` from label actuals (other metrics ignored)."""
    chosen = [a for a in actuals if a.metric in LABEL_METRICS]
    long = pd.DataFrame(
        {
            ENTITY: [a.entity_id for a in chosen],
            TS: pd.to_datetime([a.ts for a in chosen], utc=True),
            "metric": [a.metric for a in chosen],
            "value": np.array([a.value for a in chosen], dtype=np.float64),
        }
    )
    long = long.drop_duplicates([ENTITY, TS, "metric"], keep="last")
    wide = long.pivot(index=[ENTITY, TS], columns="metric", values="value")
    wide = wide.reindex(columns=list(LABEL_METRICS)).reset_index()
    wide.columns.name = None
    return normalise(wide, ENTITY)


def attach_labels(frame: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the label columns of ``labels`` matched on (entity_id, ts); NaN if none."""
    present = [c for c in LABEL_METRICS if c in labels.columns and labels[c].notna().any()]
    if not present or frame.empty:
        return frame
    base = frame.drop(columns=[c for c in present if c in frame.columns])
    return base.merge(labels[[ENTITY, TS, *present]], on=[ENTITY, TS], how="left")


def _canonical(frame: pd.DataFrame, entity: str) -> pd.DataFrame:
    unique = frame.drop_duplicates([entity, TS], keep="last")
    return normalise(unique, entity)


def for_model(
    frame: pd.DataFrame,
    family: str,
    key: str | None,
    inputs: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The rows and columns of a source frame that one model key trains on.

    Demand: the key's product (a per-product model), or every product. Sensor: the model's
    input metrics (every metric with a reading when it has none yet; the key's metric first
    for a model keyed by metric), readings that have any of them, and the label columns.
    """
    if family in DEMAND_FAMILIES:
        chosen = frame if key is None else frame[frame[PRODUCT] == key]
        return chosen.reset_index(drop=True)
    metrics = list(inputs) if inputs else metrics_with_values(frame)
    if family in KEYED_BY_METRIC and key is not None:
        metrics = [key, *(m for m in metrics if m != key)]
    missing = [m for m in metrics if m not in frame.columns]
    chosen = frame.assign(**{m: np.nan for m in missing})
    labels = [c for c in LABEL_METRICS if c in chosen.columns]
    has_reading = chosen[metrics].notna().any(axis=1).to_numpy()
    return chosen.loc[has_reading, [ENTITY, TS, *metrics, *labels]].reset_index(drop=True)


def sample_count(frame: pd.DataFrame, family: str, key: str | None) -> int:
    """Samples a model key has in ``frame``: readings, or values of its metric if keyed."""
    if family in KEYED_BY_METRIC and key is not None and key in frame.columns:
        return int(frame[key].notna().sum())
    return len(frame)


def metrics_with_values(frame: pd.DataFrame) -> list[str]:
    reserved = set(LABEL_METRICS)
    return [c for c in metric_columns(frame) if c not in reserved and frame[c].notna().any()]


class TrainingData:
    """Readings of a window as canonical frames, from Kafka or from imported CSV files."""

    def __init__(self, settings: TrainerSettings, make_consumer: ConsumerFactory) -> None:
        self.settings = settings
        self._make_consumer = make_consumer

    def frame(
        self,
        source: Source,
        window: Window,
        *,
        kind: str | None = None,
        entity: str | None = None,
        labels: bool = False,
    ) -> pd.DataFrame:
        """The window's readings of ``source`` (one ``entity`` only, when given)."""
        if source == "demand":
            frame = self._demand(window, entity)
        else:
            frame = self._sensor(window, kind, entity)
            if labels:
                frame = attach_labels(frame, self._labels(window, entity))
        return frame

    def _demand(self, window: Window, entity: str | None) -> pd.DataFrame:
        if self.settings.demand_csv is not None:
            frame = _csv_window(read_demand_csv, self.settings.demand_csv, window)
            return frame if entity is None else frame[frame[PRODUCT] == entity]
        values = self._replay(self.settings.demand_topic, window, entity)
        frame = demand_frame(codec_for(topics.READINGS_DEMAND).decode_batch(values).messages)
        return self._by_clock(frame, window)

    def _sensor(self, window: Window, kind: str | None, entity: str | None) -> pd.DataFrame:
        if self.settings.sensor_csv is not None:
            frame = _csv_window(read_sensor_csv, self.settings.sensor_csv, window)
            return frame if entity is None else frame[frame[ENTITY] == entity]
        values = self._replay(self.settings.sensor_topic, window, entity)
        readings = codec_for(topics.READINGS_SENSOR).decode_batch(values).messages
        return self._by_clock(sensor_frame(readings, kind), window)

    def _by_clock(self, frame: pd.DataFrame, window: Window) -> pd.DataFrame:
        """Replayed readings as the window clock wants them (labels are matched by ts)."""
        if self.settings.window_clock == "record":
            return frame
        return recent(frame, window)

    def _labels(self, window: Window, entity: str | None) -> pd.DataFrame:
        if self.settings.labels_csv is not None:
            return _csv_window(read_labels_csv, self.settings.labels_csv, window)
        values = self._replay(self.settings.labels_topic, window, entity)
        return labels_frame(codec_for(topics.ACTUALS).decode_batch(values).messages)

    def _replay(self, topic: str, window: Window, entity: str | None) -> list[bytes]:
        keys = None if entity is None else [entity.encode()]
        return read_window(self._make_consumer, topic, window, self.settings.replay_timeout_s, keys)


def recent(frame: pd.DataFrame, window: Window) -> pd.DataFrame:
    """The readings of the window's length by their own ts, ending at the newest reading
    (never after the window's end).

    >>> from datetime import UTC, datetime
    >>> frame = pd.DataFrame({TS: pd.date_range("2026-01-01", periods=10, freq="D", tz=UTC)})
    >>> window = Window(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 4, tzinfo=UTC))
    >>> recent(frame, window)[TS].dt.day.tolist()
    [7, 8, 9, 10]
    """
    if frame.empty:
        return frame
    end = min(pd.Timestamp(window.end), frame[TS].max())
    start = end - (pd.Timestamp(window.end) - pd.Timestamp(window.start))
    chosen = frame[(frame[TS] >= start) & (frame[TS] <= end)]
    return chosen.reset_index(drop=True)


def _csv_window(reader: Callable[[Path], pd.DataFrame], path: Path, window: Window) -> pd.DataFrame:
    try:
        frame = reader(path)
    except (CsvError, OSError) as exc:
        raise DataError(f"cannot read imported file {path}: {exc}") from exc
    return recent(frame, window)
