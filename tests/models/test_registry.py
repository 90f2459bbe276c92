"""Registry: versions, metadata, aliases, history, integrity, atomicity and concurrency."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import models.history
import models.versions
from models.base import FitReport, FloatArray, Model, Scores
from models.history import write_aliases
from models.registry import RECOVERED, Registry
from models.registry_errors import (
    AliasError,
    ChampionChangedError,
    IntegrityError,
    InvalidNameError,
    LoadError,
    ModelNotFoundError,
    NoChampionError,
    NotPromotedError,
    StoreWriteError,
    VersionNotFoundError,
)

FEATURES = ["a", "b"]


class LinearModel(Model):
    """Test double: y = features @ weights, saved as two small JSON files (no pickle)."""

    family = "linear"

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self.feature_names = list(FEATURES)
        self.weights = np.zeros(len(FEATURES))

    def fit(self, history: pd.DataFrame) -> FitReport:
        x, y = history[FEATURES].to_numpy(), history["y"].to_numpy()
        self.weights = np.linalg.lstsq(x, y, rcond=None)[0]
        window = (history["ts"].min().isoformat(), history["ts"].max().isoformat())
        mae = float(np.mean(np.abs(x @ self.weights - y)))
        return FitReport(metrics={"mae": mae}, rows=len(history), seconds=0.0, window=window)

    def fine_tune(self, history: pd.DataFrame) -> FitReport:
        return self.fit(history)

    def predict_batch(self, features: FloatArray) -> Scores:
        self.check_features(features)
        return Scores(value=features @ self.weights)

    def save(self, directory: Path) -> list[str]:
        (directory / "weights.json").write_text(json.dumps(self.weights.tolist()))
        (directory / "params.json").write_text(json.dumps(self.params))
        return ["weights.json", "params.json"]

    @classmethod
    def load(cls, directory: Path, metadata: dict[str, Any]) -> LinearModel:
        model = cls(json.loads((directory / "params.json").read_text()))
        model.weights = np.array(json.loads((directory / "weights.json").read_text()))
        return model


def model_with(scale: float) -> LinearModel:
    """A model whose first weight identifies it."""
    model = LinearModel({"scale": scale})
    model.weights = np.array([scale, 2 * scale])
    return model


def make_registry(root: Path) -> Registry:
    return Registry(root, loader=lambda family: LinearModel, actor="tester")


def register_scales(
    registry: Registry, name: str, scales: list[float], key: str | None = None
) -> None:
    for scale in scales:
        registry.register(model_with(scale), name, key)


def history_frame(rows: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=rows, freq="h", tz="UTC"),
            "a": rng.normal(size=rows),
            "b": rng.normal(size=rows),
        }
    )
    return frame.assign(y=3 * frame["a"] - frame["b"])


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return make_registry(tmp_path / "store")


def visible_versions(registry: Registry, name: str = "demand") -> list[int]:
    return [info.version for info in registry.versions(name)]


def test_register_records_metadata_and_checksums(registry: Registry) -> None:
    frame = history_frame()
    model = LinearModel({"alpha": 0.5})
    report = model.fit(frame)

    info = registry.register(model, "demand", "P-1", report, frame, parent=None)

    meta = json.loads((info.path / "metadata.json").read_text())
    assert (meta["model"], meta["key"], meta["version"], meta["family"]) == (
        "demand",
        "P-1",
        1,
        "linear",
    )
    assert meta["parent"] is None
    assert meta["training"]["rows"] == 20
    assert meta["training"]["window"] == {"start": report.window[0], "end": report.window[1]}  # type: ignore[index]
    assert meta["training"]["fingerprint"].startswith("sha256:")
    assert meta["features"] == FEATURES
    assert meta["params"] == {"alpha": 0.5}
    assert meta["metrics"] == report.metrics
    assert {"python", "numpy", "numba", "scikit-learn"} <= set(meta["frameworks"])
    assert meta["model_metadata"]["family"] == "linear"
    for name in ("weights.json", "params.json"):
        digest = hashlib.sha256((info.path / name).read_bytes()).hexdigest()
        assert meta["files"][name]["sha256"] == digest


def test_every_file_of_a_version_is_fsynced_before_it_is_renamed_into_place(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    fsync = os.fsync

    def recording(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", recording)
    info = registry.register(model_with(1.0), "demand")
    monkeypatch.undo()
    names = {Path(path).name for path in synced if "/versions/.tmp-" in path}
    assert {"metadata.json", *info.files} <= names, synced


def test_fingerprint_changes_with_the_training_data(registry: Registry) -> None:
    frame = history_frame()
    first = registry.register(model_with(1.0), "demand", frame=frame)
    changed = frame.assign(a=frame["a"] + 1e-9)
    second = registry.register(model_with(1.0), "demand", frame=changed)
    again = registry.register(model_with(1.0), "demand", frame=frame.copy())

    fingerprints = [i.metadata["training"]["fingerprint"] for i in (first, second, again)]
    assert fingerprints[0] != fingerprints[1]
    assert fingerprints[0] == fingerprints[2]


def test_first_version_becomes_champion_later_ones_do_not(registry: Registry) -> None:
    register_scales(registry, "demand", [1.0, 2.0])

    assert registry.champion("demand") == 1
    assert visible_versions(registry) == [1, 2]
    assert registry.info("demand", version=2).parent is None

    other = registry.register(model_with(1.0), "anomaly", promote_if_first=False)
    assert other.version == 1
    with pytest.raises(NoChampionError, match="no champion"):
        registry.load("anomaly")


def test_a_first_version_that_cannot_be_made_champion_says_how_to_finish(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The version stays registered, and the error names it and the promotion that is left,
    so a retry does not leave two versions of one training."""
    import models.registry

    def full_disk(*args: object, **kwargs: object) -> None:
        raise StoreWriteError("cannot write aliases: [Errno 28] No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(models.registry, "write_aliases", full_disk)
        with pytest.raises(NotPromotedError, match="No space left") as caught:
            registry.register(model_with(1.0), "demand", "p-1")
    assert caught.value.version.version == 1
    assert "models promote demand 1 --key p-1 --reason" in str(caught.value)
    assert [v.version for v in registry.versions("demand", "p-1")] == [1]
    assert registry.aliases("demand", "p-1").champion is None
    registry.promote("demand", 1, "p-1", reason="finish the first registration")
    assert registry.load("demand", "p-1").version == 1


def test_load_returns_the_model_that_was_saved(registry: Registry) -> None:
    register_scales(registry, "demand", [1.0, 2.0])
    registry.register(model_with(3.0), "demand", parent=2)

    loaded = registry.load("demand", version=3)

    assert loaded.version == 3
    assert loaded.info.parent == 2
    np.testing.assert_array_equal(loaded.model.predict_batch(np.eye(2)).value, [3.0, 6.0])
    assert registry.load("demand").version == 1  # the champion


def test_version_numbers_are_never_reused_after_delete(registry: Registry) -> None:
    register_scales(registry, "demand", [1.0, 2.0, 3.0])
    registry.delete("demand", 3, reason="bad data")

    assert registry.register(model_with(4.0), "demand").version == 4
    assert visible_versions(registry) == [1, 2, 4]


def test_failed_save_leaves_no_version_and_no_scratch(registry: Registry) -> None:
    register_scales(registry, "demand", [1.0])

    class Exploding(LinearModel):
        def save(self, directory: Path) -> list[str]:
            (directory / "weights.json").write_bytes(b"[1.")
            raise RuntimeError("disk went away")

    with pytest.raises(StoreWriteError, match="disk went away"):  # a framework's own error
        registry.register(Exploding(), "demand")

    versions_dir = registry.paths("demand").versions
    assert sorted(p.name for p in versions_dir.iterdir()) == ["v1"]  # scratch removed
    assert registry.register(model_with(2.0), "demand").version == 2
    assert registry.load("demand").version == 1


CRASH_SCRIPT = textwrap.dedent(
    """
    import os
    from models.base import Model
    from models.registry import Registry

    class Dying(Model):
        family = "linear"
        fit = fine_tune = predict_batch = load = None

        def save(self, directory):
            (directory / "weights.json").write_text("[9.0, 18.0]")
            if {during_save!r}:
                os._exit(3)
            return ["weights.json"]

    if not {during_save!r}:
        os.rename = lambda *args: os._exit(3)  # die right before the version becomes visible
    Registry({root!r}, actor="crasher").register(Dying(), "demand")
    """
)


@pytest.mark.parametrize("during_save", [True, False], ids=["during-save", "before-rename"])
def test_process_killed_mid_register_leaves_store_usable(
    registry: Registry, during_save: bool
) -> None:
    register_scales(registry, "demand", [1.0])
    script = CRASH_SCRIPT.format(root=str(registry.root), during_save=during_save)

    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)

    assert result.returncode == 3, result.stderr.decode()
    assert visible_versions(registry) == [1]
    leftovers = registry.paths("demand").scratch_dirs()
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".tmp-")
    assert [e.action for e in registry.history("demand")] == ["register", "promote"]
    assert registry.register(model_with(2.0), "demand").version == 2
    assert registry.paths("demand").scratch_dirs() == []  # cleaned by the next register
    assert registry.load("demand").version == 1


