"""replayd's promise, end to end: nothing personal is stored, and the scrubbed recording still replays.

A page full of planted personal data (tests/pages/privacy/shop.html: text nodes, attributes, a
password and a card input, typed inputs, texts/elements/attributes changed after load, links with
tokens, a csrf meta tag, console output, fetches with an api key, headers and bodies, an error whose
message holds an e-mail, the page URL's query string, the SDK's user) is recorded by the real
``@sentry/browser`` SDK with every client-side mask switched off, and sent to a running replayd.

Then the test (1) reads back everything replayd wrote — every blob decoded, every row of every
SQLite table, the replay state, the spool, the log, and the raw bytes of every file in its data
directory — and finds none of the planted values (nor their lower-case, URL-encoded, separator-less
or local-part variants); (2) replays the stored segments in rrweb's Replayer in Chromium and finds
the page's structure, its CSS (including the stylesheets that talk about passwords) and its
unplanted text intact, with the personal data masked in place rather than removed.

The flow runs once per module (about 10 s); the tests below look at what it left behind.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import struct
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import pytest

from replayd.server.codec import iter_events
from tests.harness import REPO, RunningServer, launch_server
from tests.sites import StaticSite, page_files, replayer_files, rrweb_replayer, sentry_files, wait_for_js

PAGES = REPO / "tests" / "pages" / "privacy"

PAGE_QUERY = "?session=pageSessQw12Er34Ty56&ref=newsletter"
TYPED_EMAIL = "typed.person@example.com"
TYPED_PHONE = "+1 202 555 0175"
TYPED_PASSWORD = "Typ3dSecretPassw0rd"

# Every value planted on the page, in the SDK's set-up or typed by the test: (where, value).
PLANTED: list[tuple[str, str]] = [
    ("page url ?session=", "pageSessQw12Er34Ty56"),
    ("csrf meta", "csrf-Zq7Vb3Kp9Lm2Xw8Rt4Ny6Hd1"),
    ("xsrf meta", "xsrf-Hh4Jj5Kk6Ll7Mm8Nn9Pp0"),
    ("text email", "jane.planted@example.com"),
    ("text phone", "+44 20 7946 0958"),
    ("text card", "4111 1111 1111 1111"),
    ("text iban", "DE89 3704 0044 0532 0130 00"),
    ("text ssn", "536-22-8471"),
    ("text jwt", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJwbGFudGVkLXVzZXIifQ."
                 "Kx7pq2vR9sT4uW6yZ8aB1cD3eF5gH7iJ9kL0mN2oP4q"),
    ("text jwt payload", "eyJzdWIiOiJwbGFudGVkLXVzZXIifQ"),
    ("text aws key", "AKIAQ3PLANTED7EXAMPL"),
    ("text ipv4", "93.184.216.34"),
    ("img alt", "avery.alt@example.org"),
    ("img title", "+1 415 555 0132"),
    ("data-customer-email", "data.attr@example.net"),
    ("data-card", "5555 5555 5555 4444"),
    ("aria-label", "219-09-9999"),
    ("title iban", "GB82 WEST 1234 5698 7654 32"),
    ("placeholder", "placeholder.person@example.com"),
    ("value attribute", "prefilled.value@example.com"),
    ("password value attribute", "Prefill3dPassw0rd!"),
    ("cc-number value attribute", "4000 0566 5566 5556"),
    ("cc-name value attribute", "Quincy Cardholder"),
    ("form action ?session=", "formSess6t5r4e3w2q"),
    ("link ?token=", "tokAbc123Def456Ghi"),
    ("link &session=", "sessZyx987Wvu654"),
    ("relative link ?api_key=", "relKey55aa66bb77cc"),
    ("mailto link", "mailto.person@example.com"),
    ("console.log", "console.log.person@example.com"),
    ("console.error", "console.error.person@example.com"),
    ("mutated text", "mutated.text@example.com"),
    ("added element text", "5105 1051 0510 5100"),
    ("added element title", "added.title@example.org"),
    ("mutated title", "mutated.attr@example.org"),
    ("mutated data-ip", "81.2.69.160"),
    ("mutated aria-label", "+1 212 555 0188"),
    ("fetch ?api_key=", "fetchKey9f8e7d6c5b4a"),
    ("fetch Authorization header", "authHdrTok3nXyZ123456789"),
    ("fetch X-Api-Key header", "xApiKeyVal00112233"),
    ("fetch response body", "response.body@example.com"),
    ("post body password", "b0dyPassw0rdValue"),
    ("post body phone", "+1 305 555 0147"),
    ("error message", "error.person@example.com"),
    ("Sentry.setUser email", "sdk.user.mail@example.com"),
    ("Sentry.setUser username", "priv_username_7781"),
    ("typed email", TYPED_EMAIL),
    ("typed phone", TYPED_PHONE),
    ("typed password", TYPED_PASSWORD),
]

# Text of the page that holds nothing personal: it must replay exactly as written.
UNPLANTED_TEXT = [
    ("#welcome", "Welcome to the privacy test shop"),
    ("#intro", "Fresh vegetables delivered twice a week to your door."),
    ("#footer", "Thank you for shopping with us."),
    ("#status", "Order status: payment failed"),  # changed by the click, after load
    ("#profile", "Profile card"),
    ("#reset", "Reset your password"),
    ("label[for=password]", "Password"),
    (".password-hint", "at least 12 characters"),
    (".password-strength", "strong"),
]
# Elements whose text held planted data: still there, with the data masked in place.
MASKED_TEXT = [
    ("#contact", "Write to [email] or call *** ** **** **** during opening hours."),
    ("#card-text", "Card on file: **** **** **** **** (expires soon)"),
    ("#iban-text", "Refunds go to **** **** **** **** **** ** within five days."),
    ("#ssn-text", "Tax form reference *********** is attached."),
    ("#jwt-text", "Session [jwt]"),
    ("#aws-text", "Deploy key [aws_key] in the staging vault."),
    ("#ip-text", "Last login from [ip] yesterday."),
    ("#later", "Your manager is [email]"),
    ("#added-li", "Backup card **** **** **** ****"),
]
EXPECTED_RULES = ["@email", "@phone", "@card", "@iban", "@ssn", "@jwt", "@aws_key", "@ip", "@url_param",
                  "@typing",
                  "dom:password-input", "dom:card-autocomplete", "dom:contact-input", "dom:csrf-meta"]


def variants(value: str) -> set[str]:
    """The planted value and the forms it could take on its way to storage."""
    found = {value, value.lower(), urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value),
             urllib.parse.quote(value, safe="").lower()}
    compact = re.sub(r"[\s\-.()+]", "", value)
    if compact != value and sum(c.isdigit() for c in compact) >= 9:
        found |= {compact, compact.lower()}  # 4111111111111111, 123456789, DE89370400440532013000
    if "@" in value:  # the local part alone: a domain redacted away would still leave the person named
        local = value.split("@")[0]
        found |= {local, local.lower()}
    return {v for v in found if len(v) >= 8}


# --- the flow -------------------------------------------------------------------------------

@dataclass
class PrivacySession:
    server: RunningServer
    site: StaticSite
    replay_id: str
    error_id: str
    answers: list[tuple[str, int | None]]  # (envelope url, HTTP status) of every envelope the SDK posted
    sent_segments: int
    original: dict[str, Any] = field(default_factory=dict)  # the live page's structure and CSS at the end


@pytest.fixture(scope="module")
def replayd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """``replayd serve`` with the default rules, for this module's one recording flow."""
    server = launch_server(tmp_path_factory.mktemp("replayd-privacy"))
    yield server
    server.kill()


