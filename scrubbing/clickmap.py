"""ClickMap: the clickable elements of a replay's document, as scrubbed, for describing its clicks.

A click names only a node id; the ingest's click index (``server/ingest/clicks.py``) describes it
by the clickable element it landed in: the innermost link, button, form field or label
(``CLICKABLE_TAGS``), element with a widget ``role`` (``CLICK_ROLES``) or a ``data-testid`` that
the clicked node is or is inside (a click on a button's icon is the button's).

Kept cheap because most segments have no click at all, and many pages are replaced before one:

- The scrubber's walk notes a clickable element as a reference to its (scrubbed) node, the
  elements inside one in ``owners`` (node id -> the clickable's id), and the text nodes inside one
  as references; it reads no attribute and joins no text. An element is described (``describe``:
  tag, ``CLICK_ATTRIBUTES``, text pieces) only when a click or a mutation needs it; the elements of
  a page that a new full snapshot replaces in the same segment are never read.
- At the segment's end its additions are packed as one chunk with C-level copies only (the
  elements' tag and attribute map, the text nodes' id and text): no Python work per element.
  Earlier chunks stay as bytes: a segment's state round trip copies them and unpacks them only
  when it needs an earlier element — a click, or a mutation inside one (the sorted ids of the
  chunks' elements and of the nodes inside them tell which without unpacking; an attribute change
  of an earlier element is kept as a patch, applied when read). Entries are only ever added or
  replaced (a later chunk wins); past ``MAX_CHUNKS`` chunks, or past the limit, the chunks are
  merged into one (the oldest half of the entries dropped when over the limit).
- A clicked element is described at the click's time (``note_click``), in the order of the
  segment's events: a later mutation or new page in the same segment does not change what that
  click hit. Attribute and text changes, text added and removed, update an element's description.

An entry is ``(tag, *CLICK_ATTRIBUTES values, pieces)`` with ``pieces`` a flat tuple ``(text node
id, id of the clickable's child it is under or None, text, ...)`` in document order: a text node's
change or removal (or its branch's) finds its piece.  Entries written before pieces (a str) still read.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from itertools import compress, repeat
from operator import getitem, itemgetter
from typing import Any

import msgpack

CLICKABLE_TAGS = frozenset({"a", "button", "input", "select", "textarea", "summary", "label", "option"})
CLICK_ATTRIBUTES = ("id", "class", "role", "aria-label", "data-testid", "alt", "title", "type")
CLICK_NAMES = frozenset(CLICK_ATTRIBUTES)
# ARIA roles of things one clicks (widgets): an element with one is clickable. Landmark and
# structure roles (main, navigation, menu, list, ...) contain the page's content: a click on a
# paragraph of ``main`` is not a click on ``main``.
CLICK_ROLES = frozenset({
    "button", "checkbox", "combobox", "gridcell", "link", "menuitem", "menuitemcheckbox", "menuitemradio",
    "option", "radio", "row", "searchbox", "slider", "spinbutton", "switch", "tab", "textbox", "treeitem",
})
CLICK_TEXT = 100  # characters of visible text kept per element (more is cut when read)
MAX_CHUNKS = 8  # packed chunks before they are merged into one
_TEXT_NODE = 3
_ELEMENT_NODE = 2

NodeId = Any
Entry = tuple[Any, ...]


def describe(node: dict[str, Any]) -> Entry:
    """An element node as the walk left it (scrubbed): ``(tag, *CLICK_ATTRIBUTES values, text pieces)``.
    Values are kept as the recording has them (a malformed one need not be a string: readers check)."""
    tag = node.get("tagName")
    attrs = node.get("attributes")
    pieces: list[Any] = []
    kids = node.get("childNodes")
    if kids.__class__ is list:
        total = 0
        for kid in kids:
            if kid.__class__ is not dict:
                continue
            if kid.get("type") == _TEXT_NODE:  # the common case, inline: a link's text
                tc = kid.get("textContent")
                if tc.__class__ is str and tc and not tc.isspace():
                    kid_id = kid.get("id")
                    pieces += (kid_id, kid_id, tc[:CLICK_TEXT * 2])
                    total += len(tc)
            else:
                total = text_pieces(kid, kid.get("id"), pieces, total)
            if total >= CLICK_TEXT:
                break
    tag = tag.lower() if tag.__class__ is str else ""
    if attrs.__class__ is not dict or CLICK_NAMES.isdisjoint(attrs):  # most links: an href only
        return (tag, None, None, None, None, None, None, None, None, tuple(pieces))
    g = attrs.get  # CLICK_ATTRIBUTES, in order
    return (tag, g("id"), g("class"), g("role"), g("aria-label"), g("data-testid"), g("alt"), g("title"), g("type"),
            tuple(pieces))


_NO_VALUES = (None,) * len(CLICK_ATTRIBUTES)


def text_pieces(root: dict[str, Any], via: Any, pieces: list[Any], total: int = 0) -> int:
    """Append ``(id, via, text)`` for the text nodes under ``root`` in document order until
    ``CLICK_TEXT`` characters; returns the characters collected so far."""
    stack = [root]
    while stack:
        n = stack.pop()
        if n.__class__ is not dict:
            continue
        t = n.get("type")
        if t == _TEXT_NODE:
            tc = n.get("textContent")
            if tc.__class__ is str and tc and not tc.isspace():
                pieces += (n.get("id"), via, tc[:CLICK_TEXT * 2])
                total += len(tc)
                if total >= CLICK_TEXT:
                    return total
        elif t == _ELEMENT_NODE:
            kids = n.get("childNodes")
            if kids.__class__ is list and kids:
                stack.extend(reversed(kids))
    return total


def entry_text(entry: Entry) -> str:
    pieces = entry[-1]
    if pieces.__class__ is str:  # written before pieces
        return pieces
    return " ".join(p for p in pieces[2::3] if p.__class__ is str)


def _valid(entry: Any) -> bool:
    return entry.__class__ in (tuple, list) and len(entry) == len(CLICK_ATTRIBUTES) + 2


_ID = "i"  # node ids in the sorted id arrays: 32-bit (4 bytes each, whatever the platform's long)
_TAG = itemgetter("tagName")
_ATTRS = itemgetter("attributes")
_NODE_ID = itemgetter("id")
_TEXT = itemgetter("textContent")


class ClickMap:
    __slots__ = ("chunks", "entries", "owner_count", "clickable_ids", "owned_ids", "refs", "fresh", "owners",
                 "text_nodes", "text_owners", "text_parents", "patches", "clicked", "_text_index", "_text_indexed",
                 "_old")

    def __init__(self) -> None:
        # earlier segments' changes, packed (``to_plain``), oldest first
        self.chunks: list[bytes] = []
        self.entries = 0  # entries in the chunks (one replaced later counts twice)
        self.owner_count = 0  # nodes inside one in the chunks, the same way
        # the ids in the chunks, sorted: of clickable elements, of nodes inside one
        self.clickable_ids = array(_ID)
        self.owned_ids = array(_ID)
        # this segment's: clickable elements noted by the walk (id -> node), and those described (id -> entry)
        self.refs: dict[NodeId, dict[str, Any]] = {}
        self.fresh: dict[NodeId, Entry] = {}
        self.owners: dict[NodeId, NodeId] = {}  # this segment's: element inside a clickable -> the clickable
        self.text_nodes: list[dict[str, Any]] = []  # this segment's text nodes inside a clickable ...
        self.text_owners: list[NodeId] = []  # ... the clickable each is in
        self.text_parents: list[NodeId] = []  # ... and its parent element
        # this segment's attribute changes of elements in the chunks: id -> {name: value}, applied when read
        self.patches: dict[NodeId, dict[str, Any]] = {}
        # not persisted: this segment's clicks, as described at their time: (event data, clickable id, entry)
        self.clicked: list[tuple[dict[str, Any], Any, Entry | None]] = []
        self._text_index: dict[NodeId, NodeId] = {}  # text_nodes' ids -> owners, built when first needed
        self._text_indexed = 0  # text_nodes in it
        self._old: _Chunks | None = None  # the chunks, unpacked when first needed

    def reset(self) -> None:
        """A new document: every element forgotten (clicks already described stay)."""
        self.chunks = []
        self.entries = self.owner_count = 0
        self.clickable_ids = array(_ID)
        self.owned_ids = array(_ID)
        self.refs.clear()
        self.fresh.clear()
        self.owners.clear()
        self.text_nodes.clear()
        self.text_owners.clear()
        self.text_parents.clear()
        self.patches.clear()
        self._text_index = {}
        self._text_indexed = 0
        self._old = None

    def __len__(self) -> int:
        return self.entries + len(self.refs) + len(self.fresh)

    # --- reading -------------------------------------------------------------------------------

    def _load(self) -> _Chunks:
        if self._old is None:
            self._old = _Chunks(self.chunks)
        return self._old

    def clickable(self, nid: NodeId, text: bool = False) -> NodeId | None:
        """The id of the clickable element node ``nid`` is (or is inside), or None; ``text``: ``nid``
        may be a text node (clicks and additions name elements)."""
        if nid.__class__ is not int:
            return None
        own = self.owners.get(nid)
        if own is not None:
            return own
        if nid in self.refs or nid in self.fresh:
            return nid
        if text and self.text_nodes:
            index = self._text_index
            done = self._text_indexed
            if done < len(self.text_nodes):  # the text nodes noted since the last look
                index.update(zip(_ids_of(self.text_nodes[done:]), self.text_owners[done:], strict=True))
                self._text_indexed = len(self.text_nodes)
            own = index.get(nid)
            if own is not None:
                return own
        if _has(self.owned_ids, nid):
            own = self._load().owners.get(nid)
            if own is not None:
                return own
        if _has(self.clickable_ids, nid):
            return nid
        return None

    def entry(self, cid: NodeId) -> Entry | None:
        """The clickable element ``cid`` described now (this segment's entry once described)."""
        v = self.fresh.get(cid)
        if v is not None:
            return v
        node = self.refs.pop(cid, None)
        if node is not None:
            try:
                v = describe(node)
            except Exception:  # a malformed node the walk let through: undescribed
                v = ("", *_NO_VALUES, ())
        else:
            if not _has(self.clickable_ids, cid):
                return None
            v = self._load().get(cid)
            if v is None:
                return None
            changes = self.patches.pop(cid, None)
            if changes is None:
                return v
            v = _patched(v, changes)
        self.fresh[cid] = v
        return v

    def target(self, nid: NodeId) -> tuple[NodeId | None, Entry | None]:
        cid = self.clickable(nid)
        return (cid, self.entry(cid)) if cid is not None else (None, None)

    # --- this segment's events, in order ---------------------------------------------------------

    def note_click(self, data: dict[str, Any]) -> None:
        cid, entry = self.target(data.get("id"))
        self.clicked.append((data, cid, entry))

    def attach(self, cid: NodeId, root: Any, parent_id: NodeId) -> None:
        """Nodes a mutation added under ``parent_id`` inside clickable ``cid`` (already noted by the
        walk): their text, removed again with ``root`` (a child of ``cid``) or ``parent_id``."""
        entry = self.entry(cid)
        if entry is None or root.__class__ is not dict:
            return
        pieces = list(_pieces(entry))
        total = sum(len(p) for p in pieces[2::3] if p.__class__ is str)
        via = root.get("id") if parent_id == cid else parent_id
        if total < CLICK_TEXT and text_pieces(root, via, pieces, total) != total:
            self.fresh[cid] = (*entry[:-1], tuple(pieces))

    def text_changed(self, nid: NodeId, value: Any) -> None:
        cid = self.clickable(nid, text=True)
        if cid is None or cid == nid:
            return
        entry = self.entry(cid)
        if entry is None:
            return
        text = value[:CLICK_TEXT * 2] if _shown(value) else ""
        pieces = list(_pieces(entry))
        for i in range(0, len(pieces) - 2, 3):
            if pieces[i] == nid:
                pieces[i + 2] = text
                break
        else:
            if not text:
                return
            pieces += (nid, None, text)
        self.fresh[cid] = (*entry[:-1], tuple(pieces))

    def removed(self, nid: NodeId) -> None:
        """A node removed: the text pieces of its clickable under it go (the clickable stays: the
        button that closed a dialog is removed by its own click)."""
        if nid.__class__ is not int or (nid in self.refs or nid in self.fresh):
            return
        cid = self.clickable(nid, text=True)
        entry = self.entry(cid) if cid is not None and cid != nid else None
        if entry is None:
            return
        pieces = _pieces(entry)
        kept = tuple(x for i in range(0, len(pieces) - 2, 3) if nid not in pieces[i:i + 2] for x in pieces[i:i + 3])
        if len(kept) != len(pieces):
            self.fresh[cid] = (*entry[:-1], kept)

    def attributes_changed(self, nid: NodeId, at: dict[str, Any]) -> None:
        """An element's attributes changed (as scrubbed): a clickable's description follows; null removes one."""
        changes = {name: v if v.__class__ is str else None for name, v in at.items() if name in CLICK_NAMES}
        if nid in self.refs or nid in self.fresh:
            entry = self.entry(nid)
            if entry is not None:
                self.fresh[nid] = _patched(entry, changes)
        elif nid.__class__ is int and _has(self.clickable_ids, nid):  # kept for when it is read
            self.patches[nid] = {**self.patches.get(nid, {}), **changes}

    # --- persisted -------------------------------------------------------------------------------

    def to_plain(self, limit: int) -> list[Any]:
        """``[chunks, entries, owners, clickable ids, owned ids]``, this segment's changes one more chunk."""
        chunks, entries, owner_count = self.chunks, self.entries, self.owner_count
        clickable_ids, owned_ids = self.clickable_ids, self.owned_ids
        refs, fresh, owners, text_nodes = self.refs, self.fresh, self.owners, self.text_nodes
        if refs or fresh or owners or text_nodes or self.patches:
            values = list(map(_TEXT, text_nodes))
            try:  # C-level copies: no Python work per element or text node
                values = list(map(getitem, values, repeat(slice(CLICK_TEXT * 2))))
            except TypeError:  # a malformed recording's text
                values = [v[:CLICK_TEXT * 2] if v.__class__ is str else "" for v in values]
            text_ids = _ids_of(text_nodes)
            nodes = refs.values()
            chunk = msgpack.packb([fresh, owners, self.patches, list(refs), list(map(_TAG, nodes)),
                                   _click_values(nodes), text_ids, self.text_owners, self.text_parents, values],
                                  use_bin_type=True)
            chunks = [*chunks, chunk]
            entries += len(refs) + len(fresh)
            owner_count += len(owners) + len(text_nodes)
            if len(chunks) > MAX_CHUNKS or entries > limit or owner_count > limit:
                merged, merged_owners = self._merged(chunks, limit)
                chunks = [msgpack.packb([merged, merged_owners, {}, [], [], [], [], [], [], []], use_bin_type=True)]
                entries, owner_count = len(merged), len(merged_owners)
                clickable_ids, owned_ids = _ids(array(_ID), merged), _ids(array(_ID), merged_owners)
            else:
                clickable_ids = _ids(clickable_ids, [*refs, *fresh])
                owned_ids = _ids(owned_ids, [*owners, *text_ids])
        return [chunks, entries, owner_count, clickable_ids.tobytes(), owned_ids.tobytes()]

    def _merged(self, chunks: list[bytes], limit: int) -> tuple[dict[NodeId, Entry], dict[NodeId, NodeId]]:
        """Every chunk's entries described, the newest of each id, at most ``limit`` (the oldest half dropped)."""
        every = _Chunks(chunks)
        merged = {nid: v for nid in every.ids() if (v := every.get(nid)) is not None}
        merged_owners = dict(every.owners)
        for kept in (merged, merged_owners):
            if len(kept) > limit:  # the oldest half goes
                items = list(kept.items())[len(kept) - limit // 2:]
                kept.clear()
                kept.update(items)
        return merged, merged_owners

    @classmethod
    def from_plain(cls, plain: Any) -> ClickMap:
        m = cls()
        chunks, entries, owner_count, clickable_ids, owned_ids = plain
        if not (isinstance(chunks, list) and all(c.__class__ is bytes for c in chunks)):
            raise ValueError("click map of the wrong shape")
        m.chunks, m.entries, m.owner_count = chunks, int(entries), int(owner_count)
        m.clickable_ids.frombytes(clickable_ids)
        m.owned_ids.frombytes(owned_ids)
        return m

    @classmethod
    def from_entries(cls, entries: dict[Any, Any], owners: dict[Any, Any]) -> ClickMap:
        """A map stored before chunks (``rs1``): its entries as this segment's, packed at the next save."""
        m = cls()
        m.fresh = {int(k): tuple(v) for k, v in entries.items() if _valid(v)}
        m.owners = {int(k): int(v) for k, v in owners.items()}
        return m


def _ids_of(nodes: list[dict[str, Any]]) -> list[Any]:
    try:
        return list(map(_NODE_ID, nodes))
    except KeyError:  # a malformed recording's node
        return [n.get("id") for n in nodes]


class _Chunks:
    """The chunks unpacked (C-level only): an element is looked up newest chunk first and described
    when first read, with the attribute changes of later chunks applied."""

    __slots__ = ("parts", "owners", "_seen")

    def __init__(self, chunks: list[bytes]) -> None:
        # per chunk: described entries, raw id -> index, raw tags, raw attribute values, patches, text nodes
        self.parts: list[tuple[Any, ...]] = []
        self.owners: dict[NodeId, NodeId] = {}
        self._seen: dict[NodeId, Entry | None] = {}
        for chunk in chunks:
            try:
                (entries, owners, patches, raw_ids, raw_tags, raw_values, text_ids, text_owners, text_parents,
                 text_values) = msgpack.unpackb(chunk, raw=False, use_list=False, strict_map_key=False)
                index = dict(zip(raw_ids, range(len(raw_ids)), strict=True))
                self.owners.update(owners)
                self.owners.update(zip(text_ids, text_owners, strict=True))
                self.parts.append((entries, index, raw_tags, raw_values, patches,
                                   (text_ids, text_owners, text_parents, text_values)))
            except Exception:  # damaged: its elements go undescribed, never a failed segment
                continue

    def ids(self) -> dict[NodeId, None]:
        """Every element's id, oldest chunk first."""
        ids: dict[NodeId, None] = {}
        for entries, index, *_ in self.parts:
            ids.update(dict.fromkeys(index))
            ids.update(dict.fromkeys(entries))
        return ids

    def get(self, nid: NodeId) -> Entry | None:
        if nid in self._seen:
            return self._seen[nid]
        v: Any = None
        parts = self.parts
        k = len(parts) - 1
        while k >= 0:
            entries, index, tags, values, _, texts = parts[k]
            if nid in entries:
                v = entries[nid]
                break
            i = index.get(nid)
            if i is not None:
                try:
                    v = _raw_entry(nid, tags[i], values[i], texts)
                except Exception:  # a damaged chunk
                    v = None
                break
            k -= 1
        if not _valid(v):
            v = None
        else:
            for later in parts[k + 1:]:
                changes = later[4].get(nid)
                if changes.__class__ is dict:
                    v = _patched(v, changes)
        self._seen[nid] = v
        return v  # type: ignore[no-any-return]


def _raw_entry(nid: NodeId, tag: Any, values: Any, texts: tuple[Any, Any, Any, Any]) -> Entry:
    """An element as the walk left it, described with its text nodes (rrweb numbers a snapshot's
    nodes in document order: sorted by id, they read in order)."""
    ids, owners, parents, texts_of = texts
    mine = list(map(nid.__eq__, owners))
    found = sorted(zip(compress(ids, mine), compress(parents, mine), compress(texts_of, mine), strict=True), key=_by_id)
    pieces: list[Any] = []
    total = 0
    for tid, parent, text in found:
        if total < CLICK_TEXT and _shown(text):
            pieces += (tid, parent, text)
            total += len(text)
    return _entry(tag, values, pieces)


def _by_id(piece: tuple[Any, ...]) -> Any:
    return piece[0] if piece[0].__class__ is int else 0


def _shown(text: Any) -> bool:
    return text.__class__ is str and bool(text) and not text.isspace()


def _entry(tag: Any, values: Any, pieces: list[Any]) -> Entry:
    tag = tag.lower() if tag.__class__ is str else ""
    if values.__class__ is not tuple or len(values) != len(CLICK_ATTRIBUTES):
        values = _NO_VALUES
    return (tag, *values, tuple(pieces))


def _click_values(nodes: Any) -> list[tuple[Any, ...] | None]:
    """Each node's CLICK_ATTRIBUTES values, None for one with none of them (most links: an href only)."""
    disjoint = CLICK_NAMES.isdisjoint
    try:
        return [None if disjoint(a) else tuple(map(a.get, CLICK_ATTRIBUTES)) for a in map(_ATTRS, nodes)]
    except (AttributeError, TypeError):  # a malformed recording's attributes
        return [tuple(map(a.get, CLICK_ATTRIBUTES)) if (a := n.get("attributes")).__class__ is dict else None
                for n in nodes]


def _pieces(entry: Entry) -> tuple[Any, ...]:
    pieces = entry[-1]
    if pieces.__class__ is str:  # written before pieces: one piece of no node
        return (None, None, pieces) if pieces else ()
    return pieces  # type: ignore[no-any-return]


def _patched(entry: Entry, changes: dict[str, Any]) -> Entry:
    new = list(entry)
    for i, name in enumerate(CLICK_ATTRIBUTES, 1):
        if name in changes:
            v = changes[name]
            new[i] = v if v.__class__ is str else None
    return tuple(new)


def _has(ids: array[int], nid: int) -> bool:
    i = bisect_left(ids, nid)
    return i < len(ids) and ids[i] == nid


def _ids(ids: array[int], new: Any) -> array[int]:
    """The sorted ids of ``ids`` and ``new`` (a map's keys or a list) that are 32-bit ints (rrweb's
    are; a malformed recording's others go undescribed)."""
    try:
        more = array(_ID, sorted(new))
    except (TypeError, OverflowError):  # a malformed recording's ids: those never looked up
        more = array(_ID, sorted(i for i in new if i.__class__ is int and -(1 << 31) <= i < 1 << 31))
    if not more:
        return ids
    if not ids or ids[-1] < more[0]:  # rrweb numbers new nodes upwards: most often appended
        return ids + more
    return array(_ID, sorted(ids + more))
