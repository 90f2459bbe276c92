"""Every topic maps to one contract and one key field."""

from __future__ import annotations

import random

import pytest

from events import (
    CONTRACTS,
    Codec,
    EventError,
    ModelUpdate,
    Prediction,
    SensorReading,
    UnknownTopicError,
    codec_for,
    contract_for,
    topics,
)
from events.samples import sample


def test_every_data_topic_has_a_contract() -> None:
    assert set(CONTRACTS) == {*topics.ENTITY_TOPICS, *topics.MODEL_TOPICS}


def test_key_fields_follow_the_partitioning_rule() -> None:
    for topic in topics.ENTITY_TOPICS:
        assert contract_for(topic).key_fields in {("entity_id",), ("product_id",)}
    for topic in topics.MODEL_TOPICS:
        assert contract_for(topic).key_fields == ("model", "key")


def test_shadow_predictions_share_the_prediction_contract() -> None:
    assert contract_for(topics.PREDICTIONS_SHADOW).type is Prediction
    assert contract_for(topics.PREDICTIONS).type is Prediction


def test_codec_for_is_cached_and_keys_by_the_key_field() -> None:
    codec = codec_for(topics.READINGS_SENSOR)
    reading = sample(SensorReading, random.Random(0), 3)

    assert codec_for(topics.READINGS_SENSOR) is codec
    assert codec.key(reading) == reading.entity_id.encode()


def test_dead_letter_topics_have_no_contract() -> None:
    with pytest.raises(UnknownTopicError, match="read_dead_letter"):
        contract_for(topics.dlq_topic(topics.READINGS_SENSOR))


def test_unknown_topic_lists_the_known_ones() -> None:
    with pytest.raises(UnknownTopicError, match=r"readings\.sensor"):
        codec_for("readings.sensr")


def test_model_topics_key_by_model_and_registry_key() -> None:
    codec = codec_for(topics.MODEL_UPDATES)
    keyed = sample(ModelUpdate, random.Random(0), 1)
    unkeyed = sample(ModelUpdate, random.Random(0), 1, full=False)

    assert codec.key(keyed) == f"demand/{keyed.key}".encode()
    assert codec.key(unkeyed) == b"demand"


def test_a_codec_without_key_fields_cannot_key() -> None:
    with pytest.raises(EventError, match="no key fields"):
        Codec(SensorReading).key(sample(SensorReading, random.Random(0)))


def test_key_fields_must_exist() -> None:
    with pytest.raises(EventError, match="colour"):
        Codec(SensorReading, key_fields=("colour",))
