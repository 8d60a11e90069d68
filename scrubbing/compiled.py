"""Everything a RuleSet compiles to, built once per rules version (never per segment)."""

from __future__ import annotations

import re
from typing import Any

from .builtin import (
    ALWAYS_REDACTED_HEADERS,
    BUILTIN_DOM_RULES,
    DETECTOR_GROUPS,
    DETECTORS,
    NAME_PARTS,
    URL_PARAM_LABEL,
)
from .dommatch import DomMatcher
from .names import SecretNames
from .patterns import builtin_patterns
from .redaction import Redactor
from .rules import DOM_ACTIONS, USER_POLICIES, Redaction, RuleSet
from .text import TextScrubber


def _redactor(spec: Redaction | None, default_style: str, default_label: str, secret: bytes) -> Redactor:
    style = spec.style if spec is not None else default_style
    label = (spec.label if spec is not None and spec.label is not None else None) or default_label
    return Redactor(style, label, secret)


class Compiled:
    """Compiled rules: the text scrubber, secret names, DOM matcher and user policy."""

    def __init__(self, rs: RuleSet, secret: bytes) -> None:
        self.secret = secret
        # ---- detectors: group aliases first, then the detector's own entry wins
        settings: dict[str, dict[str, Any]] = {
            name: {"enabled": True, "redaction": None, "include_private": False} for name in DETECTORS}
        for key, d in rs.detectors.items():
            targets = DETECTOR_GROUPS.get(key)
            if targets is None:
                continue
            for t in targets:
                settings[t].update(enabled=d.enabled, redaction=d.redaction or settings[t]["redaction"])
        for key, d in rs.detectors.items():
            if key in DETECTORS:
                settings[key].update(enabled=d.enabled, include_private=d.include_private)
                if d.redaction is not None:
                    settings[key]["redaction"] = d.redaction
        patterns = builtin_patterns(include_private_ips=settings["ip"]["include_private"])
        detectors = []
        for name, pat in patterns.items():
            s = settings[name]
            if s["enabled"]:
                detectors.append((pat, _redactor(s["redaction"], DETECTORS[name].style, f"[{name}]", secret)))
        # Input events: an address being typed ("jane.doe@exa") is masked before it is complete
        # (a segment may end mid-word); only while the email detector is on.
        self.email_redactor = next((r for p, r in detectors if p.name == "email"), None)
        customs = []
        for c in rs.custom:
            if c.enabled:
                rx = re.compile(c.pattern, re.IGNORECASE if c.ignore_case else 0)
                customs.append((c.name, rx, _redactor(c.redaction, "replace", f"[{c.name}]", secret)))
        # ---- secret names: ONE list, whatever section of the rules names them, applied to URL
        # and form parameters, payload keys, pairs and headers alike; `urls.redaction` redacts
        # their values everywhere.
        self.header_names = ALWAYS_REDACTED_HEADERS | {h.lower() for h in rs.network.redact_headers}
        self.secret_name = SecretNames(
            [*rs.urls.params, *rs.urls.extra_params, *rs.network.sensitive_keys, *self.header_names], NAME_PARTS
        )
        # "Authorization: ..." written into payload text (console output): the header names only,
        # since prose is full of "code: 3" and "key: value".
        names = "|".join(map(re.escape, sorted(self.header_names, key=len, reverse=True)))
        self.header_in_text = re.compile(rf"(?i)(?<![\w-])({names})([ \t]*:[ \t]*)([^\r\n\"']+)")
        self.param_redactor = _redactor(rs.urls.redaction, "replace", URL_PARAM_LABEL, secret)
        self.text = TextScrubber(detectors, customs, self.secret_name, self.param_redactor, rs.urls.fragments)
        # ---- DOM rules: enabled built-ins, then the file's rules
        dom: list[tuple[str, str, str, list[str]]] = []
        for builtin in BUILTIN_DOM_RULES:
            if rs.dom.builtin.get(builtin["name"], True):
                dom.append((f"dom:{builtin['name']}", builtin["selector"], builtin["action"],
                            list(builtin.get("attributes", ()))))
        for rule in rs.dom.rules:
            if rule.enabled:
                action = rule.action if rule.action in DOM_ACTIONS else "block"  # unknown future action: safest
                dom.append((f"dom:{rule.name or rule.selector}", rule.selector, action, list(rule.attributes)))
        self.dom = DomMatcher(dom)
        self.inputs_detectors = rs.inputs.detectors
        # ---- payloads
        self.key_kinds: dict[str, int] = {}  # payloads._key_kind's bounded cache
        self.keep_bodies = rs.network.bodies
        self.user_policy = rs.user.policy if rs.user.policy in USER_POLICIES else "remove"
        self.user_keep = frozenset(rs.user.keep_fields)