# The live page's body elements (tag#id, scripts left out: rrweb does not replay them) and CSS rules.
STRUCTURE_JS = """(doc) => {
  doc = doc || document;
  const elements = Array.from(doc.body.querySelectorAll('*'))
    .filter(e => !['SCRIPT', 'NOSCRIPT'].includes(e.tagName))
    .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : ''));
  const rules = [];
  for (const sheet of Array.from(doc.styleSheets)) {
    try { for (const r of Array.from(sheet.cssRules)) rules.push(r.cssText); } catch (e) {}
  }
  return {elements, rules};
}"""


@pytest.fixture(scope="module")
def privacy_session(browser, replayd: RunningServer, sentry_bundle: Path) -> Iterator[PrivacySession]:
    with record_privacy_session(browser, replayd, sentry_bundle) as session:
        yield session


@contextlib.contextmanager
def record_privacy_session(browser, replayd: RunningServer, sentry_bundle: Path) -> Iterator[PrivacySession]:
    """The flow: the page recorded by the SDK, its envelopes sent to ``replayd.dsn``, until
    ``replayd.api`` shows the whole replay and the error (tests/test_cluster.py sends them to a
    three-node cluster)."""
    site = StaticSite({
        **page_files(PAGES, "shop.html", "privacy.css", "init.js"),
        **sentry_files(sentry_bundle, replayd.dsn),
        "/api/data": (json.dumps({"items": 3, "owner": "response.body@example.com"}).encode(), "application/json"),
        "/api/profile": (b'{"saved": true}', "application/json"),
        **replayer_files(),
    })
    context = browser.new_context()
    page = context.new_page()
    requests: list[Any] = []
    page.on("request", lambda r: requests.append(r) if r.method == "POST" and "/envelope/" in r.url else None)
    try:
        page.goto(site.url + "/shop.html" + PAGE_QUERY)
        replay_id = wait_for_js(page, "() => window.Sentry && Sentry.getReplay() && Sentry.getReplay().getReplayId()",
                          "the SDK to start a replay")
        wait_for_js(page, "() => window.fetchDone === true", "the page's changes after load")
        # Network: a fetch with secret headers, and a POST whose JSON body holds a password and a phone.
        page.evaluate("""() => Promise.all([
            fetch('/api/data?api_key=fetchKey9f8e7d6c5b4a&view=full', {headers: {
                'Authorization': 'Bearer authHdrTok3nXyZ123456789', 'X-Api-Key': 'xApiKeyVal00112233'}}),
            fetch('/api/profile', {method: 'POST', headers: {'Content-Type': 'application/json'},
                body: JSON.stringify({password: 'b0dyPassw0rdValue', note: 'call +1 305 555 0147'})}),
        ])""")
        page.locator("#email").press_sequentially(TYPED_EMAIL, delay=5)
        # the same address in a field nothing marks as an address: only the detectors can catch it
        page.locator("#reference").press_sequentially(TYPED_EMAIL, delay=5)
        page.locator("#phone").press_sequentially(TYPED_PHONE, delay=5)
        page.locator("#password").press_sequentially(TYPED_PASSWORD, delay=5)
        page.wait_for_timeout(200)
        page.evaluate("() => Sentry.getReplay().flush()")

        page.click("#pay")  # throws an Error whose message holds an e-mail
        deadline = time.monotonic() + 20
        while not any(b'"type":"event"' in (r.post_data_buffer or b"") for r in requests):
            assert time.monotonic() < deadline, "the SDK sent no error event for the thrown Error"
            page.wait_for_timeout(100)
        page.wait_for_timeout(300)
        original = page.evaluate(STRUCTURE_JS)
        # Stop recording: the SDK flushes the last segment (naming the error) and waits for the answers.
        page.evaluate("async () => { await Sentry.getReplay().stop(); await Sentry.flush(10000); }")

        answers, sent_segments, error_ids = [], 0, []
        for request in requests:
            response = request.response()
            answers.append((request.url, response.status if response is not None else None))
            body = request.post_data_buffer or b""
            sent_segments += body.count(b'"type":"replay_recording"')
            if b'"type":"event"' in body:
                error_ids.append(json.loads(body.split(b"\n", 1)[0])["event_id"])
    finally:
        context.close()
    assert len(error_ids) == 1, answers
    session = PrivacySession(replayd, site, replay_id, error_ids[0], answers, sent_segments, original)

    # The SDK waited for the answers; still, wait until the read API shows it all.
    deadline = time.monotonic() + 20
    while True:
        try:
            replay = replayd.api(f"/api/0/projects/1/replays/{replay_id}/")["data"]
            replayd.api(f"/api/0/projects/1/errors/{session.error_id}/")
            if replay["segment_count"] >= sent_segments and session.error_id in replay["error_ids"]:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, f"replayd did not show {sent_segments} segments and the error"
        time.sleep(0.2)
    yield session
    site.close()


