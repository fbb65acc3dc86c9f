"""Maintainers' side of config bundles: make and sign one, push it, watch each gateway's outcome.

A rollout pushes to a canary wave first and goes on, wave by wave, only while
every gateway of the last wave committed; a gateway that refused, rolled back
or did not answer in time stops it, and the rest are not pushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware_tools.broker_target import BrokerTarget
from gateway.remote.bundles import FORMAT, sign_bundle
from gateway.remote.signing import load_private_key

FINAL = ("committed", "rolled_back", "refused")


def make_bundle(
    site: Path,
    *,
    version: int,
    expires_in_s: float,
    gateways: Sequence[str] = (),
    groups: Sequence[str] = (),
    profiles: Path | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The unsigned bundle body: ``site``'s text, the ``*.toml`` profiles of ``profiles``, targets."""
    return {
        "format": FORMAT,
        "version": version,
        "expires": int((time.time() if now is None else now) + expires_in_s),
        "targets": {"gateways": list(gateways), "groups": list(groups)},
        "config": site.read_text(encoding="utf-8"),
        "profiles": {p.name: p.read_text(encoding="utf-8") for p in sorted(profiles.glob("*.toml"))}
        if profiles is not None
        else {},
    }


def sign_file(body_or_signed: dict[str, Any], key_path: Path, key_id: str | None = None) -> dict[str, Any]:
    """A signed bundle: a body signed, or a signed bundle with one more signature (m-of-n)."""
    key = load_private_key(key_path)
    key_id = key_id or key_path.stem
    if "bundle" in body_or_signed:
        return sign_bundle(body_or_signed["bundle"], key, key_id, signed=body_or_signed)
    return sign_bundle(body_or_signed, key, key_id)


@dataclass
class Rollout:
    """Per gateway: its final status payload, or a state of our own (``timeout``, ``not_pushed``)."""

    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    stopped_by: str | None = None

    @property
    def ok(self) -> bool:
        return self.stopped_by is None and all(o["state"] == "committed" for o in self.outcomes.values())


async def push(
    target: BrokerTarget,
    bundle: bytes,
    gateways: Sequence[str],
    *,
    version: int,
    timeout_s: float,
    progress: Callable[[str, dict[str, Any]], None] = lambda gateway, status: None,
) -> dict[str, dict[str, Any]]:
    """Push ``bundle`` to each gateway at once; each one's final config/status for ``version``."""
    prefix = target.prefix
    final: dict[str, dict[str, Any]] = {}
    async with target.client(timeout=timeout_s) as client:
        for gateway in gateways:
            await client.subscribe(f"{prefix}/{gateway}/config/status", qos=1)
        for gateway in gateways:
            await client.publish(f"{prefix}/{gateway}/config/bundle", bundle, qos=1)

        async def collect() -> None:
            async for message in client.messages:
                if message.retain:  # the outcome of an earlier bundle
                    continue
                gateway = str(message.topic).split("/")[-3]
                status = json.loads(bytes(message.payload))
                if status.get("version") != version:
                    continue
                progress(gateway, status)
                if status["state"] in FINAL:
                    final[gateway] = status
                    if len(final) == len(gateways):
                        return

        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(collect(), timeout_s)
    for gateway in gateways:
        final.setdefault(gateway, {"state": "timeout", "reasons": [f"no outcome within {timeout_s:g} s"]})
    return final


async def rollout(
    target: BrokerTarget,
    bundle: bytes,
    gateways: Sequence[str],
    *,
    canary: int = 1,
    wave: int = 0,
    timeout_s: float = 120.0,
    progress: Callable[[str, dict[str, Any]], None] = lambda gateway, status: None,
) -> Rollout:
    """Canary wave first, then waves of ``wave`` gateways (0: all the rest); stop at a failure."""
    version = int(json.loads(bundle)["bundle"]["version"])
    result = Rollout()
    waves = [list(gateways[:canary])]
    rest = list(gateways[canary:])
    size = wave or len(rest) or 1
    waves += [rest[i : i + size] for i in range(0, len(rest), size)]
    for stage in (w for w in waves if w):
        if result.stopped_by is not None:
            for gateway in stage:
                result.outcomes[gateway] = {
                    "state": "not_pushed",
                    "reasons": [f"stopped by {result.stopped_by}"],
                }
            continue
        outcomes = await push(target, bundle, stage, version=version, timeout_s=timeout_s, progress=progress)
        result.outcomes.update(outcomes)
        failed = [g for g in stage if outcomes[g]["state"] != "committed"]
        if failed:
            result.stopped_by = failed[0]
    return result
