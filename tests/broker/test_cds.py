"""AppCDS archive bookkeeping (no JVM is started)."""

from __future__ import annotations

import sys
from pathlib import Path

from broker.cds import ClassArchives, java_fingerprint
from broker.jars import KafkaJars


def test_archives_are_used_only_once_built(tmp_path: Path) -> None:
    archives = ClassArchives(tmp_path / "cds")
    assert archives.use_options("broker") == []

    dump = archives.dump_options("broker")
    assert dump[0] == f"-XX:ArchiveClassesAtExit={archives.partial('broker')}"
    assert not archives.commit("broker")  # the JVM wrote nothing yet

    archives.partial("broker").write_bytes(b"archive")
    assert archives.commit("broker")
    assert archives.use_options("broker") == [f"-XX:SharedArchiveFile={archives.path('broker')}"]
    assert not archives.exists()  # the tool's archive is still missing


def test_location_depends_on_jars_and_java(tmp_path: Path) -> None:
    jars = KafkaJars(root=tmp_path)
    archives = ClassArchives.locate(jars, sys.executable)

    assert archives.directory.parent == jars.home / "cds"
    assert archives.directory.name == java_fingerprint(sys.executable)
    assert java_fingerprint(sys.executable) != java_fingerprint("/bin/sh")
