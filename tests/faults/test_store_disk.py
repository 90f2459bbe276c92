"""The model store on a full disk and on a read-only one (a real tmpfs, not a mock).

tests/models/test_registry.py simulates ENOSPC by patching ``os.rename``; here the store
lives on a 4 MiB tmpfs that is filled up, then remounted read-only. What must hold: every
write fails with an error that says what was being written, where and why; nothing
half-written becomes visible (no version, no scratch, no temporary file, the history
unchanged); the champion keeps loading; and once there is room again the store works.
Mounting needs privileges: without them the tests are skipped with the reason.
"""

from __future__ import annotations

import errno
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from driftline.cli import main
from driftline.generator import generate_products
from models.families import create
from models.registry import Registry
from models.registry_errors import StoreWriteError

pytestmark = pytest.mark.fault

DISK_SIZE = "4m"  # room for the small versions below, small enough to fill in a moment
SCRATCH_NAME = re.compile(r"\.tmp-[0-9a-f]{32}")
CHUNK = b"\0" * 65_536
TINY = {"iterations": 20, "depth": 3, "thread_count": 1}


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A freshly mounted tmpfs of DISK_SIZE; unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or 'no privileges'}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def fill(directory: Path) -> Path:
    """Write a file until the disk is full; the file."""
    filler = directory / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(CHUNK)
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def demand_model(seed: int) -> Any:
    model = create("demand", {**TINY, "seed": seed})
    model.fit(generate_products(entities=1, periods=120, seed=seed))
    return model


def shown(error: object, disk: Path) -> str:
    """An error message with the test's temporary mount point replaced by ``<disk>``."""
    return SCRATCH_NAME.sub(".tmp-<id>", str(error).replace(str(disk), "<disk>")).strip()


def snapshot(registry: Registry) -> dict[str, Any]:
    """What a reader of the store sees."""
    paths = registry.paths("demand")
    return {
        "versions": [v.version for v in registry.versions("demand")],
        "champion": registry.aliases("demand").champion,
        "history": paths.history.read_bytes(),
        "scratch": paths.scratch_dirs(),
        "temporary": sorted(paths.root.glob(".*.tmp")),
    }


def test_a_full_disk_fails_writes_clearly_and_leaves_nothing_half_written(
    disk: Path, fault_report: Callable[..., Any]
) -> None:
    store = disk / "store"
    registry = Registry(store, actor="tests")
    registry.register(demand_model(1), "demand")
    registry.register(demand_model(2), "demand")
    before = snapshot(registry)
    filler = fill(disk)

    with pytest.raises(StoreWriteError) as registering:
        registry.register(demand_model(3), "demand")
    promoted = CliRunner().invoke(
        main, ["models", "promote", "demand", "2", "--reason", "full disk", "--store", str(store)]
    )
    after = snapshot(registry)
    champion = registry.load("demand")
    filler.unlink()
    recovered = registry.register(demand_model(3), "demand")
    fault_report(
        "store-full-disk",
        "Model store on a full disk",
        "the store's 4 MiB tmpfs filled up, then a register and a promote (CLI)",
        "both fail naming what, where and ENOSPC; no version, scratch or temporary file "
        "appears, the history is unchanged, the champion loads; with room again, "
        "registering works",
        register_error=shown(registering.value, disk),
        promote_error=shown(promoted.output, disk),
        versions_after=len(after["versions"]),
    )
    assert "No space left on device" in str(registering.value)
    assert str(store) in str(registering.value)
    assert promoted.exit_code == 1 and "cannot write aliases" in promoted.output
    assert "No space left on device" in promoted.output
    assert after == before
    assert champion.info.version == 1
    assert recovered.version == 3


def test_a_read_only_disk_fails_writes_clearly_and_still_serves(
    disk: Path, fault_report: Callable[..., Any]
) -> None:
    store = disk / "store"
    registry = Registry(store, actor="tests")
    registry.register(demand_model(1), "demand")
    registry.register(demand_model(2), "demand")
    before = snapshot(registry)
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    try:
        with pytest.raises(StoreWriteError) as registering:
            registry.register(demand_model(3), "demand")
        promoted = CliRunner().invoke(
            main, ["models", "promote", "demand", "2", "--reason", "ro", "--store", str(store)]
        )
        champion = registry.load("demand")
        after = snapshot(registry)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
    fault_report(
        "store-read-only",
        "Model store on a read-only disk",
        "the store's tmpfs remounted read-only, then a register and a promote (CLI)",
        "both fail naming what, where and the read-only file system; the champion "
        "still loads and verifies; nothing changed",
        register_error=shown(registering.value, disk),
        promote_error=shown(promoted.output, disk),
    )
    assert "Read-only file system" in str(registering.value)
    assert promoted.exit_code == 1 and "Read-only file system" in promoted.output
    assert champion.info.version == 1
    assert after == before
