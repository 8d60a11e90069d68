"""Custom and Plugin events: payloads the Sentry SDK, replayd's snippet and rrweb plugins add to
a recording (breadcrumbs, performance spans, the SDK's options, console output, ...).

They are JSON payloads, scrubbed by name, key and value (``payloads``).  A breadcrumb can also
carry a copy of the DOM node it is about (a click's target): that copy is masked the way the
node itself was.
"""

from __future__ import annotations

from typing import Any

from .builtin import TEXT_ATTRIBUTES
from .domwalk import DomWalker
from .payloads import scrub_json
from .redaction import mask_text
from .state import DROPPED, MASK


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
    """The node a breadcrumb describes (``data.node``), masked if the node is."""
    data = payload.get("data") if isinstance(payload, dict) else None
    node = data.get("node") if isinstance(data, dict) else None
    if not isinstance(node, dict):
        return
    f = w.state.flags.get(node.get("id"), 0)
    if f & (MASK | DROPPED):
        if isinstance(node.get("textContent"), str) and node["textContent"]:
            node["textContent"] = mask_text(node["textContent"])
            w.report.add(w.rule_id(f), "breadcrumb")
        attrs = node.get("attributes")
        if isinstance(attrs, dict):
            for k, v in attrs.items():
                if k in TEXT_ATTRIBUTES and isinstance(v, str) and v:
                    attrs[k] = mask_text(v)


def scrub_plugin(w: DomWalker, d: dict[str, Any]) -> None:
    """A Plugin event's ``payload`` (console output for rrweb's console plugin)."""
    plugin = d.get("plugin")
    loc = "console" if isinstance(plugin, str) and "console" in plugin else "plugin"
    if "payload" in d:
        d["payload"] = scrub_json(w.c, d["payload"], loc, w.report)
