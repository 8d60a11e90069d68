"""DOM rules compiled for matching: selectors indexed by their subject's tag / attribute.

Simple selectors (no combinator) are looked up by the element's tag and by the attribute names
tag-less selectors test, so an element costs a dict lookup or two.  Selectors with combinators
are matched top-down without walking ancestors: every element carries two bitmasks, ``D``
(prefixes matched by some ancestor) and ``P`` (by its parent), one bit per (selector,
compound); see :meth:`DomMatcher.match`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .selectors import Complex, Compound, parse_selector


@dataclass(frozen=True)
class DomRuleC:
    rule_id: str  # "dom:<name or selector>"
    action: str  # mask | block | mask_attributes
    attributes: frozenset[str]


class DomMatcher:
    def __init__(self, rules: list[tuple[str, str, str, list[str]]]) -> None:
        """``rules``: (rule id, selector text, action, attributes), already validated."""
        self.rules: list[DomRuleC] = []
        self.by_tag: dict[str, list[tuple[Compound, int]]] = {}
        self.by_attr: dict[str, list[tuple[Compound, int]]] = {}
        self.always: list[tuple[Compound, int]] = []
        self.complex: list[tuple[Complex, int, tuple[int, ...]]] = []
        self.subject_tags: set[str] = set()
        tagless_attrs: set[str] = set()
        relevant_attrs: set[str] = set()
        bit = 0
        for idx, (rule_id, selector, action, attributes) in enumerate(rules):
            self.rules.append(DomRuleC(rule_id, action, frozenset(a.lower() for a in attributes)))
            for cx in parse_selector(selector).selectors:
                for comp in cx.compounds:
                    relevant_attrs |= comp.attr_names
                subj = cx.subject
                if subj.tag is not None:
                    self.subject_tags.add(subj.tag)
                else:
                    tagless_attrs |= subj.attr_names
                if len(cx.compounds) > 1:
                    bits = tuple(1 << (bit + k) for k in range(len(cx.compounds)))
                    bit += len(cx.compounds)
                    self.complex.append((cx, idx, bits))
                    for comp in cx.compounds:
                        if comp.tag is not None:
                            self.subject_tags.add(comp.tag)
                elif subj.tag is not None:
                    self.by_tag.setdefault(subj.tag, []).append((subj, idx))
                elif subj.tests:
                    self.by_attr.setdefault(subj.tests[0].name, []).append((subj, idx))
                else:
                    self.always.append((subj, idx))
        self.by_attr_items = list(self.by_attr.items())
        # Sorted, not a set: the order reaches the stored state (an element's tracked attributes), which
        # must be the same bytes in every process whatever its PYTHONHASHSEED (nodes share states).
        self.relevant_attrs: tuple[str, ...] = tuple(sorted(relevant_attrs))
        self.tagless_attrs = frozenset(tagless_attrs)  # the attributes tag-less selectors test
        self.empty = not self.rules
        self.track_all = bool(self.complex)

    def match(self, tag: str, attrs: dict[str, Any], pctx: tuple[int, int]) -> tuple[list[int], tuple[int, int]]:
        """Rule indexes matching the element, and the context its children inherit."""
        res: list[int] = []
        lst = self.by_tag.get(tag)
        if lst:
            for comp, r in lst:
                if comp.matches(tag, attrs):
                    res.append(r)
        if attrs:
            for name, lst2 in self.by_attr_items:
                if name in attrs:
                    for comp, r in lst2:
                        if comp.matches(tag, attrs):
                            res.append(r)
        for _, r in self.always:
            res.append(r)
        if not self.complex:
            return res, pctx
        d, p = pctx
        newp = 0
        for cx, r, bits in self.complex:
            comps = cx.compounds
            last = len(comps) - 1
            for k, comp in enumerate(comps):
                if k:
                    need = bits[k - 1]
                    if not (d & need if cx.combinators[k - 1] == " " else p & need):
                        continue
                if comp.matches(tag, attrs):
                    newp |= bits[k]
                    if k == last and r not in res:
                        res.append(r)
        return res, (d | newp, newp)

    def needs_tracking(self, tag: str, attrs: dict[str, Any] | None) -> bool:
        if self.track_all or tag in self.subject_tags:
            return True
        if attrs and self.tagless_attrs:
            for a in self.tagless_attrs:
                if a in attrs:
                    return True
        return False

    def relevant(self, attrs: dict[str, Any] | None) -> dict[str, Any]:
        if not attrs:
            return {}
        return {a: attrs[a] for a in self.relevant_attrs if a in attrs and isinstance(attrs[a], str)}
