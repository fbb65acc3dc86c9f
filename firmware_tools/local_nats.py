"""A throw-away NATS server speaking MQTT (3.1.1 only, as NATS 2.9 does) on 127.0.0.1, for the tests.

NATS keeps MQTT sessions and retained messages in JetStream, so the server
gets a JetStream store in its own temporary directory.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from firmware_tools.local_broker import SEARCH_PATH, free_port, wait_for_port


def nats_binary() -> str | None:
    return shutil.which("nats-server", path=SEARCH_PATH)


class LocalNats:
    """``with LocalNats() as nats:`` runs nats-server, MQTT on ``nats.mqtt_port``, until the block ends."""

    def __init__(self) -> None:
        self.mqtt_port = free_port()
        self.client_port = free_port()
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LocalNats:
        binary = nats_binary()
        if binary is None:
            raise FileNotFoundError("nats-server is not installed (apt-get install nats-server)")
        self._dir = tempfile.TemporaryDirectory(prefix="gridgate-nats-")
        store = Path(self._dir.name)
        config = store / "nats.conf"
        config.write_text(
            f"server_name: gridgate-test\nlisten: 127.0.0.1:{self.client_port}\n"
            f"jetstream {{ store_dir: {store}/js }}\nmqtt {{ listen: 127.0.0.1:{self.mqtt_port} }}\n"
        )
        self._process = subprocess.Popen(
            [binary, "-c", str(config), "-l", str(store / "nats.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(self.mqtt_port, timeout_s=30)
        except TimeoutError:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
