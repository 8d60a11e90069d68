"""The rule schema (pydantic v2) and :func:`parse_rules`.

Config is plain data that tolerates the future (Relay's habit): unknown fields, detectors,
redaction styles, DOM actions and user policies are *kept* in the model.  ``parse_rules`` in
strict mode (the default, and what ``check-config`` uses) reports each of them as a problem;
``strict=False`` (what a running server uses after a rules upgrade) accepts them with the
problems in ``RuleSet.warnings``, and the compiler falls back to the safest known behaviour
(unknown detector: ignored; unknown redaction: ``replace``; unknown DOM action: ``block``;
unknown user policy: ``remove``).  Broken things (bad regex, bad selector, wrong types) are
always errors.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from .builtin import (
    BUILTIN_DOM_RULES,
    DEFAULT_SENSITIVE_KEYS,
    DEFAULT_URL_PARAMS,
    DETECTOR_GROUPS,
    DETECTORS,
    URL_PARAM_LABEL,
)
from .redaction import STYLES
from .selectors import SelectorError, parse_selector

DOM_ACTIONS = ("mask", "block", "mask_attributes")
USER_POLICIES = ("keep", "scrub", "hash", "id_only", "remove")


class RulesError(ValueError):
    """Rules that cannot be used; ``problems`` names each bad rule ("rules.custom[2].pattern: ...")."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems) or "invalid rules")


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", validate_default=True)


class Redaction(_Model):
    """How a match is replaced. YAML shorthand: ``redaction: hash``."""

    style: str = "replace"
    label: str | None = None  # for `replace`; default "[<rule name>]"

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        return {"style": v} if isinstance(v, str) else v


class DetectorRule(_Model):
    """A built-in detector's settings. Shorthand: ``email: false`` or ``email: hash``."""

    enabled: bool = True
    redaction: Redaction | None = None  # None: the detector's default style
    include_private: bool = False  # `ip` only: also redact private/loopback/documentation ranges

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        if isinstance(v, bool):
            return {"enabled": v}
        if isinstance(v, str):
            return {"redaction": v}
        return v


class CustomRule(_Model):
    name: str = Field(min_length=1)
    pattern: str
    redaction: Redaction | None = None  # default: replace with "[<name>]"
    ignore_case: bool = False
    enabled: bool = True

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            rx = re.compile(v)
        except re.error as e:
            raise ValueError(f"invalid regex: {e}") from None
        if rx.match(""):
            raise ValueError("pattern matches the empty string")
        return v


class UrlRules(_Model):
    # Secret names; with `network.sensitive_keys` and the header names ONE list, applied in
    # URLs and payloads alike (scrubbing/names.py).
    params: list[str] = Field(default_factory=lambda: list(DEFAULT_URL_PARAMS))
    extra_params: list[str] = Field(default_factory=list)  # added to `params`
    fragments: bool = True  # also redact `#name=value` parameters in fragments
    # how the value of any secret name is redacted, wherever it is
    redaction: Redaction = Field(default_factory=lambda: Redaction(style="replace", label=URL_PARAM_LABEL))


class DomRule(_Model):
    selector: str
    action: str = "mask"
    attributes: list[str] = Field(default_factory=list)  # for mask_attributes
    name: str | None = None
    enabled: bool = True

    @field_validator("selector")
    @classmethod
    def _parses(cls, v: str) -> str:
        try:
            parse_selector(v)
        except SelectorError as e:
            raise ValueError(f"bad selector: {e}") from None
        return v

    @model_validator(mode="after")
    def _needs_attributes(self) -> DomRule:
        if self.action == "mask_attributes" and not self.attributes:
            raise ValueError("mask_attributes needs a non-empty `attributes` list")
        return self


class DomRules(_Model):
    builtin: dict[str, bool] = Field(default_factory=dict)  # built-in rule name -> enabled
    rules: list[DomRule] = Field(default_factory=list)


class InputRules(_Model):
    detectors: bool = True  # run detectors on inputs no DOM rule masks


class NetworkRules(_Model):
    redact_headers: list[str] = Field(default_factory=list)  # in addition to the always-redacted ones
    sensitive_keys: list[str] = Field(default_factory=lambda: list(DEFAULT_SENSITIVE_KEYS))  # secret names too
    bodies: bool = True  # keep (scrubbed) request/response bodies; false drops them


class UserRules(_Model):
    policy: str = "hash"  # keep | scrub | hash | id_only | remove
    keep_fields: list[str] = Field(default_factory=lambda: ["id"])  # untouched by scrub/hash


