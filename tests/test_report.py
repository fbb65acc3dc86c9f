"""``gridgate report``: HTML and PDF with identity, live readings, counters, alarm tests and sign-off."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader

from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.alarm_test import AlarmTestResult, record
from firmware_tools.local_broker import LocalBroker
from gateway.config import parse_config
from tests.conftest import gateway_toml
from tests.helpers import running_gateway
from tests.test_scan import _cabinet, _gridgate

SITE = """
[gateway]
id = "gw-gongshu-042"
site = "Gongshu district, grid 042 (拱墅区)"
grid_cell = "330105002042"
location = {{ lat = 30.319, lon = 120.142, address = "Hushu S Rd 88" }}
[uplink]
host = "cc.example.net"
port = 8883
[uplink.tls]
ca_file = "{ca}"
[[buses]]
id = "rs485-1"
device = "{path}"
[[devices]]
id = "dust-01"
driver = "modbus"
bus = "rs485-1"
unit_id = 1
profile = "dust-monitor"
[[devices]]
id = "manhole-017"
driver = "modbus"
bus = "rs485-1"
unit_id = 11
profile = "manhole-cover"
timeout_s = 0.3
[[devices]]
id = "manhole-005"
driver = "modbus"
bus = "rs485-1"
unit_id = 5
profile = "manhole-cover"
timeout_s = 0.2
"""


async def test_report_in_html_and_pdf_has_what_the_handover_needs(tmp_path: Path) -> None:
    server = _cabinet()
    del server.settings[11]
    path = await server.serve_pty()
    server.devices[11].set("tilt_x", 0.6)
    site = tmp_path / "site.toml"
    (tmp_path / "ca.pem").write_text("CA\n")
    site.write_text(SITE.format(path=path, ca=tmp_path / "ca.pem"))
    tests = tmp_path / "alarm-tests.json"
    record(
        AlarmTestResult(
            gateway="gw-gongshu-042",
            device="manhole-017",
            category="municipal.manhole.tilt",
            started_at="2026-12-02T07:00:00.000Z",
            result="pass",
            detail="manhole-017/tilt_x = 14.6 ° (limit 10.0)",
            event_id="5d0c7a5e-27a4-4c55-9a53-0d8b1a4b2c11",
            raised_at="2026-12-02T07:00:03.120Z",
            received_at="2026-12-02T07:00:03.141Z",
            latency_s=0.021,
            acknowledged_by="li.ming",
            technician="Li Ming",
        ),
        tests,
    )
    photo = tmp_path / "cabinet.png"
    Image.new("RGB", (64, 48), (40, 90, 160)).save(photo)
    html, pdf = tmp_path / "report.html", tmp_path / "report.pdf"
    try:
        status, out, err = await _gridgate(
            "report",
            "--config",
            str(site),
            "--technician",
            "Li Ming",
            "--alarm-tests",
            str(tests),
            "--html",
            str(html),
            "--pdf",
            str(pdf),
            "--photo",
            f"Cabinet, closed={photo}",
        )
    finally:
        await server.stop()
    assert status == 0, err
    assert "3 device(s), 1 alarm test(s)" in out and "not read: manhole-005" in out

    page = html.read_text()
    for expected in (
        "gw-gongshu-042",
        "330105002042",
        "Hushu S Rd 88",
        "拱墅区",
        "dust-monitor",
        "0.6 °",
        "PASS",
    ):
        assert expected in page, expected
    assert "data:image/png;base64," in page and "Photo" not in page.split("<h2>Photos</h2>")[0]

    text = "\n".join(p.extract_text() for p in PdfReader(pdf).pages)
    for expected in (
        "Commissioning report",
        "gw-gongshu-042",
        "330105002042",
        "30.31900, 120.14200",
        "dust-01",
        "manhole-017",
        f"{path} unit 11",
        "tilt_x",
        "0.6 °",
        "requests 1, ok 1",
        "PASS",
        "0.02 s",
        "Li Ming",
        "signature",
        "Photo: Cabinet, closed",
        "Photo: Device manhole-005",
        "no answer",
    ):
        assert expected in text, expected
    digest = page.split("digest ")[1][:16]
    assert f"Config digest {digest}" in text


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")
def test_the_pdf_renders_to_pages(tmp_path: Path) -> None:
    """The PDF is valid for a common renderer too, not only for the reader that checks its text."""
    from firmware_tools.report_data import Commissioning
    from firmware_tools.report_pdf import render_pdf
    from gateway.config import parse_config

    config = parse_config(SITE.format(path="/dev/ttyUSB0", ca="/etc/gridgate/ca.pem"), check_files=False)
    report = Commissioning("site.toml", config, "0123456789abcdef", "Li Ming", "2026-12-02T07:00:00Z", [], [])
    render_pdf(report, tmp_path / "r.pdf")
    subprocess.run(
        ["pdftoppm", "-png", "-r", "40", str(tmp_path / "r.pdf"), str(tmp_path / "page")], check=True
    )
    assert list(tmp_path.glob("page*.png"))


async def test_with_the_gateway_running_the_readings_come_from_the_broker(
    broker: LocalBroker, dust_monitor: SimulatedModbusDevice, topic_prefix: str, tmp_path: Path
) -> None:
    text = gateway_toml(
        broker_port=broker.port,
        modbus_port=dust_monitor.port,
        storage=tmp_path / "state",
        prefix=topic_prefix,
    )
    site = tmp_path / "site.toml"
    site.write_text(text)
    dust_monitor.set("pm10", 87.25)
    html = tmp_path / "r.html"
    async with running_gateway(parse_config(text)):
        status, out, err = await _gridgate(
            "report",
            "--config",
            str(site),
            "--technician",
            "Li Ming",
            "--from-broker",
            "--listen-s",
            "10",
            "--html",
            str(html),
            "--pdf",
            str(tmp_path / "r.pdf"),
            "--alarm-tests",
            str(tmp_path / "none.json"),
        )
    assert status == 0, err
    assert "not read" not in out and "no alarm tests" in out
    page = html.read_text()
    assert "<td>pm10</td><td>87.25 µg/m³</td>" in page