# --- (1) nothing planted reached storage ----------------------------------------------------

def _texts_in_data_dir(server: RunningServer) -> list[tuple[str, str]]:
    """(where, text) for everything replayd wrote: blobs decoded, index rows, state, spool, log, raw files."""
    data_dir = server.data_dir
    texts: list[tuple[str, str]] = []
    blobs = sorted(p for p in (data_dir / "blobs").rglob("*") if p.is_file())
    assert blobs, "no blob was stored"
    for path in blobs:
        texts.append((f"blob {path.relative_to(data_dir)}",
                      json.dumps(list(iter_events(path.read_bytes())), ensure_ascii=False)))

    db = sqlite3.connect(f"file:{data_dir / 'replayd.sqlite3'}?mode=ro", uri=True)
    try:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert {"replays", "segments", "errors", "replay_state"} <= set(tables), tables
        for table in tables:
            cursor = db.execute(f'SELECT * FROM "{table}"')
            columns = [d[0] for d in cursor.description]
            for row in cursor:
                for column, value in zip(columns, row, strict=True):
                    where = f"sqlite {table}.{column}"
                    if isinstance(value, bytes):  # replay_state: msgpack
                        texts.append((where, value.decode("latin-1")))
                        with contextlib.suppress(Exception):  # not msgpack: its text above is all there is
                            unpacked = msgpack.unpackb(value, raw=False, strict_map_key=False)
                            texts.append((where + " (msgpack)", json.dumps(unpacked, ensure_ascii=False, default=repr)))
                    elif value is not None:
                        texts.append((where, str(value)))
    finally:
        db.close()

    for path in sorted(p for p in (data_dir / "spool").rglob("*") if p.is_file()):
        raw = path.read_bytes()
        texts.append((f"spool {path.name}", raw.decode("latin-1")))
        if path.suffix == ".seg" and len(raw) > 4:
            (size,) = struct.unpack(">I", raw[:4])
            texts.append((f"spool {path.name} header", raw[4:4 + size].decode("utf-8", "replace")))
            events = list(iter_events(raw[4 + size:]))
            texts.append((f"spool {path.name} events", json.dumps(events, ensure_ascii=False)))

    texts.append(("server log", server.log()))
    # Raw bytes of every other file (SQLite pages and WAL hold old row versions too).
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        if (data_dir / "blobs") not in path.parents:
            texts.append((f"file {path.relative_to(data_dir)}", path.read_bytes().decode("latin-1")))
    return texts


