"""What the operator endpoints and the logs show to whom: /readyz names a failing part without its
error text, /metrics can require a token, is written by prometheus-client (label values escaped) and
reads the spool's cached counters; a logged request path cannot forge a log line."""

from __future__ import annotations

import io
import json
import logging
import shutil
import time
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from replayd.server.app import create_app
from replayd.server.config import ConfigError
from replayd.server.index import SegmentRecord
from replayd.server.keys import spool_key
from replayd.server.logs import JSONFormatter, TextFormatter
from replayd.server.spool import Spool
from tests.harness import free_port, make_config
from tests.test_ingest import T0, page_events, post, rid, segment_envelope

METRICS_TOKEN = "metrics-token-0123456789abcdef"


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of an exposition, parsed by prometheus-client's own parser (which refuses a broken one)."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def scrape(client, **headers: str) -> dict[tuple[str, frozenset], float]:
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200, await response.text()
    return samples(await response.text())


# --- /readyz ------------------------------------------------------------------------------------

async def test_readyz_names_a_failing_blob_store_without_its_error_text(client, config, caplog):
    shutil.rmtree(config.storage.path)
    Path(config.storage.path).write_text("a file where the blob directory should be")
    with caplog.at_level(logging.WARNING, logger="replayd.health"):
        response = await client.get("/readyz")
    text = await response.text()
    assert response.status == 503
    assert json.loads(text)["failing"] == {"blob_store": "unreachable"}
    assert config.storage.path not in text and "directory" not in text and "Error" not in text
    # the details are in the server's log instead
    assert any(config.storage.path in r.getMessage() for r in caplog.records), caplog.text


async def test_readyz_names_an_unreachable_s3_without_its_endpoint(aiohttp_client, tmp_path):
    port = free_port()  # nothing listens here
    config = make_config(tmp_path, storage={"backend": "s3", "bucket": "b", "endpoint_url": f"http://127.0.0.1:{port}"})
    client = await aiohttp_client(create_app(config))
    response = await client.get("/readyz")
    text = await response.text()
    assert response.status == 503 and list(json.loads(text)["failing"]) == ["blob_store"]
    assert str(port) not in text and "127.0.0.1" not in text and "endpoint" not in text.lower()


# --- /metrics: a token, and the library's format ----------------------------------------------

async def test_metrics_token_is_required_when_set(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(make_config(tmp_path, server={"workers": 1,
                                                                            "metrics_token": METRICS_TOKEN})))
    for headers in ({}, {"Authorization": "Bearer not-the-metrics-token"}, {"Authorization": f"Basic {METRICS_TOKEN}"}):
        response = await client.get("/metrics", headers=headers)
        assert response.status == 401, headers
        assert "metrics_token" in (await response.json())["detail"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    found = await scrape(client, Authorization=f"Bearer {METRICS_TOKEN}")
    unauthorized = ("replayd_requests_total",
                    frozenset({"method": "GET", "route": "/metrics", "status": "401"}.items()))
    assert found[unauthorized] == 3


def test_a_short_metrics_token_is_refused(tmp_path):
    with pytest.raises(ConfigError) as refused:
        make_config(tmp_path, server={"metrics_token": "short"})
    assert refused.value.problems == ["server.metrics_token: String should have at least 16 characters"]


async def test_label_values_are_escaped(aiohttp_client, tmp_path):
    """A rule name with a quote, a backslash and a newline: the exposition still parses, the value intact."""
    rule = 'badge "no. 1" \\ and\nmore'
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"version": 1, "custom": [{"name": rule, "pattern": r"EMP-\d+"}]}))
    client = await aiohttp_client(create_app(make_config(tmp_path, scrubbing={"rules": str(rules)})))
    assert (await post(client, segment_envelope(rid(), 0, events=page_events(T0, text="badge EMP-42")))).status == 200
    found = await scrape(client)
    assert found[("replayd_scrub_matches_total", frozenset({"rule": rule}.items()))] == 1


