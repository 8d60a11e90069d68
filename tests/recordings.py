"""The real recordings in tests/data, and rewrites of them that keep their shape but not their text.

- ``RECORDINGS``: every recording the repository holds (the shared corpus and those recorded for
  this project; provenance in the READMEs beside them).
- ``with_click_breadcrumbs(events)``: the recording with the ``ui.click`` breadcrumb replayd's
  snippet now adds after each click (the recordings predate it), describing the element as the
  snippet does (``static/replayd/breadcrumbs.js``).
- ``Rewriter(segment_text)`` then ``.rewrite(seed)``: the same segment JSON with every letter and
  digit of its text (text nodes, attribute values, URLs, CSS, payload strings) put through a
  permutation chosen by ``seed``: the same length in bytes, the same structure, the same keys and
  numbers, the same repeats inside one session, but no string shared with another seed. A benchmark
  that sends rewrites of one recording as many sessions measures a server that has never seen their
  text (cold caches), not one that looks each string up in a cache it filled with the first copy.

Left as they are, so that the scrubber takes the same paths: object keys (attribute names among
them), the values of the keys in ``STRUCTURAL_KEYS`` (tag names, input types, custom-event tags),
JSON escapes, percent escapes, URL schemes and the ``data:...;base64,`` prefix of inline images.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

from tests.harness import CORPUS, DATA

RECORDINGS: list[Path] = [CORPUS, *sorted((DATA / "recordings").glob("*.json.br"))]

STRUCTURAL_KEYS = frozenset({"tagName", "tag", "type", "plugin", "category", "op", "level", "source", "rr_src"})

# A JSON string, then ':' when it is an object's key (compact JSON: nothing between).
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"(:?)', re.S)
_KEEP_INSIDE = re.compile(
    r"\\u[0-9a-fA-F]{4}|\\.|%[0-9a-fA-F]{2}|\b[a-z][a-z0-9+.-]{1,15}://|\bdata:[^,;\"]{0,60};base64,"
)
_ALPHABETS = ("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789")


class Rewriter:
    """One segment's JSON cut once into the parts a rewrite keeps and the parts it permutes."""

    def __init__(self, segment_text: bytes) -> None:
        text = segment_text.decode()
        # The output is kept[0] + T(changed[0]) + kept[1] + ... + T(changed[-1]) + kept[-1].
        kept: list[str] = []
        changed: list[str] = []
        last = 0  # where the next kept stretch starts

        def change(start: int, end: int) -> None:
            nonlocal last
            if end > start:
                kept.append(text[last:start])
                changed.append(text[start:end])
                last = end

        previous_key: str | None = None
        previous_key_end = -1
        for m in _STRING.finditer(text):
            if m.group(2):
                previous_key, previous_key_end = m.group(1), m.end()
                continue
            if previous_key in STRUCTURAL_KEYS and m.start() == previous_key_end:
                continue
            start, end = m.span(1)
            for piece in _KEEP_INSIDE.finditer(text, start, end):
                change(start, piece.start())
                start = piece.end()
            change(start, end)
        kept.append(text[last:])
        self._kept = kept
        self._changed = changed

    def rewrite(self, seed: int) -> bytes:
        """The segment with its text permuted by ``seed`` (the same seed, the same permutation)."""
        table = permutation(seed)
        parts = []
        for kept, changed in zip(self._kept, self._changed, strict=False):
            parts.append(kept)
            parts.append(changed.translate(table))
        parts.append(self._kept[-1])
        return "".join(parts).encode()


def permutation(seed: int) -> dict[int, int]:
    """A translation table that maps each letter and digit to another of its kind, by ``seed``."""
    rng = random.Random(seed)
    table: dict[int, int] = {}
    for alphabet in _ALPHABETS:
        shuffled = list(alphabet)
        rng.shuffle(shuffled)
        table.update(zip(map(ord, alphabet), map(ord, shuffled), strict=True))
    return table


def rewrite_text(text: str, seed: int) -> str:
    """One string as ``Rewriter.rewrite`` would write it inside a segment (a replay event's URLs)."""
    table = permutation(seed)
    out, last = [], 0
    for piece in _KEEP_INSIDE.finditer(text):
        out.append(text[last:piece.start()].translate(table))
        out.append(piece.group())
        last = piece.end()
    out.append(text[last:].translate(table))
    return "".join(out)


# --- the snippet's click breadcrumbs --------------------------------------------------------------

