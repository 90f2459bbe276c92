"""Every setting is documented, secrets never print, and the README table is current."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from driftline.cli import main
from driftline.configuration import SETTINGS_CLASSES, markdown_table, rows, settings_classes

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_has_a_description() -> None:
    undocumented = [row.env for row in rows() if not row.description.strip()]
    assert undocumented == []


def test_each_service_has_its_own_prefix() -> None:
    prefixes = [cls.model_config.get("env_prefix") for cls in settings_classes()]
    assert len(prefixes) == len(set(prefixes))
    assert len(settings_classes()) >= 4


def test_listed_classes_that_exist_are_found() -> None:
    names = {cls.__name__ for cls in settings_classes()}
    assert {"KafkaSettings", "TopicSettings", "LogSettings", "RegistrySettings"} <= names
    assert all(":" in target for target in SETTINGS_CLASSES)


def test_secrets_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "hunter2-secret")
    monkeypatch.setenv("KAFKA_SSL_KEY_PASSWORD", "key-secret-9")
    result = CliRunner().invoke(main, ["config"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "KAFKA_SASL_PASSWORD" in result.output
    assert "hunter2-secret" not in result.output
    assert "key-secret-9" not in result.output
    from events.settings import KafkaSettings

    settings = KafkaSettings()
    assert "hunter2-secret" not in repr(settings)
    assert settings.client_config()["sasl.password"] == "hunter2-secret"


def test_readme_configuration_table_is_current() -> None:
    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme, "regenerate with: driftline config --update-readme README.md"