def test_gc_removes_abandoned_scratch_only(registry: Registry) -> None:
    register_scales(registry, "demand", [1.0])
    versions_dir = registry.paths("demand").versions
    abandoned = versions_dir / ".tmp-abandoned"
    abandoned.mkdir()
    (abandoned / "weights.json").write_bytes(b"x")

    removed = registry.gc()

    assert removed == [abandoned]
    assert not abandoned.exists()
    assert visible_versions(registry) == [1]


@pytest.mark.parametrize("tamper", ["modify", "remove", "add"])
def test_tampered_version_is_refused_and_previous_champion_still_loads(
    registry: Registry, tamper: str
) -> None:
    register_scales(registry, "demand", [1.0, 2.0])
    registry.promote("demand", 2, reason="better")
    target = registry.info("demand", version=2).path
    if tamper == "modify":
        data = bytearray((target / "weights.json").read_bytes())
        data[1] ^= 0x01  # "2.0" -> "3.0": still valid JSON, so only the checksum can tell
        (target / "weights.json").write_bytes(bytes(data))
    elif tamper == "remove":
        (target / "weights.json").unlink()
    else:
        (target / "evil.pkl").write_bytes(b"not verified")

    culprit = "evil.pkl" if tamper == "add" else "weights.json"
    with pytest.raises(IntegrityError, match=culprit):
        registry.load("demand")
    assert registry.rollback("demand", reason="v2 corrupt").version == 1
    assert registry.load("demand").version == 1


