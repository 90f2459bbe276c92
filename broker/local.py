"""A single-node Apache Kafka broker (KRaft, combined mode) run as a local JVM process.

>>> with LocalBroker() as broker:                                  # doctest: +SKIP
...     producer = Producer({"bootstrap.servers": broker.bootstrap_servers})

Each start formats a fresh metadata log (new cluster id), picks free ports on 127.0.0.1
unless given, waits until the broker answers a metadata request, and records the process
in ``<data_dir>/broker.json``. The broker logs to ``<data_dir>/logs/server.log``; what the
JVM itself prints goes to ``<data_dir>/logs/jvm.out``.

With ``fresh=False`` a data directory formatted before is started as it is, so a stop
and a start are a broker restart (same ports; topics, records and offsets kept):

>>> broker = LocalBroker(data_dir, fresh=False).start()           # doctest: +SKIP
>>> broker.stop()                                                  # doctest: +SKIP
>>> broker.start()                                                 # doctest: +SKIP
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from broker.cds import ClassArchives
from broker.config import BrokerConfig, check_port_free, free_ports, new_cluster_id
from broker.errors import BrokerStartError
from broker.jars import KafkaJars
from broker.jvm import FAST_START_JVM_OPTIONS, ArchiveMode, JavaLauncher, require_java
from broker.process import spawn, tail, terminate
from broker.readiness import wait_until_ready
from broker.state import BrokerState

# Sized for tests and the demo; 512 MB holds the broker with the small log-cleaner buffer
# configured in broker.config.
HEAP_MB = 512
# The storage tool only writes a few small files.
TOOL_HEAP_MB = 128
# A cold JVM on a loaded 2-core machine has been seen to take ~10 s; 90 s reports a broker
# that will not come up without failing one that is merely slow.
START_TIMEOUT_S = 90.0
# A single-node controlled shutdown takes well under a second; 30 s before SIGKILL.
STOP_TIMEOUT_S = 30.0
# Auto-picked ports can be taken by another process before the broker binds them.
PORT_ATTEMPTS = 3


class LocalBroker:
    """One broker process; a context manager that starts it and always stops it.

    ``extra_listeners`` adds listeners by name and security protocol (for example
    ``{"SASL": "SASL_PLAINTEXT"}``), each on its own free port (see
    :meth:`listener_address`); ``extra_properties`` are server properties written last.
    Without ``data_dir`` a temporary directory is used and removed on stop.

    ``fresh`` (the default) formats a new metadata log at every start: a new, empty
    cluster. ``fresh=False`` formats only a data directory that was never formatted and
    otherwise starts on it as it is (topics, records and committed offsets kept); it needs
    a ``data_dir``. Starting the same object again after :meth:`stop` reuses its ports,
    which a restart needs: clients reconnect to the same address, and the metadata log
    records the controller's endpoint.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        port: int | None = None,
        controller_port: int | None = None,
        extra_listeners: Mapping[str, str] | None = None,
        extra_properties: Mapping[str, str] | None = None,
        jars: KafkaJars | None = None,
        jvm_options: Sequence[str] = FAST_START_JVM_OPTIONS,
        heap_mb: int = HEAP_MB,
        start_timeout_s: float = START_TIMEOUT_S,
        class_archives: ArchiveMode = "use",
        fresh: bool = True,
        tied: bool = True,
    ) -> None:
        if not fresh and data_dir is None:
            raise ValueError("fresh=False needs a data_dir: a temporary one is removed on stop")
        self._fresh = fresh
        self._tied = tied  # stopped with its caller (broker.process.spawn); False: detached
        self._requested_dir = data_dir
        self._port = port
        self._controller_port = controller_port
        self._extra_listeners = dict(extra_listeners or {})
        self._extra_properties = dict(extra_properties or {})
        self._jars = jars or KafkaJars()
        self._jvm_options = tuple(jvm_options)
        self._heap_mb = heap_mb
        self._start_timeout_s = start_timeout_s
        self._archive_mode = class_archives
        self._launcher: JavaLauncher | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._config: BrokerConfig | None = None
        self._data_dir: Path | None = None
        self._temporary = False
        self._started = False  # a start succeeded: a later start is a restart
        self.start_seconds: float | None = None

    @property
    def config(self) -> BrokerConfig:
        if self._config is None:
            raise RuntimeError("the broker has not been started")
        return self._config

    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:<port>`` of the PLAINTEXT listener."""
        return self.config.bootstrap_servers

    @property
    def data_dir(self) -> Path:
        if self._data_dir is None:
            raise RuntimeError("the broker has not been started")
        return self._data_dir

    @property
    def log_file(self) -> Path:
        return self.data_dir / "logs" / "server.log"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the broker has not been started")
        return self._process.pid

    @property
    def state(self) -> BrokerState:
        return BrokerState(
            pid=self.pid,
            port=self.config.port,
            controller_port=self.config.controller_port,
            data_dir=str(self.data_dir),
            properties_file=str(self._properties_file),
            kafka_version=self._jars.version,
            temporary=self._temporary,
        )

    def listener_address(self, name: str) -> str:
        """``host:port`` of a listener (PLAINTEXT, CONTROLLER or an extra one)."""
        return self.config.listener_address(name)

    def start(self) -> LocalBroker:
        """Format, launch and wait until the broker answers; return self."""
        if self._process is not None:
            raise RuntimeError("the broker is already started")
        began = time.monotonic()
        self._given_ports_free()  # before anything slow: a busy port is a common mistake
        java = require_java()
        self._jars.fetch()
        self._data_dir = self._prepare_data_dir()
        self._launcher = JavaLauncher(
            java, self._jars, self.data_dir / "logs", self._jvm_options, self._archive_mode
        )
        auto_ports = self._port is None and self._controller_port is None
        attempts = PORT_ATTEMPTS if auto_ports else 1
        for attempt in range(1, attempts + 1):
            try:
                self._launch(self._launcher)
                break
            except BrokerStartError:
                lost_port_race = "Address already in use" in tail(self.log_file, 200)
                self._abandon(keep_dir=lost_port_race and attempt < attempts)
                if not (lost_port_race and attempt < attempts):
                    raise
            except BaseException:
                # Ctrl-C does not reach the JVM (own session): never leave it behind.
                self._abandon(keep_dir=False)
                raise
        self.start_seconds = time.monotonic() - began
        self._started = True
        self.state.save()
        return self

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM the broker, wait up to ``timeout_s``, then SIGKILL. Idempotent.

        The broker can be started again afterwards (see ``fresh``).
        """
        if self._process is not None:
            terminate(self._process.pid, timeout_s, child=self._process)
            self._process = None
            if self._launcher is not None:
                self._launcher.after_exit("broker")
        self._discard_temporary_dir()

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def _properties_file(self) -> Path:
        return self.data_dir / "server.properties"

    def _prepare_data_dir(self) -> Path:
        if self._requested_dir is None:
            self._temporary = True
            data_dir = Path(tempfile.mkdtemp(prefix="driftline-kafka-"))
        else:
            data_dir = self._requested_dir.resolve()
        (data_dir / "logs").mkdir(parents=True, exist_ok=True)
        return data_dir

    def _launch(self, launcher: JavaLauncher) -> None:
        restarting = not self._fresh and self._started
        self._config = self.config if restarting else self._make_config()
        self._config.write(self._properties_file)
        cluster_id = None if self._fresh else self._formatted_cluster_id()
        if cluster_id is None:
            cluster_id = self._format(launcher)
        command = launcher.command(
            "broker",
            # A fixed heap: no resizing pauses, and the footprint is known up front.
            [f"-Xmx{self._heap_mb}m", f"-Xms{self._heap_mb}m", "-XX:+ExitOnOutOfMemoryError"],
            "kafka.Kafka",
            [str(self._properties_file)],
        )
        self._process = spawn(
            command, self.data_dir / "logs" / "jvm.out", cwd=self.data_dir, tied=self._tied
        )
        wait_until_ready(
            self.bootstrap_servers,
            cluster_id,
            self._start_timeout_s,
            check_alive=self._raise_if_exited,
            describe_failure=self._log_excerpt,
        )

    def _given_ports_free(self) -> list[int]:
        given = [port for port in (self._port, self._controller_port) if port is not None]
        for port in given:
            check_port_free(port)
        return given

    def _make_config(self) -> BrokerConfig:
        given = self._given_ports_free()
        names = list(self._extra_listeners)
        spare = iter([p for p in free_ports(2 + len(names)) if p not in given])
        return BrokerConfig(
            port=self._port or next(spare),
            controller_port=self._controller_port or next(spare),
            log_dir=self.data_dir / "kraft",
            extra_ports={name: next(spare) for name in names},
            extra_listeners=self._extra_listeners,
            extra_properties=self._extra_properties,
        )

    def _formatted_cluster_id(self) -> str | None:
        """The cluster id of a metadata log formatted before, if there is one."""
        meta = self.config.log_dir / "meta.properties"
        if not meta.is_file():
            return None
        for line in meta.read_text().splitlines():
            name, _, value = line.partition("=")
            if name.strip() == "cluster.id" and value.strip():
                return value.strip()
        raise BrokerStartError(f"{meta} names no cluster.id; remove the data dir to start anew")

    def _format(self, launcher: JavaLauncher) -> str:
        """Format a fresh metadata log directory; return its new cluster id."""
        log_dir = self.config.log_dir
        shutil.rmtree(log_dir, ignore_errors=True)
        cluster_id = new_cluster_id()
        args = ["format", "--standalone", "-t", cluster_id, "-c", str(self._properties_file)]
        command = launcher.command(
            "tool", [f"-Xmx{TOOL_HEAP_MB}m"], "kafka.tools.StorageTool", args
        )
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=self._start_timeout_s
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerStartError(f"formatting {log_dir} timed out") from exc
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise BrokerStartError(f"formatting {log_dir} failed:\n{output}")
        launcher.after_exit("tool")
        return cluster_id

    def _raise_if_exited(self) -> None:
        code = self._process.poll() if self._process is not None else None
        if code is not None:
            raise BrokerStartError(
                f"broker exited with code {code} while starting; {self._log_excerpt()}"
            )

    def _log_excerpt(self) -> str:
        logs = self.data_dir / "logs"
        excerpt = f"last lines of {logs / 'server.log'}:\n{tail(logs / 'server.log')}"
        jvm_output = tail(logs / "jvm.out", 10)
        if jvm_output.strip():
            excerpt += f"\nJVM output ({logs / 'jvm.out'}):\n{jvm_output}"
        return excerpt

    def _abandon(self, *, keep_dir: bool) -> None:
        """Kill a broker that failed to start (it is of no use)."""
        if self._process is not None:
            terminate(self._process.pid, 0.0, child=self._process)
            self._process = None
        if not keep_dir:
            self._discard_temporary_dir()

    def _discard_temporary_dir(self) -> None:
        if self._temporary and self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)


def build_class_archives(jars: KafkaJars | None = None) -> ClassArchives | None:
    """Write the AppCDS archives (broker.cds) unless built; None if java is missing.

    One throwaway broker is formatted, started and stopped with ``-XX:ArchiveClassesAtExit``
    so the archives hold exactly the classes a start loads.
    """
    jars = jars or KafkaJars()
    java = shutil.which("java")
    if java is None:
        return None
    archives = ClassArchives.locate(jars, java)
    if not archives.exists():
        LocalBroker(jars=jars, class_archives="dump").start().stop()
    return archives
