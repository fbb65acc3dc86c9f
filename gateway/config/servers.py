"""Broker addresses as written in ``[uplink] servers``."""

from __future__ import annotations


def split_server(server: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` into its parts; a ValueError names the entry."""
    host, sep, port = server.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65_535:
        raise ValueError(f'servers entry "{server}" is not "host:port" (e.g. "10.0.0.5:1883")')
    return host, int(port)


def join_server(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
