"""The scrubber's DOM walk in C (scrubbing/_domwalk.c) against its Python twin: the same events, replay
state and report on recordings and on random, often malformed, node trees, under several rule sets."""

from __future__ import annotations

import copy
import random
from typing import Any

import orjson
import pytest

from replayd.scrubbing import ReplayState, RuleSet, Scrubber, domwalk, parse_rules
from replayd.scrubbing.builtin import BUILTIN_DOM_RULES
from replayd.scrubbing.domwalk import NO_CTX, DomWalker
from replayd.scrubbing.report import ScrubReport
from tests.envelopes import cut_segments
from tests.harness import load_recording
from tests.recordings import RECORDINGS

SECRET = b"walk-in-c"

RULE_SETS: dict[str, Any] = {
    "default": None,
    "no DOM rules": {"dom": {"builtin": {r["name"]: False for r in BUILTIN_DOM_RULES}}},
    "by class and tag": {"dom": {"rules": [
        {"selector": ".private, [data-private]", "action": "mask"},
        {"selector": "img, .ad", "action": "block"},
        {"selector": "a", "action": "mask_attributes", "attributes": ["href", "title"]}]}},
    "combinators": {"dom": {"rules": [
        {"selector": "nav a, section.account span", "action": "mask"},
        {"selector": "body > div", "action": "mask_attributes", "attributes": ["class"]}]}},
    "every element": {"dom": {"rules": [{"selector": "*", "action": "mask_attributes", "attributes": ["title"]}]}},
    "a custom pattern": {"custom": [{"name": "the", "pattern": "[Tt]he"}]},
}


