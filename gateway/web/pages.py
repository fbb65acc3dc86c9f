"""The status page's HTML: small, phone-first, no external assets; every value escaped.

Each page is a shell (header, navigation) around a ``<main>`` whose content the
live stream replaces as the gateway changes, so the page stays current
without a reload.
"""

from __future__ import annotations

from html import escape
from typing import Any

from gateway.web.view import GatewayView


def shell(title: str, view: GatewayView, content: str, *, user: str | None, csrf: str | None) -> str:
    gateway = view.config.gateway
    account = (
        f'<form class="inline" method="post" action="/logout"><input type="hidden" name="csrf" '
        f'value="{escape(csrf or "")}"><button>log out {escape(user)}</button></form>'
        if user
        else '<a href="/login">log in</a>'
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)} · {escape(gateway.id)}</title>"
        f'<link rel="stylesheet" href="/static/style.css"></head><body><header><b>{escape(gateway.id)}</b>'
        f'<span class="sub">{escape(gateway.site)} · grid {escape(gateway.grid_cell)}</span>'
        '<nav><a href="/">gateway</a><a href="/events">events</a><a href="/log">log</a>'
        f"{account}</nav></header><main>{content}</main>"
        '<script src="/static/app.js"></script></body></html>'
    )


def overview(view: GatewayView) -> str:
    info = view.gateway()
    uplink, outbox, disk = info["uplink"], info["outbox"], info["disk"]
    state = "online" if uplink["connected"] else "offline"
    devices = view.devices()
    rows = "".join(_device_row(d) for d in devices)
    events = view.open_events()
    versions = ", ".join(f"{k} {escape(v)}" for k, v in info["versions"].items())
    return (
        "<section><h2>Gateway</h2><dl>"
        f'<dt>uplink</dt><dd class="{state}">{"connected" if uplink["connected"] else "not connected"} '
        f"to {escape(uplink['broker'])}{' (TLS)' if uplink['tls'] else ''}, "
        f"MQTT {escape(uplink['protocol'])}</dd>"
        f"<dt>buffer</dt><dd>{outbox['pending']} message(s) waiting, {_mb(outbox['bytes'])} of "
        f"{_mb(outbox['max_bytes'])}</dd>"
        f"<dt>disk free</dt><dd>{_mb(disk['free_bytes'])} of {_mb(disk['total_bytes'])}</dd>"
        f'<dt>open events</dt><dd><a href="/events">{len(events)}</a></dd>'
        f"<dt>up</dt><dd>{_duration(info['uptime_s'])}</dd>"
        f'<dt>versions</dt><dd class="muted">{versions}</dd></dl></section>'
        f"<section><h2>Devices ({len(devices)})</h2><table><tr><th>device</th><th>state</th>"
        f'<th class="wide">driver</th><th>last reading</th></tr>{rows}</table></section>'
    )


def device_page(view: GatewayView, device: dict[str, Any]) -> str:
    values = "".join(
        f"<tr><td>{escape(v['channel'])}</td><td class=num>{_value(v['value'])}</td>"
        f"<td>{escape(v['unit'])}</td>"
        f"<td class=muted>{'' if v['quality'] == 'ok' else escape(v['quality'])}</td></tr>"
        for v in device["values"]
    )
    if device["pushed"]:
        comms = (
            f"<dt>driver</dt><dd>{escape(device['driver'])} (the device sends its data)</dd>"
            f"<dt>last frame</dt><dd>{_age(device['read_age_s'])} "
        )
    else:
        comms = (
            f"<dt>driver</dt><dd>{escape(device['driver'])}</dd>"
            f"<dt>since</dt><dd>{escape(device['since'])} {escape(device['reason'])}</dd>"
            f"<dt>polls</dt><dd>{device['polls']} ({device['failures']} failed)</dd>"
            f"<dt>last reading</dt><dd>{_age(device['read_age_s'])} "
        )
    return (
        f"<section><h2>{escape(device['id'])} {_state(device)}</h2><dl>{comms}"
        f"<span class=muted>{escape(device['read_at'] or '')}</span></dd></dl></section>"
        "<section><h2>Live values</h2><table><tr><th>channel</th><th class=num>value</th>"
        f"<th>unit</th><th></th></tr>{values or _NO_READING}</table></section>"
    )


def events_page(view: GatewayView, *, csrf: str | None) -> str:
    items = []
    for event in view.open_events():
        acked = event.get("acknowledged_by")
        if acked:
            action = f"acknowledged by {escape(str(acked))}"
        elif csrf:
            action = (
                f'<form class="inline" method="post" action="/events/{escape(event["event_id"])}/ack">'
                f'<input type="hidden" name="csrf" value="{escape(csrf)}"><button>acknowledge</button></form>'
            )
        else:
            action = '<a href="/login">log in to acknowledge</a>'
        value = (
            ""
            if event.get("value") is None
            else f" {_value(event['value'])} {escape(event.get('unit') or '')}"
        )
        items.append(
            f'<tr><td class="{escape(event["severity"])}">{escape(event["severity"])}</td>'
            f"<td>{escape(event['category'])}<br><span class=muted>{escape(event['device'])}"
            f"{'/' + escape(event['channel']) if event.get('channel') else ''}{value}</span></td>"
            f'<td class="wide muted">{escape(event["raised_at"])}</td><td>{action}</td></tr>'
        )
    rows = "".join(items) or "<tr><td colspan=4 class=muted>no open events</td></tr>"
    return (
        f"<section><h2>Open events ({len(items)})</h2><table><tr><th>severity</th><th>what</th>"
        f'<th class="wide">raised</th><th></th></tr>{rows}</table></section>'
    )


def log_page(view: GatewayView) -> str:
    lines = "\n".join(
        f"{escape(line['ts'])} {escape(line['level'])} {escape(line['message'])}" for line in view.log.lines
    )
    return f'<section><h2>Recent log</h2><div class="log">{lines or "nothing logged yet"}</div></section>'


def login_page(*, error: str = "", next_page: str = "/") -> str:
    return (
        "<section><h2>Log in</h2>"
        f"{f'<p class=error>{escape(error)}</p>' if error else ''}"
        '<form method="post" action="/login"><p><label>user<br><input name="user" autocomplete="username" '
        'required></label></p><p><label>password<br><input name="password" type="password" '
        f'autocomplete="current-password" required></label></p><input type="hidden" name="next" '
        f'value="{escape(next_page)}"><button>log in</button></form></section>'
    )


_NO_READING = "<tr><td colspan=4 class=muted>no reading yet</td></tr>"


def _device_row(device: dict[str, Any]) -> str:
    return (
        f'<tr><td><a href="/devices/{escape(device["id"])}">{escape(device["id"])}</a></td>'
        f"<td>{_state(device)}</td>"
        f'<td class="wide">{escape(device["driver"])}</td>'
        f'<td class="muted">{_age(device["read_age_s"])}</td></tr>'
    )


def _state(device: dict[str, Any]) -> str:
    """The device's availability; a pushed one (judged by its heartbeat) says so."""
    state = f'<span class="{escape(device["state"])}">{escape(device["state"])}</span>'
    return state + (' <span class="muted">pushed</span>' if device["pushed"] else "")


def _value(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"


def _mb(count: int) -> str:
    return f"{count / 1e9:,.1f} GB" if count >= 1e9 else f"{count / 1e6:,.1f} MB"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "not yet"
    return f"{seconds:.1f} s ago" if seconds < 60 else f"{_duration(seconds)} ago"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return (
        f"{days} d {hours} h" if days else f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s"
    )