def test_a_version_deleted_while_it_is_checked_is_a_registry_error(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_scales(registry, "demand", [1.0])

    def deleted_meanwhile(path: Path, *, fsync: bool = False) -> tuple[str, int]:
        raise FileNotFoundError(2, "No such file or directory", str(path))

    monkeypatch.setattr(models.versions, "sha256_file", deleted_meanwhile)
    with pytest.raises(IntegrityError, match="cannot read its files") as raised:
        registry.load("demand")
    assert isinstance(raised.value.__cause__, FileNotFoundError)  # the cause is kept


def test_tampered_version_cannot_be_promoted(registry: Registry) -> None:
    register_scales(registry, "demand", [1.0, 2.0])
    (registry.info("demand", version=2).path / "params.json").write_text("{}")

    with pytest.raises(IntegrityError, match=r"params\.json"):
        registry.promote("demand", 2, reason="try")
    assert registry.champion("demand") == 1


def test_a_change_validated_against_another_champion_is_refused(registry: Registry) -> None:
    register_scales(registry, "demand", [1.0, 2.0, 3.0])
    registry.promote("demand", 2, reason="operator")  # while v3 was validated against v1
    with pytest.raises(ChampionChangedError, match=r"v2 as champion.*against champion v1"):
        registry.promote("demand", 3, reason="beats v1", expected_champion=1)
    with pytest.raises(ChampionChangedError, match="against champion v1"):
        registry.set_challenger("demand", 3, reason="beats v1", expected_champion=1)
    assert registry.aliases("demand").champion == 2
    assert registry.aliases("demand").challenger is None
    assert registry.history("demand")[-1].action == "promote"  # the operator's, nothing after
    registry.promote("demand", 3, reason="beats v2", expected_champion=2)
    assert registry.champion("demand") == 3


def test_a_lost_champion_alias_is_never_taken_for_a_new_model(registry: Registry) -> None:
    register_scales(registry, "demand", [1.0, 2.0])
    registry.paths("demand", None).aliases.unlink()  # lost, or unreadable for a moment
    with pytest.raises(ChampionChangedError, match="history records v1 as champion"):
        registry.promote("demand", 2, reason="first version", expected_champion=None)
    assert not registry.paths("demand", None).aliases.exists()


def test_rollback_walks_back_through_previous_champions(registry: Registry) -> None:
    register_scales(registry, "demand", [1.0, 2.0, 3.0])
    registry.promote("demand", 2, reason="r2")
    registry.promote("demand", 3, reason="r3")

    assert registry.rollback("demand", reason="r3 drifts").version == 2
    assert registry.rollback("demand", reason="r2 too").version == 1
    with pytest.raises(AliasError, match="no previous champion"):
        registry.rollback("demand", reason="again")
    assert registry.champion("demand") == 1


def test_rollback_skips_deleted_champions(registry: Registry) -> None:
    register_scales(registry, "demand", [1.0, 2.0, 3.0])
    registry.promote("demand", 2, reason="r2")
    registry.promote("demand", 3, reason="r3")
    registry.delete("demand", 2, reason="cleanup")

    assert registry.rollback("demand", reason="bad").version == 1


@pytest.mark.parametrize(
    ("lost", "action", "rolled_back_to"),
    [(3, "promote", 2), (1, "rollback", None)],
    ids=["promotion", "rollback"],
)
def test_a_champion_change_without_its_history_line_is_recorded_by_the_next_writer(
    registry: Registry, lost: int, action: str, rolled_back_to: int | None
) -> None:
    # A writer killed between the aliases rename and the history append left ``lost`` as
    # champion with no line saying so.
    register_scales(registry, "demand", [1.0, 2.0, 3.0])
    registry.promote("demand", 2, reason="r2")
    write_aliases(registry.paths("demand").aliases, lost, None)

    registry.set_challenger("demand", None, reason="any write of the key")

    recovered = registry.history("demand")[-2]
    assert (recovered.action, recovered.version, recovered.previous) == (action, lost, 2)
    assert recovered.reason == RECOVERED
    if rolled_back_to is None:
        with pytest.raises(AliasError, match="no previous champion"):
            registry.rollback("demand")
    else:  # the lost promotion is on the champion stack: rollback undoes it
        assert registry.rollback("demand").version == rolled_back_to


def test_a_lost_re_promotion_of_an_older_champion_is_recovered_as_a_promotion(
    registry: Registry,
) -> None:
    register_scales(registry, "demand", [1.0, 2.0])
    registry.promote("demand", 2, reason="r2")
    # v1 promoted again over v2, and the writer killed before its history line
    write_aliases(registry.paths("demand").aliases, 1, None, "promote")

    registry.set_challenger("demand", None, reason="any write of the key")

    recovered = registry.history("demand")[-2]
    assert (recovered.action, recovered.version, recovered.previous) == ("promote", 1, 2)
    assert registry.rollback("demand").version == 2  # as if nothing had been killed


def test_gc_restores_a_lost_history_line(registry: Registry) -> None:
    register_scales(registry, "demand", [1.0, 2.0])
    write_aliases(registry.paths("demand").aliases, 2, None)

    registry.gc()

    assert [(e.action, e.version) for e in registry.history("demand")][-1] == ("promote", 2)
    registry.gc()  # consistent now: nothing more is appended
    assert len(registry.history("demand")) == 4


def test_history_records_every_action(registry: Registry) -> None:
    register_scales(registry, "demand", [1.0, 2.0, 3.0])
    registry.promote("demand", 2, reason="beats v1 on holdout")
    registry.set_challenger("demand", 3, reason="shadow")
    registry.reject("demand", 3, reason="worse MAE")
    registry.rollback("demand", reason="alerts")
    registry.delete("demand", 3, reason="rejected")

    events = registry.history("demand")

    assert [(e.action, e.version, e.previous) for e in events] == [
        ("register", 1, None),
        ("promote", 1, None),
        ("register", 2, None),
        ("register", 3, None),
        ("promote", 2, 1),
        ("challenger", 3, None),
        ("reject", 3, None),
        ("rollback", 1, 2),
        ("delete", 3, None),
    ]
    assert events[4].reason == "beats v1 on holdout"
    assert {e.actor for e in events} == {"tester"}
    assert all(e.ts.endswith("+00:00") for e in events)
    assert registry.aliases("demand").challenger is None


def test_delete_refuses_the_champion_and_clears_a_challenger(registry: Registry) -> None:
    register_scales(registry, "demand", [1.0, 2.0])
    registry.set_challenger("demand", 2, reason="shadow")

    with pytest.raises(AliasError, match="champion and cannot be deleted"):
        registry.delete("demand", 1, reason="oops")
    registry.delete("demand", 2, reason="bye")

    assert visible_versions(registry) == [1]
    assert registry.aliases("demand").challenger is None
    with pytest.raises(VersionNotFoundError, match="v2 does not exist"):
        registry.info("demand", version=2)


def test_keep_last_never_deletes_champion_or_challenger(registry: Registry) -> None:
    register_scales(registry, "demand", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    registry.set_challenger("demand", 2, reason="shadow")

    deleted = registry.keep_last("demand", 2)

    assert deleted == [3, 4]
    assert visible_versions(registry) == [1, 2, 5, 6]
    assert [e.reason for e in registry.history("demand") if e.action == "delete"] == [
        "retention: keep last 2"
    ] * 2


def test_concurrent_registrations_get_distinct_versions(registry: Registry) -> None:
    errors: list[BaseException] = []
    numbers: list[int] = []
    lock = threading.Lock()

    def worker(offset: int) -> None:
        try:
            for i in range(3):
                info = registry.register(model_with(offset * 10 + i), "demand", "P-1")
                with lock:
                    numbers.append(info.version)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(numbers) == list(range(1, 13))
    assert [i.version for i in registry.versions("demand", "P-1")] == list(range(1, 13))
    assert sum(e.action == "register" for e in registry.history("demand", "P-1")) == 12


REGISTER_SCRIPT = textwrap.dedent(
    """
    import sys
    from models.base import Model
    from models.registry import Registry

    class Tiny(Model):
        family = "linear"
        fit = fine_tune = predict_batch = load = None

        def save(self, directory):
            (directory / "weights.json").write_text("[1.0, 2.0]")
            return ["weights.json"]

    registry = Registry({root!r}, actor="process")
    print(",".join(str(registry.register(Tiny(), "demand").version) for _ in range(3)))
    """
)


def test_concurrent_processes_get_distinct_versions(registry: Registry) -> None:
    script = REGISTER_SCRIPT.format(root=str(registry.root))
    processes = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]

    assert [process.returncode for process in processes] == [0, 0]
    numbers = sorted(int(n) for output in outputs for n in output.strip().split(","))
    assert numbers == list(range(1, 7))
    assert visible_versions(registry) == list(range(1, 7))


def test_readers_during_promotes_always_see_a_complete_champion(registry: Registry) -> None:
    scales = [1.0, 2.0, 3.0]
    register_scales(registry, "demand", scales)
    readers = 3
    started = threading.Barrier(readers + 1)
    stop = threading.Event()
    problems: list[str] = []
    reads = [0] * readers

    def read(slot: int) -> None:
        started.wait()
        while not stop.is_set():
            try:
                loaded = registry.load("demand")
            except Exception as exc:  # every failure is a finding of this test
                problems.append(repr(exc))
                return
            weights = loaded.model.weights  # type: ignore[attr-defined]
            if weights[0] != scales[loaded.version - 1]:
                problems.append(f"v{loaded.version} served weights {weights}")
            reads[slot] += 1

    threads = [threading.Thread(target=read, args=(n,)) for n in range(readers)]
    for thread in threads:
        thread.start()
    started.wait()
    for round_ in range(30):
        registry.promote("demand", round_ % 3 + 1, reason=f"round {round_}")
    stop.set()
    for thread in threads:
        thread.join()

    assert problems == []
    assert all(count > 0 for count in reads)


def test_write_failure_is_wrapped_and_leaves_nothing_behind(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_scales(registry, "demand", [1.0])
    history_before = registry.paths("demand").history.read_bytes()

    def full_disk(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "rename", full_disk)
    with pytest.raises(StoreWriteError, match="No space left on device"):
        registry.register(model_with(2.0), "demand")
    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(StoreWriteError, match="aliases"):
        registry.set_challenger("demand", None, reason="clear")
    monkeypatch.undo()

    paths = registry.paths("demand")
    assert visible_versions(registry) == [1]
    assert paths.scratch_dirs() == []
    assert [p.name for p in paths.root.iterdir() if p.name.endswith(".tmp")] == []
    assert paths.history.read_bytes() == history_before
    assert registry.champion("demand") == 1


def test_a_version_whose_history_line_cannot_be_written_is_not_left_behind(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_scales(registry, "demand", [1.0])

    def full_disk(*args: object) -> None:
        raise StoreWriteError("cannot write history entry: No space left on device")

    monkeypatch.setattr(models.history, "append_line", full_disk)
    with pytest.raises(StoreWriteError, match="No space left on device"):
        registry.register(model_with(2.0), "demand")
    monkeypatch.undo()

    assert visible_versions(registry) == [1]
    assert registry.paths("demand").scratch_dirs() == []
    assert registry.register(model_with(2.0), "demand").version == 2  # the retry: no duplicate
    assert visible_versions(registry) == [1, 2]


def test_read_only_store_gives_a_clear_error(registry: Registry) -> None:
    register_scales(registry, "demand", [1.0])
    versions_dir = registry.paths("demand").versions
    versions_dir.chmod(0o555)
    try:
        if os.access(versions_dir, os.W_OK):
            pytest.skip("running as root: chmod does not stop writes (see the ENOSPC test)")
        with pytest.raises(StoreWriteError, match="cannot write"):
            registry.register(model_with(2.0), "demand")
        assert visible_versions(registry) == [1]
    finally:
        versions_dir.chmod(0o755)


def test_torn_history_line_is_skipped(registry: Registry) -> None:
    register_scales(registry, "demand", [1.0, 2.0])
    with open(registry.paths("demand").history, "ab") as handle:
        handle.write(b'{"ts": "2024-01-01T00:00:00+00:00", "act')  # crash mid-append

    registry.promote("demand", 2, reason="after crash")

    events = registry.history("demand")
    assert [e.action for e in events][-1] == "promote"
    assert events[-1].version == 2
    assert registry.rollback("demand", reason="back").version == 1


def test_keys_are_stored_as_single_safe_directories(registry: Registry) -> None:
    odd_keys = ["../etc", "NO2(GT)", "a/b", "_", ".hidden"]
    for key in odd_keys:
        registry.register(model_with(1.0), "air", key)

    assert sorted(k for k in registry.keys("air") if k is not None) == sorted(odd_keys)
    children = [p for p in (registry.root / "air").iterdir()]
    assert all(p.parent == registry.root / "air" for p in children)
    assert not (registry.root / "etc").exists()
    assert registry.load("air", "a/b").version == 1


def test_clear_errors_for_unknown_names(registry: Registry) -> None:
    register_scales(registry, "demand", [1.0, 2.0], key="P-1")

    with pytest.raises(ModelNotFoundError, match="no model named 'nope'"):
        registry.versions("nope")
    with pytest.raises(ModelNotFoundError, match=r"no key 'P-9'.*P-1"):
        registry.versions("demand", "P-9")
    with pytest.raises(VersionNotFoundError, match=r"versions: v1, v2"):
        registry.load("demand", "P-1", version="v7")
    with pytest.raises(InvalidNameError):
        registry.register(model_with(1.0), "../escape")
    with pytest.raises(InvalidNameError):
        registry.info("demand", "P-1", version="latest")


def test_load_errors_are_wrapped_with_the_version(tmp_path: Path) -> None:
    def no_families(family: str) -> type[LinearModel]:
        raise KeyError(family)

    writer = make_registry(tmp_path)
    writer.register(model_with(1.0), "demand")
    reader = Registry(tmp_path, loader=no_families)

    with pytest.raises(LoadError, match="demand v1: unknown model family 'linear'"):
        reader.load("demand")
