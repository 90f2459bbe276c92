"""Synthetic machine telemetry with labelled anomalies and a maintenance risk label.

Metrics per reading (one row per machine and period):

* ``power`` (kW): idle draw plus rated power times utilisation.
* ``temperature`` (°C): ambient daily cycle plus heat that follows power with a thermal lag.
* ``vibration`` (mm/s): a machine baseline plus a share that follows production.
* ``runtime`` (minutes running within the period).
* ``production`` (units within the period).

Utilisation follows a round-the-clock shift cycle (highest mid-afternoon, lower at night),
runs lower at weekends and wanders with a slow mean-reverting random walk per machine.

Anomaly kinds (``is_anomaly = 1`` on every reading of an event; events never overlap; each
moves at least two metrics by several times their normal spread, see ``_EFFECTS``):

* ``spike`` (1 reading): a power surge with a vibration jolt and a little heat.
* ``dip`` (2 readings): a jam; production, power and vibration collapse while runtime still
  reports the machine running.
* ``overheat`` (4-8 readings): temperature rising from half to all of a 15-25 °C excess.
* ``vibration_burst`` (2-4 readings): vibration 2.5-3.5 times normal.

Overheats and vibration bursts are failures announced by precursors: over the
``PRECURSOR_STEPS`` readings before them vibration creeps up (to +0.8 mm/s) and temperature
drifts up (to +2 °C). The ``risk`` label (0-3) says how close a failure is: 1, 2, 3 over the
thirds of that window, 3 during the failure, 0 otherwise (spikes and dips are glitches, not
failures, and carry risk 0).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from driftline.generator.series import (
    DEFAULT_START,
    FloatArray,
    GeneratorError,
    Grid,
    IntArray,
    ar1,
    expand_spans,
    make_grid,
    place_in_slots,
    recursive_filter,
)
from models.frames import ENTITY, IS_ANOMALY, RISK, TS

METRICS: Final = ("power", "temperature", "vibration", "runtime", "production")
ANOMALY_KINDS: Final = ("spike", "dip", "overheat", "vibration_burst")
SPIKE, DIP, OVERHEAT, BURST = range(4)
# shortest and longest event of each kind, in readings (inclusive)
_LENGTHS: Final = np.array([[1, 1], [2, 2], [4, 8], [2, 4]], dtype=np.int64)
_MEAN_LENGTH: Final = float(_LENGTHS.mean())
# kind -> (metric, operation, low, high) disturbances; magnitudes are uniform in [low, high]
_EFFECTS: Final[dict[int, tuple[tuple[str, str, float, float], ...]]] = {
    SPIKE: (
        ("power", "add_rated", 0.5, 0.8),
        ("vibration", "add", 0.8, 1.2),
        ("temperature", "ramp", 3.0, 5.0),
    ),
    DIP: (
        ("production", "scale", 0.05, 0.2),
        ("power", "scale", 0.3, 0.5),
        ("vibration", "scale", 0.4, 0.6),
    ),
    OVERHEAT: (
        ("temperature", "ramp", 15.0, 25.0),
        ("power", "add_rated", 0.15, 0.25),
        ("vibration", "add", 0.5, 1.0),
    ),
    BURST: (
        ("vibration", "scale", 2.5, 3.5),
        ("power", "add_rated", 0.15, 0.25),
        ("temperature", "ramp", 2.0, 3.0),
    ),
}
ANOMALY_RATE: Final = 0.05  # default share of anomalous rows
PRECURSOR_STEPS: Final = 12  # readings of warning before a failure: half a day when hourly
# precursor size just before a failure: several times the reading noise of each metric, yet
# within the range a machine spans over a week, so only recent history reveals it
_CREEP_VIBRATION: Final = 0.8  # mm/s
_CREEP_TEMPERATURE: Final = 2.0  # °C
# slot = precursor + longest event + room for the event to move around; 30 is not a multiple
# of 24, so events drift across the hours of the day instead of recurring at one hour
_SLOT: Final = 30


def generate_machines(
    entities: int = 5,
    periods: int = 720,
    freq: str = "1h",
    seed: int = 0,
    start: str = DEFAULT_START,
    anomaly_rate: float = ANOMALY_RATE,
) -> pd.DataFrame:
    """Wide sensor frame ``entity_id, ts, power, ..., production, is_anomaly, risk``.

    ``anomaly_rate`` is the expected share of rows labelled anomalous (0 disables events).
    """
    if not 0.0 <= anomaly_rate <= 0.5:
        raise GeneratorError(f"anomaly_rate must be in [0, 0.5], got {anomaly_rate}")
    rng = np.random.default_rng(seed)
    grid = make_grid("machine", entities, periods, freq, start)
    values, rated = _normal_operation(rng, grid)
    is_anomaly, risk = _inject_events(rng, grid, values, rated, anomaly_rate)
    columns: dict[str, npt.NDArray[Any]] = {name: np.round(values[name], 3) for name in METRICS}
    return grid.frame(ENTITY, {**columns, IS_ANOMALY: is_anomaly, RISK: risk})


def _normal_operation(
    rng: np.random.Generator, grid: Grid
) -> tuple[dict[str, FloatArray], FloatArray]:
    """Metric arrays of undisturbed operation and each machine's rated power (kW)."""
    per_machine = (grid.shape[0], 1)
    # round-the-clock line: utilisation 0.65 at 02:00 to 0.85 at 14:00, 85 % at weekends
    daily = 0.75 + 0.1 * np.cos(2 * np.pi * (grid.hour - 14.0) / 24.0)
    weekly = np.where(grid.dow >= 5, 0.85, 1.0)
    level = rng.uniform(0.9, 1.1, per_machine)
    # slow wander of each machine's load: ±3 % with a memory of about five days
    wander = ar1(rng, grid.shape, half_life=grid.steps(120.0), sd=0.03)
    noise = rng.normal(0.0, 0.03, grid.shape)  # reading-to-reading load changes, ±3 %
    utilisation = np.clip(level * daily * weekly + wander + noise, 0.05, 1.0)

    # 80-200 units an hour at full load, counted with ±2 % scatter (scrap, cycle times)
    capacity = rng.uniform(80.0, 200.0, per_machine) * grid.step_hours
    production = capacity * utilisation * (1.0 + rng.normal(0.0, 0.02, grid.shape))
    # running time saturates: a machine at 90 % load or more runs the whole period
    running = np.clip(1.1 * utilisation + rng.normal(0.0, 0.02, grid.shape), 0.0, 1.0)
    runtime = running * 60.0 * grid.step_hours

    rated = rng.uniform(40.0, 100.0, per_machine)  # kW: mid-size production machines
    idle = rng.uniform(5.0, 10.0, per_machine)  # kW drawn by controls and pumps at rest
    # efficiency drifts slowly (wear, ambient): ±3 % of rated power, memory of about ten days
    drift = ar1(rng, grid.shape, half_life=grid.steps(240.0), sd=0.03) * rated
    meter_noise = rng.normal(0.0, 0.02, grid.shape) * rated  # ±2 % of rated power
    power = idle + rated * utilisation + drift + meter_noise

    # hall temperature: 22 °C ± 1.5 °C, warmest mid-afternoon
    ambient = 22.0 + 1.5 * np.cos(2 * np.pi * (grid.hour - 15.0) / 24.0)
    # thermal lag: heat is an exponential average of power with a two-hour half-life
    phi = 0.5 ** (1.0 / grid.steps(2.0))
    heat = recursive_filter(_warm_start(power, phi), phi)
    # 0.25-0.35 °C per kW: a loaded machine runs 15-30 °C above the hall; sensor noise ±0.5 °C
    temperature = ambient + rng.uniform(0.25, 0.35, per_machine) * heat
    temperature += rng.normal(0.0, 0.5, grid.shape)

    # 1-2 mm/s at rest plus up to 2 mm/s at full production (ISO 10816 "good" range)
    base_vibration = rng.uniform(1.0, 2.0, per_machine)
    vibration = base_vibration + 2.0 * production / capacity + rng.normal(0.0, 0.1, grid.shape)
    values = {
        "power": power,
        "temperature": temperature,
        "vibration": np.maximum(vibration, 0.0),
        "runtime": runtime,
        "production": np.maximum(production, 0.0),
    }
    return values, rated[:, 0]


