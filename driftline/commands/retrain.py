"""``driftline retrain MODEL``: ask the trainer to fine-tune or fully retrain a model.

Publishes a :class:`events.RetrainRequest` with a fresh request id on ``retrain.requests``;
the trainer applies its rules to it (a fine-tune request may become a full retrain, e.g.
after 90 days) and records the decision (``driftline trainer status``).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import click
from confluent_kafka import KafkaException, Producer

from events import ContractError, RetrainRequest, codec_for, topics
from events.settings import kafka_settings

# A request is one small record; 30 s flags a broker that is not taking writes.
PUBLISH_TIMEOUT_S = 30.0


@click.command()
@click.argument("model")
@click.option("--key", default=None, help="Model key (product id, metric, ...).")
@click.option("--full", "action", flag_value="full_retrain", help="Ask for a full retrain.")
@click.option(
    "--fine-tune", "action", flag_value="fine_tune", default=True, help="Ask for a fine-tune."
)
@click.option("--reason", default="requested by an operator", show_default=True, help="Why.")
@click.option("--topic", default=topics.RETRAIN_REQUESTS, show_default=True, help="Topic.")
@click.option("--bootstrap", envvar="KAFKA_BOOTSTRAP_SERVERS", help="Brokers (host:port,...).")
@click.option("--json", "as_json", is_flag=True, help="Print the request as JSON.")
def retrain(
    model: str,
    key: str | None,
    action: str,
    reason: str,
    topic: str,
    bootstrap: str | None,
    as_json: bool,
) -> None:
    """Publish a retrain request for MODEL (optionally one --key of it)."""
    try:
        request = RetrainRequest(
            request_id=uuid.uuid4().hex,
            model=model,
            key=key,
            action="full_retrain" if action == "full_retrain" else "fine_tune",
            reason=reason,
            requested_at=datetime.now(UTC),
            evidence={"trigger": "operator"},
        )
    except ContractError as exc:
        raise click.BadParameter(str(exc)) from exc
    codec = codec_for(topics.RETRAIN_REQUESTS)
    failures: list[str] = []

    def delivered(error: object, _message: object) -> None:
        if error is not None:
            failures.append(str(error))

    try:
        producer = Producer(kafka_settings(bootstrap).producer_config())
        producer.produce(topic, codec.encode(request), codec.key(request), on_delivery=delivered)
        remaining = producer.flush(PUBLISH_TIMEOUT_S)
    except KafkaException as exc:
        raise click.ClickException(f"cannot publish to {topic}: {exc}") from exc
    if remaining or failures:
        detail = failures[0] if failures else f"not acknowledged within {PUBLISH_TIMEOUT_S:g} s"
        raise click.ClickException(f"cannot publish to {topic}: {detail}")
    if as_json:
        click.echo(json.dumps(json.loads(codec.encode(request)), sort_keys=True))
    else:
        label = model if key is None else f"{model}/{key}"
        click.echo(f"published request {request.request_id}: {request.action} {label}")
