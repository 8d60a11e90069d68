"""ReplayState: the little a later segment needs to know about the DOM of earlier ones.

Persisted between segments (``to_bytes``/``from_bytes``, msgpack) so any process can scrub the
next segment the same way.  It holds only:

- ``flags``: node id -> bits, for nodes the rules touched: ``MASK`` (text, text attributes and
  inputs masked; inherited by children), ``BLOCK`` (a blocked element: new children are
  dropped), ``DROPPED`` (a node inside a blocked subtree: every later mutation of it is dropped).
  Bits from ``RULE_SHIFT`` up hold the index + 1 of the DOM rule that did it, for the report.
- ``masked_attrs``: element id -> attribute names a ``mask_attributes`` rule covers.
- ``elems``: element id -> ``[parent id, tag, {attr: value}]`` for the elements a selector could
  start (or stop) matching after an attribute mutation: elements whose tag a rule names, or that
  carry an attribute a tag-less rule tests; with combinator rules, every element.
- ``ctx``: element id -> ``(D, P)`` bitmasks of combinator-selector prefixes matched by the
  element's ancestors (``D``) and the element itself (``P``), only where non-zero.

A full snapshot resets it (a new document).  Removed nodes are forgotten.
"""

from __future__ import annotations

from typing import Any

import msgpack

MASK = 1
BLOCK = 2
DROPPED = 4
RULE_SHIFT = 3

_MARK = "rs3"
# States written while the scrubber also kept a map of clickable elements (before clicks were
# described by the recorder): still read, the map ignored.
_OLD_MARKS = ("rs1", "rs2")


class StateError(ValueError):
    """Bytes that are not a ReplayState of a version this code reads."""


# A node's "id" as the recording gives it: an int from rrweb, anything from a malformed recording.
NodeId = Any


class ReplayState:
    __slots__ = ("flags", "masked_attrs", "elems", "ctx", "rules_fp")

    def __init__(self) -> None:
        self.flags: dict[NodeId, int] = {}
        self.masked_attrs: dict[NodeId, tuple[str, ...]] = {}
        self.elems: dict[NodeId, list[Any]] = {}
        self.ctx: dict[NodeId, tuple[int, int]] = {}
        self.rules_fp: str = ""  # fingerprint of the rules the bit layouts refer to

    def reset(self) -> None:
        self.flags.clear()
        self.masked_attrs.clear()
        self.elems.clear()
        self.ctx.clear()

    def forget(self, node_id: NodeId) -> None:
        self.flags.pop(node_id, None)
        self.masked_attrs.pop(node_id, None)
        self.elems.pop(node_id, None)
        self.ctx.pop(node_id, None)

    def __len__(self) -> int:
        return len(self.flags) + len(self.masked_attrs) + len(self.elems) + len(self.ctx)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReplayState) and self._plain() == other._plain()

    def _plain(self) -> list[Any]:
        return [
            _MARK,
            self.rules_fp,
            self.flags,
            {k: list(v) for k, v in self.masked_attrs.items()},
            self.elems,
            {k: list(v) for k, v in self.ctx.items()},
        ]

    def to_bytes(self) -> bytes:
        packed: bytes = msgpack.packb(self._plain(), use_bin_type=True)
        return packed

    @classmethod
    def from_bytes(cls, data: bytes | None) -> ReplayState:
        st = cls()
        if not data:
            return st
        try:
            obj = msgpack.unpackb(data, raw=False, strict_map_key=False)
        except Exception as e:  # msgpack raises several types
            raise StateError(f"not a replay state: {e}") from None
        if not isinstance(obj, list) or not obj or (obj[0] != _MARK and obj[0] not in _OLD_MARKS):
            raise StateError(f"unknown replay state version {obj[0] if isinstance(obj, list) and obj else obj!r}")
        try:  # damaged bytes of the right version: a StateError too, never another exception
            _, st.rules_fp, flags, mattrs, elems, ctx, *_clicks = obj
            st.flags = {int(k): int(v) for k, v in flags.items()}
            st.masked_attrs = {int(k): tuple(v) for k, v in mattrs.items()}
            st.elems = {int(k): list(v) for k, v in elems.items()}
            st.ctx = {int(k): (int(v[0]), int(v[1])) for k, v in ctx.items()}
        except Exception as e:
            raise StateError(f"damaged replay state: {type(e).__name__}: {e}") from None
        return st

    def __repr__(self) -> str:
        return (
            f"ReplayState(flags={len(self.flags)}, masked_attrs={len(self.masked_attrs)}, "
            f"elems={len(self.elems)}, ctx={len(self.ctx)})"
        )
