"""Scrubber: the public entry point, compiled once from a RuleSet and a server secret."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from .compiled import Compiled
from .payloads import scrub_json
from .report import ScrubReport
from .rules import RuleSet
from .sentry_events import scrub_error_event, scrub_replay_event
from .state import ReplayState
from .walker import RecordingWalker


@dataclass
class ScrubResult:
    events: list[Any]  # the scrubbed events: the SAME list (and dicts) passed in, edited in place
    report: ScrubReport
    state: ReplayState  # the state passed in (updated in place) or a new one


def _rebuild(dump: dict[str, Any], secret: bytes) -> Scrubber:
    return Scrubber(RuleSet.model_validate(dump), secret=secret)


class Scrubber:
    """Compiles a :class:`RuleSet` once (regexes, selectors, tables); cheap to reuse for any
    number of segments and replays, and safe to share between threads (its only mutable parts
    are bounded per-string and per-name result caches).  Pickles as ``(ruleset.model_dump(), secret)``."""

    def __init__(self, ruleset: RuleSet | None = None, secret: bytes = b"") -> None:
        if ruleset is None:
            ruleset = RuleSet.default()
        self.ruleset = ruleset
        self._secret = bytes(secret)
        self._c = Compiled(ruleset, self._secret)
        dump = ruleset.model_dump(mode="json")
        self.fingerprint = hashlib.sha256(json.dumps(dump, sort_keys=True).encode()).hexdigest()[:16]

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any], bytes]]:
        return (_rebuild, (self.ruleset.model_dump(), self._secret))

    def scrub_recording(self, events: list[Any], state: ReplayState | None = None) -> ScrubResult:
        """Scrub one segment of rrweb events (edited in place) and advance ``state``."""
        if state is None:
            state = ReplayState()
        if state.rules_fp != self.fingerprint:
            state.ctx.clear()  # combinator bit layouts belong to the rules that wrote them
            state.rules_fp = self.fingerprint
        report = ScrubReport()
        RecordingWalker(self._c, state, report).run(events)
        return ScrubResult(events, report, state)

    def scrub_error_event(self, event: dict[str, Any]) -> tuple[Any, ScrubReport]:
        """Scrub a Sentry error event (in place); returns it and the report."""
        report = ScrubReport()
        return _guarded(self._c, scrub_error_event, event, report), report

    def scrub_replay_event(self, event: dict[str, Any]) -> tuple[Any, ScrubReport]:
        """Scrub a Sentry ``replay_event`` item (in place); returns it and the report."""
        report = ScrubReport()
        return _guarded(self._c, scrub_replay_event, event, report), report

    def scrub_text(self, text: str, location: str = "text") -> tuple[str, ScrubReport]:
        """Detectors and URL-parameter rules over one string (for tools and tests)."""
        report = ScrubReport()
        return self._c.text.scrub(text, location, report), report


def _guarded(c: Compiled, fn: Any, event: Any, report: ScrubReport) -> Any:
    """Run an event scrubber; a malformed event (not an object, wrong types inside) never
    raises and is never returned unscrubbed: it is scrubbed as a generic payload instead."""
    if isinstance(event, dict):
        try:
            return fn(c, event, report)
        except Exception:
            pass
    report.add("@fallback", "malformed")
    return scrub_json(c, event, "malformed", report)
