"""A command-center consumer that scales out: N members share the gateways, each gateway has one owner.

``python -m firmware_tools.cc_consumer --broker 10.0.0.5:1883 --member cc-2 --members cc-1,cc-2,cc-3``

Why not ``$share/...``: a shared subscription hands each *message* to one
member, round robin on Mosquitto, so one event's ``raised`` and ``cleared``
reach different members, which then disagree about whether it is open; and
some clusterable brokers accept ``$share`` and deliver nothing. Here instead
every gateway has one owner, chosen by rendezvous hashing of its id over the
members' names: every member computes the same owner without talking to the
others, and adding or removing a member moves only the gateways that member
gains or loses (1/N of them).

- Events, open events and state are few: every member subscribes to them for
  all gateways (``{prefix}/+/events``) and handles only its own gateways'
  ones, so a gateway seen for the first time loses nothing while its owner
  would still be subscribing.
- Telemetry is the bulk: each member subscribes to its own gateways' only
  (``{prefix}/{gateway}/telemetry/+``), learning them from the retained
  ``state`` topics.
- Delivery is at least once; a member drops what it has handled already by
  ``(gateway, seq)``: a re-delivery has the same seq (and an event the same
  ``event_id`` and ``state``). A retained message handled live is dropped too
  when it comes again on a new subscription.

Every member keeps a persistent session (client id ``cc-{member}``), so a
member that restarts gets what arrived meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import sys
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import aiomqtt

from gateway.config.servers import split_server

ALL_GATEWAYS = ("state", "events", "open_events")
Handler = Callable[[str, str, dict[str, Any]], None]  # gateway id, topic kind, payload


def owner(gateway_id: str, members: Sequence[str]) -> str:
    """The member that handles ``gateway_id``: highest hash of (member, gateway) wins."""
    return max(members, key=lambda m: hashlib.sha256(f"{m}\0{gateway_id}".encode()).digest())


class RecentSeqs:
    """The last ``size`` seqs handled from one gateway.

    A re-delivery is a message the broker had not acknowledged before a
    connection ended, or that a restarted gateway sends again: it arrives
    soon after the original, with few messages of that gateway between.
    """

    def __init__(self, size: int = 4096) -> None:
        self._order: deque[int] = deque(maxlen=size)
        self._seen: set[int] = set()

    def first_time(self, seq: int) -> bool:
        if seq in self._seen:
            return False
        if len(self._order) == self._order.maxlen:
            self._seen.discard(self._order[0])
        self._order.append(seq)
        self._seen.add(seq)
        return True


class GroupMember:
    """One member of the consumer group; ``handle`` gets each of its gateways' messages once."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        prefix: str,
        member: str,
        members: Sequence[str],
        handle: Handler,
        telemetry: bool = True,
    ) -> None:
        if member not in members:
            raise ValueError(f"member {member!r} is not in members {list(members)}")
        self.member = member
        self.members = list(members)
        self._host, self._port, self._prefix = host, port, prefix
        self._handle = handle
        self._telemetry = telemetry
        self._seen: dict[str, RecentSeqs] = {}
        self._telemetry_of: set[str] = set()
        self.duplicates = 0
        self.subscribed = asyncio.Event()

    def owns(self, gateway_id: str) -> bool:
        return owner(gateway_id, self.members) == self.member

    async def run(self) -> None:
        """Consume until cancelled, reconnecting with the same session."""
        client = aiomqtt.Client(
            self._host, self._port, identifier=f"cc-{self.member}", clean_session=False, keepalive=30
        )
        while True:
            try:
                async with client:
                    for kind in ALL_GATEWAYS:
                        await client.subscribe(f"{self._prefix}/+/{kind}", qos=1)
                    for gateway_id in self._telemetry_of:
                        await client.subscribe(f"{self._prefix}/{gateway_id}/telemetry/+", qos=1)
                    self.subscribed.set()
                    async for message in client.messages:
                        await self._receive(client, message)
            except aiomqtt.MqttError:
                self.subscribed.clear()
                await asyncio.sleep(1.0)

    async def _receive(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        relative = str(message.topic)[len(self._prefix) + 1 :]
        gateway_id, _, kind = relative.partition("/")
        if not self.owns(gateway_id):
            return
        try:
            payload = json.loads(message.payload)
        except (TypeError, ValueError):
            return
        if not isinstance(payload, dict) or not isinstance(payload.get("seq"), int):
            return
        if self._telemetry and gateway_id not in self._telemetry_of:
            self._telemetry_of.add(gateway_id)
            await client.subscribe(f"{self._prefix}/{gateway_id}/telemetry/+", qos=1)
        if not self._seen.setdefault(gateway_id, RecentSeqs()).first_time(payload["seq"]):
            self.duplicates += 1
            return
        self._handle(gateway_id, kind, payload)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", default="127.0.0.1:1883", help="host:port")
    parser.add_argument("--prefix", default="gridgate/v1")
    parser.add_argument("--member", required=True, help="this member's name, one of --members")
    parser.add_argument("--members", required=True, help="every member's name, comma-separated")
    args = parser.parse_args(argv)
    host, port = split_server(args.broker)

    def show(gateway_id: str, kind: str, payload: dict[str, Any]) -> None:
        print(json.dumps({"gateway": gateway_id, "topic": kind, **payload}, ensure_ascii=False), flush=True)

    try:
        member = GroupMember(
            host=host, port=port, prefix=args.prefix, member=args.member,
            members=args.members.split(","), handle=show,
        )  # fmt: skip
    except ValueError as exc:
        print(f"cc_consumer: {exc}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(member.run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