class RuleSet(_Model):
    """A whole rules file. ``RuleSet.model_validate(rs.model_dump())`` round-trips."""

    detectors: dict[str, DetectorRule] = Field(default_factory=dict)
    custom: list[CustomRule] = Field(default_factory=list)
    urls: UrlRules = Field(default_factory=UrlRules)
    dom: DomRules = Field(default_factory=DomRules)
    inputs: InputRules = Field(default_factory=InputRules)
    network: NetworkRules = Field(default_factory=NetworkRules)
    user: UserRules = Field(default_factory=UserRules)

    _warnings: list[str] = PrivateAttr(default_factory=list)

    @classmethod
    def default(cls) -> RuleSet:
        return cls()

    @property
    def warnings(self) -> list[str]:
        """Problems tolerated by ``parse_rules(..., strict=False)`` (unknown future things)."""
        return list(self._warnings)

    @field_validator("custom")
    @classmethod
    def _unique_names(cls, v: list[CustomRule]) -> list[CustomRule]:
        seen: set[str] = set()
        for r in v:
            if r.name in seen:
                raise ValueError(f"duplicate custom rule name {r.name!r}")
            seen.add(r.name)
        return v


def _loc(loc: tuple[int | str, ...]) -> str:
    out = "rules"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _extras(model: BaseModel, path: str, out: list[str]) -> None:
    """Unknown fields anywhere in the model tree (iterative)."""
    stack: list[tuple[Any, str]] = [(model, path)]
    while stack:
        m, p = stack.pop()
        if isinstance(m, BaseModel):
            for k in m.model_extra or {}:
                out.append(f"{p}.{k}: unknown field")
            for name in type(m).model_fields:
                stack.append((getattr(m, name), f"{p}.{name}"))
        elif isinstance(m, list):
            stack.extend((x, f"{p}[{i}]") for i, x in enumerate(m))
        elif isinstance(m, dict):
            stack.extend((x, f"{p}.{k}") for k, x in m.items())


def unknowns(rs: RuleSet) -> list[str]:
    """Everything in ``rs`` this version of replayd does not know."""
    out: list[str] = []
    _extras(rs, "rules", out)
    known = ", ".join([*DETECTORS, *DETECTOR_GROUPS])
    for name in rs.detectors:
        if name not in DETECTORS and name not in DETECTOR_GROUPS:
            out.append(f"rules.detectors.{name}: unknown detector (known: {known})")
    reds: list[tuple[str, Redaction | None]] = [(f"rules.detectors.{n}.redaction", d.redaction)
                                                 for n, d in rs.detectors.items()]
    reds += [(f"rules.custom[{i}].redaction", c.redaction) for i, c in enumerate(rs.custom)]
    reds.append(("rules.urls.redaction", rs.urls.redaction))
    for p, r in reds:
        if r is not None and r.style not in STYLES:
            out.append(f"{p}.style: unknown redaction {r.style!r} (known: {', '.join(STYLES)})")
    for i, rule in enumerate(rs.dom.rules):
        if rule.action not in DOM_ACTIONS:
            out.append(f"rules.dom.rules[{i}].action: unknown action {rule.action!r} "
                       f"(known: {', '.join(DOM_ACTIONS)})")
    names = {r["name"] for r in BUILTIN_DOM_RULES}
    for n in rs.dom.builtin:
        if n not in names:
            out.append(f"rules.dom.builtin.{n}: unknown built-in DOM rule (known: {', '.join(sorted(names))})")
    if rs.user.policy not in USER_POLICIES:
        out.append(f"rules.user.policy: unknown policy {rs.user.policy!r} (known: {', '.join(USER_POLICIES)})")
    return sorted(set(out), key=out.index)


def _without_version(data: dict[str, Any]) -> dict[str, Any]:
    """Older files start with ``version: 1``. The format has no version: what a file holds that
    this replayd does not know is reported field by field, so a number would add nothing."""
    return {k: v for k, v in data.items() if k != "version"}


def parse_rules(source: str | bytes | dict[str, Any] | None, *, strict: bool = True) -> RuleSet:
    """YAML text (or an already-loaded dict) -> :class:`RuleSet`.

    ``None`` or empty text gives the built-in defaults.  Raises :class:`RulesError` listing every
    problem.  With ``strict=False`` unknown (future) fields, detectors, redactions, actions and
    policies do not raise; they are listed in ``RuleSet.warnings``.
    """
    if source is None:
        return RuleSet.default()
    if isinstance(source, bytes):
        source = source.decode("utf-8")
    if isinstance(source, str):
        if not source.strip():
            return RuleSet.default()
        try:
            data = yaml.safe_load(source)
        except yaml.YAMLError as e:
            raise RulesError([f"rules: invalid YAML: {e}"]) from None
        if data is None:
            return RuleSet.default()
    else:
        data = source
    if not isinstance(data, dict):
        raise RulesError([f"rules: expected a mapping at the top, got {type(data).__name__}"])
    try:
        rs = RuleSet.model_validate(_without_version(data))
    except ValidationError as e:
        problems = []
        for err in e.errors():
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{_loc(err['loc'])}: {msg}")
        raise RulesError(problems) from None
    found = unknowns(rs)
    if found and strict:
        raise RulesError(found)
    rs._warnings = found
    return rs
