"""A real Kafka 4 broker for the contract tests: one combined KRaft node.

The node is both broker and controller, listens on free loopback ports and
keeps its log in a temporary folder; the jars come from Maven Central into
the shared cache, so a warm run starts the JVM straight away. A second
listener sits behind a proxy that can lose the broker's answers, which is how
the tests reach the failures a producer's retries must survive.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import socket
import struct
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient

from tests.backends.base import ServerProcess, cache_dir, free_port, maven_fetch, run

KAFKA_VERSION = "4.4.0"
LOG4J_VERSION = "2.26.1"
SLF4J_VERSION = "2.0.20"
ARTIFACTS = [
    f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}",
    # The Maven artifact brings no logging backend; without one the broker
    # starts silently and a failed start leaves nothing to read.
    f"org.apache.logging.log4j:log4j-slf4j2-impl:{LOG4J_VERSION}",
    f"org.apache.logging.log4j:log4j-core:{LOG4J_VERSION}",
    f"org.apache.logging.log4j:log4j-api:{LOG4J_VERSION}",
    f"org.slf4j:slf4j-api:{SLF4J_VERSION}",
]
MAIN_CLASSES = ["kafka.tools.StorageTool", "kafka.Kafka"]
READY_TIMEOUT = 180.0
SASL_USERNAME = "strongroom"
SASL_PASSWORD = "dev-only-kafka-password"
# Kafka's API key of a Produce request, the first field of a request header.
PRODUCE_API_KEY = 0

_LOG4J2_PROPERTIES = """\
status = warn
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
"""


def prepare() -> Path:
    """Fetch Kafka and its logging backend; return the folder holding the jars."""
    home = cache_dir("kafka")
    maven_fetch(ARTIFACTS, home)
    lib = home / "lib"
    kafka_jar = lib / f"kafka_2.13-{KAFKA_VERSION}.jar"
    if not kafka_jar.exists():
        raise RuntimeError(f"Maven did not lay down {kafka_jar.name} in {lib}.")
    with zipfile.ZipFile(kafka_jar) as jar:
        names = set(jar.namelist())
    for main_class in MAIN_CLASSES:
        if main_class.replace(".", "/") + ".class" not in names:
            raise RuntimeError(f"{kafka_jar.name} has no class {main_class}.")
    return lib


class ResponseDroppingProxy:
    """A TCP proxy in front of the broker that can lose Produce responses.

    The broker has appended the batch but the client never hears so, which is
    the failure an idempotent producer must retry without writing a copy.
    """

    def __init__(self, listen_port: int, broker_port: int) -> None:
        self.broker_port = broker_port
        self.dropped = 0
        self._to_drop = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", listen_port))
        threading.Thread(target=self._accept, name="kafka-proxy", daemon=True).start()

    def drop_produce_responses(self, count: int) -> None:
        with self._lock:
            self._to_drop = count

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                broker = socket.create_connection(("127.0.0.1", self.broker_port))
            except OSError:
                client.close()
                continue
            api_keys: dict[int, int] = {}
            for source, target, is_request in (
                (client, broker, True),
                (broker, client, False),
            ):
                threading.Thread(
                    target=self._pipe,
                    args=(source, target, is_request, api_keys),
                    daemon=True,
                ).start()

    def _pipe(
        self,
        source: socket.socket,
        target: socket.socket,
        is_request: bool,
        api_keys: dict[int, int],
    ) -> None:
        try:
            while frame := _read_frame(source):
                if is_request:
                    api_key, _, correlation_id = struct.unpack(">hhi", frame[4:12])
                    api_keys[correlation_id] = api_key
                else:
                    (correlation_id,) = struct.unpack(">i", frame[4:8])
                    is_produce = api_keys.pop(correlation_id, -1) == PRODUCE_API_KEY
                    if is_produce and self._take_drop():
                        break
                target.sendall(frame)
        except OSError:
            pass
        for end in (source, target):
            # shutdown, unlike close, also wakes the other pipe's blocked recv
            # and sends the client the FIN that makes it retry.
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def _take_drop(self) -> bool:
        with self._lock:
            if self._to_drop <= 0:
                return False
            self._to_drop -= 1
            self.dropped += 1
            return True


def _read_frame(sock: socket.socket) -> bytes:
    """Read one size-prefixed Kafka frame; empty when the peer closed."""
    header = _read_exactly(sock, 4)
    if not header:
        return b""
    (size,) = struct.unpack(">i", header)
    body = _read_exactly(sock, size)
    return header + body if len(body) == size else b""


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            return b""
        chunks += chunk
    return bytes(chunks)


@dataclass
class KafkaServer:
    bootstrap_servers: str
    process: ServerProcess
    # Clients bootstrapped here talk to the broker only through the proxy,
    # because this listener advertises the proxy's address.
    proxied_bootstrap_servers: str
    proxy: ResponseDroppingProxy
    # A listener that wants SASL PLAIN with SASL_USERNAME and SASL_PASSWORD.
    sasl_bootstrap_servers: str

    def stop(self) -> None:
        self.process.stop()
        self.proxy.close()

    def restart(self) -> None:
        """Stop the broker and start it again on the same ports and log dirs."""
        self.process.stop()
        self.process.start()


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("Kafka needs Java 17 on PATH; no java was found.")
    return java


@dataclass(frozen=True)
class _Ports:
    broker: int
    controller: int
    proxied: int
    proxy: int
    sasl: int


def _free_ports() -> _Ports:
    ports: dict[int, None] = {}
    while len(ports) < 5:
        ports[free_port()] = None
    return _Ports(*ports)


def _server_properties(directory: Path, ports: _Ports) -> str:
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers=127.0.0.1:{ports.controller}",
            f"listeners=PLAINTEXT://127.0.0.1:{ports.broker},"
            f"PROXIED://127.0.0.1:{ports.proxied},"
            f"SASL://127.0.0.1:{ports.sasl},"
            f"CONTROLLER://127.0.0.1:{ports.controller}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{ports.broker},"
            f"PROXIED://127.0.0.1:{ports.proxy},"
            f"SASL://127.0.0.1:{ports.sasl}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map="
            "PLAINTEXT:PLAINTEXT,PROXIED:PLAINTEXT,SASL:SASL_PLAINTEXT,"
            "CONTROLLER:PLAINTEXT",
            # A third listener that signs clients in with SASL PLAIN.
            "listener.name.sasl.sasl.enabled.mechanisms=PLAIN",
            "listener.name.sasl.plain.sasl.jaas.config="
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'user_{SASL_USERNAME}="{SASL_PASSWORD}";',
            f"log.dirs={directory / 'data'}",
            "num.partitions=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=3",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "default.replication.factor=1",
            "min.insync.replicas=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "",
        ]
    )


def _cluster_id() -> str:
    """Return what ``StorageTool random-uuid`` prints, without starting a JVM.

    Kafka's Uuid is 16 random bytes in unpadded URL-safe base64 and never
    starts with "-", which would read as a command-line option.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _is_ready(bootstrap_servers: str) -> bool:
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="strongroom-readiness",
        # Fail fast and let ServerProcess ask again, rather than backing off
        # for up to 30 s inside one probe while the broker is already up.
        bootstrap_timeout_ms=3000,
        reconnect_backoff_max_ms=500,
        request_timeout_ms=5000,
    )
    try:
        admin.list_topics()
        return True
    finally:
        admin.close()


