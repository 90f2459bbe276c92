"""Application class-data sharing (AppCDS) archives for the broker's JVMs.

Most of a local broker's start is the JVM loading, verifying and linking ~5,000 classes.
A dynamic CDS archive (JDK 13+) holds them pre-parsed: on a 2-core machine the broker
answered its first metadata request in 1.5-2.0 s with the archive against 2.4-4.0 s
without, and the storage tool ran in 0.6-0.7 s against 0.8-1.2 s.

The archives are built once per jar set and java installation by ``driftline broker
fetch`` (one start and stop of a throwaway broker with ``-XX:ArchiveClassesAtExit``) and
live next to the jars. The JVM validates an archive against its own build and the
classpath; with ``-Xshare:auto`` a stale one is ignored with a warning, never fatal.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from broker.jars import KafkaJars

# "broker" is kafka.Kafka, "tool" is kafka.tools.StorageTool: they load different classes.
ArchiveKind = Literal["broker", "tool"]


@dataclass(frozen=True)
class ClassArchives:
    """The archive directory of one jar set and one java installation."""

    directory: Path

    @classmethod
    def locate(cls, jars: KafkaJars, java: str) -> ClassArchives:
        return cls(jars.home / "cds" / java_fingerprint(java))

    def path(self, kind: ArchiveKind) -> Path:
        return self.directory / f"{kind}.jsa"

    def partial(self, kind: ArchiveKind) -> Path:
        return self.directory / f"{kind}.jsa.partial"

    def exists(self) -> bool:
        return self.path("broker").is_file() and self.path("tool").is_file()

    def use_options(self, kind: ArchiveKind) -> list[str]:
        """JVM options that load the archive of ``kind`` if it has been built."""
        archive = self.path(kind)
        return [f"-XX:SharedArchiveFile={archive}"] if archive.is_file() else []

    def dump_options(self, kind: ArchiveKind) -> list[str]:
        """JVM options that write the classes loaded by this run when the JVM exits."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.partial(kind).unlink(missing_ok=True)
        # -Xlog keeps the dump's per-class warnings (classes it skips) out of the logs.
        return [f"-XX:ArchiveClassesAtExit={self.partial(kind)}", "-Xlog:cds*=off"]

    def commit(self, kind: ArchiveKind) -> bool:
        """Move a complete dump into place; False if the JVM wrote none."""
        partial = self.partial(kind)
        if not partial.is_file():
            return False
        partial.replace(self.path(kind))
        return True


def java_fingerprint(java: str) -> str:
    """A short id of the java installation: an archive only fits the build that wrote it."""
    binary = Path(java).resolve()
    stat = binary.stat()
    identity = f"{binary}:{stat.st_size}:{stat.st_mtime_ns}"
    # 12 hex digits tell installations on one machine apart; this is no security measure.
    return hashlib.sha256(identity.encode()).hexdigest()[:12]
