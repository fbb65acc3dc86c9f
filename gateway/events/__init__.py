"""Alarm lifecycle: detection transitions become events with stable ids."""

from gateway.events.alarms import AlarmBook

__all__ = ["AlarmBook"]
