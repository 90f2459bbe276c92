"""``driftline models``: every subcommand through click's CliRunner, JSON output parsed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner, Result
from topic_reader import read_topic

from driftline.cli import main
from driftline.commands import announce
from events import codec_for, topics
from models.base import FitReport, FloatArray, Model, Scores
from models.registry import Registry


class ConstantModel(Model):
    """Test double: predicts a constant stored in one JSON file."""

    family = "constant"

    def fit(self, history: pd.DataFrame) -> FitReport:
        raise NotImplementedError

    def fine_tune(self, history: pd.DataFrame) -> FitReport:
        raise NotImplementedError

    def predict_batch(self, features: FloatArray) -> Scores:
        return Scores(value=features[:, 0] * 0 + float(self.params["value"]))

    def save(self, directory: Path) -> list[str]:
        (directory / "constant.json").write_text(json.dumps(self.params))
        return ["constant.json"]

    @classmethod
    def load(cls, directory: Path, metadata: dict[str, Any]) -> ConstantModel:
        return cls(json.loads((directory / "constant.json").read_text()))


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """demand[P-1] v1..v3 (champion v1) and anomaly v1 (champion)."""
    root = tmp_path / "store"
    registry = Registry(root, actor="seed")
    for value in (1.0, 2.0, 3.0):
        registry.register(ConstantModel({"value": value}), "demand", "P-1")
    registry.register(ConstantModel({"value": 0.0}), "anomaly")
    return root


def run(store: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["models", *args, "--store", str(store)], input=input)


def run_json(store: Path, *args: str) -> Any:
    result = run(store, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_list_json_describes_every_model_key(store: Path) -> None:
    rows = run_json(store, "list")

    by_model = {(row["model"], row["key"]): row for row in rows}
    assert set(by_model) == {("anomaly", None), ("demand", "P-1")}
    demand = by_model[("demand", "P-1")]
    assert (demand["versions"], demand["champion"], demand["latest"]) == (3, 1, 3)
    assert demand["family"] == "constant"


def test_list_table_and_environment_store(store: Path) -> None:
    result = CliRunner().invoke(main, ["models", "list"], env={"MODEL_STORE": str(store)})

    assert result.exit_code == 0, result.output
    assert "demand" in result.output and "anomaly" in result.output


def test_list_of_a_missing_store_is_an_error(tmp_path: Path) -> None:
    result = run(tmp_path / "nowhere", "list")

    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_show_defaults_to_the_champion(store: Path) -> None:
    champion = run_json(store, "show", "demand", "--key", "P-1")
    third = run_json(store, "show", "demand", "v3", "--key", "P-1")

    assert (champion["version"], champion["aliases"]) == (1, ["champion"])
    assert third["version"] == 3 and third["aliases"] == []
    assert set(third["files"]) == {"constant.json"}
    table = run(store, "show", "demand", "3", "--key", "P-1")
    assert table.exit_code == 0 and "constant" in table.output


def test_promote_rollback_and_history(store: Path) -> None:
    promoted = run_json(
        store,
        *("promote", "demand", "3", "--key", "P-1", "--reason", "beats v1", "--actor", "ops"),
        "--no-announce",
    )
    rolled = run_json(
        store, "rollback", "demand", "--key", "P-1", "--reason", "alerts", "--no-announce"
    )
    events = run_json(store, "history", "demand", "--key", "P-1", "--limit", "2")

    assert promoted == {
        "model": "demand",
        "key": "P-1",
        "champion": 3,
        "previous": 1,
        "announced": False,
        "announce_error": None,
    }
    assert rolled["champion"] == 1 and rolled["previous"] == 3
    assert [(e["action"], e["version"], e["reason"]) for e in events] == [
        ("promote", 3, "beats v1"),
        ("rollback", 1, "alerts"),
    ]
    assert events[0]["actor"] == "ops"
    assert "rollback" in run(store, "history", "demand", "--key", "P-1").output


def test_promote_requires_a_reason(store: Path) -> None:
    result = run(store, "promote", "demand", "2", "--key", "P-1")

    assert result.exit_code == 2
    assert "--reason" in result.output


def test_delete_refuses_the_champion_and_deletes_others(store: Path) -> None:
    refused = run(store, "delete", "demand", "1", "--key", "P-1", "--yes")
    declined = run(store, "delete", "demand", "2", "--key", "P-1", input="n\n")
    deleted = run_json(store, "delete", "demand", "v2", "--key", "P-1", "--yes")

    assert refused.exit_code == 1
    assert "champion and cannot be deleted" in refused.output
    assert declined.exit_code == 1  # aborted at the prompt
    assert deleted == {"model": "demand", "key": "P-1", "deleted": [2]}
    assert [r["versions"] for r in run_json(store, "list", "demand")] == [2]


def test_retain_across_all_keys(store: Path) -> None:
    report = run_json(store, "retain", "demand", "--all-keys", "--keep", "1")

    assert report == {"model": "demand", "keys": [{"key": "P-1", "deleted": [2]}]}
    [row] = run_json(store, "list", "demand")
    assert (row["versions"], row["champion"], row["latest"]) == (2, 1, 3)


def test_export_import_round_trip(store: Path, tmp_path: Path) -> None:
    archive = tmp_path / "backup.tar.gz"
    restored = tmp_path / "restored"

    exported = run_json(store, "export", str(archive))
    imported = CliRunner().invoke(
        main, ["models", "import", str(archive), "--store", str(restored), "--json"]
    )

    assert imported.exit_code == 0, imported.output
    assert len(exported["versions"]) == 4
    assert len(json.loads(imported.output)["versions"]) == 4
    assert run_json(restored, "list") == run_json(store, "list")


def test_import_of_an_unsafe_archive_is_a_clear_error(store: Path, tmp_path: Path) -> None:
    path = tmp_path / "evil.tar.gz"
    path.write_bytes(b"definitely not gzip")

    result = run(store, "import", str(path))

    assert result.exit_code == 1
    assert "not a readable tar.gz archive" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "nope"), "no model named 'nope'"),
        (("show", "demand", "9", "--key", "P-1"), "v9 does not exist"),
        (("show", "demand", "latest", "--key", "P-1"), "invalid version"),
        (("history", "demand", "--key", "P-7"), "no key 'P-7'"),
        (("rollback", "anomaly", "--reason", "x"), "no previous champion"),
        (("export", "out.tar.gz", "--version", "1"), "--version and --key need a model NAME"),
        (("export", "out.tar.gz", "--key", "P-1"), "--version and --key need a model NAME"),
    ],
)
def test_errors_are_one_line_messages(store: Path, args: tuple[str, ...], message: str) -> None:
    result = run(store, *args)

    assert result.exit_code in (1, 2)
    assert message in result.output
    assert "Traceback" not in result.output


def test_gc_reports_removed_scratch(store: Path) -> None:
    scratch = store / "demand" / "P-1" / "versions" / ".tmp-crashed"
    scratch.mkdir()

    report = run_json(store, "gc")

    assert report == {"removed": [str(scratch)]}
    assert not scratch.exists()


def read_updates(bootstrap: str, topic: str, expected: int) -> list[Any]:
    codec = codec_for(topics.MODEL_UPDATES)
    return [codec.decode(m.value()) for m in read_topic(bootstrap, topic, expected)]


def test_promote_and_rollback_are_announced_to_the_workers(
    store: Path, kafka_bootstrap: str, unique_topic: Any
) -> None:
    topic = unique_topic("model-updates")
    on_broker = ("--updates-topic", topic, "--bootstrap", kafka_bootstrap)
    promote = ("promote", "demand", "3", "--key", "P-1", "--reason", "r")
    promoted = run_json(store, *promote, *on_broker)
    again = run_json(store, *promote, *on_broker)  # v3 serves already: nothing to announce
    rolled = run_json(store, "rollback", "demand", "--key", "P-1", "--reason", "bad", *on_broker)
    assert (promoted["announced"], again["announced"], rolled["announced"]) == (True, False, True)
    updates = read_updates(kafka_bootstrap, topic, 2)
    assert [(u.model, u.key, u.version, u.action) for u in updates] == [
        ("demand", "P-1", 3, "promoted"),
        ("demand", "P-1", 1, "rolled_back"),
    ]
    assert updates[1].reason == "bad"


def test_an_announcement_the_broker_does_not_take_is_a_warning_not_an_error(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Exit status 0: the change is made, and a script that retried a rollback would go
    # one version further back.
    monkeypatch.setattr(announce, "ANNOUNCE_TIMEOUT_S", 0.5)
    result = run(
        store,
        *("promote", "demand", "3", "--key", "P-1", "--reason", "r"),
        *("--bootstrap", "127.0.0.1:1"),  # nothing listens there
    )
    assert result.exit_code == 0, result.output
    assert "champion is now v3" in result.output
    assert "warning: the change is made but was not announced" in result.output
    assert "WORKER_ALIAS_CHECK_S" in result.output
    assert Registry(store).aliases("demand", "P-1").champion == 3
