"""Throw-away NATS servers speaking MQTT (3.1.1 only, as NATS 2.9 does) on 127.0.0.1, alone or clustered.

NATS keeps MQTT sessions and retained messages in JetStream, so each node gets
a JetStream store; a cluster of three or more replicates them (a node can die
and its sessions and retained state live on in the others).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from firmware_tools.local_broker import SEARCH_PATH, free_port, wait_for_port


def nats_binary() -> str | None:
    return shutil.which("nats-server", path=SEARCH_PATH)


class NatsNode:
    """One nats-server process; ``mqtt_port`` is where MQTT clients connect."""

    def __init__(self, name: str, directory: Path, *, routes: list[int], cluster_port: int | None) -> None:
        self.name = name
        self.mqtt_port = free_port()
        self.client_port = free_port()
        self.cluster_port = cluster_port
        self._routes = routes
        self._directory = directory
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> NatsNode:
        binary = nats_binary()
        if binary is None:
            raise FileNotFoundError("nats-server is not installed (apt-get install nats-server)")
        store = self._directory / self.name
        store.mkdir(parents=True, exist_ok=True)
        config = store / "nats.conf"
        cluster = ""
        if self.cluster_port is not None:
            routes = ", ".join(
                f"nats://127.0.0.1:{port}" for port in self._routes if port != self.cluster_port
            )
            cluster = (
                f"cluster {{ name: gridgate, listen: 127.0.0.1:{self.cluster_port}, routes: [{routes}] }}\n"
            )
        config.write_text(
            f"server_name: {self.name}\nlisten: 127.0.0.1:{self.client_port}\n"
            f"jetstream {{ store_dir: {store}/js }}\nmqtt {{ listen: 127.0.0.1:{self.mqtt_port} }}\n"
            f"{cluster}"
        )
        self._process = subprocess.Popen(
            [binary, "-c", str(config), "-l", str(store / "nats.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.mqtt_port, timeout_s=30)
        return self

    def kill(self) -> None:
        """Die as a crashed node does: no goodbye, no Last Will sent."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None


class LocalNats:
    """``with LocalNats(nodes=3) as cluster:`` runs the nodes until the block ends."""

    def __init__(self, *, nodes: int = 1) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="gridgate-nats-")
        ports = [free_port() for _ in range(nodes)] if nodes > 1 else [None]
        routes = [p for p in ports if p is not None]
        self.nodes = [
            NatsNode(f"n{i + 1}", Path(self._dir.name), routes=routes, cluster_port=port)
            for i, port in enumerate(ports)
        ]

    @property
    def servers(self) -> list[str]:
        return [f"127.0.0.1:{node.mqtt_port}" for node in self.nodes]

    def __enter__(self) -> LocalNats:
        for node in self.nodes:
            node.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for node in self.nodes:
            node.kill()
        time.sleep(0.05)
        self._dir.cleanup()
