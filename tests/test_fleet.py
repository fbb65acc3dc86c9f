"""`gridgate fleet`: one signed bundle for a group, rolled out canary first, stopped by a failure."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.broker_target import BrokerTarget
from firmware_tools.fleet import rollout
from firmware_tools.local_broker import LocalBroker, free_port
from gateway.config import parse_config
from gateway.service.daemon import Daemon
from tests.conftest import gateway_toml
from tests.helpers import run_gridgate, running_gateway
from tests.keys import MAINTAINER, key_file

GATEWAYS = ("gw-a", "gw-b", "gw-c")


def _site(tmp_path: Path, broker: LocalBroker, modbus_port: int, prefix: str, gateway: str) -> str:
    text = gateway_toml(
        broker_port=broker.port,
        modbus_port=modbus_port,
        storage=tmp_path / gateway / "state",
        prefix=prefix,
        extra="[commands]\napply_window_s = 3.0\ngroups = ['district-3']\n",
    )
    return text.replace('id = "gw-test-01"', f'id = "{gateway}"')


@contextlib.asynccontextmanager
async def _fleet(tmp_path: Path, broker: LocalBroker, port: int, prefix: str) -> AsyncIterator[list[Daemon]]:
    async with contextlib.AsyncExitStack() as stack:
        daemons = []
        for gateway in GATEWAYS:
            path = tmp_path / gateway / "site.toml"
            path.parent.mkdir()
            path.write_text(_site(tmp_path, broker, port, prefix, gateway))
            daemon = await stack.enter_async_context(
                running_gateway(parse_config(path.read_text()), config_path=path)
            )
            daemons.append(daemon)
        yield daemons


def _group_config(site: str) -> str:
    """The site config without [gateway] and [storage]: each gateway keeps its own."""
    for table in ("gateway", "storage"):
        site = re.sub(rf"\[{table}\]\n.*?\n\n", "", site, count=1, flags=re.DOTALL)
    return site


async def test_a_failing_canary_stops_the_rollout_and_a_good_bundle_reaches_every_gateway(
    broker: LocalBroker, dust_monitor: SimulatedModbusDevice, topic_prefix: str, tmp_path: Path
) -> None:
    key = key_file(tmp_path, MAINTAINER)
    group = _group_config(_site(tmp_path, broker, dust_monitor.port, topic_prefix, "gw-a"))
    target = BrokerTarget("127.0.0.1", broker.port, prefix=topic_prefix)
    bundles = {}
    for version, config in (
        (1, group.replace(f"port = {dust_monitor.port}", f"port = {free_port()}")),
        (2, group.replace("high = 150.0", "high = 120.0")),
    ):
        (tmp_path / f"v{version}.toml").write_text(config)
        out = tmp_path / f"v{version}.json"
        status, _, err = await run_gridgate(
            "fleet",
            "sign",
            str(tmp_path / f"v{version}.toml"),
            "--key",
            str(key),
            "--version",
            str(version),
            "--group",
            "district-3",
            "-o",
            str(out),
        )
        assert status == 0, err
        bundles[version] = out.read_bytes()

    async with _fleet(tmp_path, broker, dust_monitor.port, topic_prefix) as daemons:
        broken = await rollout(target, bundles[1], GATEWAYS, canary=1, timeout_s=30)
        assert broken.stopped_by == "gw-a" and not broken.ok
        assert broken.outcomes["gw-a"]["state"] == "rolled_back"
        assert [broken.outcomes[g]["state"] for g in GATEWAYS[1:]] == ["not_pushed", "not_pushed"]

        good = await rollout(target, bundles[2], GATEWAYS, canary=1, timeout_s=30)
        assert good.ok, json.dumps(good.outcomes)
        assert all(
            d.config.rules[0].high == 120.0 and d.config.gateway.id == g
            for d, g in zip(daemons, GATEWAYS, strict=True)
        )
