"""Stream and model routing, and the docstring examples of the pipeline's modules."""

from __future__ import annotations

import doctest
import importlib

import pytest

from worker.errors import UnknownStreamError
from worker.routes import ModelRoutes, StreamTopics


@pytest.mark.parametrize("name", ["worker.routes", "worker.replay", "worker.records"])
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_topics_map_to_one_stream_each() -> None:
    streams = StreamTopics(sensor=("plant.sensors", "lab.sensors"), demand=("shop.sales",))
    assert streams.stream_of("lab.sensors") == "sensor"
    assert streams.stream_of("shop.sales") == "demand"
    assert streams.stream_of("actuals") is None
    with pytest.raises(UnknownStreamError, match="both streams"):
        StreamTopics(sensor=("x",), demand=("x",))


def test_input_topics_from_settings_keep_only_the_named_streams() -> None:
    streams = StreamTopics.for_inputs(["readings.demand"], alerts="alerts.eu")
    assert (streams.sensor, streams.demand, streams.alerts) == (
        (),
        ("readings.demand",),
        "alerts.eu",
    )


def test_models_belong_to_the_stream_they_score() -> None:
    routes = ModelRoutes(demand="sales")
    assert [routes.stream_of(n) for n in ("anomaly", "maintenance", "sequence", "sales")] == [
        "sensor",
        "sensor",
        "sensor",
        "demand",
    ]
    assert routes.stream_of("demand") is None
    with pytest.raises(ValueError, match="min_history"):
        ModelRoutes(min_history=1)