def test_every_envelope_was_accepted(privacy_session: PrivacySession) -> None:
    assert privacy_session.sent_segments >= 2, privacy_session.answers
    assert all(status is not None and 200 <= status < 300 for _, status in privacy_session.answers), \
        privacy_session.answers
    assert "Traceback" not in privacy_session.server.log(), privacy_session.server.log()


def test_no_planted_value_is_stored_anywhere(privacy_session: PrivacySession) -> None:
    assert_no_planted_value(_texts_in_data_dir(privacy_session.server))


def assert_no_planted_value(texts: list[tuple[str, str]]) -> None:
    """No planted value, in any of its forms, in any of the (where, text) given; and the blobs among
    them (where starting "blob ") hold what the page showed."""
    leaks = []
    for label, value in PLANTED:
        for variant in sorted(variants(value)):
            for where, text in texts:
                at = text.find(variant)
                if at >= 0:
                    around = text[max(0, at - 80):at + len(variant) + 40]
                    leaks.append(f"{label} {variant!r} in {where}: ...{around!r}...")
    assert not leaks, f"{len(leaks)} planted values reached storage:\n" + "\n".join(leaks)

    # Sanity: the search itself works — the stored data is there and has what the page showed.
    stored = "\n".join(text for where, text in texts if where.startswith("blob "))
    assert "Welcome to the privacy test shop" in stored
    assert 'input[type=\\"password\\"]' in stored and "Password rules" in stored  # CSS (JSON-escaped)


