"""The commissioning report as one self-contained HTML page (photos embedded), fit to print."""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Sequence
from html import escape

from firmware_tools.report_data import Commissioning, counters_text, gateway_rows, reading_rows

_STYLE = """
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 10pt; margin: 2em; color: #111; }
h1 { font-size: 16pt; } h2 { font-size: 12pt; border-bottom: 1px solid #888; margin-top: 1.5em; }
table { border-collapse: collapse; width: 100%; margin: 0.5em 0; }
th, td { border: 1px solid #aaa; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #eee; } .bad { color: #b00; font-weight: bold; } .pass { color: #070; font-weight: bold; }
.photos { display: flex; flex-wrap: wrap; gap: 1em; }
.photo { width: 45%; height: 6cm; border: 1px dashed #888; display: flex; flex-direction: column;
  justify-content: flex-end; padding: 4px; page-break-inside: avoid; }
.photo img { max-width: 100%; max-height: 5cm; } .sign td { height: 2.5em; }
"""


def render_html(report: Commissioning) -> str:
    """The whole report; every value from the config or the wire is escaped."""
    gw = report.config.gateway
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Commissioning report {escape(gw.id)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Commissioning report — gateway {escape(gw.id)}</h1>",
        "<h2>Gateway</h2>",
        _table(
            ["", ""],
            gateway_rows(report),
            header=False,
        ),
        f"<h2>Devices ({len(report.devices)})</h2>",
    ]
    for entry in report.devices:
        parts.append(f"<h3>{escape(entry.id)}</h3>")
        parts.append(
            _table(
                ["driver", "profile", "address", "comms counters"],
                [(entry.driver, entry.profile, entry.where, counters_text(entry))],
            )
        )
        rows = reading_rows(entry)
        if rows:
            parts.append(_table(["channel", "live reading", "check"], rows, flag_column=2))
        if entry.note:
            parts.append(f"<p class='bad'>{escape(entry.note)}</p>")
    parts.append(f"<h2>Alarm tests ({len(report.alarm_tests)})</h2>")
    tests = [
        (
            t.device,
            t.category or "",
            t.raised_at or t.started_at,
            t.result.upper(),
            "" if t.latency_s is None else f"{t.latency_s:.2f} s",
            t.detail,
            t.acknowledged_by or "",
            t.cleared_at or "",
        )
        for t in report.alarm_tests
    ]
    parts.append(
        _table(
            ["device", "category", "time", "result", "to broker", "detail", "ack", "cleared"],
            tests,
            flag_column=3,
        )
        if tests
        else "<p class='bad'>No alarm was tested.</p>"
    )
    parts.append("<h2>Photos</h2><div class='photos'>")
    for label, path in report.photos:
        image = ""
        if path is not None:
            kind = mimetypes.guess_type(str(path))[0] or "image/jpeg"
            data = base64.b64encode(path.read_bytes()).decode()
            image = f"<img src='data:{kind};base64,{data}' alt='{escape(label)}'>"
        parts.append(f"<div class='photo'>{image}<span>{escape(label)}</span></div>")
    parts.append("</div><h2>Sign-off</h2>")
    parts.append(
        _table(
            ["", "name", "signature", "date"],
            [("Technician", report.technician, "", ""), ("Accepted for the site", "", "", "")],
            css="sign",
        )
    )
    parts.append(f"<p>Config digest {escape(report.digest)}</p></body></html>")
    return "\n".join(parts)


def _table(
    head: list[str],
    rows: Sequence[tuple[str, ...]],
    *,
    header: bool = True,
    flag_column: int | None = None,
    css: str = "",
) -> str:
    out = [f"<table class='{css}'>" if css else "<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>")
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            tag = "th" if not header and i == 0 else "td"
            flag = ""
            if i == flag_column:
                flag = (
                    " class='pass'" if cell == "PASS" else (" class='bad'" if cell and cell != "ok" else "")
                )
            cells.append(f"<{tag}{flag}>{escape(str(cell))}</{tag}>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "".join(out)
