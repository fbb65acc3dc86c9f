"""The daemon: wires the layers together and supervises their tasks."""

from gateway.service.daemon import Daemon

__all__ = ["Daemon"]
