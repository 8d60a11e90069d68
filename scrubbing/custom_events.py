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


# The Sentry SDK's names for attributes it renames -> the DOM's names rules are written with.
_SDK_NAMES = {"testid": ("data-testid", "data-test-id")}


def _mask_breadcrumb_node(w: DomWalker, payload: object) -> None:
    """The element a click breadcrumb describes (``data.node``: the Sentry SDK's and replayd's
    snippet's), scrubbed as the walk scrubbed that element in the DOM: gone if it was inside a
    blocked subtree, a blocked element's attributes cut to what a block keeps, each attribute as
    the element's own, and the text masked where the node's flags say so.  The snippet sends each
    text node apart (``texts``: ``[[text node id, text], ...]``) so that each is masked or dropped
    by its own flags (a masked span inside a button); the Sentry SDK sends ``textContent`` only.
    The Sentry SDK's ``message`` (a CSS-like path with attribute values) of a masked, blocked or
    dropped element is masked from its first ``[``: its values cannot be told apart reliably."""
    if not isinstance(payload, dict):
        return
    data = payload.get("data")
    if not isinstance(data, dict) or data.get("node") is None:
        return
    node = data["node"]
    if not isinstance(node, dict) or node.get("id").__class__ is not int:  # True is an int too
        del data["node"]  # not a description we can check against the DOM's rules
        return
    flags_map = w.state.flags
    nid = node["id"]
    f = flags_map.get(nid, 0)
    mattr = w.state.masked_attrs.get(nid)
    _mask_message(payload, f, mattr)
    if f & DROPPED:
        del data["node"]
        w.report.add(w.rule_id(f), "breadcrumb")
        return
    attrs = node.get("attributes")
    if isinstance(attrs, dict):
        # a value the DOM's rules cannot be checked against goes, and what a block drops
        cut = f & BLOCK
        for k in [k for k, v in attrs.items() if not isinstance(v, str) or (cut and k not in BLOCK_KEEP_ATTRIBUTES)]:
            del attrs[k]
        for k, v in attrs.items():
            if v:
                attrs[k] = w.attr_value(_dom_name(k, mattr), v, f, mattr, "breadcrumb")
    elif attrs is not None:
        del node["attributes"]
    text = node.get("textContent")
    if isinstance(text, str) and text and f & (MASK | BLOCK):  # a blocked element's text is not stored
        node["textContent"] = mask_text(text)
        w.report.add(w.rule_id(f), "breadcrumb")
    texts = node.get("texts")
    if texts is not None:
        node["texts"] = _texts(w, texts, f) if isinstance(texts, list) else []


def _dom_name(name: str, mattr: Any) -> str:
    """The attribute's name as the DOM's rules name it (lower case; the Sentry SDK's ``testId``)."""
    name = name.lower()
    names = _SDK_NAMES.get(name)
    if names is None:
        return name
    return next((n for n in names if mattr is not None and n in mattr), names[0])


def _mask_message(payload: dict[str, Any], flags: int, mattr: Any) -> None:
    message = payload.get("message")
    if (flags & (MASK | BLOCK | DROPPED) or mattr) and isinstance(message, str) and "[" in message:
        i = message.index("[")
        payload["message"] = message[:i] + mask_text(message[i:])


def _texts(w: DomWalker, texts: list[Any], element_flags: int) -> list[Any]:
    """The described element's text nodes, each as its flags say (a blocked element has none);
    all masked in a masked element (whatever their ids say: a text is the element's)."""
    if element_flags & BLOCK:
        return []
    kept: list[list[Any]] = []
    flags_map = w.state.flags
    for t in texts:
        if not (isinstance(t, list) and len(t) == 2 and t[0].__class__ is int and isinstance(t[1], str)):
            continue
        f = flags_map.get(t[0], 0)
        if f & DROPPED:
            continue
        if (f | element_flags) & MASK:
            masked = mask_text(t[1])
            if masked != t[1]:
                w.report.add(w.rule_id(f if f & MASK else element_flags), "breadcrumb")
            kept.append([t[0], masked])
        else:
            kept.append([t[0], w.c.text.scrub(t[1], "breadcrumb", w.report)])
    if len(kept) > 1:
        # Readers join the texts (the click index does): a card number split over two text nodes
        # must not come together there. When the joined text scrubs differently, it is kept whole.
        joined = " ".join(t[1] for t in kept)
        scrubbed = w.c.text.scrub(joined, "breadcrumb", w.report)
        if scrubbed != joined:
            kept = [[kept[0][0], scrubbed]]
    return kept


def scrub_plugin(w: DomWalker, d: dict[str, Any]) -> None:
    """A Plugin event's ``payload`` (console output for rrweb's console plugin)."""
    plugin = d.get("plugin")
    loc = "console" if isinstance(plugin, str) and "console" in plugin else "plugin"
    if "payload" in d:
        d["payload"] = scrub_json(w.c, d["payload"], loc, w.report)