def start_kafka(directory: Path, lib: Path | None = None) -> KafkaServer:
    """Format storage in ``directory`` and start one broker+controller node."""
    lib = lib or prepare()
    directory.mkdir(parents=True, exist_ok=True)
    ports = _free_ports()
    config = directory / "server.properties"
    config.write_text(_server_properties(directory, ports))
    log4j = directory / "log4j2.properties"
    log4j.write_text(_LOG4J2_PROPERTIES)
    java = [
        _java(),
        "-Xmx512m",
        "-Xms64m",
        # Two busy cores and little data: a small single-threaded collector
        # and the quick compiler only start the JVM sooner.
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp",
        f"{lib}/*",
    ]
    run(
        [
            *java,
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "-t",
            _cluster_id(),
            "-c",
            str(config),
        ],
        timeout=300,
    )
    bootstrap_servers = f"127.0.0.1:{ports.broker}"
    proxy = ResponseDroppingProxy(ports.proxy, ports.proxied)
    process = ServerProcess(
        "kafka",
        [*java, "kafka.Kafka", str(config)],
        log_path=directory / "server.log",
        ready=lambda: _is_ready(bootstrap_servers),
        timeout=READY_TIMEOUT,
    )
    try:
        process.start()
    except BaseException:
        proxy.close()
        raise
    return KafkaServer(
        bootstrap_servers=bootstrap_servers,
        process=process,
        proxied_bootstrap_servers=f"127.0.0.1:{ports.proxy}",
        proxy=proxy,
        sasl_bootstrap_servers=f"127.0.0.1:{ports.sasl}",
    )


@pytest.fixture(scope="session")
def kafka_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaServer]:
    server = start_kafka(tmp_path_factory.mktemp("kafka"))
    yield server
    server.stop()
