"""Store export/import: backup-restore round trip, conflicts, and refusal of unsafe archives."""

from __future__ import annotations

import io
import json
import re
import shutil
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scale_model import FILE, ScaleModel

from models.archive import MANIFEST, export_archive, import_archive
from models.layout import KeyPaths
from models.registry import Registry
from models.registry_errors import ArchiveError


def make_registry(root: Path) -> Registry:
    return Registry(root, loader=lambda family: ScaleModel, actor="tester")


def scaled(scale: float) -> ScaleModel:
    return ScaleModel({"scale": scale})


@pytest.fixture
def source(tmp_path: Path) -> Registry:
    """A store with an unkeyed model and a per-product model with aliases and history."""
    registry = make_registry(tmp_path / "source")
    for scale in (1.0, 2.0, 3.0):
        registry.register(scaled(scale), "anomaly")
    registry.promote("anomaly", 3, reason="best")
    registry.set_challenger("anomaly", 2, reason="shadow")
    for key in ("P-1", "P/2"):
        registry.register(scaled(10.0), "demand", key)
        registry.register(scaled(20.0), "demand", key)
    registry.promote("demand", 2, "P-1", reason="newer")
    registry.delete("demand", 1, "P-1", reason="old")
    return registry


def snapshot(registry: Registry) -> dict[tuple[str, str | None], Any]:
    """Everything a restore must reproduce, per model key."""
    state = {}
    for name in registry.models():
        for key in registry.keys(name):
            state[(name, key)] = (
                [info.metadata for info in registry.versions(name, key)],
                _aliases(registry, name, key),
            )
    return state


def _aliases(registry: Registry, name: str, key: str | None) -> tuple[int | None, int | None]:
    aliases = registry.aliases(name, key)
    return aliases.champion, aliases.challenger


def test_backup_restore_round_trip(source: Registry, tmp_path: Path) -> None:
    archive = tmp_path / "backup.tar.gz"
    exported = export_archive(source, archive)
    restored = make_registry(tmp_path / "restored")

    imported = import_archive(restored, archive)

    assert sorted(imported.versions, key=str) == sorted(exported.versions, key=str)
    assert imported.skipped == []
    assert snapshot(restored) == snapshot(source)
    for name in source.models():
        for key in source.keys(name):
            original = [(e.action, e.version, e.reason) for e in source.history(name, key)]
            copied = [(e.action, e.version, e.reason) for e in restored.history(name, key)]
            assert copied[: len(original)] == original
            assert {e.action for e in restored.history(name, key)[len(original) :]} == {"import"}
    loaded = restored.load("anomaly")
    assert loaded.version == 3
    np.testing.assert_array_equal(loaded.model.predict_batch(np.ones((2, 1))).value, [3.0, 3.0])


