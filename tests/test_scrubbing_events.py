"""Sentry error events and replay_event items, including the captured real SDK traffic."""

from __future__ import annotations

import json
import zlib

import pytest

from replayd.scrubbing import RuleSet, Scrubber, parse_rules
from replayd.scrubbing.redaction import hash_token
from tests.envelopes import parse_envelope
from tests.harness import SDK_TRAFFIC

SECRET = b"test-secret"


def scrubber(rules=None) -> Scrubber:
    return Scrubber(parse_rules(rules) if rules is not None else RuleSet.default(), secret=SECRET)


def error_event() -> dict:
    return {
        "exception": {"values": [{"type": "TypeError", "value": "Cannot read 'total' for sam.tester@example.com",
                                  "stacktrace": {"frames": [{"filename": "http://x.test/todo2.html?session=abc123",
                                                             "function": "f",
                                                             "vars": {"card": "4111 1111 1111 1111", "n": 3}}]}}]},
        "message": "Payment failed for +44 20 7946 0958",
        "breadcrumbs": {"values": [{"category": "ui.click", "message": "body > button#boom"},
                                   {"category": "fetch",
                                    "data": {"url": "https://api.test/x?token=t1", "method": "GET"}},
                                   {"category": "console", "message": "user sam.tester@example.com"}]},
        "request": {"url": "http://x.test/p?email=sam%40example.com&page=2",
                    "headers": {"Authorization": "Bearer zzz111", "Cookie": "sid=1", "X-Api-Key": "k",
                                "Referer": "http://x.test/?sid=9",
                                "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0.0.0 Safari/537.36"},
                    "cookies": {"sid": "1"},
                    "query_string": "email=sam%40example.com&page=2",
                    "data": '{"password":"hunter2","note":"call 555-123-4567"}'},
        "extra": {"arguments": [], "order": {"owner": "sam.tester@example.com", "secret": "s"}},
        "tags": {"replayId": "7dca85bbbdd840acbe95417f9c826b99", "customer": "sam.tester@example.com"},
        "user": {"id": "u-1001", "email": "sam.tester@example.com", "ip_address": "{{auto}}", "username": "sam"},
        "contexts": {"trace": {"trace_id": "435774d8a4684c4d95ce2990461cfffd", "span_id": "9f1a0b69bb878f84"}},
    }


PLANTED = ["sam.tester@example.com", "sam%40example.com", "abc123", "4111 1111 1111 1111", "7946 0958", "t1", "zzz111",
           "sid=1", "hunter2", "555-123-4567", "\"s\""]


def test_error_event_scrubbed_everywhere():
    ev, report = scrubber().scrub_error_event(error_event())
    text = json.dumps(ev)
    for planted in PLANTED:
        assert planted not in text, planted
    assert ev["exception"]["values"][0]["value"] == "Cannot read 'total' for [email]"
    frame = ev["exception"]["values"][0]["stacktrace"]["frames"][0]
    assert frame["filename"] == "http://x.test/todo2.html?session=[Filtered]"
    headers = ev["request"]["headers"]
    assert headers["Authorization"] == headers["Cookie"] == headers["X-Api-Key"] == "[Filtered]"
    assert ev["request"]["headers"]["User-Agent"].startswith("Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0.0.0")
    assert ev["request"]["cookies"] == "[Filtered]"
    assert ev["request"]["url"] == "http://x.test/p?email=[Filtered]&page=2"
    assert ev["request"]["query_string"] == "email=[Filtered]&page=2"
    assert json.loads(ev["request"]["data"]) == {"password": "[Filtered]", "note": "call ************"}
    assert ev["tags"] == {"replayId": "7dca85bbbdd840acbe95417f9c826b99", "customer": "[email]"}
    assert ev["contexts"]["trace"]["trace_id"] == "435774d8a4684c4d95ce2990461cfffd"
    # default user policy: hash everything but the id; "{{auto}}" stays a placeholder
    assert ev["user"] == {"id": "u-1001", "email": hash_token(SECRET, "sam.tester@example.com"),
                          "ip_address": "{{auto}}", "username": hash_token(SECRET, "sam")}
    d = report.to_dict()
    assert d["by_rule"]["@header"] == 4 and d["by_location"]["error.request"] >= 6
    assert "sam" not in json.dumps(d)


@pytest.mark.parametrize(
    "policy,expected",
    [
        ("keep", {"id": "u-1001", "email": "sam.tester@example.com", "username": "sam", "ip_address": "93.184.216.34"}),
        # "email" is a secret name (as in `?email=`): its value is filtered whatever it holds
        ("scrub", {"id": "u-1001", "email": "[Filtered]", "username": "sam", "ip_address": "[ip]"}),
        ("id_only", {"id": "u-1001"}),
        ("remove", None),
    ],
)
def test_user_policies(policy, expected):
    ev = {"user": {"id": "u-1001", "email": "sam.tester@example.com", "username": "sam", "ip_address": "93.184.216.34"}}
    scrubber({"user": {"policy": policy}}).scrub_error_event(ev)
    assert ev.get("user") == expected


