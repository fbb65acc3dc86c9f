"""One snapshot from a camera over HTTP (Basic or Digest), bounded in time and bytes; never a stream."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from contracts.errors import DeviceProtocolError, DeviceTimeout, DeviceUnreachable
from contracts.evidence import HttpAuth, SnapshotSource


async def fetch_snapshot(camera: str, source: SnapshotSource) -> bytes:
    """The JPEG ``camera`` serves at ``source.url``; DriverError subclasses when it cannot be had."""
    import aiohttp  # loaded on the first alarm with a camera, not by every gateway

    middlewares: tuple[Any, ...] = ()
    headers: dict[str, str] = {}
    if source.auth is HttpAuth.DIGEST:
        middlewares = (aiohttp.DigestAuthMiddleware(source.username or "", source.password()),)
    elif source.auth is HttpAuth.BASIC:
        token = base64.b64encode(f"{source.username}:{source.password()}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    timeout = aiohttp.ClientTimeout(total=source.timeout_s)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout, middlewares=middlewares) as session,
            session.get(source.url, headers=headers) as response,
        ):
            if response.status != 200:
                raise DeviceProtocolError(camera, f"snapshot: HTTP {response.status} from {source.url}")
            data = bytearray()
            async for chunk in response.content.iter_chunked(65_536):
                data.extend(chunk)
                if len(data) > source.max_bytes:
                    raise DeviceProtocolError(camera, f"snapshot over {source.max_bytes} bytes; refused")
    except asyncio.TimeoutError as exc:
        raise DeviceTimeout(camera, f"snapshot: no picture within {source.timeout_s} s") from exc
    except aiohttp.ClientError as exc:
        raise DeviceUnreachable(camera, f"snapshot: {exc}") from exc
    if not data.startswith(b"\xff\xd8"):
        raise DeviceProtocolError(camera, "snapshot: the answer is not a JPEG")
    return bytes(data)
