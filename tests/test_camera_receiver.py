"""The camera receiver against the camera simulator: formats, auth, limits, pictures, heartbeats."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from contracts.evidence import Credentials, HttpAuth
from contracts.readings import ReadingBatch
from drivers.camera.config import CameraDeviceConfig, CameraReceiver
from drivers.camera.events import PushRejected, decode
from drivers.camera.receiver import CameraStream
from drivers.simulators.camera import CameraSimulator, dahua_event, hikvision_alert, webhook_event
from drivers.simulators.jpeg import jpeg
from firmware_tools.local_broker import free_port

DATA = Path(__file__).parent / "data" / "camera"


def test_fixtures_decode_to_their_channels() -> None:
    vmd = decode("hikvision", (DATA / "hikvision_vmd_active.xml").read_bytes())
    assert (vmd.channel, vmd.value, vmd.video_channel) == ("motion", 1.0, "1")
    assert vmd.ts == datetime.fromisoformat("2026-11-22T16:00:15+08:00").timestamp()
    line = decode("hikvision", (DATA / "hikvision_linedetection.xml").read_bytes())
    assert (line.channel, line.value) == ("line_crossing", 1.0)
    heartbeat = decode("hikvision", (DATA / "hikvision_videoloss_heartbeat.xml").read_bytes())
    assert (heartbeat.channel, heartbeat.value) == ("video_loss", 0.0)
    dahua = decode("dahua", (DATA / "dahua_videomotion.txt").read_bytes(), now=100.0)
    assert (dahua.channel, dahua.value, dahua.ts) == ("motion", 1.0, 100.0)
    hook = decode("json", (DATA / "webhook_intrusion.json").read_bytes())
    assert (hook.channel, hook.video_channel) == ("intrusion", "2")


@pytest.mark.parametrize(
    ("kind", "body", "reason"),
    [
        ("hikvision", b"<EventNotificationAlert><eventType>VMD", "does not parse"),
        ("hikvision", b"<Other/>", "expected an EventNotificationAlert"),
        ("hikvision", b'<!DOCTYPE x [<!ENTITY a "b">]><EventNotificationAlert/>', "DOCTYPE"),
        (
            "hikvision",
            b"<EventNotificationAlert><eventType>smoke</eventType></EventNotificationAlert>",
            "unknown event type",
        ),
        ("dahua", b"hello", "Dahua event line"),
        ("json", b"[1]", '"event"'),
        ("json", b'{"event": "motion", "state": "maybe"}', "unknown event state"),
    ],
)
def test_bad_pushes_say_why(kind: str, body: bytes, reason: str) -> None:
    with pytest.raises(PushRejected, match=reason):
        decode(kind, body)


def _camera(tmp_path: Path, id: str = "cam-01", **kwargs: object) -> CameraDeviceConfig:
    return CameraDeviceConfig.model_validate({"id": id, "driver": "camera", **kwargs})


@pytest.fixture
async def camera() -> AsyncIterator[CameraSimulator]:
    async with CameraSimulator() as sim:
        yield sim


async def _receiving(stream: CameraStream, batches: list[ReadingBatch]) -> asyncio.Task[None]:
    await stream.open()
    task = asyncio.create_task(stream.run(batches.append))
    await asyncio.sleep(0)
    return task


async def _stop(stream: CameraStream, task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await stream.aclose()


async def test_pushes_in_each_format_become_channel_values(tmp_path: Path, camera: CameraSimulator) -> None:
    cams = [
        _camera(tmp_path, "cam-hik"),
        _camera(tmp_path, "cam-dh", format="dahua"),
        _camera(tmp_path, "cam-js", format="json"),
    ]
    stream = CameraStream(cams, receiver=CameraReceiver(host="127.0.0.1", port=free_port()))
    batches: list[ReadingBatch] = []
    pictures: list[tuple[str, bytes]] = []
    stream.picture = lambda device, ts, data: pictures.append((device, data))
    task = await _receiving(stream, batches)
    base = f"http://127.0.0.1:{stream.port}/cameras"
    try:
        picture = jpeg(seed=7)
        assert (await camera.push(f"{base}/cam-hik", hikvision_alert("line_crossing"), picture=picture))[
            0
        ] == 200
        assert (await camera.push(f"{base}/cam-dh", dahua_event("tamper"), content_type="text/plain"))[
            0
        ] == 200
        assert (
            await camera.push(f"{base}/cam-js", webhook_event("intrusion"), content_type="application/json")
        )[0] == 200
        assert (await camera.push(f"{base}/cam-hik", hikvision_alert("line_crossing", active=False)))[
            0
        ] == 200
    finally:
        await _stop(stream, task)
    got = [(b.device, b.channels[0], float(b.values[0])) for b in batches]
    assert got == [
        ("cam-hik", "line_crossing", 1.0),
        ("cam-dh", "tamper", 1.0),
        ("cam-js", "intrusion", 1.0),
        ("cam-hik", "line_crossing", 0.0),
    ]
    assert pictures == [("cam-hik", picture)]
    assert stream.status_fields("cam-hik") == {"counters": {"pushes": 2, "rejected": 0, "pictures": 1}}


async def test_auth_limits_and_bad_pushes_answer_4xx_while_others_flow(
    tmp_path: Path, camera: CameraSimulator
) -> None:
    secret = tmp_path / "push.pw"
    secret.write_text("s3cret\n")
    digest = _camera(
        tmp_path, "cam-d", push_auth=Credentials(auth=HttpAuth.DIGEST, username="cam", password_file=secret)
    )
    basic = _camera(
        tmp_path, "cam-b", push_auth=Credentials(auth=HttpAuth.BASIC, username="cam", password_file=secret)
    )
    stream = CameraStream(
        [digest, basic],
        receiver=CameraReceiver(
            host="127.0.0.1", port=free_port(), max_body_bytes=8192, rate_per_s=5, burst=8
        ),
    )
    batches: list[ReadingBatch] = []
    task = await _receiving(stream, batches)
    base = f"http://127.0.0.1:{stream.port}/cameras"
    alert = hikvision_alert("motion")
    try:
        assert (await camera.push(f"{base}/cam-d", alert))[0] == 401
        assert (await camera.push(f"{base}/cam-d", alert, login=("cam", "wrong"), digest=True))[0] == 401
        assert (await camera.push(f"{base}/cam-d", alert, login=("cam", "s3cret"), digest=True))[0] == 200
        assert (await camera.push(f"{base}/cam-b", alert, login=("cam", "s3cret")))[0] == 200
        status, reason = await camera.push(
            f"{base}/cam-b", alert, picture=jpeg(1024, 1024), login=("cam", "s3cret")
        )
        assert status == 413 and "at most 8192" in reason
        status, reason = await camera.push(f"{base}/cam-b", b"<nope", login=("cam", "s3cret"))
        assert status == 400 and "does not parse" in reason
        assert (await camera.push(f"{base}/nobody", alert))[0] == 404
        statuses = [
            (await camera.push(f"{base}/cam-b", alert, login=("cam", "s3cret")))[0] for _ in range(10)
        ]
        assert statuses[-1] == 429
        await asyncio.sleep(0.3)  # the bucket refills at rate_per_s
        assert (await camera.push(f"{base}/cam-b", alert, login=("cam", "s3cret")))[0] == 200
    finally:
        await _stop(stream, task)
    assert [b.device for b in batches][:2] == ["cam-d", "cam-b"]
    assert stream.last_rejected["cam-b"].startswith("event XML does not parse")


async def test_heartbeat_counts_as_seen_and_active_falls_back(
    tmp_path: Path, camera: CameraSimulator
) -> None:
    cam = _camera(tmp_path, "cam-01", format="json", release_after_s=0.2, channels=[{"id": "motion"}])
    stream = CameraStream([cam], receiver=CameraReceiver(host="127.0.0.1", port=free_port()))
    seen: list[str] = []
    stream.seen = lambda device, ts: seen.append(device)
    batches: list[ReadingBatch] = []
    task = await _receiving(stream, batches)
    url = f"http://127.0.0.1:{stream.port}/cameras/cam-01"
    try:
        await camera.push(url, webhook_event("heartbeat"), content_type="application/json")
        await camera.push(
            url, webhook_event("tamper"), content_type="application/json"
        )  # not a channel of it
        await camera.push(url, webhook_event("motion"), content_type="application/json")
        await asyncio.sleep(0.4)
    finally:
        await _stop(stream, task)
    assert seen == ["cam-01", "cam-01"]
    assert [float(b.values[0]) for b in batches] == [1.0, 0.0]


def test_camera_config_names_unknown_channels(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown camera channel"):
        _camera(tmp_path, channels=[{"id": "smoke"}])


def test_a_camera_without_the_receiver_section_is_reported_with_its_path() -> None:
    from contracts.errors import ConfigError
    from gateway.config import parse_config

    text = """
