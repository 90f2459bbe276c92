"""The drift monitor: predictions joined with their actuals, rolling error per model
version, health snapshots, drift alerts and retrain requests.

The logic is pure and tested without Kafka: :mod:`monitor.join` (matching, lateness,
expiry), :mod:`monitor.windows` (rolling figures), :mod:`monitor.health` (thresholds,
hysteresis, cooldown, ids) and :mod:`monitor.evaluator` (per-version state and decisions).
:mod:`monitor.service` runs them on Kafka; :mod:`monitor.state` rebuilds their state at
start by replaying the monitor's own topics.
"""