def _warm_start(power: FloatArray, phi: float) -> FloatArray:
    """Filter input whose average starts at the first power reading, as if already running."""
    shocks = (1.0 - phi) * power
    shocks[:, 0] = power[:, 0]
    return shocks


def _inject_events(
    rng: np.random.Generator,
    grid: Grid,
    values: dict[str, FloatArray],
    rated: FloatArray,
    rate: float,
) -> tuple[IntArray, IntArray]:
    """Place events in place on ``values``; return the is_anomaly and risk label arrays."""
    is_anomaly = np.zeros(grid.shape, dtype=np.int64)
    risk = np.zeros(grid.shape, dtype=np.int64)
    count = round(rate * grid.shape[0] * grid.shape[1] / _MEAN_LENGTH)
    machine, slot_start = place_in_slots(rng, grid.shape, count, _SLOT, f"anomaly_rate {rate}")
    # kinds in equal shares, shuffled, so the labelled share stays close to the rate
    kind = rng.permutation(np.arange(count, dtype=np.int64) % len(ANOMALY_KINDS))
    length = rng.integers(_LENGTHS[kind, 0], _LENGTHS[kind, 1] + 1)
    start = slot_start + PRECURSOR_STEPS + rng.integers(0, _SLOT - PRECURSOR_STEPS - length + 1)

    span, offset = expand_spans(start, length)
    rows, cols = machine[span], start[span] + offset
    progress = (offset + 1) / length[span]  # (0, 1]: how far into the event a reading is
    _apply_effects(rng, values, rated[rows], (kind, span, kind[span]), (rows, cols), progress)
    is_anomaly[rows, cols] = 1

    failure = (kind == OVERHEAT) | (kind == BURST)
    during = failure[span]
    risk[rows[during], cols[during]] = 3
    _apply_precursors(values, risk, machine[failure], start[failure])
    return is_anomaly, risk


