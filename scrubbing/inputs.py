"""Input events (IncrementalSnapshot, source Input): the values people type.

A field under a mask or block rule has its value masked.  Otherwise the value goes through the
detectors (when ``inputs.detectors`` is on), with one addition for keystrokes, below.
"""

from __future__ import annotations

import re
from typing import Any

from .domwalk import DomWalker
from .redaction import mask_input
from .state import BLOCK, DROPPED, MASK

# Report rule for Input events masked because another value of the same field matched a detector.
TYPING_RULE = "@typing"
_PARTIAL_EMAIL = re.compile(r"(?<![^\s<(\[,;:\"'])[^\s@<>()\[\],;:\"']++@[^\s@<>()\[\],;:\"']*")


def _related(value: str, matched: str) -> bool:
    """``value`` is a keystroke state of ``matched``: a prefix of it, or the same first 3+ characters."""
    return value[:3] == matched[:3] if len(value) >= 3 else matched.startswith(value)


class InputEvents:
    """The Input events of one recording walk.

    rrweb sends one Input event per keystroke, each with the whole value so far. A detector
    recognises an e-mail or a phone number only once it is (nearly) complete: the values typed
    before it ("jane.ro", "+1 202 55") and the edits after it ("jane.roe@exampl") are the same
    personal data, unrecognisable alone. Within a segment, once a detector matched a field's
    value, that field's other Input events whose value is related to the matched one (the same
    first characters, or a prefix of it) are masked too (report rule ``@typing``). The matched
    value is held for this walk only, never in the ReplayState.
    """

    def __init__(self, w: DomWalker) -> None:
        self.w = w
        # element id -> the events no detector matched, and element id -> the last raw value
        # a detector matched
        self._typing: dict[Any, list[dict[str, Any]]] = {}
        self._typed: dict[Any, str] = {}

    def scrub(self, d: dict[str, Any]) -> None:
        text = d.get("text")
        if not isinstance(text, str) or not text:
            return
        w = self.w
        nid = d.get("id")
        f = w.state.flags.get(nid, 0)
        if f & (MASK | BLOCK | DROPPED):
            d["text"] = mask_input(text)
            w.report.add(w.rule_id(f), "input")
        elif w.c.inputs_detectors:
            new = w.c.text.scrub(text, "input", w.report)
            if new is text and "@" in text and w.c.email_redactor is not None:
                new = self._partial_email(text)
            if nid is None:
                d["text"] = new
            elif new != text:
                d["text"] = new
                self._keystrokes_of(nid, text)
            else:
                self._unmatched_keystroke(nid, d, text)

    def _partial_email(self, text: str) -> str:
        """``jane.doe@exa``: an address still being typed (a segment may end mid-word) is
        masked like a keystroke (``@typing``); ``@alice`` (no local part) is not."""
        new, n = _PARTIAL_EMAIL.subn(lambda m: mask_input(m.group(0)), text)
        for _ in range(n):
            self.w.report.add(TYPING_RULE, "input")
        return new if n else text

    def _keystrokes_of(self, nid: Any, raw: str) -> None:
        self._typed[nid] = raw
        pending = self._typing.pop(nid, None)
        if pending:
            for prev in pending:
                if _related(prev["text"], raw):
                    prev["text"] = mask_input(prev["text"])
                    self.w.report.add(TYPING_RULE, "input")
                else:
                    self._typing.setdefault(nid, []).append(prev)

    def _unmatched_keystroke(self, nid: Any, d: dict[str, Any], text: str) -> None:
        raw = self._typed.get(nid)
        if raw is not None and _related(text, raw):
            d["text"] = mask_input(text)
            self.w.report.add(TYPING_RULE, "input")
        else:
            self._typing.setdefault(nid, []).append(d)