def test_list_shaped_headers_and_query():
    ev = {"request": {"headers": [["authorization", "Basic eA=="], ["accept", "text/html"]],
                      "query_string": [["token", "t"], ["q", "a@b.co"]]}}
    scrubber().scrub_error_event(ev)
    assert ev["request"]["headers"] == [["authorization", "[Filtered]"], ["accept", "text/html"]]
    assert ev["request"]["query_string"] == [["token", "[Filtered]"], ["q", "[email]"]]


def test_extra_headers_configurable():
    ev = {"request": {"headers": {"X-CSRF-Token": "abc", "Accept": "*/*"}}}
    scrubber({"network": {"redact_headers": ["x-csrf-token"]}}).scrub_error_event(ev)
    assert ev["request"]["headers"] == {"X-CSRF-Token": "[Filtered]", "Accept": "*/*"}


def test_replay_event():
    ev = {
        "type": "replay_event", "replay_id": "7dca85bbbdd840acbe95417f9c826b99", "segment_id": 1,
        "urls": ["http://x.test/todo2.html?session=abc123", "http://x.test/u/sam.tester@example.com"],
        "request": {"url": "http://x.test/todo2.html?session=abc123",
                    "headers": {"User-Agent": "Mozilla/5.0", "Authorization": "Bearer q1w2e3r4t5", "Cookie": "a=b"}},
        "user": {"id": "u-1001", "email": "sam.tester@example.com"},
        "tags": {"plan": "pro", "who": "sam.tester@example.com"},
        "error_ids": ["f8e25082bf5e4f4e978c1fe345b5c8a5"], "timestamp": 1795653765.618,
    }
    ev, report = scrubber({"user": {"policy": "scrub"}}).scrub_replay_event(ev)
    assert ev["urls"] == ["http://x.test/todo2.html?session=[Filtered]", "http://x.test/u/[email]"]
    assert ev["request"] == {"url": "http://x.test/todo2.html?session=[Filtered]",
                             "headers": {"User-Agent": "Mozilla/5.0", "Authorization": "[Filtered]",
                                         "Cookie": "[Filtered]"}}
    assert ev["user"] == {"id": "u-1001", "email": "[Filtered]"}  # a secret name, as in a URL
    assert ev["tags"] == {"plan": "pro", "who": "[email]"}
    assert ev["error_ids"] == ["f8e25082bf5e4f4e978c1fe345b5c8a5"]
    assert report.to_dict()["by_location"] == {"replay.urls": 2, "replay.request": 3, "replay.tags": 1, "user": 1}


def test_real_sdk_traffic():
    s = scrubber()
    seen = set()
    typed = []
    for path in sorted(SDK_TRAFFIC.glob("*.envelope")):
        for header, payload in parse_envelope(path.read_bytes())[1]:
            kind = header["type"]
            seen.add(kind)
            if kind == "event":
                ev, _ = s.scrub_error_event(json.loads(payload))
                out = json.dumps(ev)
                assert "sam.tester@example.com" not in out and "session=abc123" not in out
                assert (ev["exception"]["values"][0]["value"]
                        == "Cannot read properties of undefined (reading 'total') for [email]")
            elif kind == "replay_event":
                ev, _ = s.scrub_replay_event(json.loads(payload))
                out = json.dumps(ev)
                assert "sam.tester@example.com" not in out and "session=abc123" not in out
            elif kind == "replay_recording":
                body = payload[payload.index(b"\n") + 1 :]
                if body[:1] == b"x":
                    body = zlib.decompress(body)
                events = json.loads(body)
                res = s.scrub_recording(events)
                out = json.dumps(events)
                assert "jane.roe@example.net" not in out and "session=abc123" not in out
                typed += [e["data"]["text"] for e in events if e["type"] == 3 and e["data"].get("source") == 5]
                assert res.report.total >= 1
    assert seen == {"event", "replay_event", "replay_recording"}
    assert typed == ["Email [email] the Q3 numbers"]  # the e-mail typed into the todo input


def test_sensitive_keys_redact_whole_subtrees():
    ev = {"extra": {"credentials": {"user": "jane", "pass": ["x1", 42, True]}, "Set-Cookie": "a=b",
                    "other": {"k": "v"}}}
    _, report = scrubber().scrub_error_event(ev)
    assert ev["extra"] == {"credentials": {"user": "[Filtered]", "pass": ["[Filtered]", "[Filtered]", True]},
                           "Set-Cookie": "[Filtered]", "other": {"k": "v"}}
    assert report.to_dict()["by_rule"] == {"@sensitive_key": 4}