def test_a_version_promoted_during_an_export_comes_back_with_its_champion(
    source: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listing = KeyPaths.version_numbers
    writes = ["promote v4"]  # once, and not from inside the writer itself

    def a_trainer_promotes_just_after_the_listing(paths: KeyPaths) -> list[int]:
        numbers = listing(paths)
        if paths.model == "anomaly" and writes:
            writes.clear()
            source.register(scaled(4.0), "anomaly", promote_if_first=False)
            source.promote("anomaly", 4, reason="during the export")
        return numbers

    monkeypatch.setattr(KeyPaths, "version_numbers", a_trainer_promotes_just_after_the_listing)
    archive = tmp_path / "backup.tar.gz"
    exported = export_archive(source, archive)
    monkeypatch.undo()
    assert ("anomaly", None, 4) in exported.versions
    restored = make_registry(tmp_path / "restored")
    import_archive(restored, archive)
    assert restored.aliases("anomaly").champion == 4
    assert restored.load("anomaly").version == 4


def test_an_export_names_a_champion_whose_directory_is_missing(
    source: Registry, tmp_path: Path
) -> None:
    shutil.rmtree(source.info("anomaly", None, 3).path)  # damaged by hand
    with pytest.raises(ArchiveError, match=r"anomaly v3 is named by aliases\.json"):
        export_archive(source, tmp_path / "backup.tar.gz")


def test_export_of_one_model_or_one_version(source: Registry, tmp_path: Path) -> None:
    model_archive = tmp_path / "demand.tar.gz"
    version_archive = tmp_path / "anomaly-v2.tar.gz"

    export_archive(source, model_archive, "demand")
    export_archive(source, version_archive, "anomaly", version="v2")

    with tarfile.open(model_archive) as archive:
        names = archive.getnames()
    assert all(n == MANIFEST or n.startswith("demand/") for n in names)
    assert "demand/P%2F2/versions/v2/metadata.json" in names
    key_archive = tmp_path / "demand-p1.tar.gz"
    assert export_archive(source, key_archive, "demand", "P-1").versions == [("demand", "P-1", 2)]
    target = make_registry(tmp_path / "target")
    summary = import_archive(target, version_archive)
    assert summary.versions == [("anomaly", None, 2)]
    assert target.aliases("anomaly").champion is None  # an import never picks a champion
    assert target.load("anomaly", version=2).model.params == {"scale": 2.0}


def test_importing_the_same_archive_twice_skips_identical_versions(
    source: Registry, tmp_path: Path
) -> None:
    archive = tmp_path / "backup.tar.gz"
    export_archive(source, archive, "anomaly")

    summary = import_archive(source, archive)

    assert summary.versions == []
    assert len(summary.skipped) == 3
    assert _aliases(source, "anomaly", None) == (3, 2)


def test_import_refuses_to_overwrite_different_versions(source: Registry, tmp_path: Path) -> None:
    archive = tmp_path / "backup.tar.gz"
    export_archive(source, archive, "anomaly")
    other = make_registry(tmp_path / "other")
    other.register(scaled(99.0), "anomaly")
    before = snapshot(other)

    with pytest.raises(ArchiveError, match=r"refusing to overwrite anomaly v1"):
        import_archive(other, archive)

    assert snapshot(other) == before
    assert list(other.root.glob(".import-*")) == []


def test_import_never_gives_a_deleted_version_number_to_another_model(
    source: Registry, tmp_path: Path
) -> None:
    staging = make_registry(tmp_path / "staging")  # another store's v1 and v2
    for scale in (-100.0, -200.0):
        staging.register(scaled(scale), "anomaly")
    archive = tmp_path / "staging.tar.gz"
    export_archive(staging, archive, "anomaly")
    source.set_challenger("anomaly", None, reason="ended")
    for number in (1, 2):
        source.delete("anomaly", number, reason="retention")
    before = snapshot(source)

    with pytest.raises(ArchiveError, match=r"refusing to import anomaly v1, anomaly v2"):
        import_archive(source, archive)
    assert snapshot(source) == before


def test_a_deleted_version_comes_back_from_the_store_s_own_backup(
    source: Registry, tmp_path: Path
) -> None:
    archive = tmp_path / "backup.tar.gz"
    export_archive(source, archive, "anomaly")
    source.set_challenger("anomaly", None, reason="ended")
    source.delete("anomaly", 1, reason="by mistake")

    summary = import_archive(source, archive)
    assert ("anomaly", None, 1) in summary.versions
    assert source.load("anomaly", None, 1).model.params == {"scale": 1.0}


def test_an_archive_repacked_with_dot_slash_names_imports_like_the_original(
    source: Registry, tmp_path: Path
) -> None:
    original = tmp_path / "backup.tar.gz"
    export_archive(source, original)
    repacked = tmp_path / "repacked.tar.gz"  # what `tar -czf x.tgz -C dir .` makes
    with tarfile.open(original, "r:gz") as old, tarfile.open(repacked, "w:gz") as new:
        root = tarfile.TarInfo(".")
        root.type = tarfile.DIRTYPE
        new.addfile(root)
        for member in old.getmembers():
            data = old.extractfile(member)
            member.name = f"./{member.name}"
            new.addfile(member, data)
    restored = make_registry(tmp_path / "restored")

    import_archive(restored, repacked)

    assert snapshot(restored) == snapshot(source)


def test_a_deleted_version_comes_back_from_a_one_version_archive_or_a_second_import(
    source: Registry, tmp_path: Path
) -> None:
    one = tmp_path / "v1.tar.gz"  # no history inside: the content identifies the version
    export_archive(source, one, "anomaly", version=1)
    source.set_challenger("anomaly", None, reason="ended")
    source.delete("anomaly", 1, reason="archived, then pruned")
    assert ("anomaly", None, 1) in import_archive(source, one).versions

    other = make_registry(tmp_path / "other")  # a version that first came by import
    import_archive(other, one)
    other.register(scaled(5.0), "anomaly", promote_if_first=False)
    other.promote("anomaly", 2, reason="newer")
    other.delete("anomaly", 1, reason="pruned")
    assert ("anomaly", None, 1) in import_archive(other, one).versions
    assert other.load("anomaly", None, 1).model.params == {"scale": 1.0}


def build_archive(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    manifest = json.dumps({"format": 1, "versions": []}).encode()
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(manifest)
        archive.addfile(info, io.BytesIO(manifest))
        for member, data in members:
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data) if data else None)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


