"""The broker's classpath: Kafka and log4j2 jars resolved by Maven into a local cache.

``broker/pom.xml`` (shipped with the package) lists the dependencies. They are copied with
maven-dependency-plugin into ``$DRIFTLINE_CACHE_DIR/kafka-<version>/libs``. A marker file,
written only after a complete copy, records the sha256 of the pom that produced the jars:
a second fetch with the same pom does nothing, and an interrupted fetch or a changed pom is
fetched again.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from broker.errors import JarFetchError

PACKAGE_DIR = Path(__file__).resolve().parent
POM = PACKAGE_DIR / "pom.xml"
LOG4J2_CONFIG = PACKAGE_DIR / "log4j2.yaml"
# copy-dependencies 3.9+ needs Maven 3.9; 3.8.1 runs on the Maven 3.8 that Debian ships.
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
MARKER = ".complete"
_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
# Resolving ~45 jars (~45 MB) takes well under a minute on a fresh cache; ten minutes
# leaves room for a slow mirror before reporting a hang as an error.
FETCH_TIMEOUT_S = 600.0


def cache_root() -> Path:
    """``$DRIFTLINE_CACHE_DIR``, else ``~/.cache/driftline``."""
    configured = os.environ.get("DRIFTLINE_CACHE_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "driftline"


def kafka_version(pom: Path = POM) -> str:
    """The ``kafka.version`` property of the pom."""
    try:
        root = ET.parse(pom).getroot()
    except (OSError, ET.ParseError) as exc:
        raise JarFetchError(f"cannot read {pom}: {exc}") from exc
    version = root.findtext("m:properties/m:kafka.version", namespaces=_POM_NS)
    if not version:
        raise JarFetchError(f"{pom} has no <kafka.version> property")
    return version.strip()


@dataclass(frozen=True)
class KafkaJars:
    """Where the jars of one pom live in the cache, and how to fetch them."""

    pom: Path = POM
    root: Path | None = None

    @property
    def version(self) -> str:
        return kafka_version(self.pom)

    @property
    def home(self) -> Path:
        """``<cache>/kafka-<version>``."""
        return (self.root or cache_root()) / f"kafka-{self.version}"

    @property
    def libs(self) -> Path:
        return self.home / "libs"

    @property
    def classpath(self) -> str:
        """A java ``-cp`` value: every jar of the libs directory."""
        return str(self.libs / "*")

    def pom_digest(self) -> str:
        return hashlib.sha256(self.pom.read_bytes()).hexdigest()

    def is_fetched(self) -> bool:
        marker = self.home / MARKER
        return marker.is_file() and marker.read_text().strip() == self.pom_digest()

    def require(self) -> KafkaJars:
        """Return self if the jars are in the cache, else raise with the fix."""
        if not self.is_fetched():
            raise JarFetchError(
                f"Kafka {self.version} jars are not in {self.libs}; "
                "run `driftline broker fetch` first"
            )
        return self

    def fetch(self) -> Path:
        """Copy the runtime dependencies into the cache unless already there; return libs."""
        if self.is_fetched():
            return self.libs
        self.home.mkdir(parents=True, exist_ok=True)
        with _exclusive(self.home / ".lock"):
            if self.is_fetched():  # another process fetched while this one waited
                return self.libs
            (self.home / MARKER).unlink(missing_ok=True)
            # Class-data archives are bound to the jars' sizes and times: drop them too.
            shutil.rmtree(self.home / "cds", ignore_errors=True)
            staging = self.home / f"libs.partial-{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            try:
                _copy_dependencies(self.pom, staging)
                shutil.rmtree(self.libs, ignore_errors=True)
                staging.rename(self.libs)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            (self.home / MARKER).write_text(self.pom_digest() + "\n")
        return self.libs


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock so that concurrent fetches do not interleave."""
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _copy_dependencies(pom: Path, output: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JarFetchError(
            "Maven (`mvn`) is not on PATH; it fetches the Kafka broker jars "
            "(Debian/Ubuntu: apt-get install maven)"
        )
    command = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(pom),
        f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={output}",
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise JarFetchError(f"mvn did not finish within {FETCH_TIMEOUT_S:.0f} s") from exc
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise JarFetchError(f"mvn could not resolve the Kafka jars from {pom}:\n{tail}")
    if not any(output.glob("kafka_2.13-*.jar")):
        raise JarFetchError(f"mvn finished but {output} holds no kafka_2.13 jar")
