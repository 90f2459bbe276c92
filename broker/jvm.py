"""Java command lines of the broker and its storage tool."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from broker.cds import ArchiveKind, ClassArchives
from broker.errors import BrokerStartError
from broker.jars import LOG4J2_CONFIG, KafkaJars

# Start-up is dominated by class loading and by interpreting code that runs once. On a
# 2-core machine these flags cut the time to the first metadata answer from ~4.1 s to
# ~2.8 s: C1 only (no C2 compiler threads competing for the cores with start-up work), the
# serial collector (no parallel GC threads; a 512 MB heap needs none) and the JDK's class
# data sharing archive. C1-only code is slower at steady state: a throughput benchmark can
# pass its own options (for example ``()`` for the JVM's defaults).
FAST_START_JVM_OPTIONS: tuple[str, ...] = (
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Xshare:auto",
)

# "use" loads the AppCDS archives if built, "dump" writes them at exit (broker.cds).
ArchiveMode = Literal["use", "dump", "off"]


def require_java() -> str:
    """Path of ``java``, or a BrokerStartError that says how to get it."""
    java = shutil.which("java")
    if java is None:
        raise BrokerStartError(
            "`java` is not on PATH; the local Kafka broker needs Java 17 or newer "
            "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless)"
        )
    return java


@dataclass(frozen=True)
class JavaLauncher:
    """Builds ``java`` command lines with the broker's classpath, logging and archives."""

    java: str
    jars: KafkaJars
    logs_dir: Path
    options: tuple[str, ...] = FAST_START_JVM_OPTIONS
    archive_mode: ArchiveMode = "use"

    @property
    def archives(self) -> ClassArchives:
        return ClassArchives.locate(self.jars, self.java)

    def command(
        self, kind: ArchiveKind, heap: Sequence[str], main_class: str, args: Sequence[str]
    ) -> list[str]:
        """``java <heap> <options> -cp <libs> <main_class> <args>``."""
        return [
            self.java,
            *heap,
            *self.options,
            *self._archive_options(kind),
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
            f"-Dkafka.logs.dir={self.logs_dir}",
            "-cp",
            self.jars.classpath,
            main_class,
            *args,
        ]

    def after_exit(self, kind: ArchiveKind) -> None:
        """Keep the archive that a ``dump`` run wrote when its JVM exited."""
        if self.archive_mode == "dump":
            self.archives.commit(kind)

    def _archive_options(self, kind: ArchiveKind) -> list[str]:
        if self.archive_mode == "dump":
            return self.archives.dump_options(kind)
        if self.archive_mode == "use":
            return self.archives.use_options(kind)
        return []
