"""The only owner of the MQTT client."""

from gateway.uplink.client import UplinkClient

__all__ = ["UplinkClient"]
