"""The demo: Modbus TCP, HJ 212, an RS-485 line, IoT-platform devices, a camera → gateway → broker → view.

Everything it starts stops on Ctrl-C. The gateway's log goes to var/demo/gateway.log.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
from pathlib import Path

from firmware_tools.broker_target import BrokerTarget
from firmware_tools.live_view import watch
from firmware_tools.local_broker import LocalBroker, wait_for_port
from firmware_tools.monitor import monitor

ROOT = Path(__file__).resolve().parent.parent
# In a checkout the demo keeps its files in var/demo there; installed, in ./var/demo.
WORK = ROOT if (ROOT / "pyproject.toml").exists() else Path.cwd()
BROKER_PORT = 18830  # must match configs/demo.toml
SIMULATOR_PORT = 15020
HJ212_PORT = 14001  # the gateway's HJ 212 listener in configs/demo.toml
LINE_PORT = 15021  # the RS-485 line's serial device server in configs/demo.toml
PLATFORM_PORT = 18831  # the IoT platforms' broker in configs/demo.toml
CAMERA_PORT = 15031  # the camera's snapshots, in configs/demo.toml
RECEIVER_PORT = 18090  # the gateway's camera receiver ([cameras] in configs/demo.toml)
FUME_MN = "YY330106001000000000001"


def _start(args: list[str], log: Path | None = None) -> subprocess.Popen[bytes]:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=WORK,
        stdout=out,
        stderr=out,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--period", type=float, default=60.0, help="seconds between PM10 excursions")
    parser.add_argument(
        "--duration", type=float, default=0, help="stop after this many seconds (0: run until Ctrl-C)"
    )
    parser.add_argument(
        "--view",
        choices=["board", "lines"],
        default="board",
        help="board: the command-center monitor (gridgate monitor); lines: one line per message",
    )
    args = parser.parse_args()
    logs = WORK / "var" / "demo"  # the outbox too: configs/demo.toml says var/demo
    logs.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen[bytes]] = []
    with LocalBroker(BROKER_PORT), LocalBroker(PLATFORM_PORT):
        try:
            processes.append(
                _start(
                    [
                        "-m",
                        "drivers.simulators.dust_monitor",
                        "--port",
                        str(SIMULATOR_PORT),
                        "--period",
                        str(args.period),
                    ],
                    logs / "simulator.log",
                )
            )
            processes.append(
                _start(
                    [
                        "-m",
                        "drivers.simulators.cabinet_line",
                        "--port",
                        str(LINE_PORT),
                        "--device",
                        "manhole-cover:11:exceedance",
                        "--device",
                        "smoke-panel:21",
                        "--period",
                        str(args.period),
                        "--outage",
                        f"{args.period / 2:g}:20:21",
                    ],
                    logs / "rs485-line.log",
                )
            )
            wait_for_port(SIMULATOR_PORT)
            wait_for_port(LINE_PORT)
            processes.append(
                _start(
                    ["-m", "gateway", "run", "--config", str(ROOT / "configs/demo.toml")],
                    logs / "gateway.log",
                )
            )
            processes.append(
                _start(
                    [
                        "-m",
                        "drivers.simulators.hj212_datalogger",
                        "--port",
                        str(HJ212_PORT),
                        "--kind",
                        "fume",
                        "--mn",
                        FUME_MN,
                        "--period",
                        str(args.period),
                        "--start",
                        str(args.period / 2),
                    ],
                    logs / "datalogger.log",
                )
            )
            processes.append(
                _start(
                    [
                        "-m",
                        "drivers.simulators.platform_devices",
                        "--port",
                        str(PLATFORM_PORT),
                        "--interval",
                        "5",
                        "--silent-after",
                        str(round(args.period * 2 / 5)),
                    ],
                    logs / "platform-devices.log",
                )
            )
            processes.append(
                _start(
                    [
                        "-m",
                        "drivers.simulators.camera",
                        "--port",
                        str(CAMERA_PORT),
                        "--push",
                        f"http://127.0.0.1:{RECEIVER_PORT}/cameras/cam-01",
                        "--period",
                        str(args.period),
                        "--start",
                        str(args.period * 0.75),
                    ],
                    logs / "camera.log",
                )
            )
            print(
                f"GridGate demo: dust monitor on :{SIMULATOR_PORT} (Modbus TCP), broker on :{BROKER_PORT}.\n"
                f"PM10 goes over 150 µg/m³ about 15 s into every {args.period:.0f} s; watch the event open,"
                f" then clear.\nAn oil-fume datalogger (HJ 212) on :{HJ212_PORT} goes over"
                f" 2.0 mg/m³ half a period later.\n"
                f"On the RS-485 line (:{LINE_PORT}, RTU over TCP) a manhole cover tilts past 10°"
                f" every period,"
                f" and the smoke panel stops answering for 20 s: a comms event, then its clear.\n"
                f"Through an IoT platform's broker (:{PLATFORM_PORT}) an NB-IoT smoke detector alarms"
                f" every 30 s, and a LoRa cover falls silent after {args.period * 2:.0f} s: offline.\n"
                f"A camera (snapshots on :{CAMERA_PORT}) pushes an intrusion with its picture"
                f" {args.period * 0.75:.0f} s into every period; the PM10 alarm gets its snapshot.\n"
                f"Try: gridgate ack EVENT_ID --operator me --broker 127.0.0.1:{BROKER_PORT}\n"
                f"Gateway log: {logs / 'gateway.log'}. Ctrl-C stops everything.\n",
                flush=True,
            )
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(_view(args.duration, args.view))
        finally:
            for process in reversed(processes):
                _stop(process)
    print("demo stopped")
    return 0


async def _view(duration: float, kind: str) -> None:
    color = sys.stdout.isatty()
    if kind == "board":
        await monitor(BrokerTarget("127.0.0.1", BROKER_PORT), duration_s=duration, color=color)
        return
    view = asyncio.ensure_future(watch("127.0.0.1", BROKER_PORT, "gridgate/v1/#", color=color))
    if duration > 0:
        await asyncio.sleep(duration)
        view.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await view


if __name__ == "__main__":
    raise SystemExit(main())