def test_the_planted_data_was_recorded_and_redacted_in_place(privacy_session: PrivacySession) -> None:
    """The search above is only worth something if the data went through: every kind of planted
    place reached replayd (the SDK recorded it) and is stored redacted where it was."""
    server = privacy_session.server
    events = [e for path in sorted((server.data_dir / "blobs").rglob("*")) if path.is_file()
              for e in iter_events(path.read_bytes())]
    custom = [e["data"]["payload"] for e in events if e["type"] == 5 and isinstance(e["data"].get("payload"), dict)]
    crumbs = {c.get("message") for c in custom if c.get("category") == "console"}
    assert {"signed in as [email]", "payment profile for [email] is incomplete"} <= crumbs, crumbs
    fetches = {c["description"]: c.get("data", {}) for c in custom if c.get("op") == "resource.fetch"}
    assert {"/api/data?api_key=[Filtered]&q=vegetables", "/api/data?api_key=[Filtered]&view=full",
            "/api/profile"} <= set(fetches), fetches
    full = fetches["/api/data?api_key=[Filtered]&view=full"]
    assert full["request"]["headers"] == {"authorization": "[Filtered]", "x-api-key": "[Filtered]"}, full
    assert full["response"]["body"] == {"items": 3, "owner": "[email]"}, full
    assert fetches["/api/profile"]["request"]["body"] == {"password": "[Filtered]", "note": "call ** *** *** ****"}
    metas = [e["data"]["href"] for e in events if e["type"] == 4]
    assert metas and all(h.endswith("/shop.html?session=[Filtered]&ref=newsletter") for h in metas), metas
    inputs = [e["data"]["text"] for e in events if e["type"] == 3 and e["data"].get("source") == 5]
    # #email and #phone are contact fields, masked from the first keystroke; #reference is a plain field
    # where the detector finds the whole address, and @typing masks the keystrokes before it.
    assert "[email]" in inputs and "*" * len(TYPED_PHONE) in inputs, inputs
    # rrweb sends a value per keystroke ("typed.pe", "+1 202 55"): every one of them is redacted too.
    assert all(re.fullmatch(r"[*\s]+|\[email\]", text) for text in inputs), inputs
    stored = json.dumps(events, ensure_ascii=False)
    assert '"name": "x-xsrf-token", "content": "' + "*" * 26 + '"' in stored  # masked, kept in place
    assert '"value": "****** **********"' in stored  # autocomplete=cc-name

    with closing(sqlite3.connect(f"file:{server.data_dir / 'replayd.sqlite3'}?mode=ro", uri=True)) as db:
        error = json.loads(db.execute("SELECT data FROM errors WHERE event_id = ?",
                                      (privacy_session.error_id,)).fetchone()[0])
    assert error["exception"]["value"] == "Payment declined for [email]"
    assert error["request"]["url"].endswith("/shop.html?session=[Filtered]&ref=newsletter")
    assert error["user"]["id"] == "u-3003" and error["user"]["email"].startswith("[hash:"), error["user"]
    assert "payment profile for [email] is incomplete" in {b.get("message") for b in error["breadcrumbs"]}


def test_the_scrub_report_counts_rules_without_values(privacy_session: PrivacySession) -> None:
    server = privacy_session.server
    replay = server.api(f"/api/0/projects/1/replays/{privacy_session.replay_id}/")["data"]
    report = replay["scrub_report"]
    assert report and report.get("total", 0) > 0, report
    by_rule = report["by_rule"]
    missing = [rule for rule in EXPECTED_RULES if not by_rule.get(rule)]
    assert not missing, f"rules that never fired: {missing}; report: {report}"
    assert all(isinstance(n, int) and n > 0 for n in by_rule.values()), report
    assert all(isinstance(n, int) and n > 0 for n in report["by_location"].values()), report
    assert {"dom.text", "dom.attr", "input", "meta.href"} <= set(report["by_location"]), report
    dumped = json.dumps(report)
    assert not [v for _, value in PLANTED for v in variants(value) if v in dumped], report

    error = server.api(f"/api/0/projects/1/errors/{privacy_session.error_id}/")["data"]
    assert error["replay_id"] == privacy_session.replay_id
    assert error["type"] == "Error"
    assert error["value"] == "Payment declined for [email]", error["value"]


# --- (2) the stored recording still replays -------------------------------------------------

