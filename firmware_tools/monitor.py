"""``gridgate monitor``: what the command center sees, as a live board.

Gateways online/offline (retained state), their devices (last telemetry and
wire counters), and open events by severity with their acknowledgement state:
the gateways' retained ``open_events`` lists show what was open before the
monitor joined. Technicians run it on site to check what the command center
will see. A broker that cannot be reached at the start is an error; one lost
later is retried, and the board says so.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from dataclasses import dataclass, field

import aiomqtt

from firmware_tools.board import Board
from firmware_tools.broker_target import BrokerTarget, explain_failure

CLEAR_SCREEN = "\033[H\033[2J"
TOPICS = ("state", "health", "events", "open_events", "telemetry/+", "devices/+/status")


class BrokerUnavailable(Exception):
    """The first connection failed; the message says why, for a technician."""


@dataclass
class Link:
    """Whether the monitor hears the broker now, and why not."""

    up: bool = False
    problem: str = ""
    first: asyncio.Event = field(default_factory=asyncio.Event)  # set once subscribed


async def follow(target: BrokerTarget, board: Board, link: Link | None = None) -> None:
    """Keep ``board`` up to date until cancelled; raise BrokerUnavailable if the first connect fails."""
    link = link if link is not None else Link()
    connected_once = False
    while True:
        try:
            async with target.client() as client:
                for kind in TOPICS:
                    await client.subscribe(f"{target.prefix}/+/{kind}", qos=1)
                connected_once, link.up, link.problem = True, True, ""
                link.first.set()
                async for message in client.messages:
                    try:
                        payload = json.loads(bytes(message.payload))
                    except (ValueError, TypeError):
                        continue
                    if isinstance(payload, dict):
                        board.apply(str(message.topic), payload)
        except aiomqtt.MqttError as exc:
            link.up, link.problem = False, explain_failure(exc, target)
            if not connected_once:
                raise BrokerUnavailable(link.problem) from exc
            await asyncio.sleep(1.0)


async def monitor(
    target: BrokerTarget,
    *,
    refresh_s: float = 1.0,
    duration_s: float = 0,
    color: bool = True,
) -> Board:
    """Redraw the board every ``refresh_s`` until cancelled (or for ``duration_s``).

    On a terminal the board fills the window (80×24 at the least it fits);
    otherwise it is printed whole, without colours, at each refresh.
    """
    board, link = Board(), Link()
    following = asyncio.create_task(follow(target, board, link), name="monitor-follow")
    try:
        subscribed = asyncio.create_task(link.first.wait(), name="monitor-subscribed")
        await asyncio.wait([following, subscribed], return_when=asyncio.FIRST_COMPLETED)
        subscribed.cancel()
        await asyncio.gather(subscribed, return_exceptions=True)
        if following.done():
            following.result()  # the first connection failed: say why
        started = time.monotonic()
        while duration_s <= 0 or time.monotonic() - started < duration_s:
            done, _ = await asyncio.wait([following], timeout=refresh_s)
            if done:
                following.result()  # the first connection failed: say why
            size = shutil.get_terminal_size((80, 24))
            state = "" if link.up else f"  BROKER LOST: {link.problem}; retrying"
            header = f"{target.prefix} on {target.where()}  {time.strftime('%H:%M:%S')}{state}"[
                : size.columns
            ]
            text = board.render(color=color, width=size.columns, height=size.lines - 1 if color else 0)
            print((CLEAR_SCREEN if color else "") + header + "\n" + text, flush=True)
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
    return board
