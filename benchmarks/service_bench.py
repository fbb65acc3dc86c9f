"""Figures of the gateway as systemd runs it: time to READY=1, cold and warm, and SIGTERM during a compile.

Runs ``gridgate run`` with ``NOTIFY_SOCKET`` pointing at a socket of its own,
with an empty Numba cache (a first start) and then with the cache it filled
(every later start), and once more cold with a SIGTERM while the kernels
compile. The config has one Modbus TCP device and a rule on each of its
channels, against a broker that is not there (READY does not wait for it).

    .venv/bin/python -m benchmarks.service_bench [--starts 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from drivers.simulators.dust_monitor import CHANNELS


def _config(storage: Path) -> str:
    channels = ",\n".join(f'{{ id = "{c.id}", address = {c.address}, type = "{c.type}" }}' for c in CHANNELS)
    rules = "".join(
        f'[[rules]]\ndevice = "dust-01"\nchannel = "{c.id}"\nhigh = 1e9\ncategory = "env.bench"\n'
        for c in CHANNELS
    )
    return (
        '[gateway]\nid = "gw-bench"\nsite = "bench"\ngrid_cell = "C1"\n'
        f'[uplink]\nhost = "127.0.0.1"\nport = 9\n[storage]\ndirectory = "{storage}"\n'
        '[[devices]]\nid = "dust-01"\ndriver = "modbus_tcp"\nhost = "127.0.0.1"\nport = 9\n'
        f"channels = [\n{channels}\n]\n{rules}"
    )


def _start(site: Path, cache: Path, notify: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "NOTIFY_SOCKET": str(notify)}
    command = [sys.executable, "-m", "gateway", "run", "--config", str(site), "--log-level", "WARNING"]
    return subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)


def _until_ready(sock: socket.socket, started: float) -> float:
    while True:
        if b"READY=1" in sock.recv(4096).split(b"\n"):
            return time.monotonic() - started


def _stop(gateway: subprocess.Popen[bytes]) -> float:
    sent = time.monotonic()
    gateway.send_signal(signal.SIGTERM)
    gateway.wait(timeout=30)
    return time.monotonic() - sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        site = work / "site.toml"
        site.write_text(_config(work / "state"))
        notify = work / "notify"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(str(notify))
            sock.settimeout(300)
            cold, warm, stops = [], [], []
            for i in range(args.starts):
                cache = work / f"cold-{i}"
                started = time.monotonic()
                gateway = _start(site, cache, notify)
                cold.append(_until_ready(sock, started))
                stops.append(_stop(gateway))
                started = time.monotonic()
                gateway = _start(site, cache, notify)
                warm.append(_until_ready(sock, started))
                stops.append(_stop(gateway))
            during = []
            for i in range(args.starts):
                gateway = _start(site, work / f"interrupted-{i}", notify)
                time.sleep(1.0)  # past the imports, inside the compile
                during.append(_stop(gateway))

    def figures(seconds: list[float]) -> str:
        return f"median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s"

    print(f"time to READY=1, empty kernel cache (first start): {figures(cold)}")
    print(f"time to READY=1, warm kernel cache:                {figures(warm)}")
    print(f"SIGTERM → exit once running (flush included):      {figures(stops)}")
    print(f"SIGTERM → exit during a cold compile:              {figures(during)}")


if __name__ == "__main__":
    main()
