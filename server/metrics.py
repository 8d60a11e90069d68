"""Prometheus text-format metrics, kept in one small registry on the app (no global state)."""

from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Callable, Iterable

from aiohttp import web

Labels = tuple[tuple[str, str], ...]
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    escaped = (f'{k}="{v}"'.replace("\\", "\\\\").replace("\n", "\\n") for k, v in labels)
    return "{" + ",".join(escaped) + "}"


class Metrics:
    def __init__(self) -> None:
        self._counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self._histograms: dict[str, dict[Labels, list[float]]] = defaultdict(dict)
        self._help: dict[str, tuple[str, str]] = {}
        self._gauges: dict[str, Callable[[], Iterable[tuple[Labels, float]]]] = {}

    def describe(self, name: str, kind: str, text: str) -> None:
        self._help[name] = (kind, text)

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        self._counters[name][tuple(sorted(labels.items()))] += value

    def observe(self, name: str, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        series = self._histograms[name].setdefault(key, [0.0] * (len(LATENCY_BUCKETS) + 2))
        series[bisect.bisect_left(LATENCY_BUCKETS, value)] += 1
        series[-1] += value

    def gauge(self, name: str, read: Callable[[], Iterable[tuple[Labels, float]]]) -> None:
        self._gauges[name] = read

    def count_request(self, request: web.Request, status: int, seconds: float, bytes_out: int) -> None:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        self.inc("replayd_requests_total", method=request.method, route=route, status=str(status))
        self.inc("replayd_request_bytes_total", float(request.content_length or 0))
        self.inc("replayd_response_bytes_total", float(bytes_out))
        self.observe("replayd_request_duration_seconds", seconds, route=route)

    def render(self) -> str:
        lines: list[str] = []

        def head(name: str, default_kind: str) -> None:
            kind, text = self._help.get(name, (default_kind, name))
            lines.extend([f"# HELP {name} {text}", f"# TYPE {name} {kind}"])

        for name, series in sorted(self._counters.items()):
            head(name, "counter")
            lines += [f"{name}{_labels(labels)} {value:g}" for labels, value in sorted(series.items())]
        for name, read in sorted(self._gauges.items()):
            head(name, "gauge")
            lines += [f"{name}{_labels(labels)} {value:g}" for labels, value in read()]
        for name, series in sorted(self._histograms.items()):
            head(name, "histogram")
            for labels, counts in sorted(series.items()):
                cumulative = 0.0
                for bound, count in zip(LATENCY_BUCKETS, counts):
                    cumulative += count
                    lines.append(f"{name}_bucket{_labels(labels + (('le', f'{bound:g}'),))} {cumulative:g}")
                cumulative += counts[len(LATENCY_BUCKETS)]
                lines.append(f"{name}_bucket{_labels(labels + (('le', '+Inf'),))} {cumulative:g}")
                lines.append(f"{name}_sum{_labels(labels)} {counts[-1]:g}")
                lines.append(f"{name}_count{_labels(labels)} {cumulative:g}")
        return "\n".join(lines) + "\n"


metrics_key = web.AppKey("metrics", Metrics)


def new_metrics() -> Metrics:
    m = Metrics()
    m.describe("replayd_requests_total", "counter", "HTTP requests by route and status")
    m.describe("replayd_request_bytes_total", "counter", "request body bytes received")
    m.describe("replayd_response_bytes_total", "counter", "response body bytes sent")
    m.describe("replayd_request_duration_seconds", "histogram", "request latency by route")
    m.describe("replayd_segments_ingested_total", "counter", "recording segments stored (blob store or spool)")
    m.describe("replayd_segment_raw_bytes_total", "counter", "decompressed JSON bytes of ingested segments")
    m.describe("replayd_segment_stored_bytes_total", "counter", "stored (brotli msgpack) bytes of ingested segments")
    m.describe("replayd_errors_ingested_total", "counter", "error events stored")
    m.describe("replayd_rejections_total", "counter", "envelopes refused, by status")
    m.describe("replayd_upload_failures_total", "counter", "blob store writes that failed or timed out")
    m.describe("replayd_spooled_total", "counter", "segments written to the spool")
    m.describe("replayd_scrub_matches_total", "counter", "scrubbing redactions by rule")
    m.describe("replayd_spool_segments", "gauge", "segments waiting in the spool")
    m.describe("replayd_spool_bytes", "gauge", "bytes waiting in the spool")
    m.describe("replayd_spool_oldest_age_seconds", "gauge", "age of the oldest spooled segment")
    return m


async def metrics_view(request: web.Request) -> web.Response:
    return web.Response(text=request.app[metrics_key].render(), content_type="text/plain",
                        headers={"X-Prometheus-Format": "0.0.4"})


def setup_metrics(app: web.Application) -> None:
    app[metrics_key] = new_metrics()
    app.router.add_get("/metrics", metrics_view)
