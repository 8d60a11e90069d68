"""The app's Prometheus metrics, kept in a registry of its own on the app (no global registry: tests
create the app many times). prometheus-client writes the exposition format, label escaping included."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

# Any token is a valid HTTP method: others are counted as "other", so a client cannot add series at will.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# name: (help, label names). Every series replayd exposes is declared here.
COUNTERS = {
    "replayd_requests_total": ("HTTP requests by route and status", ("method", "route", "status")),
    "replayd_request_bytes_total": ("request body bytes received", ()),
    "replayd_response_bytes_total": ("response body bytes sent", ()),
    "replayd_segments_ingested_total": ("recording segments stored (blob store or spool)", ()),
    "replayd_segment_raw_bytes_total": ("decompressed JSON bytes of ingested segments", ()),
    "replayd_segment_stored_bytes_total": ("stored (brotli msgpack) bytes of ingested segments", ()),
    "replayd_errors_ingested_total": ("error events stored", ()),
    "replayd_rejections_total": ("envelopes refused, by status", ("status",)),
    "replayd_upload_failures_total": ("blob store writes that failed or timed out", ()),
    "replayd_spooled_total": ("segments written to the spool", ()),
    "replayd_scrub_matches_total": ("scrubbing redactions by rule", ("rule",)),
    "replayd_compaction_replays_total": ("replays compacted (each time: a late segment compacts it again)", ()),
    "replayd_compaction_segments_total": ("segments moved into compacted objects", ()),
    "replayd_compaction_bytes_before_total": ("stored bytes of those segments before compaction", ()),
    "replayd_compaction_bytes_after_total": ("bytes of the compacted objects written for them", ()),
    "replayd_compaction_failures_total": ("replays whose compaction failed (left as they were, retried)", ()),
    "replayd_compaction_objects_deleted_total": ("objects deleted after compaction replaced them", ()),
}
HISTOGRAMS = {
    "replayd_request_duration_seconds": ("request latency by route", ("route",)),
}
# Read when scraped, from a function set with Metrics.gauge (0 until then).
GAUGES = {
    "replayd_spool_segments": "segments waiting in the spool",
    "replayd_spool_bytes": "bytes waiting in the spool",
    "replayd_spool_oldest_age_seconds": "age of the oldest spooled segment",
    "replayd_compaction_backlog_replays": "finished replays not compacted yet, at the end of the last round",
    "replayd_compaction_last_round_timestamp_seconds": "when the last compaction round ended (Unix time)",
}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._counters = {name: Counter(name, text, labels, registry=self.registry)
                          for name, (text, labels) in COUNTERS.items()}
        self._histograms = {name: Histogram(name, text, labels, buckets=LATENCY_BUCKETS, registry=self.registry)
                            for name, (text, labels) in HISTOGRAMS.items()}
        self._gauges = {name: Gauge(name, text, registry=self.registry) for name, text in GAUGES.items()}

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        counter = self._counters[name]
        (counter.labels(**labels) if labels else counter).inc(value)

    def observe(self, name: str, value: float, **labels: str) -> None:
        histogram = self._histograms[name]
        (histogram.labels(**labels) if labels else histogram).observe(value)

    def gauge(self, name: str, read: Callable[[], float]) -> None:
        """``read`` is called on every scrape, on the event loop: it must be cheap (no I/O)."""
        self._gauges[name].set_function(read)

    def count_request(self, request: web.Request, status: int, seconds: float, bytes_out: int) -> None:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        method = request.method if request.method in METHODS else "other"
        self.inc("replayd_requests_total", method=method, route=route, status=str(status))
        self.inc("replayd_request_bytes_total", float(request.content_length or 0))
        self.inc("replayd_response_bytes_total", float(bytes_out))
        self.observe("replayd_request_duration_seconds", seconds, route=route)

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition in the format ``accept`` asks for (Prometheus text by default), and its content type."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type


metrics_key = web.AppKey("metrics", Metrics)


def setup_metrics(app: web.Application) -> None:
    """The registry; ``/metrics`` itself is served by health.py with the other operator endpoints."""
    app[metrics_key] = Metrics()
