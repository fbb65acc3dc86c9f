"""The command-center tools on a site's broker: TLS, username and password file, late join."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.board import Board
from firmware_tools.broker_target import BrokerTarget
from firmware_tools.monitor import follow
from gateway.config import parse_config
from tests.conftest import gateway_toml
from tests.helpers import running_gateway
from tests.test_monitor_cli import _gridgate
from tests.uplink_peers import password_tls_broker


async def test_late_monitor_sees_open_events_and_tools_use_tls_and_a_password_file(
    tmp_path: Path, dust_monitor: SimulatedModbusDevice, topic_prefix: str
) -> None:
    broker, tls_port, certs = password_tls_broker(tmp_path, "tech")
    text = gateway_toml(
        broker_port=broker.port,
        modbus_port=dust_monitor.port,
        storage=tmp_path / "state",
        prefix=topic_prefix,
    ).replace("[uplink]\n", '[uplink]\nusername = "tech"\npassword = "s3cret"\n')
    site = tmp_path / "site.toml"
    site.write_text(text)
    tls = (
        "--broker",
        f"127.0.0.1:{tls_port}",
        "--ca-file",
        str(certs["ca"]),
        "--username",
        "tech",
        "--password-file",
        str(tmp_path / "password.txt"),
        "--prefix",
        topic_prefix,
    )
    with broker:
        async with running_gateway(parse_config(text)):
            dust_monitor.set("pm10", 233.5)
            await asyncio.sleep(2.0)  # raised and published before anyone watches

            board = Board()
            target = BrokerTarget(
                "127.0.0.1",
                tls_port,
                prefix=topic_prefix,
                username="tech",
                password="s3cret",
                ca_file=str(certs["ca"]),
                tls=True,
            )
            following = asyncio.create_task(follow(target, board), name="late-monitor")
            try:
                for _ in range(100):
                    if board.events:
                        break
                    await asyncio.sleep(0.1)
            finally:
                following.cancel()
                await asyncio.gather(following, return_exceptions=True)
            (event,) = board.events.values()
            assert event["category"] == "env.dust.pm10" and event["value"] == 233.5
            assert "OPEN EVENTS (1)" in board.render(color=False)

            status, out, err = await _gridgate("verify", event["event_id"], *tls)
            assert status == 1, err
            assert json.loads(out)["result"]["verified"] is False
            status, out, err = await _gridgate("ack", event["event_id"], "--operator", "li.ming", *tls)
            assert status == 0, err
            # The site config alone: its [uplink] address and credentials, its gateway id.
            status, out, err = await _gridgate(
                "ack", event["event_id"], "--operator", "li", "--config", str(site)
            )
            assert status == 0, err
            assert json.loads(out)["result"]["acknowledged_by"] == "li.ming"

            (tmp_path / "wrong.txt").write_text("guess\n")
            wrong = [*tls[:-4], "--password-file", str(tmp_path / "wrong.txt"), "--prefix", topic_prefix]
            status, out, err = await _gridgate("monitor", *wrong, "--duration", "3")
            assert status == 3 and "refused the credentials" in err, err
            status, out, err = await _gridgate(
                "monitor", *tls[:2], "--prefix", topic_prefix, "--duration", "3"
            )
            assert status == 3, err  # TLS listener, plain client: no connection
