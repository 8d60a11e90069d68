"""ScrubReport: what was redacted, counted per rule and per location. Never the values."""

from __future__ import annotations

from typing import Any


class ScrubReport:
    """Counts of redactions. ``by_rule`` keys are rule ids ("@email", "@url_param",
    "dom:password-input", a custom rule's name...); ``by_location`` keys are places in the data
    ("dom.text", "dom.attr", "input", "css", "url", "network", ...; see docs/privacy-rules.md).
    """

    __slots__ = ("total", "by_rule", "by_location")

    def __init__(self) -> None:
        self.total = 0
        self.by_rule: dict[str, int] = {}
        self.by_location: dict[str, int] = {}

    def add(self, rule: str, location: str, n: int = 1) -> None:
        self.total += n
        self.by_rule[rule] = self.by_rule.get(rule, 0) + n
        self.by_location[location] = self.by_location.get(location, 0) + n

    def merge(self, other: ScrubReport) -> ScrubReport:
        """Add ``other``'s counts into this report (in place) and return self."""
        self.total += other.total
        for k, v in other.by_rule.items():
            self.by_rule[k] = self.by_rule.get(k, 0) + v
        for k, v in other.by_location.items():
            self.by_location[k] = self.by_location.get(k, 0) + v
        return self

    def subtract(self, other: ScrubReport) -> ScrubReport:
        """Take ``other``'s counts out of this report (in place) and return self: undoes a
        ``merge``, as when a replaced segment's report leaves its replay's. Counts reaching zero go."""
        self.total -= other.total
        for counts, taken in ((self.by_rule, other.by_rule), (self.by_location, other.by_location)):
            for k, v in taken.items():
                left = counts.get(k, 0) - v
                if left:
                    counts[k] = left
                else:
                    counts.pop(k, None)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_rule": dict(sorted(self.by_rule.items())),
            "by_location": dict(sorted(self.by_location.items())),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScrubReport:
        r = cls()
        r.total = int(data.get("total", 0))
        r.by_rule = {str(k): int(v) for k, v in (data.get("by_rule") or {}).items()}
        r.by_location = {str(k): int(v) for k, v in (data.get("by_location") or {}).items()}
        return r

    def __bool__(self) -> bool:
        return self.total > 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ScrubReport) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"ScrubReport({self.to_dict()!r})"
