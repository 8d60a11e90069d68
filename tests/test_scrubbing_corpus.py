"""The default rules on the real-world corpus (tests/data/corpus: Node.js docs pages, recorded with
@rrweb/record 2.1.6): no string holds personal data there, so none may change."""

from __future__ import annotations

import copy
import json

import pytest

from replayd.scrubbing import ReplayState, RuleSet, Scrubber
from tests.envelopes import cut_segments
from tests.harness import load_recording


@pytest.fixture(scope="module")
def corpus() -> list:
    return load_recording()


def strings(root) -> dict[str, str]:
    """Every string in the tree by its path (iterative)."""
    out: dict[str, str] = {}
    stack = [(root, "")]
    while stack:
        o, p = stack.pop()
        if isinstance(o, dict):
            stack.extend((v, f"{p}.{k}") for k, v in o.items())
        elif isinstance(o, list):
            stack.extend((v, f"{p}[{i}]") for i, v in enumerate(o))
        elif isinstance(o, str):
            out[p] = o
    return out


def scrub_session(events: list):
    s = Scrubber(RuleSet.default(), secret=b"corpus")
    state = ReplayState()
    reports = []
    for seg in cut_segments(events):
        res = s.scrub_recording(seg, ReplayState.from_bytes(state.to_bytes()))
        state = res.state
        reports.append(res.report)
    return reports, state


def test_default_rules_change_no_string_of_the_corpus(corpus):
    events = copy.deepcopy(corpus)
    reports, state = scrub_session(events)
    before, after = strings(corpus), strings(events)
    changed = sorted(p for p in before if before[p] != after.get(p))
    assert len(before) > 50_000  # the walk saw the real thing
    assert changed == []
    assert sum(r.total for r in reports) == 0
    assert len(state.to_bytes()) < 1000  # a few meta/input elements, no per-node bulk


def test_planted_data_in_the_corpus_is_found(corpus):
    """The same walk is not blind: plant values in a deep text node, an attribute, a URL."""
    events = copy.deepcopy(corpus)
    snaps = [e for e in events if e["type"] == 2]
    big = max(snaps, key=lambda e: len(json.dumps(e)))
    texts, links = [], []
    stack = [big["data"]["node"]]
    while stack:
        n = stack.pop()
        if n.get("type") == 3 and len(n.get("textContent", "")) > 20:
            texts.append(n)
        if n.get("type") == 2 and "href" in n.get("attributes", {}):
            links.append(n)
        stack.extend(n.get("childNodes", ()))
    texts[-1]["textContent"] += " jane.roe@example.net"
    links[-1]["attributes"]["href"] += "?token=s3cr3t"
    links[-2]["attributes"]["title"] = "call +44 20 7946 0958"
    reports, _ = scrub_session(events)
    out = json.dumps(events)
    assert "jane.roe@example.net" not in out and "s3cr3t" not in out and "7946 0958" not in out
    assert sum(r.total for r in reports) == 3
