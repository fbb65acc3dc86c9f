"""Prometheus metrics, read from the running gateway at each scrape: nothing is counted twice on the hot path.

The counters live where the work is done (pollers, buses, uplink, pipeline);
this collector turns them into metric families when ``/metrics`` is asked for.
The health message (gateway/service/health.py) summarises the same counters.
The server imports this module at the first scrape, so a gateway nobody
scrapes does not carry the client library.
"""

from __future__ import annotations

import resource
import shutil
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from gateway.service.health import DEVICE_STATES, open_event_counts, rss_bytes
from gateway.web.view import GatewayView


class GatewayCollector(Collector):
    def __init__(self, view: GatewayView) -> None:
        self._view = view

    def collect(self) -> Iterator[Metric]:
        view = self._view
        yield from self._devices()
        yield from self._buses()
        outbox = view.outbox
        yield _gauge("gridgate_outbox_messages", "messages on disk waiting for the broker", outbox.pending())
        yield _gauge("gridgate_outbox_bytes", "bytes the waiting messages take", outbox.bytes_used)
        yield _gauge("gridgate_outbox_max_bytes", "the outbox bound", outbox.max_bytes)
        uplink = view.uplink
        yield _gauge(
            "gridgate_uplink_connected", "1 while connected to the broker", int(uplink.connected.is_set())
        )
        yield _counter("gridgate_uplink_connections", "connections made to the broker", uplink.connections)
        yield _counter("gridgate_uplink_published", "publishes acknowledged (PUBACK)", uplink.acknowledged)
        yield _counter(
            "gridgate_uplink_puback_seconds", "time from publish to PUBACK, summed", uplink.puback_s_total
        )
        yield _counter(
            "gridgate_uplink_refused",
            "publishes the broker refused (MQTT 5 reason code), kept",
            uplink.refused.count,
        )
        yield _counter("gridgate_detection_batches", "batches evaluated", view.pipeline.batches)
        yield _counter(
            "gridgate_detection_seconds",
            "time spent in detection, summed over batches",
            view.pipeline.detect_s_total,
        )
        events = GaugeMetricFamily(
            "gridgate_open_events",
            "open events by class, state and severity (no series: none)",
            labels=["class", "state", "severity"],
        )
        for labels, count in open_event_counts(view.open_events()).items():
            events.add_metric(list(labels), count)
        yield events
        yield _gauge(
            "gridgate_storage_free_bytes",
            "free space where the outbox lives",
            shutil.disk_usage(view.config.storage.directory).free,
        )
        usage = resource.getrusage(resource.RUSAGE_SELF)
        yield _counter(
            "gridgate_process_cpu_seconds", "user and system CPU time", usage.ru_utime + usage.ru_stime
        )
        yield _gauge("gridgate_process_resident_bytes", "resident memory", rss_bytes())

    def _devices(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "gridgate_device_up", "1 for the device's current state", labels=["device", "state"]
        )
        polls = CounterMetricFamily("gridgate_device_polls", "polls begun", labels=["device"])
        failures = CounterMetricFamily(
            "gridgate_device_poll_failures", "polls that failed", labels=["device"]
        )
        seconds = CounterMetricFamily(
            "gridgate_device_poll_seconds", "time spent polling, summed (÷ polls: latency)", labels=["device"]
        )
        for poller in self._view.watches:
            for name in DEVICE_STATES:
                state.add_metric([poller.device, name], int((poller.state or "unknown") == name))
            polls.add_metric([poller.device], poller.polls)
            failures.add_metric([poller.device], poller.failures)
            seconds.add_metric([poller.device], getattr(poller, "poll_s_total", 0.0))
        read_at = GaugeMetricFamily(
            "gridgate_device_read_timestamp_seconds",
            "when the device's latest reading was taken, polled or pushed (HJ 212)",
            labels=["device"],
        )
        for device, batches in self._view.pipeline.latest.items():
            read_at.add_metric([device], max(float(b.ts.max()) for b in batches.values()))
        yield from (state, polls, failures, seconds, read_at)

    def _buses(self) -> Iterator[Metric]:
        busy = CounterMetricFamily(
            "gridgate_bus_busy_seconds",
            "time the wire was in use (its rate is the occupancy)",
            labels=["bus"],
        )
        requests = CounterMetricFamily(
            "gridgate_bus_requests", "requests on the wire by outcome", labels=["bus", "outcome"]
        )
        for bus_id, bus in self._view.buses.items():
            counters = bus.counters
            busy.add_metric([bus_id], counters.busy_s)
            for outcome in ("ok", "timeouts", "crc", "garbage", "wrong_unit", "exception"):
                requests.add_metric([bus_id, outcome], getattr(counters, outcome))
        yield from (busy, requests)


class MetricsPage:
    """What ``/metrics`` answers: the Prometheus text exposition of ``view`` as it is now."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, view: GatewayView) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(GatewayCollector(view))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)
