"""Canvas events (IncrementalSnapshot, source CanvasMutation): drawing commands and their
arguments, which carry the text drawn (``fillText``) and images."""

from __future__ import annotations

from typing import Any

from .domwalk import DomWalker
from .payloads import scrub_json
from .redaction import mask_text
from .state import BLOCK, DROPPED, MASK

# Argument fields that name what an argument is, not what is drawn: never masked.
_ARG_META = ("property", "rr_type", "base64")


def scrub_canvas(w: DomWalker, d: dict[str, Any]) -> None:
    """A blocked canvas loses its commands; a masked one has every string argument masked;
    any other has its commands scrubbed as a payload."""
    f = w.state.flags.get(d.get("id"), 0)
    if f & (BLOCK | DROPPED):
        if d.get("commands"):
            d["commands"] = []
        if "args" in d:
            d["args"] = []
        w.report.add(w.rule_id(f), "canvas")
    elif f & MASK:
        _mask_strings(w, d.get("commands") if "commands" in d else d.get("args"), f)
    else:
        for key in ("commands", "args"):
            if key in d:
                d[key] = scrub_json(w.c, d[key], "canvas", w.report)


def _mask_strings(w: DomWalker, root: Any, flags: int) -> None:
    stack = [root]
    while stack:
        o = stack.pop()
        items = o.items() if isinstance(o, dict) else enumerate(o) if isinstance(o, list) else ()
        for k, v in list(items):
            if isinstance(v, str) and v and k not in _ARG_META:
                o[k] = mask_text(v)
                w.report.add(w.rule_id(flags), "canvas")
            elif isinstance(v, (dict, list)):
                stack.append(v)
