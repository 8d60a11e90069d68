"""What the operator endpoints and the logs show to whom: a logged request path cannot forge a log line."""

from __future__ import annotations

import io
import json
import logging

import pytest

from server.logs import JSONFormatter, TextFormatter


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