async def test_a_client_cannot_add_series_with_made_up_methods(client):
    for method in ("PROPFIND", "MKCOL", "LOCK"):  # methods the HTTP parser knows, replayd does not
        await client.request(method, "/healthz")
    found = await scrape(client)
    by_method: dict[str, float] = {}
    for (name, labels), value in found.items():
        if name == "replayd_requests_total":
            method = dict(labels)["method"]
            by_method[method] = by_method.get(method, 0) + value
    assert by_method == {"other": 3}


# --- the spool's gauges come from cached counters -----------------------------------------------

def record(replay_id: str, segment_id: int) -> SegmentRecord:
    return SegmentRecord(project_id=1, replay_id=replay_id, segment_id=segment_id,
                         blob_key=f"1/{replay_id}/{segment_id:06d}", codec="c",
                         started_at=None, ended_at=None, event_count=1, raw_bytes=1, stored_bytes=1,
                         has_full_snapshot=False)


def on_disk(path: Path) -> tuple[int, int]:
    files = list(path.glob("*.seg"))
    return len(files), sum(f.stat().st_size for f in files)


async def test_spool_counters_follow_puts_and_removes_from_what_a_previous_run_left(tmp_path):
    replay_id = rid()
    previous_run = Spool(tmp_path, 10**6)
    for segment_id in range(3):
        await previous_run.put(record(replay_id, segment_id), b"x" * 100 * (segment_id + 1), b"")
    previous_run.close()
    spool = Spool(tmp_path, 10**6)
    assert (spool.count, spool.used_bytes) == on_disk(tmp_path) and spool.count == 3

    await spool.put(record(replay_id, 3), b"new", b"")
    await spool.put(record(replay_id, 0), b"y" * 1000, b"")  # replaces an entry
    spool.remove(tmp_path / Spool.entry_name(record(replay_id, 1)))
    spool.remove(tmp_path / Spool.entry_name(record(replay_id, 1)))  # already gone
    assert (spool.count, spool.used_bytes) == on_disk(tmp_path) and spool.count == 3

    # segment 2 of the previous run is now the oldest (0 was written again)
    written = (tmp_path / Spool.entry_name(record(replay_id, 2))).stat().st_mtime
    before = time.time()
    age = spool.oldest_age()
    assert before - written <= age <= time.time() - written

    assert spool.remove_replay(1, replay_id) == 3
    assert (spool.count, spool.used_bytes, spool.oldest_age()) == (0, 0, 0.0)


async def test_scrapes_read_the_spool_counters_without_listing_it(aiohttp_client, tmp_path, monkeypatch):
    port = free_port()  # an S3 that does not answer: segments go to the spool
    config = make_config(tmp_path, storage={"backend": "s3", "bucket": "b", "endpoint_url": f"http://127.0.0.1:{port}",
                                            "put_timeout": 1.0})
    client = await aiohttp_client(create_app(config))
    replay_id = rid()
    for segment_id in (0, 1):
        assert (await post(client, segment_envelope(replay_id, segment_id))).status == 200
    count, size = on_disk(tmp_path / "spool")
    assert count == 2

    def no_listing():
        raise AssertionError("the spool directory was listed")

    monkeypatch.setattr(client.app[spool_key], "entries", no_listing)
    found = await scrape(client)
    assert found[("replayd_spool_segments", frozenset())] == 2
    assert found[("replayd_spool_bytes", frozenset())] == size
    assert found[("replayd_spool_oldest_age_seconds", frozenset())] > 0
    ready = await (await client.get("/readyz")).json()
    assert ready["spool"]["segments"] == 2 and ready["spool"]["bytes"] == size


# --- logs -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("formatter", [TextFormatter(), JSONFormatter()], ids=["text", "json"])
async def test_a_path_cannot_forge_a_log_line(client, caplog, formatter):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    caplog.set_level(logging.INFO, logger="replayd.request")
    logging.getLogger("replayd.request").addHandler(handler)
    try:
        response = await client.get("/foo%0Afake%20line")
    finally:
        logging.getLogger("replayd.request").removeHandler(handler)
    assert response.status == 404
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines
    if isinstance(formatter, JSONFormatter):
        assert json.loads(lines[0])["path"] == "/foo\nfake line"
    else:
        assert r"GET /foo\nfake line 404" in lines[0] and r'path="/foo\nfake line"' in lines[0]
