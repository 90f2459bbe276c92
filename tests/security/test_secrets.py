"""Secrets stay secret: no password in ``--help``, ``driftline config`` or a settings repr.

A running worker's log and /metrics are checked in test_sasl.py (with a real login).
"""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from driftline.cli import main
from events.settings import KafkaSettings

PASSWORD = "pw-9f3c1b7e-never-printed"
KEY_PASSWORD = "key-pw-5d2a-never-printed"
SECRETS = {
    "KAFKA_SASL_USERNAME": "driftline",
    "KAFKA_SASL_PASSWORD": PASSWORD,
    "KAFKA_SSL_KEY_PASSWORD": KEY_PASSWORD,
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
}


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command and subcommand of ``group``, as argument paths."""
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from command_paths(command, (*prefix, name))


def test_no_help_text_shows_a_secret_from_the_environment() -> None:
    runner = CliRunner()
    paths = [(), *command_paths(main)]
    assert len(paths) > 20  # the walk found the subcommands of the groups too
    for path in paths:
        result = runner.invoke(main, [*path, "--help"], env=SECRETS)
        assert result.exit_code == 0, (path, result.output)
        assert PASSWORD not in result.output and KEY_PASSWORD not in result.output, path


@pytest.mark.parametrize("args", [[], ["--markdown"]])
def test_driftline_config_never_prints_a_secret(args: list[str]) -> None:
    result = CliRunner().invoke(main, ["config", *args], env={**SECRETS, "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "KAFKA_SASL_PASSWORD" in result.output  # the setting is listed ...
    assert PASSWORD not in result.output and KEY_PASSWORD not in result.output  # ... not its value


def test_kafka_settings_mask_secrets_everywhere_but_the_client_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    settings = KafkaSettings()
    shown = " ".join([repr(settings), str(settings), settings.model_dump_json()])
    assert PASSWORD not in shown and KEY_PASSWORD not in shown
    config = settings.client_config()  # handed to librdkafka, never printed
    assert config["sasl.password"] == PASSWORD and config["ssl.key.password"] == KEY_PASSWORD
