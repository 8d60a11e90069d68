"""CSS carried by incremental events: StyleSheetRule, StyleDeclaration and AdoptedStyleSheet
rules, and Font sources.  CSS is scrubbed (a url() can carry a token), never masked: it must
stay valid CSS for the replay to look right."""

from __future__ import annotations

from typing import Any

from .events import ADOPTED_STYLE_SHEET, FONT, STYLE_DECLARATION, STYLE_SHEET_RULE
from .report import ScrubReport
from .text import TextScrubber

CSS_SOURCES = frozenset((STYLE_SHEET_RULE, STYLE_DECLARATION, ADOPTED_STYLE_SHEET, FONT))


def scrub_css_event(text: TextScrubber, src: int, d: dict[str, Any], report: ScrubReport) -> None:
    """The CSS text of an event of one of ``CSS_SOURCES``, in place."""
    scrub = text.scrub
    if src == STYLE_SHEET_RULE:
        for a in d.get("adds") or ():
            if isinstance(a, dict) and isinstance(a.get("rule"), str):
                a["rule"] = scrub(a["rule"], "css", report)
        for key in ("replace", "replaceSync"):
            if isinstance(d.get(key), str):
                d[key] = scrub(d[key], "css", report)
    elif src == STYLE_DECLARATION:
        s = d.get("set")
        if isinstance(s, dict) and isinstance(s.get("value"), str):
            s["value"] = scrub(s["value"], "css", report)
    elif src == ADOPTED_STYLE_SHEET:
        for sheet in d.get("styles") or ():
            for r in (sheet.get("rules") if isinstance(sheet, dict) else None) or ():
                if isinstance(r, dict) and isinstance(r.get("rule"), str):
                    r["rule"] = scrub(r["rule"], "css", report)
    elif src == FONT and isinstance(d.get("fontSource"), str):
        d["fontSource"] = scrub(d["fontSource"], "font", report)
