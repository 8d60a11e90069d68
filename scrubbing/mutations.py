"""Mutation events (IncrementalSnapshot, source Mutation): nodes added, removed, texts and
attributes changed, scrubbed with the flags earlier segments and events left on their nodes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .builtin import BLOCK_KEEP_ATTRIBUTES
from .domwalk import INHERIT, NO_CTX, DomWalker
from .payloads import scrub_json
from .redaction import mask_text
from .state import BLOCK, DROPPED, MASK


def scrub_mutation(w: DomWalker, d: dict[str, Any]) -> None:
    """A Mutation event, in place: each list rewritten only when an entry is dropped."""
    for key, scrub in _LISTS:
        entries = d.get(key)
        if entries:
            kept = scrub(w, entries)
            if len(kept) != len(entries):
                d[key] = kept


def _removes(w: DomWalker, removes: list[Any]) -> list[Any]:
    """Removed nodes are forgotten; the removal of a dropped node (never replayed) is dropped."""
    st = w.state
    flags_map = st.flags
    kept = []
    for r in removes:
        rid = r.get("id") if isinstance(r, dict) else None
        if flags_map.get(rid, 0) & DROPPED:
            continue
        st.forget(rid)
        kept.append(r)
    return kept


def _adds(w: DomWalker, adds: list[Any]) -> list[Any]:
    """Added node trees are walked under their parent's flags; under a blocked or dropped
    parent they are dropped (and their ids remembered as dropped)."""
    st = w.state
    flags_map = st.flags
    keep = [True] * len(adds)
    for i in _add_order(adds):
        a = adds[i]
        if not isinstance(a, dict):
            continue
        pid = a.get("parentId")
        pf = flags_map.get(pid, 0)
        if pf & (BLOCK | DROPPED):
            w.drop_tree(a.get("node"))
            keep[i] = False
            w.report.add(w.rule_id(pf), "dom.block")
            continue
        w.walk(a.get("node"), pid, pf & INHERIT, st.ctx.get(pid, NO_CTX))
    return adds if all(keep) else [a for a, k in zip(adds, keep, strict=False) if k]


def _texts(w: DomWalker, texts: list[Any]) -> list[Any]:
    """Text changes: masked under a mask rule, else scrubbed; those of dropped nodes dropped."""
    flags_map = w.state.flags
    report = w.report
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
                    report.add(w.rule_id(f), "dom.text")
            else:
                t["value"] = w.c.text.scrub(v, "dom.text", report)
        elif isinstance(v, (dict, list)):  # not an rrweb shape: scrubbed generically
            t["value"] = scrub_json(w.c, v, "dom.text", report)
        kept.append(t)
    return kept


def _attributes(w: DomWalker, attributes: list[Any]) -> list[Any]:
    """Attribute changes: the rules are matched again (a new class or type can make one match),
    then each value is scrubbed like a snapshot's; those of dropped nodes are dropped."""
    st = w.state
    report = w.report
    rematch = not w.c.dom.empty
    kept = []
    for a in attributes:
        if not isinstance(a, dict) or not isinstance(a.get("attributes"), dict):
            continue
        nid = a.get("id")
        f = st.flags.get(nid, 0)
        if f & DROPPED:
            continue
        at = a["attributes"]
        if rematch:
            f = _rematch(w, nid, at, f)
        if f & BLOCK:
            for k in [k for k in at if k not in BLOCK_KEEP_ATTRIBUTES]:
                del at[k]
        mattr = st.masked_attrs.get(nid)
        for name, v in at.items():
            if isinstance(v, str):
                if v:
                    new = w.attr_value(name, v, f, mattr)
                    if new is not v:
                        at[name] = new
            elif name == "style" and isinstance(v, dict):
                _style_object(w, v)
            elif isinstance(v, (dict, list)):  # not an rrweb shape: scrubbed generically
                at[name] = scrub_json(w.c, v, "dom.attr", report)
        kept.append(a)
    return kept


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


def _rematch(w: DomWalker, nid: Any, at: dict[str, Any], f: int) -> int:
    """Re-evaluate the rules for an element whose attributes changed (matches are sticky)."""
    dom = w.c.dom
    st = w.state
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
    matched, cctx = dom.match(tag, rattrs, st.ctx.get(pid, NO_CTX) if pid is not None else NO_CTX)
    if info is not None or dom.needs_tracking(tag, rattrs):
        st.elems[nid] = [pid, tag, rattrs]
    if dom.complex and cctx != NO_CTX:
        st.ctx[nid] = cctx
    if matched:
        new, _mattr, block = w.apply_matches(matched, f, nid)
        if block >= 0:
            new |= BLOCK  # existing children stay (already replayed); new ones are dropped
        if new != f:
            st.flags[nid] = new
        return new
    return f


def _style_object(w: DomWalker, style: dict[str, Any]) -> None:
    """Mutation ``style`` objects: ``{prop: value | [value, priority] | false}``."""
    scrub = w.c.text.scrub
    for prop, v in style.items():
        if isinstance(v, str):
            style[prop] = scrub(v, "css", w.report)
        elif isinstance(v, list) and v and isinstance(v[0], str):
            v[0] = scrub(v[0], "css", w.report)


# In rrweb's order of application: removals before additions, then texts and attributes.
_LISTS: tuple[tuple[str, Callable[[DomWalker, list[Any]], list[Any]]], ...] = (
    ("removes", _removes), ("adds", _adds), ("texts", _texts), ("attributes", _attributes),
)
