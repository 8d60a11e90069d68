"""Rule schema: parse_rules, problems naming each bad rule, future tolerance, selectors,
worker reconstruction."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from replayd.scrubbing import ReplayState, RulesError, RuleSet, Scrubber, parse_rules
from replayd.scrubbing.dommatch import DomMatcher
from replayd.scrubbing.selectors import SelectorError, parse_selector

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("source", [None, "", "   \n", "# only a comment\n", {}])
def test_empty_gives_defaults(source):
    assert parse_rules(source) == RuleSet.default()


def test_defaults_content():
    rs = RuleSet.default()
    assert "token" in rs.urls.params and "email" in rs.urls.params and len(rs.urls.params) == 20
    assert rs.user.policy == "hash"
    c = Scrubber(rs, secret=b"k")._c
    assert [r.rule_id for r in c.dom.rules] == ["dom:password-input", "dom:card-autocomplete", "dom:contact-input",
                                                 "dom:csrf-meta", "dom:personal-autocomplete", "dom:hidden-input"]


def test_example_rules_file_parses_strictly():
    rs = parse_rules((ROOT / "examples" / "rules.yaml").read_text())
    assert rs.warnings == []
    assert [c.name for c in rs.custom] == ["employee-id", "order-ref"]
    s = Scrubber(rs, secret=b"k")
    assert s.scrub_text("EMP-123456 and ord-abcd1234")[0] == "********** and [order]"


def problems(source) -> list[str]:
    with pytest.raises(RulesError) as ei:
        parse_rules(source)
    return ei.value.problems


def test_bad_regex_named():
    p = problems("custom:\n  - {name: a, pattern: 'ok'}\n  - {name: b, pattern: 'x'}\n"
                 "  - {name: c, pattern: '(unclosed'}\n")
    assert len(p) == 1 and p[0].startswith("rules.custom[2].pattern: invalid regex: ")


def test_empty_matching_regex_rejected():
    assert problems({"custom": [{"name": "a", "pattern": "x*"}]}) == [
        "rules.custom[0].pattern: pattern matches the empty string"]


def test_unknown_detector_named():
    p = problems("detectors:\n  emial: true\n")
    assert len(p) == 1 and p[0].startswith("rules.detectors.emial: unknown detector")


def test_bad_selector_named():
    p = problems({"dom": {"rules": [{"selector": "div"}, {"selector": "a:hover", "action": "mask"}]}})
    assert p == ["rules.dom.rules[1].selector: bad selector: unexpected ':' at 1 in 'a:hover'"]


def test_bad_redaction_named():
    p = problems({"detectors": {"email": "scramble"},
                  "custom": [{"name": "x", "pattern": "y", "redaction": {"style": "blur"}}]})
    assert p == [
        "rules.detectors.email.redaction.style: unknown redaction 'scramble' (known: mask, replace, hash, remove)",
        "rules.custom[0].redaction.style: unknown redaction 'blur' (known: mask, replace, hash, remove)",
    ]


def test_several_problems_at_once():
    p = problems({"custom": [{"name": "a", "pattern": "("}], "dom": {"rules": [{"selector": "> a"}]}})
    assert len(p) == 2
    assert p[0].startswith("rules.custom[0].pattern") and p[1].startswith("rules.dom.rules[0].selector")


def test_wrong_types_and_yaml():
    assert problems("detectors: [1, 2]")[0].startswith("rules.detectors: ")
    assert problems("custom: [{name: a}]") == ["rules.custom[0].pattern: Field required"]
    assert problems("a: [")[0].startswith("rules: invalid YAML")
    assert problems("- 1") == ["rules: expected a mapping at the top, got list"]
    assert problems({"dom": {"rules": [{"selector": "a", "action": "mask_attributes"}]}}) == [
        "rules.dom.rules[0]: mask_attributes needs a non-empty `attributes` list"
    ]


FUTURE = {
    "version": 2,
    "retention": {"days": 3},  # a future section
    "detectors": {"passport": True, "email": {"enabled": True, "fuzzy": True}},
    "dom": {"rules": [{"selector": ".x", "action": "explode"}], "builtin": {"new-rule": False}},
    "custom": [{"name": "a", "pattern": "secret-\\d+", "redaction": "encrypt"}],
    "user": {"policy": "pseudonymise"},
}


def test_future_rules_are_problems_in_check_mode():
    p = problems(FUTURE)
    assert "rules.retention: unknown field" in p
    assert "rules.detectors.email.fuzzy: unknown field" in p
    assert any(x.startswith("rules.detectors.passport: unknown detector") for x in p)
    assert any(x.startswith("rules.dom.rules[0].action: unknown action 'explode'") for x in p)
    assert any(x.startswith("rules.dom.builtin.new-rule: unknown built-in DOM rule") for x in p)
    assert any(x.startswith("rules.custom[0].redaction.style: unknown redaction 'encrypt'") for x in p)
    assert any(x.startswith("rules.user.policy: unknown policy") for x in p)


def test_a_version_key_is_ignored():
    """Rules files of older versions start with `version: 1`: they still pass check mode."""
    rs = parse_rules("version: 1\ncustom: [{name: a, pattern: 'a-\\d+'}]\n")
    assert "version" not in rs.model_dump() and rs.custom[0].pattern == "a-\\d+"


def test_future_rules_never_crash_a_running_server():
    rs = parse_rules(FUTURE, strict=False)
    assert len(rs.warnings) == 7
    s = Scrubber(rs, secret=b"k")
    # unknown redaction falls back to replace; unknown action to block
    assert s.scrub_text("secret-42 x@example.com")[0] == "[a] [email]"
    events = [{"type": 2, "data": {"node": {"type": 0, "id": 1, "childNodes": [
        {"type": 2, "id": 2, "tagName": "div", "attributes": {"class": "x"}, "childNodes": [
            {"type": 3, "id": 3, "textContent": "hidden"}]}]}}}]
    s.scrub_recording(events)
    assert events[0]["data"]["node"]["childNodes"][0]["childNodes"] == []
    # unknown user policy: the safest, remove
    ev, _ = s.scrub_error_event({"user": {"id": "1", "email": "a@b.co"}})
    assert "user" not in ev
    # and the dump round-trips, unknowns included
    assert RuleSet.model_validate(rs.model_dump()).model_dump() == rs.model_dump()


def test_scrubber_pickles_with_its_rules_and_secret():
    rs = parse_rules({"detectors": {"email": "hash"}, "dom": {"rules": [{"selector": ".p span", "action": "mask"}]}})
    s = Scrubber(rs, secret=b"worker-secret")
    s2 = pickle.loads(pickle.dumps(s))
    text = "x@example.com"
    assert s.scrub_text(text)[0] == s2.scrub_text(text)[0]
    assert s.fingerprint == s2.fingerprint
    assert Scrubber(rs, secret=b"other").scrub_text(text)[0] != s.scrub_text(text)[0]
    assert len(pickle.dumps(s)) < 5000  # cheap to ship to a worker


# ----------------------------------------------------------------------------- selectors
def el(tag, **attrs):
    return (tag, {k.replace("_", "-"): v for k, v in attrs.items()})


def matches(selector, chain):
    """Whether ``selector`` matches ``chain[0]``, with ``chain[1:]`` its parent, grandparent...:
    the walker's matcher, fed from the root down as the walk goes."""
    matcher = DomMatcher([("dom:test", selector, "mask", [])])
    context = (0, 0)
    for tag, attrs in reversed(chain):
        hits, context = matcher.match(tag, attrs, context)
    return hits == [0]


