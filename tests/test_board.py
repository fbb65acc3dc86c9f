"""The monitor's board fits a laptop's terminal over SSH: 80×24, with labels."""

from __future__ import annotations

from firmware_tools.board import Board


def _busy_board() -> Board:
    board = Board()
    board.apply(
        "gridgate/v1/gw-gongshu-042/state",
        {"state": "online", "grid_cell": "330105002042", "site": "Gongshu district, grid 042 (a long name)"},
    )
    board.apply(
        "gridgate/v1/gw-gongshu-042/health",
        {"devices": {"online": 4, "offline": 1}, "outbox": {"pending": 3}, "process": {"rss_mb": 248.7}},
    )
    for n in range(12):
        board.apply(
            f"gridgate/v1/gw-gongshu-042/telemetry/manhole-{n:03d}",
            {
                "ts": "2026-11-22T08:00:15.004Z",
                "readings": {"tilt_x": 0.6, "tilt_y": 1.2, "ch4": 3.5, "h2s": 0.1},
            },
        )
    for n in range(9):
        event = {
            "event_id": f"5d0c7a5e-27a4-4c55-9a53-0d8b1a4b2c{n:02d}",
            "state": "raised",
            "severity": "urgent" if n % 2 else "important",
            "category": "municipal.manhole.tilt",
            "device": f"manhole-{n:03d}",
            "channel": "tilt_x",
            "unit": "°",
            "peak": 16.2,
            "limit": 10.0,
            "raised_at": f"2026-11-22T08:0{n}:00.000Z",
            "ts": "2026-11-22T08:00:00.000Z",
        }
        board.apply("gridgate/v1/gw-gongshu-042/events", event)
    return board


def test_a_busy_board_fits_80_by_24_and_says_what_it_left_out() -> None:
    text = _busy_board().render(color=False, width=80, height=23)  # one row for the header
    lines = text.splitlines()
    assert len(lines) <= 23
    assert all(len(line) <= 80 for line in lines)
    assert "RSS 248.7 MB" in text and "queue 3" in text and "devices 4 up 1 down" in text
    assert "OPEN EVENTS (9)" in text and "more event(s)" in text and "more device(s)" in text
    assert lines.index("OPEN EVENTS (9)") < lines.index("DEVICES (12)")
    assert text.count("URGENT") >= 3  # most severe first


def test_colours_do_not_count_against_the_width() -> None:
    for line in _busy_board().render(color=True, width=80, height=23).splitlines():
        visible = line
        for code in ("\033[31m", "\033[32m", "\033[2m", "\033[1m", "\033[0m"):
            visible = visible.replace(code, "")
        assert len(visible) <= 80


def test_a_retained_open_events_list_replaces_what_the_board_knew_of_that_gateway() -> None:
    board = _busy_board()
    board.apply(
        "gridgate/v1/gw-gongshu-042/open_events",
        {"count": 1, "events": [{"event_id": "e-1", "severity": "urgent", "device": "manhole-001"}]},
    )
    assert list(board.events) == ["e-1"] and board.events["e-1"]["gateway"] == "gw-gongshu-042"
