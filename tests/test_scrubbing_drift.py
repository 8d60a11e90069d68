"""Rules that had drifted apart: the secret-name rule (one list, one function, every place a
name stands next to a value) and the scrubbing of map keys (one path, no entry lost)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from replayd.scrubbing import Scrubber, parse_rules

REPO = Path(__file__).resolve().parent.parent
SECRET = b"drift-secret"
VALUE = "pairvalue-5521"


def scrubber(rules: dict | None = None) -> Scrubber:
    return Scrubber(parse_rules(rules), secret=SECRET)


def breadcrumb(data: dict) -> list[dict]:
    return [{"type": 5, "timestamp": 1, "data": {"tag": "breadcrumb", "payload": {
        "category": "fetch", "type": "http", "data": data}}}]


def crumb_data(events: list[dict]) -> dict:
    return events[0]["data"]["payload"]["data"]


# ---------------------------------------------------------------- one secret-name rule
def _places(name: str, value: str) -> list[tuple[str, str, dict, object]]:
    """Every shape in which a name stands next to its value, as (kind, place, payload, reader):
    ``kind`` says which scrub call the payload is for, ``reader`` reads the value back."""
    return [
        ("crumb", "query string", {"url": f"https://x.example.com/p?{name}={value}&q=tea"},
         lambda d: d["url"]),
        ("crumb", "form body as text", {"body": f"{name}={value}&q=tea"}, lambda d: d["body"]),
        ("crumb", "form body as pairs", {"body": [[name, value], ["q", "tea"]]}, lambda d: d["body"][0][1]),
        ("crumb", "form body as a map", {"body": {name: value, "q": "tea"}}, lambda d: d["body"][name]),
        ("crumb", "JSON body text", {"body": json.dumps({name: value, "q": "tea"})},
         lambda d: json.loads(d["body"])[name]),
        ("crumb", "truncated JSON text", {"message": f'sent {{"{name}": "{value}", "q": "te'},
         lambda d: d["message"]),
        ("crumb", "header map", {"headers": {name: value}}, lambda d: d["headers"][name]),
        ("crumb", "header pairs", {"headers": [[name, value]]}, lambda d: d["headers"][0][1]),
        ("error", "extra", {"extra": {name: value}}, lambda ev: ev["extra"][name]),
        ("error", "query_string pairs", {"request": {"query_string": [[name, value]]}},
         lambda ev: ev["request"]["query_string"][0][1]),
        ("error", "query_string map", {"request": {"query_string": {name: value}}},
         lambda ev: ev["request"]["query_string"][name]),
        ("error", "query_string text", {"request": {"query_string": f"{name}={value}"}},
         lambda ev: ev["request"]["query_string"]),
        ("error", "request body text", {"request": {"data": f"{name}={value}&q=tea"}},
         lambda ev: ev["request"]["data"]),
        ("error", "request env", {"request": {"env": {name: value}}}, lambda ev: ev["request"]["env"][name]),
        ("error", "tags", {"tags": {name: value}}, lambda ev: ev["tags"][name]),
        ("error", "tag pairs", {"tags": [[name, value]]}, lambda ev: ev["tags"][0][1]),
        ("error", "an event field of its own", {name: value}, lambda ev: ev[name]),
    ] + ([("crumb", "raw header text", {"headers": f"{name}: {value}\r\nAccept: */*"}, lambda d: d["headers"])]
         if re.fullmatch(r"[\w-]+", name) else [])  # a header name, not "user[pwd][]"


def _scrub_at(s: Scrubber, kind: str, payload: dict, read) -> str:
    if kind == "crumb":
        events = breadcrumb(payload)
        s.scrub_recording(events)
        return read(crumb_data(events))
    ev, _ = s.scrub_error_event(payload)
    return read(ev)


# Names the rule must call secret: whole names from each part of the list, longer names
# holding a part, and the spellings the rule folds (case, "-", brackets, percent-encoding).
SECRET_NAMES = ["reset_token", "X-CSRF-Token", "code", "sig", "newPassword", "user[pwd][]", "%70wd",
                "Proxy-Authorization", "session_key"]
# Names that are not secrets anywhere (a short name must be the whole name).
PLAIN_NAMES = ["keyword", "postcode", "author", "sessionSampleRate", "classname"]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_a_secret_name_is_filtered_in_every_place(name):
    s = scrubber()
    kept = []
    for kind, place, payload, read in _places(name, VALUE):
        out = _scrub_at(s, kind, payload, read)
        if VALUE in out:
            kept.append(place)
    assert kept == [], f"{name!r} kept its value in: {kept}"


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_a_plain_name_keeps_its_value_in_every_place(name):
    s = scrubber()
    filtered = []
    for kind, place, payload, read in _places(name, VALUE):
        if place == "raw header text":
            continue  # header text is only split into names where it is header-shaped
        out = _scrub_at(s, kind, payload, read)
        if VALUE not in out:
            filtered.append(place)
    assert filtered == [], f"{name!r} lost its value in: {filtered}"


def test_form_body_pairs_of_a_network_breadcrumb():
    """Issue 10, item 11: the query string's parameter was filtered, the same pair in the body
    was kept as sent."""
    events = breadcrumb({"url": "https://x.example.com/reset?reset_token=s3cr3tvalue",
                         "body": [["reset_token", VALUE], ["q", "tea"]]})
    report = scrubber().scrub_recording(events).report
    assert crumb_data(events) == {"url": "https://x.example.com/reset?reset_token=[Filtered]",
                                  "body": [["reset_token", "[Filtered]"], ["q", "tea"]]}
    assert report.by_rule == {"@url_param": 1, "@sensitive_key": 1}


def test_the_secret_names_of_every_list_count_everywhere():
    """`urls.params`, `urls.extra_params`, `network.sensitive_keys` and the header lists are one
    list: a name in any of them is secret in URLs and in payloads alike."""
    s = scrubber({"urls": {"params": ["invite"]},
                  "network": {"sensitive_keys": ["pin"], "redact_headers": ["x-tenant"]}})
    events = breadcrumb({"url": "/a?pin=1111&x-tenant=acme&invite=abc&token=t",
                         "body": {"invite": "abc", "pin": 1111, "x-tenant": "acme"}})
    s.scrub_recording(events)
    assert crumb_data(events) == {"url": "/a?pin=[Filtered]&x-tenant=[Filtered]&invite=[Filtered]&token=t",
                                  "body": {"invite": "[Filtered]", "pin": "[Filtered]", "x-tenant": "[Filtered]"}}


def test_one_redaction_for_a_secret_name_wherever_it_is():
    """`urls.redaction` redacts the value of a secret name in a URL, a JSON key, a pair and a
    header the same way: the same value gives the same token."""
    s = scrubber({"urls": {"redaction": "hash"}})
    events = breadcrumb({"url": "/a?token=abc", "body": {"token": "abc"}, "form": [["token", "abc"]],
                         "headers": {"X-Auth-Token": "abc"}})
    s.scrub_recording(events)
    d = crumb_data(events)
    token = d["url"].removeprefix("/a?token=")
    assert token.startswith("[hash:") and "abc" not in token
    assert d["body"]["token"] == d["form"][0][1] == d["headers"]["X-Auth-Token"] == token


def test_configured_secret_headers_written_into_console_text():
    """The header names found in text are the same list as the header rule's, configured ones too."""
    s = scrubber({"network": {"redact_headers": ["X-Tenant-Key"]}})
    events = [{"type": 6, "timestamp": 1, "data": {"plugin": "rrweb/console@1", "payload": {"level": "log", "payload": [
        "sent X-Tenant-Key: tk_9f8e7d", "Authorization: Basic-ish"]}}}]
    s.scrub_recording(events)
    assert events[0]["data"]["payload"]["payload"] == ["sent X-Tenant-Key: [Filtered]", "Authorization: [Filtered]"]