UNSAFE = {
    "parent-dir": (member("../evil.txt"), b"x", "path traversal"),
    "nested-parent": (member("demand/_/versions/v1/../../../../evil.txt"), b"x", "traversal"),
    "absolute": (member("/tmp/evil.txt"), b"x", "absolute path"),
    "symlink": (member("demand/_/versions/v1/w.json", tarfile.SYMTYPE, "/etc/passwd"), b"", "link"),
    "hardlink": (
        member("demand/_/versions/v1/w.json", tarfile.LNKTYPE, "/etc/passwd"),
        b"",
        "link",
    ),
    "char-device": (member("demand/_/versions/v1/tty", tarfile.CHRTYPE), b"", "device"),
    "fifo": (member("demand/_/versions/v1/pipe", tarfile.FIFOTYPE), b"", "device"),
    "outside-layout": (member("demand/_/.lock"), b"x", "not part of a model store"),
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_archives_are_refused(case: str, tmp_path: Path) -> None:
    unsafe, data, message = UNSAFE[case]
    archive = build_archive(tmp_path / "evil.tar.gz", [(unsafe, data)])
    store = make_registry(tmp_path / "store" / "inner")

    with pytest.raises(ArchiveError, match=message):
        import_archive(store, archive)

    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "store" / "evil.txt").exists()
    assert store.models() == []
    assert list(store.root.iterdir()) == []  # the scratch directory is gone too


def test_tampered_archive_is_refused_naming_the_file(source: Registry, tmp_path: Path) -> None:
    archive = tmp_path / "backup.tar.gz"
    export_archive(source, archive, "anomaly", version=1)
    with tarfile.open(archive) as original:
        members = [(m, original.extractfile(m).read()) for m in original.getmembers()]  # type: ignore[union-attr]
    tampered = [
        (m, b'{"scale": 1000.0}' if m.name.endswith(FILE) else data)
        for m, data in members
        if m.name != MANIFEST
    ]
    bad = build_archive(tmp_path / "tampered.tar.gz", tampered)
    target = make_registry(tmp_path / "target")

    with pytest.raises(ArchiveError, match=re.escape(FILE)):
        import_archive(target, bad)
    assert target.models() == []


@pytest.mark.parametrize("content", [b"not a tarball", b""], ids=["garbage", "empty"])
def test_unreadable_archive_is_refused(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "broken.tar.gz"
    path.write_bytes(content)

    with pytest.raises(ArchiveError, match=r"not a readable tar\.gz archive"):
        import_archive(make_registry(tmp_path / "store"), path)


def test_archive_without_manifest_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("demand/_/aliases.json")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"{}"))

    with pytest.raises(ArchiveError, match="not a driftline model archive"):
        import_archive(make_registry(tmp_path / "store"), path)
