"""replayd's scrubber: removes personal data from rrweb recordings and Sentry events.

A pure library: no I/O, no logging configuration, no global mutable state.

Public API
==========

::

    from replayd.scrubbing import RuleSet, Scrubber, ReplayState, ScrubReport, RulesError, parse_rules

    ruleset = parse_rules(yaml_text_or_dict, *, strict=True) -> RuleSet
        # None / "" / a YAML file holding nothing -> the built-in defaults.
        # Raises RulesError(problems: list[str]); each problem names the rule, e.g.
        #   "rules.custom[2].pattern: invalid regex: ..."
        #   "rules.dom.rules[0].selector: bad selector: unexpected ':' at 1 in 'a:hover'"
        #   "rules.detectors.passport: unknown detector (known: ...)"
        # strict=True (check-config): unknown fields/detectors/styles/actions are problems.
        # strict=False (a running server): they are tolerated and listed in ruleset.warnings;
        # the compiler falls back to the safest known behaviour. Broken regexes and selectors
        # are errors in both modes.
    RuleSet.default() -> RuleSet                 # built-in defaults (pydantic v2 model)

    scrubber = Scrubber(ruleset, secret=b"server-secret")
        # Compiles everything once (one combined detector regex, selectors, tables); reuse it
        # for every segment of every replay; thread-safe. Picklable: pickles as
        # (ruleset.model_dump(), secret) and is rebuilt (~ms) where it is unpickled.

    result = scrubber.scrub_recording(events: list[dict], state: ReplayState | None = None)
        # -> ScrubResult(events, report, state)
        # events: the SAME list passed in, scrubbed IN PLACE (dicts are edited; entries of
        #   mutations inside blocked subtrees are removed from their lists). Copy first if the
        #   caller needs the original.
        # state: the ReplayState passed in, updated in place (or a new one when None). Persist
        #   it (result.state.to_bytes()) and pass ReplayState.from_bytes(...) with the next
        #   segment of the same replay, in any process.
    ReplayState.to_bytes() -> bytes;  ReplayState.from_bytes(data: bytes | None) -> ReplayState
        # msgpack with a version mark; raises scrubbing.state.StateError on foreign bytes.

    event, report = scrubber.scrub_error_event(event: dict)    # Sentry error event, in place
    event, report = scrubber.scrub_replay_event(event: dict)   # Sentry replay_event, in place
    text, report = scrubber.scrub_text(text: str, location="text")  # one string (tools, tests)

    report.to_dict() -> {"total": N, "by_rule": {"@email": 3, ...},
                         "by_location": {"dom.text": 2, "dom.attr": 1, "input": 1, ...}}
        # counts only, never matched values. report.merge(other) adds other's counts in place
        # and returns self; ScrubReport.from_dict(d) reads a stored report back.

Rules reference, detector behaviour and the location names: docs/privacy-rules.md.
"""

from .report import ScrubReport
from .rules import RulesError, RuleSet, parse_rules
from .scrubber import Scrubber, ScrubResult
from .state import ReplayState, StateError

__all__ = [
    "ReplayState",
    "RuleSet",
    "RulesError",
    "ScrubReport",
    "ScrubResult",
    "Scrubber",
    "StateError",
    "parse_rules",
]
