"""The service as a user runs it: health, readiness, the start-up banner, defaults, graceful shutdown."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from tests.harness import PUBLIC_KEY, free_port, wait_healthy
from tests.waiting import wait_until


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status == 200
    assert (await response.json()) == {"status": "ok"}
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_readyz_ok(client):
    response = await client.get("/readyz")
    assert response.status == 200


async def test_readyz_names_a_broken_blob_store(client, config):
    shutil.rmtree(config.storage.path)
    with open(config.storage.path, "w") as f:
        f.write("a file where the blob directory should be")
    response = await client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert "blob_store" in body["failing"] and "index" not in body["failing"]
    assert "blob_store unreachable" in body["detail"]
    assert (await client.get("/healthz")).status == 200  # alive, just not ready


async def test_unknown_api_path_is_a_json_404(client):
    response = await client.get("/api/0/nothing-here")
    assert response.status == 404
    assert "detail" in await response.json()


def _serve(cwd, env_extra, port):
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLAYD_")}
    env.update(env_extra, PYTHONUNBUFFERED="1", REPLAYD_SERVER__PORT=str(port))
    with open(cwd / "out.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "replayd.server.cli", "serve"], cwd=cwd, env=env,
                                stdout=log, stderr=subprocess.STDOUT)


def _banner_value(text: str, label: str) -> str:
    match = re.search(rf"{label}\s+(\S+)", text)
    assert match, text
    return match.group(1)


def test_embedded_defaults_create_var_and_keep_credentials(tmp_path):
    port = free_port()
    proc = _serve(tmp_path, {}, port)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, tmp_path / "out.log")
        first = (tmp_path / "out.log").read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert (tmp_path / "var" / "blobs").is_dir()
    assert (tmp_path / "var" / "replayd.sqlite3").is_file()
    dsn = _banner_value(first, "DSN:")
    assert re.fullmatch(rf"http://[0-9a-f]{{32}}@127\.0\.0\.1:{port}/1", dsn), dsn
    assert f'<script src="http://127.0.0.1:{port}/static/replayd.js" data-dsn="{dsn}" async></script>' in first
    password = _banner_value(first, "password:")
    token = _banner_value(first, r"API token \(Authorization: Bearer\):")
    assert len(password) >= 12 and token.startswith("rpd_")

    (tmp_path / "out.log").write_text("")
    proc = _serve(tmp_path, {}, port)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, tmp_path / "out.log")
        second = (tmp_path / "out.log").read_text()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/0/projects/1/replays/",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    assert _banner_value(second, "DSN:") == dsn  # the password and token are shown once (test_secrets.py)


def test_json_logs_one_line_per_request(start_server):
    import json

    server = start_server(server={"log_format": "json"})
    urllib.request.urlopen(server.url + "/healthz?secret=xyz", timeout=10).read()
    server.stop()
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("path") == "/healthz"]
    assert requests and requests[0]["status"] == 200 and requests[0]["method"] == "GET"
    assert "secret=xyz" not in server.log()  # query strings are never logged


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return True
    return False


def test_graceful_shutdown_finishes_in_flight_requests(start_server):
    """SIGTERM: stop accepting, let the request being received finish, then exit 0."""
    server = start_server()
    body = b'{"event_id":"0123456789abcdef0123456789abcdef"}\n{"type":"client_report"}\n{"discarded_events":[]}\n'
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        head = (f"POST /api/1/envelope/?sentry_key={PUBLIC_KEY} HTTP/1.1\r\nHost: x\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        sock.sendall(head + body[:10])
        time.sleep(0.5)  # the handler is now waiting for the rest of the body
        server.process.send_signal(signal.SIGTERM)
        wait_until(lambda: refuses_connections(server.port), 30, "the server to stop accepting connections")
        sock.sendall(body[10:])
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    assert response.startswith(b"HTTP/1.1 200"), response[:200]
    assert server.process.wait(30) == 0



async def test_metrics_in_prometheus_text_format(client):
    from tests.test_ingest import post, rid, segment_envelope

    assert (await post(client, segment_envelope(rid(), 0))).status == 200
    assert (await post(client, b"not an envelope")).status == 400
    response = await client.get("/metrics")
    assert response.status == 200 and response.content_type == "text/plain"
    text = await response.text()
    for line in [
        'replayd_requests_total{method="POST",route="/api/{project_id}/envelope/",status="200"} 1',
        'replayd_rejections_total{status="400"} 1',
        "replayd_segments_ingested_total 1",
        "replayd_spool_segments 0",
        "replayd_spool_oldest_age_seconds 0",
        "# TYPE replayd_request_duration_seconds histogram",
        'replayd_request_duration_seconds_count{route="/api/{project_id}/envelope/"} 2',
    ]:
        assert line in text, line
    raw = next(line for line in text.splitlines() if line.startswith("replayd_segment_raw_bytes_total "))
    assert float(raw.split()[1]) > 100


async def test_security_headers_on_errors_and_redirects_too(client):
    for path, status in (("/api/0/projects/1/replays/", 401), ("/", 302), ("/no-such-page", 404)):
        response = await client.get(path, allow_redirects=False)
        assert response.status == status, path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