# ---------------------------------------------------------------- one path for map keys
JANE, JOE = "jane@example.com", "joe@example.com"


def test_a_map_keyed_by_two_addresses_keeps_both_entries_everywhere():
    """Issue 10, item 12: `modules` collapsed two keys into one "[email]" (an entry was lost)."""
    ev = {"modules": {JANE: "1", JOE: "2"}, "extra": {JANE: "1", JOE: "2"}, "tags": {JANE: "1", JOE: "2"},
          "contexts": {"c": {JANE: "1", JOE: "2"}}, "request": {"headers": {JANE: "1", JOE: "2"}}}
    ev, report = scrubber().scrub_error_event(ev)
    both = {"[email]": "1", "[email] (2)": "2"}
    assert ev["modules"] == ev["extra"] == ev["tags"] == ev["contexts"]["c"] == ev["request"]["headers"] == both
    assert report.by_rule == {"@email": 10}
    ev, _ = scrubber().scrub_replay_event({"modules": {JANE: "1", JOE: "2"}, "extra": {JANE: "1", JOE: "2"}})
    assert ev["modules"] == ev["extra"] == both
    events = breadcrumb({"by_user": {JANE: "1", JOE: "2"}})
    scrubber().scrub_recording(events)
    assert crumb_data(events)["by_user"] == both


def test_a_redacted_key_is_not_read_as_a_bracketed_name():
    """"[email]" (a key already redacted) is not "email" in brackets: its value stays."""
    ev, _ = scrubber().scrub_error_event({"extra": {JANE: "admin", "[email]": "user"}})
    assert sorted(ev["extra"].values()) == ["admin", "user"]


@pytest.mark.parametrize("ev", [
    {"exception": {"values": [{"type": "Error", "value": {"detail": JANE}, "stacktrace": f"at f ({JANE})"}]}},
    {"exception": [[JANE, "x"]]},  # entries that are not objects
    {"exception": {"values": [], "note": JANE}},
    {"extra": {"credentials": {JANE: "x"}}},  # a map under a secret name: its keys too
    {"request": {"headers": [{"name": JANE, "value": "x"}, [{JANE: 1}, "x"]]}},
    {"user": {JANE: "x"}},  # the `hash` policy hashes values; the keys are scrubbed like any map's
], ids=["exception-value-shapes", "exception-entries", "exception-fields", "under-secret-name", "header-shapes",
        "user-keys"])
def test_personal_data_in_keys_and_odd_shapes_is_scrubbed(ev):
    ev, _ = scrubber().scrub_error_event(ev)
    assert JANE not in json.dumps(ev)


# ---------------------------------------------------------------- through `replayd scrub`
def test_replayd_scrub_filters_form_body_pairs(tmp_path):
    recording = tmp_path / "recording.json"
    recording.write_text(json.dumps(breadcrumb({
        "url": "https://x.example.com/reset?reset_token=s3cr3tvalue&q=tea", "method": "POST",
        "body": [["reset_token", VALUE], ["q", "tea"]]})))
    result = subprocess.run([sys.executable, "-m", "replayd.server.cli", "scrub", str(recording)], capture_output=True,
                            text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "s3cr3tvalue" not in result.stdout and VALUE not in result.stdout
    data = crumb_data(json.loads(result.stdout))
    assert data["body"] == [["reset_token", "[Filtered]"], ["q", "tea"]]
    assert "rule @sensitive_key: 1" in result.stderr and "rule @url_param: 1" in result.stderr
