"""Custom and Plugin events: payloads the Sentry SDK, replayd's snippet and rrweb plugins add to
a recording (breadcrumbs, performance spans, the SDK's options, console output, ...).

They are JSON payloads, scrubbed by name, key and value (``payloads``).  A breadcrumb can also
carry a copy of the DOM node it is about (a click's target): that copy is masked the way the
node itself was.
"""

from __future__ import annotations

from typing import Any

from .builtin import BLOCK_KEEP_ATTRIBUTES
from .domwalk import DomWalker
from .payloads import scrub_json
from .redaction import mask_text
from .state import BLOCK, DROPPED, MASK


def scrub_custom(w: DomWalker, d: dict[str, Any]) -> None:
    """A Custom event's ``payload``, by its ``tag``; the SDK's ``options`` and tags of no known
    shape are scrubbed like any payload (nothing in them is trusted blindly)."""
    tag = d.get("tag")
    payload = d.get("payload")
    if payload is None:
        return
    if tag == "breadcrumb":
        loc = "breadcrumb"
        _mask_breadcrumb_node(w, payload)
    elif tag == "performanceSpan":
        loc = "span"
    else:
        loc = "custom"
    d["payload"] = scrub_json(w.c, payload, loc, w.report)


def _mask_breadcrumb_node(w: DomWalker, payload: object) -> None:
    """The element a click breadcrumb describes (``data.node``: the Sentry SDK's and replayd's
    snippet's), scrubbed as the walk scrubbed that element in the DOM: gone if it was inside a
    blocked subtree, a blocked element's attributes cut to what a block keeps, each attribute as
    the element's own, and the text masked where the node's flags say so.  The snippet sends each
    text node apart (``texts``: ``[[text node id, text], ...]``) so that each is masked or dropped
    by its own flags (a masked span inside a button); the Sentry SDK sends ``textContent`` only."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict) or data.get("node") is None:
        return
    node = data["node"]
    if not isinstance(node, dict) or not isinstance(node.get("id"), int):
        del data["node"]  # not a description we can check against the DOM's rules
        return
    flags_map = w.state.flags
    nid = node["id"]
    f = flags_map.get(nid, 0)
    if f & DROPPED:
        del data["node"]
        w.report.add(w.rule_id(f), "breadcrumb")
        return
    attrs = node.get("attributes")
    if isinstance(attrs, dict):
        if f & BLOCK:
            for k in [k for k in attrs if k not in BLOCK_KEEP_ATTRIBUTES]:
                del attrs[k]
        mattr = w.state.masked_attrs.get(nid)
        for k, v in attrs.items():
            if isinstance(v, str) and v:
                attrs[k] = w.attr_value(k, v, f, mattr, "breadcrumb")
    elif attrs is not None:
        del node["attributes"]
    text = node.get("textContent")
    if isinstance(text, str) and text and f & (MASK | BLOCK):  # a blocked element's text is not stored
        node["textContent"] = mask_text(text)
        w.report.add(w.rule_id(f), "breadcrumb")
    texts = node.get("texts")
    if texts is not None:
        node["texts"] = _texts(w, texts, f) if isinstance(texts, list) else []


def _texts(w: DomWalker, texts: list[Any], element_flags: int) -> list[Any]:
    """The described element's text nodes, each as its flags say (a blocked element has none)."""
    if element_flags & BLOCK:
        return []
    kept = []
    flags_map = w.state.flags
    for t in texts:
        if not (isinstance(t, list) and len(t) == 2 and isinstance(t[0], int) and isinstance(t[1], str)):
            continue
        f = flags_map.get(t[0], 0)
        if f & DROPPED:
            continue
        if f & MASK:
            masked = mask_text(t[1])
            if masked != t[1]:
                w.report.add(w.rule_id(f), "breadcrumb")
            kept.append([t[0], masked])
        else:
            kept.append([t[0], w.c.text.scrub(t[1], "breadcrumb", w.report)])
    return kept


def scrub_plugin(w: DomWalker, d: dict[str, Any]) -> None:
    """A Plugin event's ``payload`` (console output for rrweb's console plugin)."""
    plugin = d.get("plugin")
    loc = "console" if isinstance(plugin, str) and "console" in plugin else "plugin"
    if "payload" in d:
        d["payload"] = scrub_json(w.c, d["payload"], loc, w.report)