REPLAYED_JS = """(args) => {
  const [t, structureSrc] = args;
  window.replayer.pause(t);
  const doc = window.replayer.iframe.contentDocument;
  const q = (s) => doc.querySelector(s);
  const text = (s) => { const e = q(s); return e ? e.textContent.replace(/\\s+/g, ' ').trim() : null; };
  const style = (s, pseudo) => {
    const e = q(s);
    return e ? doc.defaultView.getComputedStyle(e, pseudo || null) : null;
  };
  const pw = style('#password'), card = style('#card-number'), strength = style('.password-strength');
  const hint = style('.password-hint', '::before');
  return {
    structure: eval(structureSrc)(doc),
    counts: {h1: doc.querySelectorAll('h1').length, h2: doc.querySelectorAll('h2').length,
             forms: doc.querySelectorAll('form').length, inputs: doc.querySelectorAll('form input').length,
             links: doc.querySelectorAll('a[href]').length, labels: doc.querySelectorAll('label').length},
    title: doc.title,
    texts: Object.fromEntries(args[2].map(s => [s, text(s)])),
    values: {email: q('#email') && q('#email').value, phone: q('#phone') && q('#phone').value,
             nickname: q('#nickname') && q('#nickname').value, reference: q('#reference') && q('#reference').value,
             password: q('#password') && q('#password').value, card: q('#card-number') && q('#card-number').value},
    placeholder: q('#email') && q('#email').getAttribute('placeholder'),
    hrefs: Array.from(doc.querySelectorAll('a[href]')).map(a => a.getAttribute('href')),
    css: {passwordBorder: pw && [pw.borderTopStyle, pw.borderTopWidth, pw.borderTopColor],
          cardBorder: card && [card.borderTopStyle, card.borderTopColor],
          strengthColor: strength && strength.color, strengthWeight: strength && strength.fontWeight,
          hintBefore: hint && hint.content},
    styleTexts: Array.from(doc.querySelectorAll('style')).map(s => s.textContent),
  };
}"""


def test_the_stored_recording_replays_with_structure_css_and_text(privacy_session: PrivacySession, browser) -> None:
    events = privacy_session.server.replay_events(privacy_session.replay_id)
    assert any(e["type"] == 2 for e in events), "no full snapshot stored"
    end = events[-1]["timestamp"] - events[0]["timestamp"] + 1

    with rrweb_replayer(browser, privacy_session.site.url, events) as page:
        selectors = [s for s, _ in UNPLANTED_TEXT + MASKED_TEXT]
        got = page.evaluate(REPLAYED_JS, [end, STRUCTURE_JS, selectors])
    original = privacy_session.original

    # Structure: every element of the live page at the end, in order, with its id (scripts aside).
    assert got["structure"]["elements"] == original["elements"], (got["structure"]["elements"], original["elements"])
    assert got["counts"] == {"h1": 1, "h2": 4, "forms": 1, "inputs": 7, "links": 3, "labels": 7}, got["counts"]
    assert got["title"] == "Privacy test shop"

    # Unplanted text exactly as written; planted text masked in place (the element and its other words stay).
    for selector, expected in UNPLANTED_TEXT + MASKED_TEXT:
        assert got["texts"][selector] == expected, (selector, got["texts"][selector], expected)
    values = got["values"]
    assert values["email"] == "*" * len(TYPED_EMAIL), values
    assert values["reference"] == "[email]", values
    assert re.fullmatch(r"[*]+( [*]+)*", values["phone"] or ""), values
    assert values["nickname"] == "[email]", values
    assert re.fullmatch(r"[*]{%d,}" % len(TYPED_PASSWORD), values["password"] or ""), values
    assert re.fullmatch(r"[*\s]+", values["card"] or ""), values
    assert re.fullmatch(r"[*]+ [*]+", got["placeholder"] or ""), got["placeholder"]  # a contact field: masked
    hrefs = got["hrefs"]
    assert hrefs[0] == "https://shop.example.com/reset?token=[Filtered]&session=[Filtered]", hrefs
    assert "/account?api_key=[Filtered]&page=2" in hrefs[1], hrefs

    # CSS: every rule of the live page's stylesheets (inline and linked, both about passwords) replays unchanged.
    replayed_rules = set(got["structure"]["rules"])
    missing = [rule for rule in original["rules"] if rule not in replayed_rules]
    assert not missing, f"CSS rules lost or changed in the replay: {missing}"
    assert any("input[type=\"password\"]" in r or "input[type=password]" in r for r in original["rules"])
    assert any("input[type=password]" in t or 'input[type="password"]' in t
               for t in got["styleTexts"]), got["styleTexts"]
    assert any("Password rules" in t for t in got["styleTexts"]), got["styleTexts"]
    css = got["css"]
    assert css["passwordBorder"] == ["solid", "1px", "rgb(255, 0, 0)"], css
    assert css["cardBorder"] == ["dashed", "rgb(0, 0, 255)"], css
    assert css["strengthColor"] == "rgb(0, 128, 0)" and css["strengthWeight"] == "700", css
    assert css["hintBefore"] == '"Password rules: "', css
