"""Adversarial review: personal data in places and shapes the first tests did not cover."""

from __future__ import annotations

import json

from replayd.scrubbing import RuleSet, Scrubber
from tests.adversarial import CRAFTED

SECRET = b"test-secret"
EMAIL = "jane.doe@example.com"
TOKEN = "tok123SECRETvalue"


def scrubber() -> Scrubber:
    return Scrubber(RuleSet.default(), secret=SECRET)


def dumped(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


def span(data: dict) -> list[dict]:
    return [{"type": 5, "timestamp": 1, "data": {"tag": "performanceSpan", "payload": {
        "op": "resource.fetch", "description": "https://api.example.com/x", "data": data}}}]


# ---------------------------------------------------------------- network payloads
def test_headers_as_raw_text_har_objects_and_list_values():
    s = scrubber()
    events = span({
        "request": {"headers": f"Authorization: Bearer {TOKEN}\r\nCookie: sid={TOKEN}\r\nAccept: text/html"},
        "response": {"headers": [{"name": "Set-Cookie", "value": f"sid={TOKEN}"}, {"name": "X-User", "value": EMAIL}]},
        "other": {"headers": {"x-user": [EMAIL], "x-nested": {"a": EMAIL}, "X-Auth-Token": TOKEN}},
    })
    s.scrub_recording(events)
    out = dumped(events)
    assert TOKEN not in out and EMAIL not in out
    assert "Accept: text/html" in out  # ordinary headers stay readable
    assert "Authorization: [Filtered]" in out


def test_sensitive_keys_inside_longer_keys():
    s = scrubber()
    body = {"newPassword": "hunter2", "userToken": TOKEN, "X-CSRF-Token": TOKEN, "client_secret_v2": TOKEN,
            "author": "Ann", "classname": "btn", "tokens_used": None}
    response = json.dumps({"user": {"confirmPassword": "hunter2"}})
    events = span({"request": {"body": body}, "response": {"body": response}})
    s.scrub_recording(events)
    out = dumped(events)
    assert "hunter2" not in out and TOKEN not in out
    assert body["author"] == "Ann" and body["classname"] == "btn"  # "auth", "ssn" only as whole keys


def test_form_encoded_body_first_parameter():
    s = scrubber()
    events = span({"request": {"body": "password=hunter2&user=jo"}})
    s.scrub_recording(events)
    assert events[0]["data"]["payload"]["data"]["request"]["body"] == "password=[Filtered]&user=jo"
    ev = {"request": {"url": "https://x.example.com/login", "data": "pwd=hunter2&next=%2Fhome"}}
    s.scrub_error_event(ev)
    assert ev["request"]["data"] == "pwd=[Filtered]&next=%2Fhome"
    # prose is not a form
    events = span({"request": {"body": "a = b and c"}})
    s.scrub_recording(events)
    assert events[0]["data"]["payload"]["data"]["request"]["body"] == "a = b and c"


# ---------------------------------------------------------------- error and replay events
def test_error_event_fields_outside_the_known_list():
    s = scrubber()
    ev = {
        "event_id": "a" * 32, "timestamp": 1700000000.5, "level": "error", "platform": "javascript",
        "culprit": f"https://x.example.com/u/{EMAIL}", "transaction": f"/users/{EMAIL}",
        "server_name": EMAIL, "fingerprint": [EMAIL], "modules": {EMAIL: "1", "@sentry/browser": "8.0.0"},
        "spans": [{"description": f"GET /u/{EMAIL}", "data": {"url": f"/?token={TOKEN}"}}],
        "exception": {"values": [{
            "type": "Error", "value": "boom", "module": EMAIL, "mechanism": {"type": "onerror", "data": {"m": EMAIL}},
            "stacktrace": {"frames": [{
                "filename": "https://x.example.com/app.js", "function": "submit", "lineno": 3,
                "context_line": f"const email = '{EMAIL}';", "pre_context": [f"// {EMAIL}"],
                "post_context": ["call +1 415 555 2671"], "in_app": True,
            }]},
        }]},
        "threads": {"values": [{"name": EMAIL, "stacktrace": {"frames": [{"context_line": EMAIL}]}}]},
        "request": {"url": "https://x.example.com/", "fragment": f"access_token={TOKEN}", "method": "POST",
                    "env": {"REMOTE_ADDR": "93.184.216.34"}},
    }
    s.scrub_error_event(ev)
    out = dumped(ev)
    assert EMAIL not in out and TOKEN not in out and "415 555 2671" not in out and "93.184.216.34" not in out
    assert ev["event_id"] == "a" * 32 and ev["level"] == "error" and ev["timestamp"] == 1700000000.5
    assert ev["modules"]["@sentry/browser"] == "8.0.0"
    fr = ev["exception"]["values"][0]["stacktrace"]["frames"][0]
    assert fr["function"] == "submit" and fr["lineno"] == 3 and fr["in_app"] is True
    assert fr["filename"] == "https://x.example.com/app.js"


def test_replay_event_fields_outside_the_known_list():
    s = scrubber()
    ev = {
        "type": "replay_event", "replay_id": "b" * 32, "segment_id": 0, "error_ids": ["c" * 32],
        "urls": ["https://x.example.com/"],
        "request": {"url": "https://x.example.com/", "query_string": f"token={TOKEN}", "cookies": {"sid": TOKEN},
                    "headers": {"User-Agent": "Mozilla/5.0 Chrome/120.0.0.0", "Referer": f"https://x.example.com/?email={EMAIL}"}},
        "contexts": {"c": {"e": EMAIL}}, "extra": {"e": EMAIL}, "transaction": f"/u/{EMAIL}",
        "breadcrumbs": [{"message": EMAIL}],
    }
    s.scrub_replay_event(ev)
    out = dumped(ev)
    assert EMAIL not in out and TOKEN not in out
    assert ev["replay_id"] == "b" * 32 and ev["error_ids"] == ["c" * 32] and ev["segment_id"] == 0
    assert ev["request"]["headers"]["User-Agent"] == "Mozilla/5.0 Chrome/120.0.0.0"


# ---------------------------------------------------------------- recordings
def _snap(*kids) -> dict:
    return {"type": 2, "timestamp": 1, "data": {"initialOffset": {"left": 0, "top": 0}, "node": {
        "type": 0, "id": 1,
        "childNodes": [{"type": 2, "id": 2, "tagName": "body", "attributes": {}, "childNodes": list(kids)}]}}}


def _el(nid: int, tag: str, attrs: dict, kids=()) -> dict:
    return {"type": 2, "id": nid, "tagName": tag, "attributes": attrs, "childNodes": list(kids)}


def test_builtin_rules_compare_attribute_values_case_insensitively():
    s = scrubber()
    events = [
        _snap(_el(5, "input", {"type": "PASSWORD", "value": "hunter2"}),
              _el(6, "input", {"name": "userEmail"}),
              _el(7, "input", {"autocomplete": "CC-Number", "value": "4111 1111 1111 1111"}),
              _el(8, "meta", {"name": "X-CSRF-TOKEN", "content": TOKEN})),
        {"type": 3, "timestamp": 2, "data": {"source": 5, "id": 5, "text": "hunter2", "isChecked": False}},
        {"type": 3, "timestamp": 3, "data": {"source": 5, "id": 6, "text": "ja", "isChecked": False}},
    ]
    s.scrub_recording(events)
    out = dumped(events)
    assert "hunter2" not in out and "4111" not in out and TOKEN not in out
    assert events[2]["data"]["text"] == "**"


def test_url_userinfo_is_redacted_whole():
    s = scrubber()
    events = [_snap(_el(5, "a", {"href": "https://jane.doe@example.com/"}),
                    _el(6, "a", {"href": "ftp://jane.doe@example.com:hunter2@ftp.example.org/f"}))]
    s.scrub_recording(events)
    body = events[0]["data"]["node"]["childNodes"][0]["childNodes"]
    assert body[0]["attributes"]["href"] == "https://[Filtered]@example.com/"
    assert body[1]["attributes"]["href"] == "ftp://[Filtered]@ftp.example.org/f"


def test_rr_dataurl_that_is_not_base64_is_scrubbed_and_images_are_kept():
    s = scrubber()
    img = "data:image/png;base64,iVBORw0KGgo" + "A" * 200 + "jane@example.com"
    events = [_snap(_el(5, "canvas", {"rr_dataURL": f"data:text/plain,{EMAIL}"}),
                    _el(6, "canvas", {"rr_dataURL": img}))]
    s.scrub_recording(events)
    body = events[0]["data"]["node"]["childNodes"][0]["childNodes"]
    assert EMAIL not in body[0]["attributes"]["rr_dataURL"]
    assert body[1]["attributes"]["rr_dataURL"] == img


def test_pem_block_split_across_text_nodes():
    s = scrubber()
    head = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi"
    tail = "Z1eRQiN3Mq9G0rPz8K\nAbCdEfGh0123==\n-----END RSA PRIVATE KEY-----"
    events = [_snap(_el(5, "pre", {}, [{"type": 3, "id": 6, "textContent": head},
                                       {"type": 3, "id": 7, "textContent": tail}]))]
    s.scrub_recording(events)
    out = dumped(events)
    assert "MIIEpAIBAAKCAQEA" not in out and "Z1eRQiN3Mq9G0rPz8K" not in out and "AbCdEfGh0123" not in out
    assert s.scrub_text("-----END PUBLIC KEY-----")[0] == "-----END PUBLIC KEY-----"
    assert s.scrub_text("see: MIIE\n-----END PRIVATE KEY----- ok")[0] == "see: [private_key] ok"


# ---------------------------------------------------------------- robustness
def test_a_malformed_node_does_not_switch_the_dom_rules_off():
    s = scrubber()
    form = _el(3, "form", {}, [_el(4, "input", {"type": "password", "value": "hunter2"}),
                               _el(6, "div", {"autocomplete": "cc-number"},
                                   [{"type": 3, "id": 7, "textContent": "secret words"}])])
    events = [_snap(form, {"type": 3, "id": 9}),  # a text node without textContent
              {"type": 3, "timestamp": 2, "data": {"source": 5, "id": 4, "text": "hunter2", "isChecked": False}}]
    r = s.scrub_recording(events)
    out = dumped(events)
    assert "hunter2" not in out and "secret words" not in out
    assert r.report.by_rule.get("@fallback") == 1


def test_wrong_shapes_are_scrubbed_not_skipped():
    s = scrubber()
    events = [{"type": 5, "data": f"mail {EMAIL}"}, {"type": 3, "data": [EMAIL]}, f"{EMAIL}",
              {"type": 4, "data": {"href": "https://x.example.com/"}, "extra": {"who": EMAIL}}]
    s.scrub_recording(events)
    assert EMAIL not in dumped(events)
    for bad in (None, 5, "x", [EMAIL], {"exception": {"values": 7}, "message": EMAIL},
                {"exception": [1, None, {"values": "x"}]}):
        ev, _ = s.scrub_error_event(bad)
        assert EMAIL not in dumped(ev)
        ev, _ = s.scrub_replay_event(bad)
        assert EMAIL not in dumped(ev)
    r = s.scrub_recording({"data": EMAIL})
    assert EMAIL not in dumped(r.events)


_KEYS = ["type", "data", "node", "childNodes", "attributes", "tagName", "textContent", "id", "source", "adds",
         "removes", "texts", "value", "text", "href", "payload", "tag", "plugin", "parentId", "nextId", "styles",
         "rules", "rule", "set", "commands", "args", "fontSource", "headers", "body", "exception", "values",
         "stacktrace", "frames", "vars", "request", "query_string", "cookies", "user", "tags", "breadcrumbs",
         "logentry", "urls", "message", "isShadow", "style", "replace", "isStyle", "contexts", "threads", "name"]
_LEAVES = [None, True, False, 0, 1, 2, 3, 5, -1, 1.5, 2**70, float("inf"), "", "x", EMAIL, "+1 415 555 2671",
           "https://a.example.com/?token=1", "Authorization: x", "password=1&a=b", "-----BEGIN PRIVATE KEY-----"]


def _fuzz_value(r, depth: int):
    k = r.random()
    if depth > 6 or k < 0.3:
        return r.choice(_LEAVES + _KEYS)
    if k < 0.65:
        return {(r.choice(_KEYS) if r.random() < 0.9 else r.choice([1, None, "x"])): _fuzz_value(r, depth + 1)
                for _ in range(r.randint(0, 5))}
    return [_fuzz_value(r, depth + 1) for _ in range(r.randint(0, 5))]


def test_fuzz_random_json_never_raises():
    import random

    s = scrubber()
    for seed in range(600):
        r = random.Random(seed)
        events = []
        for _ in range(r.randint(0, 8)):
            e = {"type": r.choice([0, 1, 2, 3, 4, 5, 6, 7, "3", None]), "timestamp": 1, "data": _fuzz_value(r, 0)}
            if isinstance(e["data"], dict) and r.random() < 0.5:
                e["data"]["source"] = r.choice([0, 5, 8, 9, 10, 11, 13, 15, "0", None])
            events.append(e)
        s.scrub_recording(events if r.random() < 0.9 else _fuzz_value(r, 0))
        ev = {r.choice(_KEYS): _fuzz_value(r, 1), "request": _fuzz_value(r, 1), "exception": _fuzz_value(r, 1),
              "user": _fuzz_value(r, 1), "threads": _fuzz_value(r, 1)}
        s.scrub_error_event(ev)
        s.scrub_replay_event({"request": _fuzz_value(r, 1), "urls": _fuzz_value(r, 1), "tags": _fuzz_value(r, 1)})


def _deep(depth: int) -> dict:
    deep: dict = {"v": EMAIL}
    for _ in range(depth):
        deep = {"a": [deep]}
    return deep


def _bottom(deep: dict) -> tuple[int, object]:
    """How many levels down the innermost value is, and that value (without recursion)."""
    depth = 0
    while "a" in deep:
        deep, depth = deep["a"][0], depth + 1
    return depth, deep


def test_huge_and_deep_inputs():
    s = scrubber()
    texts = [{"id": i, "value": "x"} for i in range(100_000)]
    big = [{"type": 3, "timestamp": 1,
            "data": {"source": 0, "adds": [], "removes": [], "texts": texts, "attributes": []}}]
    assert s.scrub_recording(big).report.total == 0
    assert big[0]["data"]["texts"] == [{"id": i, "value": "x"} for i in range(100_000)]
    ev, report = s.scrub_error_event({"extra": _deep(20_000)})
    assert _bottom(ev["extra"]) == (20_000, {"v": "[email]"}) and report.total == 1
    events = [{"type": 5, "data": {"tag": "x", "payload": _deep(20_000)}}]
    assert s.scrub_recording(events).report.total == 1
    assert _bottom(events[0]["data"]["payload"]) == (20_000, {"v": "[email]"})


def test_crafted_100kb_strings():
    """Near misses of every rule, 100 KB each: kept as they are, but for what is really there (a
    private-key header per line, one Slack token); bench/bench_adversarial.py times them."""
    hits = {}
    for name, text in CRAFTED.items():
        s = scrubber()  # cold cache
        _, report = s.scrub_text(text)
        hits[name] = report.total
        s.scrub_error_event({"request": {"url": text, "data": text, "headers": text, "query_string": text}})
        s.scrub_recording([_snap(_el(5, "a", {"href": text, "srcset": text, "style": text, "title": text},
                                     [{"type": 3, "id": 6, "textContent": text}])),
                           {"type": 3, "timestamp": 2, "data": {"source": 5, "id": 5, "text": text + " a@"}},
                           {"type": 6, "timestamp": 3, "data": {"plugin": "rrweb/console@1",
                                                                "payload": {"payload": [text, "{" + text]}}}])
    assert {name: n for name, n in hits.items() if n} == {"pem_begins": 3000, "slack": 1}


# ---------------------------------------------------------------- detector formats
import pytest  # noqa: E402


@pytest.mark.parametrize("text", [
    "jane@exämple.de", "jörg.müller@beispiel.de", "a@b.рф", "用户@例子.广告",
    "Call 1-800-555-0199", "1 (800) 555-0199", "1.800.555.0199",
    "0049 30 1234567", "0044 20 7946 0958", "0033 1 23 45 67 89", "098765 43210",
    "::ffff:8.8.8.8", "[::ffff:93.184.216.34]:443",
    "Authorization: Basic dXNlcjpwYXNzd29yZA==", "avatars/jane@example.com.png",
    "030/1234567", "(030) 1234567", "089 / 123 456", "Tel. 0221/987654-32",
])
def test_more_formats_detected(text):
    out, report = scrubber().scrub_text(text)
    assert out != text and report.total >= 1


@pytest.mark.parametrize("text", [
    "x@y_z.com", "logo@2x.png", "1-2-3", "pages 1-100", "Score 1-0", "00:30:00", "Order 0012 3456",
    "ID 001234567", "version 1.234.567.8901", "::ffff:10.0.0.1", "ISBN 1-234-56789-0",
    "Basic Information", "basic usage", "Basic plan 2024", "icon@2x.retina.png", "a@b.png",
    "01/02/2024", "0815/4711", "08/15", "2024/2025", "01/2024/1234", "(030)12345",
    "Serial 0012 3456 7890", "Invoice 0034 5678 9012", "0049301234567",
])
def test_more_formats_left_alone(text):
    assert scrubber().scrub_text(text)[0] == text


def test_json_text_in_payload_strings_is_scrubbed_by_key():
    s = scrubber()
    deep = "[" * 100_000
    events = [
        {"type": 6, "timestamp": 1, "data": {"plugin": "rrweb/console@1", "payload": {"level": "log", "payload": [
            '{"password":"hunter2","user":"jo"}', 'login {"password": "hunter2", "n": 1}', deep, "{not json"]}}},
        {"type": 5, "timestamp": 2, "data": {"tag": "performanceSpan", "payload": {"data": {"response": {
            "body": '{"user":{"password":"hunter2","bio":"xxxxxxxx…'}}}}},  # truncated by the SDK
    ]
    s.scrub_recording(events)
    out = dumped(events)
    assert "hunter2" not in out
    args = events[0]["data"]["payload"]["payload"]
    assert json.loads(args[0]) == {"password": "[Filtered]", "user": "jo"}
    assert args[1] == 'login {"password": "[Filtered]", "n": 1}'
    assert args[2] == deep and args[3] == "{not json"


def test_unknown_shapes_inside_recordings_are_scrubbed():
    s = scrubber()
    events = [
        _snap(_el(5, "div", {"title": {"x": EMAIL}})),
        {"type": 3, "timestamp": 2, "data": {"source": 0, "adds": [], "removes": [], "texts": [],
                                             "attributes": [{"id": 5, "attributes": {"data-x": [EMAIL]}}]}},
        {"type": 3, "timestamp": 3, "data": {"source": 42, "note": EMAIL}},
        {"type": 9, "timestamp": 4, "data": {"note": EMAIL}},
        {"type": 5, "timestamp": 5, "data": {"tag": "options", "payload": {"maskAllText": False, "note": EMAIL}}},
        {"type": 3, "timestamp": 6, "data": {"source": 1, "positions": [{"x": 1, "y": 2, "id": 5, "timeOffset": 0}]}},
    ]
    s.scrub_recording(events)
    assert EMAIL not in dumped(events)
    assert events[4]["data"]["payload"]["maskAllText"] is False
    assert events[5]["data"]["positions"] == [{"x": 1, "y": 2, "id": 5, "timeOffset": 0}]


def test_url_parameter_names_in_brackets_and_with_dashes():
    s = scrubber()
    assert (s.scrub_text("/login?user[password]=hunter2&user[name]=jo")[0]
            == "/login?user[password]=[Filtered]&user[name]=jo")
    assert s.scrub_text("/x?access-token=abc&ids[]=1")[0] == "/x?access-token=[Filtered]&ids[]=1"
    assert s.scrub_text("/x?code[]=zz&a[b]=c")[0] == "/x?code[]=[Filtered]&a[b]=c"
    ev, _ = s.scrub_error_event({"request": {"query_string": [["user[password]", "hunter2"]]}})
    assert ev["request"]["query_string"] == [["user[password]", "[Filtered]"]]


def test_known_event_fields_of_the_wrong_shape_are_still_scrubbed():
    s = scrubber()
    ev = {"user": EMAIL, "request": f"GET /?email={EMAIL}", "exception": EMAIL, "breadcrumbs": EMAIL,
          "extra": EMAIL, "contexts": EMAIL, "tags": EMAIL, "message": [EMAIL], "threads": EMAIL}
    s.scrub_error_event(ev)
    assert EMAIL not in dumped(ev)
    ev = {"user": [EMAIL], "request": EMAIL, "urls": [{"u": EMAIL}, EMAIL], "tags": EMAIL}
    s.scrub_replay_event(ev)
    assert EMAIL not in dumped(ev)


def test_an_address_typed_across_a_segment_boundary_is_masked():
    """The segment ends at "jane.doe@exa": no detector can recognise it yet, but it is one."""
    s = scrubber()
    events = [_snap(_el(5, "textarea", {}))] + [
        {"type": 3, "timestamp": i, "data": {"source": 5, "id": 5, "text": v, "isChecked": False}}
        for i, v in enumerate(["hi @alice", "j", "jane", "jane.doe", "jane.doe@", "jane.doe@exa"], start=2)]
    s.scrub_recording(events)
    texts = [e["data"]["text"] for e in events[1:]]
    assert texts[0] == "hi @alice"  # a handle, not an address
    assert all(set(t) == {"*"} for t in texts[1:]), texts


def test_secret_headers_written_into_console_text():
    s = scrubber()
    events = [{"type": 6, "timestamp": 1, "data": {"plugin": "rrweb/console@1", "payload": {"level": "log", "payload": [
        '"Authorization: Basic tok123SECRET"', "sent cookie: sid=abc; theme=dark", "x-api-key:k1",
        "authorization header missing"]}}}]
    s.scrub_recording(events)
    assert events[0]["data"]["payload"]["payload"] == [
        '"Authorization: [Filtered]"', "sent cookie: [Filtered]", "x-api-key:[Filtered]",
        "authorization header missing"]


def test_exception_values_holding_json_or_headers():
    s = scrubber()
    ev = {"exception": {"values": [{"type": "Error", "value": 'Request failed {"password":"hunter2","user":"jo"}'}]},
          "message": "sent Authorization: Bearer-less-secret"}
    s.scrub_error_event(ev)
    assert ev["exception"]["values"][0]["value"] == 'Request failed {"password":"[Filtered]","user":"jo"}'
    assert ev["message"] == "sent Authorization: [Filtered]"


def test_hidden_inputs_keep_no_value():
    s = scrubber()
    events = [_snap(_el(5, "input", {"type": "hidden", "name": "authenticity_token", "value": "abcDEF123tokenXYZ"}),
                    _el(6, "input", {"type": "Hidden", "name": "uid", "value": "u-98231"})),
              {"type": 3, "timestamp": 2, "data": {"source": 0, "adds": [], "removes": [], "texts": [],
                                                   "attributes": [{"id": 5,
                                                                   "attributes": {"value": "newTokenValue99"}}]}}]
    r = s.scrub_recording(events)
    out = dumped(events)
    assert "abcDEF123tokenXYZ" not in out and "u-98231" not in out and "newTokenValue99" not in out
    assert r.report.by_rule["dom:hidden-input"] == 3


def test_damaged_state_bytes_raise_state_error_only():
    import random

    from replayd.scrubbing import ReplayState, StateError

    s = scrubber()
    good = s.scrub_recording([_snap(_el(5, "input", {"type": "password"}))]).state.to_bytes()
    refused = loaded = 0
    for seed in range(2000):
        r = random.Random(seed)
        b = bytearray(good)
        for _ in range(r.randint(1, 5)):
            b[r.randrange(len(b))] = r.randrange(256)
        try:
            st = ReplayState.from_bytes(bytes(b))
        except StateError:
            refused += 1
            continue
        s.scrub_recording([{"type": 3, "timestamp": 1, "data": {"source": 5, "id": 5, "text": "x"}}], st)
        st.to_bytes()
        loaded += 1
    assert refused and loaded  # both ways were taken: damage that is refused, and damage that still loads


def test_session_path_parameters_and_longer_parameter_names():
    s = scrubber()
    assert s.scrub_text("https://x.example.com/app;jsessionid=ABC123DEF?x=1&token=t")[0] == \
        "https://x.example.com/app;jsessionid=[Filtered]?x=1&token=[Filtered]"
    assert s.scrub_text("?reset_token=abc&sessionToken=d&client_secret=e&keyword=f&postcode=g&author=h")[0] == \
        "?reset_token=[Filtered]&sessionToken=[Filtered]&client_secret=[Filtered]&keyword=f&postcode=g&author=h"
    css = "a{b:c;d:e}[x=y]"
    assert s.scrub_text(css)[0] == css


def test_autofill_fields_for_names_and_addresses_are_masked():
    s = scrubber()
    events = [_snap(_el(5, "input", {"autocomplete": "shipping given-name", "value": "Jane"}),
                    _el(6, "textarea", {"autocomplete": "street-address"}),
                    _el(7, "input", {"autocomplete": "off"})),
              {"type": 3, "timestamp": 2, "data": {"source": 5, "id": 5, "text": "Jane Doe", "isChecked": False}},
              {"type": 3, "timestamp": 3, "data": {"source": 5, "id": 6, "text": "1 Main St", "isChecked": False}},
              {"type": 3, "timestamp": 4, "data": {"source": 5, "id": 7, "text": "hello", "isChecked": False}}]
    s.scrub_recording(events)
    assert [e["data"]["text"] for e in events[1:]] == ["********", "*********", "hello"]
    assert events[0]["data"]["node"]["childNodes"][0]["childNodes"][0]["attributes"]["value"] == "****"


def test_payload_maps_keyed_by_personal_data():
    s = scrubber()
    body = {"jane@example.com": {"role": "admin"}, "john@example.com": {"role": "user"}, "Content-Type": "x"}
    events = span({"response": {"body": body}})
    s.scrub_recording(events)
    out = events[0]["data"]["payload"]["data"]["response"]["body"]
    assert "example.com" not in dumped(out)
    assert out["Content-Type"] == "x" and len(out) == 3


def test_mutation_texts_and_meta_of_unexpected_shapes():
    s = scrubber()
    events = [{"type": 4, "timestamp": 1, "data": {"href": {"u": EMAIL}, "width": 1, "height": 1, "title": EMAIL}},
              _snap(_el(5, "p", {}, [{"type": 3, "id": 6, "textContent": "x"}])),
              {"type": 3, "timestamp": 2, "data": {"source": 0, "adds": [], "removes": [], "attributes": [],
                                                   "texts": [{"id": 6, "value": [EMAIL]}]}}]
    s.scrub_recording(events)
    assert EMAIL not in dumped(events)
