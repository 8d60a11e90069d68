"""Loading the scrubbing rules file named by ``scrubbing.rules`` (the only I/O around ``scrubbing/``)."""

from __future__ import annotations

from pathlib import Path

from replayd.scrubbing import RulesError, RuleSet, parse_rules

from .config import ConfigError


def load_rules_file(path: str | None, strict: bool = False) -> RuleSet:
    """The rule set in ``path``, or the built-in defaults; ConfigError names every bad rule.

    ``strict`` (check-config) also refuses what this version does not know; a running server
    tolerates it (a newer rules file never stops an older server) and falls back to safe behaviour.
    """
    if not path:
        return RuleSet.default()
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError([f"scrubbing.rules: cannot read {path}: {exc.strerror or exc}"]) from None
    try:
        return parse_rules(text, strict=strict)
    except RulesError as exc:
        raise ConfigError([f"scrubbing.rules ({path}): {problem}" for problem in exc.problems]) from None
