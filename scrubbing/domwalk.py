"""Node trees: a full snapshot's document, and the nodes mutations add (iframe documents too).

:class:`DomWalker` is the part of a recording walk that knows the DOM rules: it walks node
trees in place with an explicit stack (no recursion), applies the rules' mask / block /
mask_attributes actions, scrubs text and attribute values, and keeps the node flags of the
:class:`~scrubbing.state.ReplayState` current for the events that refer to those nodes later
(mutations, inputs, canvas).  Its ``walk`` loop is the scrubber's hot path: the common cases
are inlined there on purpose, and where the install built ``_domwalk.c`` the nodes no rule touches
are walked in C, which hands every other node back to this loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .builtin import BLOCK_KEEP_ATTRIBUTES, SRCSET_ATTRIBUTES, TEXT_ATTRIBUTES, URL_ATTRIBUTES
from .compiled import Compiled
from .events import CDATA_NODE, COMMENT_NODE, DOCUMENT_NODE, ELEMENT_NODE, TEXT_NODE
from .payloads import scrub_json
from .redaction import mask_text
from .report import ScrubReport
from .state import BLOCK, DROPPED, MASK, RULE_SHIFT, ReplayState
from .text import NOT_CACHED
from .urls import scrub_srcset, scrub_url

# attribute name -> how its value is scrubbed
_TEXT, _URL, _SRCSET, _CSS, _SKIP = 0, 1, 2, 3, 4
_ATTR_KIND: dict[str, int] = dict.fromkeys(URL_ATTRIBUTES, _URL)
_ATTR_KIND.update(dict.fromkeys(SRCSET_ATTRIBUTES, _SRCSET))
_ATTR_KIND.update({"style": _CSS, "_cssText": _CSS})
# Geometry and binary: numbers only, or base64 images (see docs: data: URIs).
_ATTR_KIND.update(dict.fromkeys(("d", "points", "viewBox", "viewbox", "transform", "rr_dataURL", "path"), _SKIP))

_walk_in_c: Callable[[list[Any], Callable[..., None], tuple[Any, ...]], None] | None
try:  # the common nodes' walk in C (scrubbing/_domwalk.c), built at install where a C compiler is
    from ._domwalk import walk as _walk_in_c
except ImportError:  # a build without a C compiler: every node takes the Python walk
    _walk_in_c = None


def walks_in_c() -> bool:
    """Whether scrubbing/_domwalk.c was built (else every node takes the Python walk)."""
    return _walk_in_c is not None


Entry = tuple[Any, Any, int, tuple[int, int]]  # a walk stack's: child list, parent id, inherited flags, ctx
INHERIT = ~BLOCK  # children inherit MASK and the rule bits, not BLOCK (they are dropped)
NO_CTX = (0, 0)  # no combinator-selector prefix matched


class DomWalker:
    """One per recording walk: the compiled rules, the replay's state and the walk's report."""

    def __init__(self, c: Compiled, state: ReplayState, report: ScrubReport) -> None:
        self.c = c
        self.state = state
        self.report = report
        self.label = c.param_redactor.label
        self.rule_ids = [r.rule_id for r in c.dom.rules]
        self.common_nodes = self._common_nodes()  # every part lives as long as this walker (cleared in place)

    def rule_id(self, flags: int) -> str:
        i = (flags >> RULE_SHIFT) - 1
        return self.rule_ids[i] if 0 <= i < len(self.rule_ids) else "dom:mask"

    def attr_value(self, name: str, v: str, flags: int, mattr: Any, loc: str = "dom.attr") -> str:
        if mattr is not None and name in mattr:
            new = mask_text(v)
            if new != v:
                self.report.add(self.rule_id(flags) if flags >> RULE_SHIFT else "dom:mask_attributes", loc)
            return new
        if flags & MASK and name in TEXT_ATTRIBUTES:
            new = mask_text(v)
            if new != v:
                self.report.add(self.rule_id(flags), loc)
            return new
        kind = _ATTR_KIND.get(name, _TEXT)
        if kind == _TEXT:
            return self.c.text.scrub(v, loc, self.report)
        if kind == _URL:
            return scrub_url(self.c.text, v, loc, self.report, self.label)
        if kind == _CSS:
            return self.c.text.scrub(v, "css", self.report)
        if kind == _SRCSET:
            return scrub_srcset(self.c.text, v, loc, self.report, self.label)
        if name == "rr_dataURL" and not (v.startswith("data:") and ";base64," in v[:200]):
            return self.c.text.scrub(v, loc, self.report)  # not a base64 image: text like any other
        return v

    def drop_tree(self, root: Any) -> None:
        """Remember every node id under ``root`` as DROPPED (inside a blocked subtree)."""
        flags = self.state.flags
        stack = [root]
        while stack:
            n = stack.pop()
            if not isinstance(n, dict):
                continue
            nid = n.get("id")
            if nid is not None:
                flags[nid] = DROPPED
            kids = n.get("childNodes")
            if kids:
                stack.extend(kids)

    def block(self, node: dict[str, Any], nid: Any, rule: int) -> None:
        kids = node.get("childNodes")
        if kids:
            for k in kids:
                self.drop_tree(k)
            node["childNodes"] = []
        attrs = node.get("attributes")
        if isinstance(attrs, dict):
            keep = {k: v for k, v in attrs.items() if k in BLOCK_KEEP_ATTRIBUTES}
            for dim in ("width", "height"):
                v = attrs.get(dim)
                if f"rr_{dim}" not in keep and isinstance(v, (int, float, str)) and str(v).strip().isdigit():
                    keep[f"rr_{dim}"] = f"{str(v).strip()}px"
            node["attributes"] = keep
        self.report.add(self.rule_ids[rule], "dom.block")

    def apply_matches(self, matched: list[int], flags: int, nid: Any) -> tuple[int, Any, int]:
        """Fold matched rule indexes into (flags, masked attribute names, block rule or -1)."""
        mattr = None
        block = -1
        rules = self.c.dom.rules
        for r in matched:
            action = rules[r].action
            if action == "mask":
                if not flags & MASK:
                    flags = (flags & ((1 << RULE_SHIFT) - 1)) | MASK | ((r + 1) << RULE_SHIFT)
            elif action == "block":
                block = r
                flags = (flags & ((1 << RULE_SHIFT) - 1)) | MASK | ((r + 1) << RULE_SHIFT)
            else:
                mattr = (mattr or frozenset()) | rules[r].attributes
                if not flags >> RULE_SHIFT:
                    flags |= (r + 1) << RULE_SHIFT
        if mattr is not None:
            prev = self.state.masked_attrs.get(nid)
            if prev:
                mattr = mattr | frozenset(prev)
            self.state.masked_attrs[nid] = tuple(sorted(mattr))
        return flags, mattr, block

    def walk(self, root: Any, parent_id: Any, inh: int, ctx: tuple[int, int]) -> None:
        """Scrub a node tree in place.  The stack holds child LISTS (one entry per element with
        children, not per node), each walked by the closure ``_kids_walker`` makes; where the C walk
        is built (``scrubbing/_domwalk.c``) it takes the common nodes itself and hands the others to
        that same closure, so the rules live in one place."""
        stack: list[Entry] = [([root], parent_id, inh, ctx)]
        walk_kids = self._kids_walker(stack)
        if _walk_in_c is not None:
            _walk_in_c(stack, walk_kids, self.common_nodes)
            return
        pop = stack.pop
        while stack:
            walk_kids(*pop())

    def _common_nodes(self) -> tuple[Any, ...]:
        """What the C walk needs to scrub the nodes it takes itself (see scrubbing/_domwalk.c)."""
        c = self.c
        dom = c.dom
        rules = 0 if dom.empty else 1 if not dom.complex and not dom.always else 2
        return (c.text.cache, c.text.lookup, c.text.min_len, self.report.add, c.text.url_cache, _ATTR_KIND,
                self.attr_value, rules, dom.by_tag, dom.tagless_attrs, self.state.masked_attrs,
                (DOCUMENT_NODE, ELEMENT_NODE, TEXT_NODE, CDATA_NODE, COMMENT_NODE))

    def _kids_walker(self, stack: list[Entry]) -> Callable[[Any, Any, int, tuple[int, int]], None]:
        """The walk of one child list, pushing the lists below it onto ``stack``: a closure, so that the
        walk's names are bound once per tree, not once per list.  The common cases are inlined: this
        loop is the scrubber's hot path."""
        c = self.c
        dom = c.dom
        text = c.text
        cache_get = text.cache.get
        url_cache_get = text.url_cache.get
        lookup = text.lookup
        min_len = text.min_len
        report = self.report
        add = report.add
        st = self.state
        flags_map = st.flags
        mattrs_map = st.masked_attrs
        elems = st.elems
        ctxmap = st.ctx
        has_rules = not dom.empty
        simple_only = not dom.complex and not dom.always
        by_tag_get = dom.by_tag.get
        subject_tags = dom.subject_tags
        tagless = dom.tagless_attrs
        track_all = dom.track_all
        attr_kind_get = _ATTR_KIND.get
        attr_value = self.attr_value
        text_node, comment_node, cdata_node = TEXT_NODE, COMMENT_NODE, CDATA_NODE
        element_node, document_node = ELEMENT_NODE, DOCUMENT_NODE
        push = stack.append

        def walk_kids(kids: Any, pid: Any, inh: int, ctx: tuple[int, int]) -> None:
            for node in kids:
                # Required keys of serialized nodes are read with [] (faster than .get); a
                # malformed node raises and the recording walk scrubs that event generically instead.
                t = node["type"]
                if t in (text_node, comment_node, cdata_node):
                    tc = node["textContent"]
                    if inh & MASK and not node.get("isStyle"):  # CSS is never masked: it must stay valid
                        flags_map[node["id"]] = inh
                        if tc and tc.__class__ is str:
                            new = mask_text(tc)
                            if new != tc:
                                node["textContent"] = new
                                add(self.rule_id(inh), "dom.text")
                    elif tc.__class__ is str and len(tc) >= min_len:
                        r = cache_get(tc, NOT_CACHED)
                        if r is None:
                            continue
                        if r is NOT_CACHED:
                            r = lookup(tc)
                            if r is None:
                                continue
                        node["textContent"] = r[0]
                        loc = "css" if node.get("isStyle") else ("dom.text" if t == text_node else "dom.comment")
                        for rule in r[1]:
                            add(rule, loc)
                elif t == element_node:
                    nid = node["id"]
                    tag = node["tagName"]
                    if not tag.islower():
                        tag = tag.lower()
                    attrs = node["attributes"]
                    flags = inh
                    mattr = None
                    block = -1
                    cctx = ctx
                    if has_rules:
                        # Simple selectors only: an element whose tag no rule names and that
                        # carries none of the attributes tag-less rules test cannot match.
                        if not simple_only or by_tag_get(tag) is not None or (
                            attrs and not tagless.isdisjoint(attrs)
                        ):
                            matched, cctx = dom.match(tag, attrs, ctx)
                            if cctx is not ctx and cctx != NO_CTX:
                                ctxmap[nid] = cctx
                            if matched:
                                flags, mattr, block = self.apply_matches(matched, flags, nid)
                            elif mattrs_map and nid in mattrs_map:
                                del mattrs_map[nid]
                            if track_all or tag in subject_tags or (attrs and not tagless.isdisjoint(attrs)):
                                elems[nid] = [pid, tag, dom.relevant(attrs)]
                        elif mattrs_map and nid in mattrs_map:
                            del mattrs_map[nid]
                    if block >= 0:
                        self.block(node, nid, block)
                        attrs = node["attributes"]
                        flags |= BLOCK
                    if attrs:
                        plain = mattr is None and not flags
                        for name, v in attrs.items():
                            if v.__class__ is not str or not v:
                                if v.__class__ is dict or v.__class__ is list:  # not an rrweb shape
                                    attrs[name] = scrub_json(c, v, "dom.attr", report)
                                continue
                            kind = attr_kind_get(name, _TEXT) if plain else -1
                            if kind == _TEXT:
                                if len(v) < min_len:
                                    continue
                                r = cache_get(v, NOT_CACHED)
                                if r is None:
                                    continue
                                if r is NOT_CACHED:
                                    r = lookup(v)
                                    if r is None:
                                        continue
                                attrs[name] = r[0]
                                for rule in r[1]:
                                    add(rule, "dom.attr")
                            elif kind == _URL and url_cache_get(v, NOT_CACHED) is None:
                                continue
                            else:
                                new = attr_value(name, v, flags, mattr)
                                if new is not v:
                                    attrs[name] = new
                    if flags:
                        flags_map[nid] = flags
                    if block < 0:
                        ch = node["childNodes"]
                        if ch:
                            push((ch, nid, flags & INHERIT, cctx))
                elif t == document_node:
                    ch = node["childNodes"]
                    if ch:
                        push((ch, node["id"], inh, ctx))

        return walk_kids