# The snippet's rule for the element a click names: the innermost one of these that the clicked node
# is or is inside (static/replayd/breadcrumbs.js), else the clicked node.
CLICKABLE_TAGS = frozenset({"a", "button", "input", "select", "textarea", "summary", "label", "option"})
CLICK_ROLES = frozenset({
    "button", "checkbox", "combobox", "gridcell", "link", "menuitem", "menuitemcheckbox", "menuitemradio",
    "option", "radio", "row", "searchbox", "slider", "spinbutton", "switch", "tab", "textbox", "treeitem",
})
DESCRIBED = ("id", "class", "role", "aria-label", "data-testid", "alt", "title", "type")
TEXT_BUDGET = 200  # characters of text the snippet sends


class _Node:
    __slots__ = ("tag", "attrs", "text", "kids", "parent")

    def __init__(self, raw: dict[str, Any], parent: int | None) -> None:
        self.tag = raw.get("tagName") if raw.get("type") == 2 else None
        self.attrs = dict(raw.get("attributes") or {})
        self.text = raw.get("textContent") if raw.get("type") == 3 else None
        self.kids: list[int] = []
        self.parent = parent


def with_click_breadcrumbs(events: list[Any]) -> list[Any]:
    """``events`` with a ``ui.click`` breadcrumb after each click, as the snippet sends it. The DOM is
    followed through full snapshots and mutations in a tree of its own (``events`` is not changed)."""
    nodes: dict[int, _Node] = {}

    def index(raw: Any, parent: int | None) -> None:
        stack = [(raw, parent)]
        while stack:
            n, pid = stack.pop()
            if not isinstance(n, dict) or not isinstance(n.get("id"), int):
                continue
            nodes[n["id"]] = _Node(n, pid)
            if pid in nodes:
                nodes[pid].kids.append(n["id"])
            stack.extend((k, n["id"]) for k in reversed(n.get("childNodes") or []))

    out: list[Any] = []
    for event in events:
        out.append(event)
        data = event.get("data") if isinstance(event, dict) else None
        if not isinstance(data, dict):
            continue
        if event.get("type") == 2:
            nodes = {}
            index(data.get("node"), None)
        elif event.get("type") == 3 and data.get("source") == 0:
            for r in data.get("removes") or []:
                gone = nodes.pop(r.get("id"), None)
                if gone is not None and gone.parent in nodes:
                    nodes[gone.parent].kids = [k for k in nodes[gone.parent].kids if k != r["id"]]
            for a in data.get("adds") or []:
                index(a.get("node"), a.get("parentId"))
            for t in data.get("texts") or []:
                if t.get("id") in nodes:
                    nodes[t["id"]].text = t.get("value")
            for a in data.get("attributes") or []:
                node = nodes.get(a.get("id"))
                for name, value in (a.get("attributes") or {}).items() if node is not None else ():
                    if value is None:
                        node.attrs.pop(name, None)
                    else:
                        node.attrs[name] = value
        elif event.get("type") == 3 and data.get("source") == 2 and data.get("type") == 2 and data.get("id") in nodes:
            out.append({"type": 5, "timestamp": event.get("timestamp"), "data": {"tag": "breadcrumb", "payload": {
                "timestamp": event.get("timestamp", 0) / 1000, "type": "default", "category": "ui.click",
                "data": {"nodeId": data["id"], "node": _described(nodes, data["id"])}}}})
    return out


def _described(nodes: dict[int, _Node], clicked: int) -> dict[str, Any]:
    target = clicked
    at: int | None = clicked
    while at is not None and at in nodes:
        n = nodes[at]
        role = n.attrs.get("role")
        if n.tag in CLICKABLE_TAGS or "data-testid" in n.attrs or role in CLICK_ROLES:
            target = at
            break
        at = n.parent
    element = nodes[target]
    texts: list[list[Any]] = []
    budget = TEXT_BUDGET
    stack = [target]
    while stack and budget > 0:
        nid = stack.pop()
        n = nodes.get(nid)
        if n is None:
            continue
        if isinstance(n.text, str) and n.text.strip() and nid != target:
            texts.append([nid, n.text[:budget]])
            budget -= len(n.text)
        stack.extend(reversed(n.kids))
    return {"id": target, "tagName": str(element.tag or "").upper(),
            "attributes": {k: element.attrs[k] for k in DESCRIBED if isinstance(element.attrs.get(k), str)},
            "texts": texts}
