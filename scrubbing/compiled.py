"""Everything a RuleSet compiles to, built once per rules version (never per segment)."""

from __future__ import annotations

import re
from typing import Any

from .builtin import (
    ALWAYS_REDACTED_HEADERS,
    BUILTIN_DOM_RULES,
    DETECTOR_GROUPS,
    DETECTORS,
    HEADER_LABEL,
    SENSITIVE_KEY_PARTS,
    URL_PARAM_LABEL,
)
from .dommatch import DomMatcher
from .patterns import builtin_patterns
from .redaction import Redactor
from .rules import DOM_ACTIONS, USER_POLICIES, Redaction, RuleSet
from .text import TextScrubber


def _redactor(spec: Redaction | None, default_style: str, default_label: str, secret: bytes) -> Redactor:
    style = spec.style if spec is not None else default_style
    label = (spec.label if spec is not None and spec.label is not None else None) or default_label
    return Redactor(style, label, secret)


class Compiled:
    """Compiled rules: the text scrubber, DOM matcher, header/key sets and user policy."""

    def sensitive(self, key: str) -> bool:
        """``key`` (lower-cased, ``-`` as ``_``) names a secret: one of the sensitive keys, or a
        longer key containing one of those in :data:`SENSITIVE_KEY_PARTS`."""
        hit = self._sensitive_cache.get(key)
        if hit is None:
            hit = key in self.sensitive_keys or (
                self._sensitive_part is not None and self._sensitive_part(key) is not None
            )
            if len(self._sensitive_cache) > 10_000:
                self._sensitive_cache.clear()
            self._sensitive_cache[key] = hit
        return hit

    def __init__(self, rs: RuleSet, secret: bytes) -> None:
        self.secret = secret
        # ---- detectors: group aliases first, then the detector's own entry wins
        settings: dict[str, dict[str, Any]] = {name: {"enabled": True, "redaction": None, "include_private": False} for name in DETECTORS}
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
        params = frozenset(p.lower() for p in [*rs.urls.params, *rs.urls.extra_params])
        self.param_redactor = _redactor(rs.urls.redaction, "replace", URL_PARAM_LABEL, secret)
        self.text = TextScrubber(detectors, customs, params, self.param_redactor, rs.urls.fragments)
        # ---- DOM rules: enabled built-ins, then the file's rules
        dom: list[tuple[str, str, str, list[str]]] = []
        for r in BUILTIN_DOM_RULES:
            if rs.dom.builtin.get(r["name"], True):
                dom.append((f"dom:{r['name']}", r["selector"], r["action"], list(r.get("attributes", ()))))
        for r in rs.dom.rules:
            if r.enabled:
                action = r.action if r.action in DOM_ACTIONS else "block"  # unknown future action: safest
                dom.append((f"dom:{r.name or r.selector}", r.selector, action, list(r.attributes)))
        self.dom = DomMatcher(dom)
        self.inputs_detectors = rs.inputs.detectors
        # ---- payloads
        self.redact_headers = ALWAYS_REDACTED_HEADERS | {h.lower() for h in rs.network.redact_headers}
        self.header_label = HEADER_LABEL
        self.sensitive_keys = frozenset(k.lower().replace("-", "_") for k in rs.network.sensitive_keys)
        # Keys that name a secret also inside longer keys ("newPassword", "userToken",
        # "X-CSRF-Token", "client_secret_v2"), when the list holds them.
        parts = sorted(k for k in self.sensitive_keys if k in SENSITIVE_KEY_PARTS)
        self._sensitive_part = re.compile("|".join(re.escape(k) for k in parts)).search if parts else None
        self._sensitive_cache: dict[str, bool] = {}
        self.keep_bodies = rs.network.bodies
        self.user_policy = rs.user.policy if rs.user.policy in USER_POLICIES else "remove"
        self.user_keep = frozenset(rs.user.keep_fields)