@pytest.mark.parametrize(
    "selector,element,ok",
    [
        ("input", el("input"), True),
        ("input", el("div"), False),
        ("*", el("div"), True),
        ("#main", el("div", id="main"), True),
        ("#main", el("div", id="main2"), False),
        (".a.b", el("div", **{"class": "b x a"}), True),
        (".a.b", el("div", **{"class": "a"}), False),
        ("[data-x]", el("p", data_x=""), True),
        ("[data-x]", el("p"), False),
        ("input[type=password]", el("input", type="password"), True),
        ("input[type='password']", el("input", type="text"), False),
        ('[autocomplete^="cc-"]', el("input", autocomplete="cc-number"), True),
        ("[autocomplete^=cc-]", el("input", autocomplete="email"), False),
        ("meta[name*=csrf]", el("meta", name="x-csrf-token"), True),
        ('[href$=".pdf"]', el("a", href="/a.pdf"), True),
        ('[href$=".pdf"]', el("a", href="/a.pdfx"), False),
        ("[lang|=en]", el("p", lang="en-GB"), True),
        ("[rel~=nofollow]", el("a", rel="noopener nofollow"), True),
        ("[type=PASSWORD i]", el("input", type="password"), True),
        ("[type=PASSWORD]", el("input", type="password"), False),
    ],
)
def test_compound_matching(selector, element, ok):
    assert matches(selector, [element]) is ok


def test_combinators_and_lists():
    sl = parse_selector(".private span, form#login > input , ul li a")
    assert [len(c.compounds) for c in sl.selectors] == [2, 2, 3]
    assert sl.selectors[1].combinators == (">",)
    assert str(sl) == ".private span, form#login > input, ul li a"
    desc, child, three = (str(c) for c in sl.selectors)
    assert matches(desc, [el("span"), el("b"), el("div", **{"class": "private"}), el("body")])
    assert not matches(desc, [el("span"), el("b"), el("body")])
    assert matches(child, [el("input"), el("form", id="login")])
    assert not matches(child, [el("input"), el("div"), el("form", id="login")])
    assert matches(three, [el("a"), el("li"), el("div"), el("ul")])
    assert not matches(three, [el("a"), el("ul"), el("li")])


@pytest.mark.parametrize("bad", ["", "a:hover", "a >", "> a", "a,,b", "a + b", "a ~ b", "[x=", "a*", "div#", "::before",
                                 ".1x", "[href$=.pdf]"])
def test_bad_selectors(bad):
    with pytest.raises(SelectorError):
        parse_selector(bad)


def test_replay_state_round_trip_and_version_mark():
    st = ReplayState()
    st.flags[5] = 9
    st.masked_attrs[6] = ("content",)
    st.elems[7] = [1, "input", {"type": "password"}]
    st.ctx[8] = (3, 1)
    st.rules_fp = "abc"
    again = ReplayState.from_bytes(st.to_bytes())
    assert again == st and again.elems[7] == [1, "input", {"type": "password"}]
    from replayd.scrubbing import StateError

    with pytest.raises(StateError):
        ReplayState.from_bytes(b"\x93\xa3rs9\x00\x00")
    assert ReplayState.from_bytes(None) == ReplayState()
