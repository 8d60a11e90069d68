"""The rrweb recording walk: every event type, every place text lives (docs/privacy-rules.md has the map).

One :class:`RecordingWalker` per ``scrub_recording`` call; it edits events in place and keeps
the :class:`~scrubbing.state.ReplayState` current.  Node trees (full snapshots, and iframe
documents inside mutation adds) are walked with an explicit stack: no recursion anywhere.
"""

from __future__ import annotations

import re
from typing import Any

from .builtin import BLOCK_KEEP_ATTRIBUTES, SRCSET_ATTRIBUTES, TEXT_ATTRIBUTES, URL_ATTRIBUTES
from .compiled import Compiled
from .events import CUSTOM, FULL_SNAPSHOT, INCREMENTAL_SNAPSHOT, META, PLUGIN
from .payloads import scrub_json
from .redaction import mask_input, mask_text
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

# Incremental sources that carry only numbers and ids (mouse, scroll, viewport, media,
# drag, selection, custom element names): not walked.  Any other unknown source is scrubbed.
_NUMERIC_SOURCES = frozenset((1, 2, 3, 4, 6, 7, 12, 14, 16))
_PARTIAL_EMAIL = re.compile(r"(?<![^\s<(\[,;:\"'])[^\s@<>()\[\],;:\"']++@[^\s@<>()\[\],;:\"']*")
_INHERIT = ~BLOCK  # children inherit MASK and the rule bits, not BLOCK (they are dropped)
_NO_CTX = (0, 0)
# Report rule for Input events masked because another value of the same field matched a detector.
TYPING_RULE = "@typing"


def _related(value: str, matched: str) -> bool:
    """``value`` is a keystroke state of ``matched``: a prefix of it, or the same first 3+ characters."""
    return value[:3] == matched[:3] if len(value) >= 3 else matched.startswith(value)


