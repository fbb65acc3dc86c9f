"""Battery devices behind IoT platforms, published to a broker as the platforms would.

An NB-IoT smoke detector (China Telecom AEP ``dataReport`` with its
properties, as ``configs/profiles/nbiot-smoke-detector.toml`` reads it) that
alarms now and then, and LoRa manhole covers (ChirpStack v4 ``up`` events
with the 10-byte payload of ``configs/profiles/lora-manhole-cover.toml``) that
tilt, and that can stop sending heartbeats. For the tests, the benchmark and
the demo::

    python -m drivers.simulators.platform_devices --host 127.0.0.1 --port 1883 \\
        --smoke 860374051096202 --cover a84041000181c772 --interval 5
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import struct
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import aiomqtt

log = logging.getLogger("platform-devices")

SMOKE_TOPIC = "aep/dataReport"  # where an AEP forwarding rule publishes; a site chooses it
APPLICATION_ID = "9a1f6c3e-2b7d-4c58-a0e4-6f2d8b1c3e75"

# Cover event codes and flag bits, as the profile's layout and status table read them.
REPORT, ALARM, HEARTBEAT, FAULT, SELF_TEST = 1, 2, 3, 4, 5
OPEN, WATER, GAS, BATTERY_LOW = 1, 2, 4, 8
# Smoke detector alarm_status codes.
NORMAL, SMOKE, SILENCED, LOW_BATTERY, TAMPER, SMOKE_FAULT, TEST, ALIVE = range(8)


def rfc3339(ts: float) -> str:
    """``2026-12-02T10:10:10.457927000+00:00``: ChirpStack's time, nanoseconds and all."""
    moment = datetime.fromtimestamp(ts, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000+00:00"


def cover_payload(
    event: int,
    flags: int = 0,
    *,
    tilt_deg: float = 0.0,
    water_cm: int = 0,
    ch4_lel: float = 0.0,
    battery_v: float = 3.6,
) -> bytes:
    """The cover's 10 bytes: event, flags, tilt ×0.1°, water cm, CH4 ×0.1 %LEL, battery mV."""
    return struct.pack(
        ">BBhHHH",
        event,
        flags,
        round(tilt_deg * 10),
        water_cm,
        round(ch4_lel * 10),
        round(battery_v * 1000),
    )


def chirpstack_up(
    dev_eui: str, f_cnt: int, data: bytes, *, ts: float, obj: dict[str, Any] | None = None
) -> tuple[str, bytes]:
    """A ChirpStack v4 ``up`` event: its topic and JSON."""
    event: dict[str, Any] = {
        "deduplicationId": str(uuid.uuid4()),
        "time": rfc3339(ts),
        "deviceInfo": {
            "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
            "tenantName": "ChirpStack",
            "applicationId": APPLICATION_ID,
            "applicationName": "grid-covers",
            "deviceProfileId": "605d08d4-65f1-4d55-92cc-f93757a8eb23",
            "deviceProfileName": "manhole-cover-CN470",
            "deviceName": f"cover-{dev_eui[-4:]}",
            "devEui": dev_eui,
            "deviceClassEnabled": "CLASS_A",
            "tags": {},
        },
        "devAddr": "0140f2a1",
        "adr": True,
        "dr": 2,
        "fCnt": f_cnt,
        "fPort": 2,
        "confirmed": False,
        "data": base64.b64encode(data).decode(),
        "rxInfo": [
            {
                "gatewayId": "0016c001f153a14c",
                "uplinkId": f_cnt % 65536,
                "nsTime": rfc3339(ts),
                "rssi": -97,
                "snr": 6.5,
                "channel": 3,
                "crcStatus": "CRC_OK",
            }
        ],
        "txInfo": {
            "frequency": 471500000,
            "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 10, "codeRate": "CR_4_5"}},
        },
        "regionConfigId": "cn470",
    }
    if obj is not None:
        event["object"] = obj
    topic = f"application/{APPLICATION_ID}/device/{dev_eui}/event/up"
    return topic, json.dumps(event).encode()


def aep_data_report(imei: str, properties: dict[str, Any], *, ts: float) -> bytes:
    """A China Telecom AEP ``dataReport`` push of a property-model product."""
    return json.dumps(
        {
            "upPacketSN": -1,
            "upDataSN": -1,
            "topic": "v1/up/ad19prof",
            "timestamp": round(ts * 1000),
            "tenantId": "10461180",
            "serviceId": "",
            "protocol": "lwm2m",
            "productId": "15014772",
            "payload": {"serviceId": "smoke_report", "serviceData": {"IMEI": imei, **properties}},
            "messageType": "dataReport",
            "deviceType": "",
            "deviceId": uuid.uuid5(uuid.NAMESPACE_OID, imei).hex,
            "assocAssetId": "",
            "IMSI": "undefined",
            "IMEI": imei,
        }
    ).encode()


def smoke_report(imei: str, status: int, *, ts: float, battery: int = 90, smoke: float = 0.0) -> bytes:
    return aep_data_report(
        imei, {"alarm_status": status, "battery_level": battery, "smoke_value": smoke, "RSRP": -95}, ts=ts
    )


@dataclass
class Cover:
    """A manhole cover: reports, tilts now and then, and may fall silent."""

    dev_eui: str
    silent: bool = False
    f_cnt: int = 0
    tilted: bool = False

    def next(self, ts: float, tick: int, *, alarm_every: int) -> tuple[str, bytes]:
        self.f_cnt += 1
        if alarm_every and tick % alarm_every == alarm_every // 2:
            self.tilted = not self.tilted
            flags = OPEN if self.tilted else 0
            data = cover_payload(
                ALARM, flags, tilt_deg=35.2 if self.tilted else 0.4, water_cm=12, ch4_lel=0.8
            )
        elif tick % 3 == 2:
            data = cover_payload(HEARTBEAT, OPEN if self.tilted else 0, battery_v=3.59)
        else:
            data = cover_payload(REPORT, OPEN if self.tilted else 0, tilt_deg=35.2 if self.tilted else 0.4)
        return chirpstack_up(self.dev_eui, self.f_cnt, data, ts=ts)


@dataclass
class SmokeDetector:
    """A smoke detector: normal, then an alarm, then normal again."""

    imei: str
    states: list[int] = field(default_factory=lambda: [NORMAL, ALIVE, SMOKE, SMOKE, NORMAL, ALIVE])

    def next(self, ts: float, tick: int) -> bytes:
        status = self.states[tick % len(self.states)]
        return smoke_report(self.imei, status, ts=ts, smoke=1.8 if status == SMOKE else 0.05)


async def publish_forever(
    client: aiomqtt.Client,
    *,
    smoke: list[SmokeDetector],
    covers: list[Cover],
    interval_s: float,
    alarm_every: int,
    silent_after: int | None,
) -> None:
    """Publish one message per device every ``interval_s``; covers go silent after ``silent_after`` ticks."""
    tick = 0
    while True:
        ts = time.time()
        for detector in smoke:
            await client.publish(SMOKE_TOPIC, detector.next(ts, tick), qos=1)
        for cover in covers:
            if silent_after is not None and tick >= silent_after:
                if not cover.silent:
                    log.info("cover %s: stops sending (missed heartbeats from now on)", cover.dev_eui)
                cover.silent = True
                continue
            topic, payload = cover.next(ts, tick, alarm_every=alarm_every)
            await client.publish(topic, payload, qos=1)
        tick += 1
        await asyncio.sleep(interval_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--smoke", nargs="*", default=["860374051096202"], help="IMEIs of smoke detectors")
    parser.add_argument("--cover", nargs="*", default=["a84041000181c772"], help="DevEUIs of covers")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between messages")
    parser.add_argument(
        "--alarm-every", type=int, default=12, help="a cover tilts every N messages; 0: never"
    )
    parser.add_argument("--silent-after", type=int, default=None, help="covers stop after N messages")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s platform-devices: %(message)s")

    async def run() -> None:
        async with aiomqtt.Client(args.host, args.port) as client:
            log.info("publishing to %s:%d", args.host, args.port)
            await publish_forever(
                client,
                smoke=[SmokeDetector(i) for i in args.smoke],
                covers=[Cover(e.lower()) for e in args.cover],
                interval_s=args.interval,
                alarm_every=args.alarm_every,
                silent_after=args.silent_after,
            )

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