[gateway]
id = "gw-1"
site = "s"
grid_cell = "330106001001"
[uplink]
host = "127.0.0.1"
[[devices]]
id = "cam-01"
driver = "camera"
"""
    with pytest.raises(ConfigError, match=r"devices\[0\]: a camera pushes its alarms over HTTP"):
        parse_config(text)


async def test_an_nvr_pushing_for_its_cameras_is_mapped_by_input_to_each_camera(
    tmp_path: Path, camera: CameraSimulator
) -> None:
    nvr = _camera(tmp_path, "nvr-01", channels=[{"id": "video_loss"}])
    gate = _camera(tmp_path, "cam-gate", nvr="nvr-01", nvr_channel="1")
    yard = _camera(tmp_path, "cam-yard", nvr="nvr-01", nvr_channel="2", channels=[{"id": "intrusion"}])
    dahua_nvr = _camera(tmp_path, "nvr-02", format="dahua")
    lane = _camera(tmp_path, "cam-lane", format="dahua", nvr="nvr-02", nvr_channel="0")
    stream = CameraStream(
        [nvr, gate, yard, dahua_nvr, lane], receiver=CameraReceiver(host="127.0.0.1", port=free_port())
    )
    batches: list[ReadingBatch] = []
    seen: list[str] = []
    pictures: list[str] = []
    stream.seen = lambda device, ts: seen.append(device)
    stream.picture = lambda device, ts, data: pictures.append(device)
    task = await _receiving(stream, batches)
    base = f"http://127.0.0.1:{stream.port}/cameras"
    try:
        await camera.push(f"{base}/nvr-01", hikvision_alert("intrusion", channel=2), picture=jpeg(seed=3))
        await camera.push(f"{base}/nvr-01", hikvision_alert("line_crossing", channel=1))
        await camera.push(f"{base}/nvr-01", hikvision_alert("video_loss", active=False, channel=9))
        await camera.push(f"{base}/nvr-02", dahua_event("motion", index=0), content_type="text/plain")
    finally:
        await _stop(stream, task)
    got = [(b.device, b.channels[0], float(b.values[0])) for b in batches]
    assert got == [
        ("cam-yard", "intrusion", 1.0),
        ("cam-gate", "line_crossing", 1.0),
        ("nvr-01", "video_loss", 0.0),  # an input no camera is configured for: the NVR's own
        ("cam-lane", "motion", 1.0),
    ]
    assert pictures == ["cam-yard"]
    assert seen.count("nvr-01") == 2 and {"cam-gate", "cam-yard"} <= set(seen)
    assert stream.status_fields("cam-yard")["counters"]["pushes"] == 1


def test_a_camera_behind_an_nvr_names_one_and_an_input_no_other_camera_has() -> None:
    from contracts.errors import ConfigError
    from gateway.config import parse_config

    text = """
[gateway]
id = "gw-1"
site = "s"
grid_cell = "c1"
location = { lat = 30.0, lon = 120.0, address = "a" }
[uplink]
host = "127.0.0.1"
[storage]
directory = "/tmp/x"
[cameras]
port = 8090
[[devices]]
id = "nvr-01"
driver = "camera"
[[devices]]
id = "cam-a"
driver = "camera"
nvr = "nvr-01"
nvr_channel = "1"
[[devices]]
id = "cam-b"
driver = "camera"
nvr = "nvr-01"
nvr_channel = "1"
[[devices]]
id = "cam-c"
driver = "camera"
nvr = "nvr-09"
nvr_channel = "2"
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.problems == [
        "devices[2].nvr_channel: input 1 of 'nvr-01' is already camera 'cam-a'",
        "devices[3].nvr: no other camera device 'nvr-09' (cameras: cam-a, cam-b, cam-c, nvr-01)",
    ]
    with pytest.raises(ValueError, match="give both"):
        CameraDeviceConfig.model_validate({"id": "x", "driver": "camera", "nvr": "nvr-01"})