class RecordingWalker:
    def __init__(self, c: Compiled, state: ReplayState, report: ScrubReport) -> None:
        self.c = c
        self.state = state
        self.report = report
        self.label = c.param_redactor.label
        self.rule_ids = [r.rule_id for r in c.dom.rules]
        # Input events of this segment (see _keystrokes_of): element id -> the events no detector
        # matched, and element id -> the last raw value a detector matched.
        self._typing: dict[Any, list[dict[str, Any]]] = {}
        self._typed: dict[Any, str] = {}

    # ------------------------------------------------------------------ helpers
    def _rule_id(self, flags: int) -> str:
        i = (flags >> RULE_SHIFT) - 1
        return self.rule_ids[i] if 0 <= i < len(self.rule_ids) else "dom:mask"

    def _attr_value(self, name: str, v: str, flags: int, mattr: Any, loc: str = "dom.attr") -> str:
        if mattr is not None and name in mattr:
            new = mask_text(v)
            if new != v:
                self.report.add(self._rule_id(flags) if flags >> RULE_SHIFT else "dom:mask_attributes", loc)
            return new
        if flags & MASK and name in TEXT_ATTRIBUTES:
            new = mask_text(v)
            if new != v:
                self.report.add(self._rule_id(flags), loc)
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

    def _drop_tree(self, root: Any) -> None:
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

    def _block(self, node: dict[str, Any], nid: Any, rule: int) -> None:
        kids = node.get("childNodes")
        if kids:
            for k in kids:
                self._drop_tree(k)
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

    def _apply_matches(self, matched: list[int], flags: int, nid: Any) -> tuple[int, Any, int]:
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

    # ------------------------------------------------------------------ node trees
    def walk(self, root: Any, parent_id: Any, inh: int, ctx: tuple[int, int]) -> None:
        """Scrub a node tree in place.  The stack holds child LISTS (one entry per element
        with children, not per node) and the common cases are inlined: this loop is the
        scrubber's hot path."""
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
        tagless = frozenset(dom.tagless_attrs)
        track_all = dom.track_all
        attr_kind_get = _ATTR_KIND.get
        attr_value = self._attr_value
        stack: list[tuple[list[Any], Any, int, tuple[int, int]]] = [([root], parent_id, inh, ctx)]
        pop = stack.pop
        push = stack.append
        while stack:
            kids, pid, inh, ctx = pop()
            for node in kids:
                # Required keys of serialized nodes are read with [] (faster than .get); a
                # malformed node raises and run() scrubs that event generically instead.
                t = node["type"]
                if t == 3 or t == 5 or t == 4:
                    tc = node["textContent"]
                    if inh & MASK and not node.get("isStyle"):  # CSS is never masked: it must stay valid
                        flags_map[node["id"]] = inh
                        if tc and tc.__class__ is str:
                            new = mask_text(tc)
                            if new != tc:
                                node["textContent"] = new
                                add(self._rule_id(inh), "dom.text")
                    elif tc.__class__ is str and len(tc) >= min_len:
                        r = cache_get(tc, NOT_CACHED)
                        if r is None:
                            continue
                        if r is NOT_CACHED:
                            r = lookup(tc)
                            if r is None:
                                continue
                        node["textContent"] = r[0]
                        loc = "css" if node.get("isStyle") else ("dom.text" if t == 3 else "dom.comment")
                        for rule in r[1]:
                            add(rule, loc)
                elif t == 2:
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
                            if cctx is not ctx and cctx != _NO_CTX:
                                ctxmap[nid] = cctx
                            if matched:
                                flags, mattr, block = self._apply_matches(matched, flags, nid)
                            elif mattrs_map and nid in mattrs_map:
                                del mattrs_map[nid]
                            if track_all or tag in subject_tags or (attrs and not tagless.isdisjoint(attrs)):
                                elems[nid] = [pid, tag, dom.relevant(attrs)]
                        elif mattrs_map and nid in mattrs_map:
                            del mattrs_map[nid]
                    if block >= 0:
                        self._block(node, nid, block)
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
                            push((ch, nid, flags & _INHERIT, cctx))
                elif t == 0:
                    ch = node["childNodes"]
                    if ch:
                        push((ch, node["id"], inh, ctx))

    # ------------------------------------------------------------------ events
    def run(self, events: Any) -> None:
        """Scrub a segment's events in place (``events`` as the recording's JSON gave it)."""
        if not isinstance(events, list):  # not a segment at all: never left unscrubbed
            if isinstance(events, dict):
                scrub_json(self.c, events, "malformed", self.report)
                self.report.add("@fallback", "malformed")
            return
        for i, e in enumerate(events):
            if not isinstance(e, dict):
                if isinstance(e, (str, list)) and e:
                    events[i] = scrub_json(self.c, e, "malformed", self.report)
                    self.report.add("@fallback", "malformed")
                continue
            if len(e) > 3 or "timestamp" not in e:  # keys beyond type/data/timestamp (delay, or anything a client adds)
                for k in e:
                    if k != "data" and k != "type" and k != "timestamp" and isinstance(e[k], (str, dict, list)):
                        e[k] = scrub_json(self.c, e[k], "malformed", self.report)
            d = e.get("data")
            if not isinstance(d, dict):
                if isinstance(d, (str, list)) and d:
                    e["data"] = scrub_json(self.c, d, "malformed", self.report)
                    self.report.add("@fallback", "malformed")
                continue
            t = e.get("type")
            try:
                if t == INCREMENTAL_SNAPSHOT:
                    self.incremental(d)
                elif t == FULL_SNAPSHOT:
                    self.state.reset()
                    self.walk(d.get("node"), None, 0, _NO_CTX)
                elif t == META:
                    if isinstance(d.get("href"), str):
                        d["href"] = scrub_url(self.c.text, d["href"], "meta.href", self.report, self.label)
                    if len(d) > 3 or ("href" in d and not isinstance(d["href"], str)):  # beyond href/width/height
                        for k in d:
                            if (k != "href" or not isinstance(d[k], str)) and isinstance(d[k], (str, dict, list)):
                                d[k] = scrub_json(self.c, d[k], "meta.href", self.report)
                elif t == CUSTOM:
                    self.custom(d)
                elif t == PLUGIN:
                    plugin = d.get("plugin")
                    loc = "console" if isinstance(plugin, str) and "console" in plugin else "plugin"
                    if "payload" in d:
                        d["payload"] = scrub_json(self.c, d["payload"], loc, self.report)
                elif t != 0 and t != 1 and d:  # an event type of no known shape: as a payload
                    scrub_json(self.c, d, "custom", self.report)
            except Exception:  # malformed event: never store it unscrubbed
                self._fallback(d)

    def _fallback(self, d: dict[str, Any]) -> None:
        """A malformed event: every string through the detectors, and the DOM rules still
        applied to whatever looks like an element (a broken node elsewhere in a snapshot must
        not let a password field's value through)."""
        scrub_json(self.c, d, "malformed", self.report)
        self.report.add("@fallback", "malformed")
        dom = self.c.dom
        if dom.empty:
            return
        stack: list[tuple[Any, bool]] = [(d, False)]
        while stack:
            o, masked = stack.pop()
            if isinstance(o, list):
                stack.extend((v, masked) for v in o)
                continue
            if not isinstance(o, dict):
                continue
            tag, attrs = o.get("tagName"), o.get("attributes")
            if masked and isinstance(o.get("textContent"), str) and not o.get("isStyle"):
                o["textContent"] = mask_text(o["textContent"])
            if isinstance(tag, str) and isinstance(attrs, dict):
                try:
                    matched, _ = dom.match(tag.lower(), attrs, _NO_CTX)
                except Exception:
                    matched = None
                nid = o.get("id")
                if matched or masked:
                    flags, mattr, block = (self._apply_matches(matched or [], MASK if masked else 0, nid) if matched
                                           else (MASK, None, -1))
                    for k, v in list(attrs.items()):
                        if isinstance(v, str) and v and (k in TEXT_ATTRIBUTES or (mattr is not None and k in mattr)):
                            attrs[k] = mask_text(v)
                    if block >= 0:
                        o["childNodes"] = []
                    if isinstance(nid, (int, str)) and flags:
                        self.state.flags[nid] = flags | (BLOCK if block >= 0 else 0)
                    masked = masked or bool(flags & MASK)
            stack.extend((v, masked) for v in o.values() if isinstance(v, (dict, list)))

    def custom(self, d: dict[str, Any]) -> None:
        tag = d.get("tag")
        payload = d.get("payload")
        if payload is None:
            return
        if tag == "breadcrumb":
            loc = "breadcrumb"
            data = payload.get("data") if isinstance(payload, dict) else None
            node = data.get("node") if isinstance(data, dict) else None
            if isinstance(node, dict):
                f = self.state.flags.get(node.get("id"), 0)
                if f & (MASK | DROPPED):
                    if isinstance(node.get("textContent"), str) and node["textContent"]:
                        node["textContent"] = mask_text(node["textContent"])
                        self.report.add(self._rule_id(f), loc)
                    attrs = node.get("attributes")
                    if isinstance(attrs, dict):
                        for k, v in attrs.items():
                            if k in TEXT_ATTRIBUTES and isinstance(v, str) and v:
                                attrs[k] = mask_text(v)
        elif tag == "performanceSpan":
            loc = "span"
        elif tag == "options":  # the SDK's configuration: nothing personal, but not trusted blindly
            loc = "custom"
        else:
            loc = "custom"
        d["payload"] = scrub_json(self.c, payload, loc, self.report)

    def incremental(self, d: dict[str, Any]) -> None:
        src = d.get("source")
        c = self.c
        scrub = c.text.scrub
        report = self.report
        if src == 0:
            self.mutation(d)
        elif src == 5:
            self.input(d)
        elif src == 8:  # StyleSheetRule
            for a in d.get("adds") or ():
                if isinstance(a, dict) and isinstance(a.get("rule"), str):
                    a["rule"] = scrub(a["rule"], "css", report)
            for key in ("replace", "replaceSync"):
                if isinstance(d.get(key), str):
                    d[key] = scrub(d[key], "css", report)
        elif src == 13:  # StyleDeclaration
            s = d.get("set")
            if isinstance(s, dict) and isinstance(s.get("value"), str):
                s["value"] = scrub(s["value"], "css", report)
        elif src == 15:  # AdoptedStyleSheet
            for sheet in d.get("styles") or ():
                for r in (sheet.get("rules") if isinstance(sheet, dict) else None) or ():
                    if isinstance(r, dict) and isinstance(r.get("rule"), str):
                        r["rule"] = scrub(r["rule"], "css", report)
        elif src == 9:  # Canvas
            f = self.state.flags.get(d.get("id"), 0)
            if f & (BLOCK | DROPPED):
                if d.get("commands"):
                    d["commands"] = []
                if "args" in d:
                    d["args"] = []
                report.add(self._rule_id(f), "canvas")
            elif f & MASK:
                self._mask_strings(d.get("commands") if "commands" in d else d.get("args"), f)
            else:
                for key in ("commands", "args"):
                    if key in d:
                        d[key] = scrub_json(c, d[key], "canvas", report)
        elif src == 10:  # Font
            if isinstance(d.get("fontSource"), str):
                d["fontSource"] = scrub(d["fontSource"], "font", report)
        elif src == 11:  # Log (rrweb 1.x console)
            scrub_json(c, d, "console", report)
        elif src not in _NUMERIC_SOURCES:  # a source of no known shape: every string in it
            scrub_json(c, d, "custom", report)

    def _mask_strings(self, root: Any, flags: int) -> None:
        stack = [root]
        while stack:
            o = stack.pop()
            items = o.items() if isinstance(o, dict) else enumerate(o) if isinstance(o, list) else ()
            for k, v in list(items):
                if isinstance(v, str) and v and k not in ("property", "rr_type", "base64"):
                    o[k] = mask_text(v)
                    self.report.add(self._rule_id(flags), "canvas")
                elif isinstance(v, (dict, list)):
                    stack.append(v)

    def input(self, d: dict[str, Any]) -> None:
        text = d.get("text")
        if not isinstance(text, str) or not text:
            return
        nid = d.get("id")
        f = self.state.flags.get(nid, 0)
        if f & (MASK | BLOCK | DROPPED):
            d["text"] = mask_input(text)
            self.report.add(self._rule_id(f), "input")
        elif self.c.inputs_detectors:
            new = self.c.text.scrub(text, "input", self.report)
            if new is text and "@" in text and self.c.email_redactor is not None:
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
            self.report.add(TYPING_RULE, "input")
        return new if n else text

    # rrweb sends one Input event per keystroke, each with the whole value so far. A detector
    # recognises an e-mail or a phone number only once it is (nearly) complete: the values typed
    # before it ("jane.ro", "+1 202 55") and the edits after it ("jane.roe@exampl") are the
    # same personal data, unrecognisable alone. Within a segment, once a detector matched a
    # field's value, that field's other Input events whose value is related to the matched one
    # (the same first characters, or a prefix of it) are masked too (report rule ``@typing``).
    # The matched value is held for this walk only, never in the ReplayState.

    def _keystrokes_of(self, nid: Any, raw: str) -> None:
        self._typed[nid] = raw
        pending = self._typing.pop(nid, None)
        if pending:
            for prev in pending:
                if _related(prev["text"], raw):
                    prev["text"] = mask_input(prev["text"])
                    self.report.add(TYPING_RULE, "input")
                else:
                    self._typing.setdefault(nid, []).append(prev)

    def _unmatched_keystroke(self, nid: Any, d: dict[str, Any], text: str) -> None:
        raw = self._typed.get(nid)
        if raw is not None and _related(text, raw):
            d["text"] = mask_input(text)
            self.report.add(TYPING_RULE, "input")
        else:
            self._typing.setdefault(nid, []).append(d)

    # ------------------------------------------------------------------ mutations
    @staticmethod
    def _add_order(adds: list[Any]) -> range | list[int]:
        """Process order where every add comes after the add of its parent (if in the batch)."""
        pos: dict[Any, int] = {}
        for i, a in enumerate(adds):
            n = a.get("node") if isinstance(a, dict) else None
            if isinstance(n, dict) and n.get("id") is not None:
                pos[n["id"]] = i
        parent_idx = [pos.get(a.get("parentId"), -1) if isinstance(a, dict) else -1 for a in adds]
        if all(p < i for i, p in enumerate(parent_idx)):
            return range(len(adds))
        done = [False] * len(adds)
        order: list[int] = []
        for i in range(len(adds)):
            chain = []
            j = i
            while j >= 0 and not done[j] and j not in chain:
                chain.append(j)
                j = parent_idx[j]
            for k in reversed(chain):
                done[k] = True
                order.append(k)
        return order

    def mutation(self, d: dict[str, Any]) -> None:
        st = self.state
        flags_map = st.flags
        report = self.report
        dom = self.c.dom
        removes = d.get("removes")
        if removes:
            kept = []
            for r in removes:
                rid = r.get("id") if isinstance(r, dict) else None
                if flags_map.get(rid, 0) & DROPPED:
                    continue
                st.forget(rid)
                kept.append(r)
            if len(kept) != len(removes):
                d["removes"] = kept
        adds = d.get("adds")
        if adds:
            keep = [True] * len(adds)
            for i in self._add_order(adds):
                a = adds[i]
                if not isinstance(a, dict):
                    continue
                pid = a.get("parentId")
                pf = flags_map.get(pid, 0)
                if pf & (BLOCK | DROPPED):
                    self._drop_tree(a.get("node"))
                    keep[i] = False
                    report.add(self._rule_id(pf), "dom.block")
                    continue
                self.walk(a.get("node"), pid, pf & _INHERIT, st.ctx.get(pid, _NO_CTX))
            if not all(keep):
                d["adds"] = [a for a, k in zip(adds, keep, strict=True) if k]
        texts = d.get("texts")
        if texts:
            kept = []
            for t in texts:
                if not isinstance(t, dict):
                    continue
                f = flags_map.get(t.get("id"), 0)
                if f & DROPPED:
                    continue
                v = t.get("value")
                if isinstance(v, str) and v:
                    if f & MASK:
                        new = mask_text(v)
                        if new != v:
                            t["value"] = new
                            report.add(self._rule_id(f), "dom.text")
                    else:
                        t["value"] = self.c.text.scrub(v, "dom.text", report)
                elif isinstance(v, (dict, list)):  # not an rrweb shape: scrubbed generically
                    t["value"] = scrub_json(self.c, v, "dom.text", report)
                kept.append(t)
            if len(kept) != len(texts):
                d["texts"] = kept
        attributes = d.get("attributes")
        if attributes:
            kept = []
            for a in attributes:
                if not isinstance(a, dict) or not isinstance(a.get("attributes"), dict):
                    continue
                nid = a.get("id")
                f = flags_map.get(nid, 0)
                if f & DROPPED:
                    continue
                at = a["attributes"]
                if not dom.empty:
                    f = self._rematch(nid, at, f)
                if f & BLOCK:
                    for k in [k for k in at if k not in BLOCK_KEEP_ATTRIBUTES]:
                        del at[k]
                mattr = st.masked_attrs.get(nid)
                for name, v in at.items():
                    if isinstance(v, str):
                        if v:
                            new = self._attr_value(name, v, f, mattr)
                            if new is not v:
                                at[name] = new
                    elif name == "style" and isinstance(v, dict):
                        self._style_object(v)
                    elif isinstance(v, (dict, list)):  # not an rrweb shape: scrubbed generically
                        at[name] = scrub_json(self.c, v, "dom.attr", report)
                kept.append(a)
            if len(kept) != len(attributes):
                d["attributes"] = kept

    def _style_object(self, style: dict[str, Any]) -> None:
        """Mutation ``style`` objects: ``{prop: value | [value, priority] | false}``."""
        scrub = self.c.text.scrub
        for prop, v in style.items():
            if isinstance(v, str):
                style[prop] = scrub(v, "css", self.report)
            elif isinstance(v, list) and v and isinstance(v[0], str):
                v[0] = scrub(v[0], "css", self.report)

    def _rematch(self, nid: Any, at: dict[str, Any], f: int) -> int:
        """Re-evaluate the rules for an element whose attributes changed (matches are sticky)."""
        dom = self.c.dom
        st = self.state
        info = st.elems.get(nid)
        if info is not None:
            pid, tag, rattrs = info
        else:
            pid, tag, rattrs = None, "", {}
        changed = False
        for k in dom.relevant_attrs:
            if k in at:
                v = at[k]
                if isinstance(v, str):
                    rattrs[k] = v
                else:
                    rattrs.pop(k, None)
                changed = True
        if not changed:
            return f
        matched, cctx = dom.match(tag, rattrs, st.ctx.get(pid, _NO_CTX) if pid is not None else _NO_CTX)
        if info is not None or dom.needs_tracking(tag, rattrs):
            st.elems[nid] = [pid, tag, rattrs]
        if dom.complex and cctx != _NO_CTX:
            st.ctx[nid] = cctx
        if matched:
            new, _mattr, block = self._apply_matches(matched, f, nid)
            if block >= 0:
                new |= BLOCK  # existing children stay (already replayed); new ones are dropped
            if new != f:
                st.flags[nid] = new
            return new
        return f