def _apply_effects(
    rng: np.random.Generator,
    values: dict[str, FloatArray],
    rated: FloatArray,
    event: tuple[IntArray, IntArray, IntArray],
    cells: tuple[IntArray, IntArray],
    progress: FloatArray,
) -> None:
    """Disturb the event cells according to their event's kind (see ``_EFFECTS``).

    ``event`` is (kind per event, event index per cell, kind per cell); magnitudes are drawn
    once per event so that a multi-reading event is one coherent disturbance.
    """
    kinds, span, cell_kind = event
    rows, cols = cells
    for kind, effects in _EFFECTS.items():
        hit = cell_kind == kind
        where = rows[hit], cols[hit]
        for metric, operation, low, high in effects:
            size = rng.uniform(low, high, len(kinds))[span[hit]]
            if operation == "scale":
                values[metric][where] *= size
            elif operation == "add_rated":
                values[metric][where] += size * rated[hit]
            elif operation == "ramp":  # rise from half to the full size over the event
                values[metric][where] += size * (0.5 + 0.5 * progress[hit])
            else:  # "add": a constant offset for the whole event
                values[metric][where] += size


def _apply_precursors(
    values: dict[str, FloatArray], risk: IntArray, machine: IntArray, start: IntArray
) -> None:
    """Creep vibration and temperature up before each failure and set risk 1-3 by proximity."""
    lengths = np.full(len(start), PRECURSOR_STEPS, dtype=np.int64)
    span, offset = expand_spans(start - PRECURSOR_STEPS, lengths)
    rows, cols = machine[span], start[span] - PRECURSOR_STEPS + offset
    progress = (offset + 1) / PRECURSOR_STEPS  # (0, 1]: reaches 1 just before the failure
    values["vibration"][rows, cols] += _CREEP_VIBRATION * progress
    values["temperature"][rows, cols] += _CREEP_TEMPERATURE * progress
    # thirds of the window -> 1, 2, 3; the epsilon keeps exact thirds in the lower level
    risk[rows, cols] = np.ceil(3.0 * progress - 1e-9).astype(np.int64)


def split_labels(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a machines frame into (sensor frame without labels, labels frame)."""
    labels = [c for c in (IS_ANOMALY, RISK) if c in frame.columns]
    if not labels:
        raise GeneratorError("frame has no label columns to split")
    return frame.drop(columns=labels), frame[[ENTITY, TS, *labels]].copy()
