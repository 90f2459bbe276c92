"""The jar cache: version from the pom, marker after a complete copy (fake mvn, no network)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from broker.errors import JarFetchError
from broker.jars import POM, KafkaJars, cache_root, kafka_version

# Stands in for Maven: records each call, then copies one fake jar into -DoutputDirectory
# (or fails when FAKE_MVN_FAIL is set, like an interrupted or failed resolution).
FAKE_MVN = """#!/bin/sh
echo call >> "$FAKE_MVN_CALLS"
if [ -n "$FAKE_MVN_FAIL" ]; then echo "could not resolve" >&2; exit 1; fi
for arg in "$@"; do
  case "$arg" in -DoutputDirectory=*) out="${arg#-DoutputDirectory=}";; esac
done
mkdir -p "$out" && touch "$out/kafka_2.13-9.9.9.jar"
"""


@pytest.fixture
def fake_mvn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mvn = bin_dir / "mvn"
    mvn.write_text(FAKE_MVN)
    mvn.chmod(mvn.stat().st_mode | stat.S_IXUSR)
    calls = tmp_path / "calls"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_MVN_CALLS", str(calls))
    return calls


def test_version_comes_from_the_shipped_pom() -> None:
    assert POM.is_file()
    assert kafka_version().split(".")[0] == "4"


def test_cache_root_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLINE_CACHE_DIR", str(tmp_path))
    assert cache_root() == tmp_path
    assert KafkaJars().libs == tmp_path / f"kafka-{kafka_version()}" / "libs"


def test_second_fetch_does_nothing(tmp_path: Path, fake_mvn: Path) -> None:
    jars = KafkaJars(root=tmp_path / "cache")

    libs = jars.fetch()
    jars.fetch()

    assert (libs / "kafka_2.13-9.9.9.jar").is_file()
    assert jars.is_fetched()
    assert fake_mvn.read_text().count("call") == 1


def test_failed_fetch_leaves_no_marker_and_is_redone(
    tmp_path: Path, fake_mvn: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jars = KafkaJars(root=tmp_path / "cache")
    monkeypatch.setenv("FAKE_MVN_FAIL", "1")

    with pytest.raises(JarFetchError, match="could not resolve"):
        jars.fetch()
    assert not jars.is_fetched()
    assert not list(jars.home.glob("libs*"))

    monkeypatch.delenv("FAKE_MVN_FAIL")
    jars.fetch()
    assert jars.is_fetched()
    assert fake_mvn.read_text().count("call") == 2


def test_changed_pom_is_fetched_again(tmp_path: Path, fake_mvn: Path) -> None:
    pom = tmp_path / "pom.xml"
    pom.write_bytes(POM.read_bytes())
    jars = KafkaJars(pom=pom, root=tmp_path / "cache")
    jars.fetch()

    pom.write_text(pom.read_text() + "<!-- another dependency -->\n")

    assert not jars.is_fetched()
    jars.fetch()
    assert fake_mvn.read_text().count("call") == 2


def test_missing_maven_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(JarFetchError, match="mvn"):
        KafkaJars(root=tmp_path / "cache").fetch()


def test_require_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(JarFetchError, match="driftline broker fetch"):
        KafkaJars(root=tmp_path).require()