def scrubbed(segments: list[list[Any]], rules: Any, in_c: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Each segment scrubbed in turn (the state carried) by the C walk or the Python one: what came out."""
    monkeypatch.setattr(domwalk, "_walk_in_c", WALK_IN_C if in_c else None)
    scrubber = Scrubber(parse_rules(rules) if rules is not None else RuleSet.default(), secret=SECRET)
    state = ReplayState()
    out = []
    for events in copy.deepcopy(segments):
        result = scrubber.scrub_recording(events, state)
        out.append((result.events, result.report.to_dict(), result.state.to_bytes()))
    return out


WALK_IN_C = domwalk._walk_in_c


def test_the_c_walk_is_built():
    """make test builds scrubbing/_domwalk.c (scripts/ensure-compiler.sh): without it every node takes the
    Python walk, at several times the CPU."""
    assert WALK_IN_C is not None, "scrubbing/_domwalk.c was not built: see scripts/ensure-compiler.sh"


@pytest.mark.parametrize("rules", list(RULE_SETS))
def test_recordings_come_out_of_both_walks_the_same(rules, monkeypatch):
    segments = [orjson.loads(orjson.dumps(s)) for path in RECORDINGS[:3]
                for s in cut_segments(load_recording(path), 5.0)]
    assert scrubbed(segments, RULE_SETS[rules], True, monkeypatch) == scrubbed(
        segments, RULE_SETS[rules], False, monkeypatch)


def test_the_c_walk_takes_the_common_nodes(monkeypatch):
    """Under the default rules, the C walk hands few nodes to the Python walk (those a rule may match,
    and what is under a mask): else it would save nothing."""
    handed: list[int] = []
    kids_walker = DomWalker._kids_walker

    def counting(self: DomWalker, stack: list[Any]) -> Any:
        walk_kids = kids_walker(self, stack)

        def counted(kids: Any, *rest: Any) -> None:
            handed.append(len(kids))
            walk_kids(kids, *rest)
        return counted

    monkeypatch.setattr(DomWalker, "_kids_walker", counting)
    segments = [orjson.loads(orjson.dumps(s)) for s in cut_segments(load_recording(RECORDINGS[0]), 5.0)]
    nodes = orjson.dumps(segments).count(b'"type":')  # nodes and events
    scrubbed(segments, None, True, monkeypatch)
    assert 0 < sum(handed) < nodes / 20


TEXTS: list[Any] = [
    "hello world", "a@b.cd", "mail me at jane.doe@example.com", "card 4111 1111 1111 1111", "+1 415 555 0100",
    "https://shop.example/a?token=abc123def&q=1", "/path;jsessionid=ABCDEF0123", "color: red; width: 10px",
    "background: url(https://cdn.example/x.png?email=jane%40example.com)", "", "short", "The end",
    "Bearer abcdefghijklmnopqrstuvwxyz0123", "data:image/png;base64,iVBORw0KGgo=", "ＡＢＣ jane@example.com",
    "img.png 1x, https://x.example/u?session=42 2x", 42, None, True, 1.5,
]
TAGS = ["div", "span", "input", "meta", "a", "img", "form", "nav", "section", "label", "body", "DIV", "INPUT",
        "linearGradient", "é", "", 7, None]
ATTR_NAMES = ["class", "id", "href", "src", "srcset", "style", "title", "value", "type", "name", "autocomplete",
              "content", "data-private", "d", "rr_dataURL", "_cssText", "placeholder"]
ATTR_VALUES: list[Any] = [*TEXTS, "private", "ad", "account", "password", "hidden", "email", "cc-number",
                          "csrf-token", "given-name", {"nested": "jane@example.com"}, ["jane@example.com"]]


class Trees:
    """Random rrweb node trees, now and then malformed as no recorder writes them."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.next_id = 1
        self.ids: list[int] = []

    def odd(self, p: float = 0.005) -> bool:
        return self.rng.random() < p

    def node(self, depth: int) -> Any:
        rng = self.rng
        if self.odd(0.01):
            return rng.choice([None, "text", 3, ["x"], {}])
        nid = self.next_id
        if self.ids and self.odd(0.1):  # an id again: a node moved, or a recorder's bug
            nid = rng.choice(self.ids)
        else:
            self.next_id += 1
            self.ids.append(nid)
        roll = rng.random()
        if depth > 5 or roll < 0.45:
            node: dict[str, Any] = {"type": rng.choice([3, 3, 3, 4, 5]), "id": nid,
                                    "textContent": rng.choice(TEXTS)}
            if self.odd(0.1):
                node["isStyle"] = rng.choice([True, False, 1, ""])
        elif roll < 0.95:
            attrs = {rng.choice(ATTR_NAMES): rng.choice(ATTR_VALUES) for _ in range(rng.randrange(4))}
            node = {"type": 2, "id": nid, "tagName": rng.choice(TAGS), "attributes": attrs,
                    "childNodes": [self.node(depth + 1) for _ in range(rng.randrange(4))]}
        else:
            node = {"type": rng.choice([0, 1, 9, 11]), "id": nid,
                    "childNodes": [self.node(depth + 1) for _ in range(rng.randrange(3))]}
        if self.odd():
            del node[rng.choice(list(node))]
        if self.odd():
            node["type"] = rng.choice([2.0, 3.0, True, "2", 2**70, -1, None])
        if self.odd() and "childNodes" in node:
            node["childNodes"] = rng.choice([{}, "abc", None, 0, {"type": 3}])
        if self.odd() and "attributes" in node:
            node["attributes"] = rng.choice([[], None, ["class"], "x"])
        return node

    def segment(self, first: bool) -> list[Any]:
        rng = self.rng
        events: list[Any] = []
        if first or self.odd(0.2):
            self.ids.clear()
            root = {"type": 0, "id": 0, "childNodes": [self.node(0) for _ in range(rng.randrange(1, 4))]}
            events.append({"type": 2, "timestamp": 1, "data": {"node": root}})
        for _ in range(rng.randrange(1, 4)):
            adds = [{"parentId": rng.choice(self.ids or [0]), "nextId": None, "node": self.node(1)}
                    for _ in range(rng.randrange(1, 4))]
            texts = [{"id": rng.choice(self.ids or [0]), "value": rng.choice(TEXTS)} for _ in range(rng.randrange(2))]
            attributes = [{"id": rng.choice(self.ids or [0]),
                           "attributes": {rng.choice(ATTR_NAMES): rng.choice(ATTR_VALUES)}}
                          for _ in range(rng.randrange(2))]
            events.append({"type": 3, "timestamp": 2, "data": {"source": 0, "adds": adds, "texts": texts,
                                                               "attributes": attributes, "removes": []}})
        return events


@pytest.mark.parametrize("rules", list(RULE_SETS))
def test_random_trees_come_out_of_both_walks_the_same(rules, monkeypatch):
    """Random trees, with personal data in texts and attributes, masks and blocks under each rule set,
    and nodes of every malformed shape (a malformed node sends its event to the fallback: both walks
    must have changed the same things before it)."""
    for seed in range(60):
        trees = Trees(seed)
        segments = [trees.segment(i == 0) for i in range(4)]
        in_c = scrubbed(segments, RULE_SETS[rules], True, monkeypatch)
        assert in_c == scrubbed(segments, RULE_SETS[rules], False, monkeypatch), f"seed {seed}"


@pytest.mark.parametrize("in_c", [True, False])
def test_an_element_added_again_outside_the_rules_loses_its_masked_attributes(in_c, monkeypatch):
    """A node id that a mask_attributes rule matched, added again as an element no rule matches (a node
    moved, or a recorder reusing ids): its later attribute changes are no longer masked, in both walks."""
    link = {"type": 2, "id": 5, "tagName": "a", "attributes": {"href": "/about"}, "childNodes": []}
    plain = {"type": 2, "id": 5, "tagName": "div", "attributes": {"title": "Menu"}, "childNodes": []}
    root = {"type": 0, "id": 1, "childNodes": [{"type": 2, "id": 2, "tagName": "body", "attributes": {},
                                                "childNodes": [link]}]}

    def changed(title: str) -> dict[str, Any]:
        return {"type": 3, "timestamp": 3, "data": {"source": 0, "adds": [], "texts": [], "removes": [],
                                                    "attributes": [{"id": 5, "attributes": {"title": title}}]}}

    segments = [[{"type": 2, "timestamp": 1, "data": {"node": root}}, changed("Home")],
                [{"type": 3, "timestamp": 2, "data": {"source": 0, "adds": [{"parentId": 2, "node": plain}],
                                                      "texts": [], "attributes": [], "removes": []}},
                 changed("About us")]]
    out = scrubbed(segments, RULE_SETS["by class and tag"], in_c, monkeypatch)
    assert out[0][0][1]["data"]["attributes"][0]["attributes"]["title"] == "****"
    assert out[1][0][1]["data"]["attributes"][0]["attributes"]["title"] == "About us"


@pytest.mark.parametrize("rules", ["default", "no DOM rules", "combinators"])
def test_a_malformed_tree_raises_the_same_error_in_both_walks(rules, monkeypatch):
    """The recording walk catches a malformed node's error and scrubs its event generically: what was
    changed before the error, and the error itself, must be the same in both walks."""
    def walked(root: Any, in_c: bool) -> Any:
        monkeypatch.setattr(domwalk, "_walk_in_c", WALK_IN_C if in_c else None)
        scrubber = Scrubber(parse_rules(RULE_SETS[rules]) if RULE_SETS[rules] else RuleSet.default(), secret=SECRET)
        walker = DomWalker(scrubber._c, ReplayState(), ScrubReport())
        try:
            walker.walk(root, None, 0, NO_CTX)
            error = None
        except Exception as exc:  # the error's type is what is compared
            error = type(exc)
        return root, error, walker.report.to_dict(), walker.state.to_bytes()

    errors = set()
    for seed in range(300):
        root = {"type": 0, "id": 0, "childNodes": [Trees(seed).node(0) for _ in range(3)]}
        in_c = walked(copy.deepcopy(root), True)
        assert in_c == walked(copy.deepcopy(root), False), f"seed {seed}"
        errors.add(in_c[1])
    assert len(errors) > 2  # no error, and several kinds
