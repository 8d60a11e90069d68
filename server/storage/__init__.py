"""Blob stores: one small interface, a local directory and S3 (through aiobotocore); ``backends.py``
opens the one ``storage.backend`` names.

Key layout (relative to the store's root or ``storage.prefix``)::

    {project_id}/{replay_id}/{segment_id:06d}-{digest}     one segment, as ingest stored it
    {project_id}/{replay_id}/compacted-{generation:06d}-{digest} a finished replay's segments, compacted

One object per segment, holding the codec's bytes (see ``server.codec``); ``digest`` is 16 hex digits
of the bytes' BLAKE2b hash, so two writers of one segment with different bytes (one of them scrubbed
with a state that is no longer current, see docs/architecture.md) can never overwrite each other's
object, and one with the same bytes writes the same object again. The index row names the object
its segment is. Keys without a digest (``{segment_id:06d}``), written before, stay readable.
Compaction (``server.compaction``) rewrites a finished replay as one object of a few chunks, read by
byte range (``get_range``). A replay's objects share a prefix, so deleting a replay deletes its prefix.

Keys are built only by ``segment_key``, ``compacted_key`` and ``replay_prefix``, which refuse anything but a canonical
replay id (32 lowercase hex digits): a malformed id is a ``ValueError`` (a bug upstream), never a
store outage, and can never widen a prefix delete to other replays.

A store raises ``StoreUnavailable`` (an ``OSError``) when it cannot be reached or refuses a request:
the caller may retry later (ingest spools meanwhile). Any other exception is not an outage.
"""

from __future__ import annotations

import hashlib
import re
from typing import Protocol

_REPLAY_ID = re.compile(r"[0-9a-f]{32}")
_REPLAY_PREFIX = re.compile(r"[0-9]+/[0-9a-f]{32}/")
_SEGMENT_KEY = re.compile(r"[0-9]+/[0-9a-f]{32}/[0-9]{6,10}(-[0-9a-f]{16})?")
_COMPACTED_KEY = re.compile(r"[0-9]+/[0-9a-f]{32}/compacted-([0-9]{6,10})(-[0-9a-f]{16})?")


class BlobNotFound(KeyError):
    """The key does not exist in the store."""


class StoreUnavailable(OSError):
    """The store could not be reached or refused the request; worth retrying later."""


class BlobStore(Protocol):
    name: str

    async def put(self, key: str, data: bytes) -> None:
        """Write an object; ``key`` must be a ``segment_key`` or a ``compacted_key`` (else ValueError)."""

    async def get(self, key: str) -> bytes: ...

    async def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` (exclusive) of an object; BlobNotFound if it does not exist."""

    async def delete(self, key: str) -> None:
        """Delete one object (nothing if there is none); ``key`` must be a ``segment_key`` or ``compacted_key``."""

    async def delete_prefix(self, prefix: str) -> int:
        """Delete a replay's blobs; ``prefix`` must be a whole ``replay_prefix`` (else ValueError)."""

    async def exists(self, key: str) -> bool: ...

    async def check(self) -> None:
        """Raise if the store cannot be reached or written."""

    async def close(self) -> None: ...


def is_replay_id(value: str) -> bool:
    """A replay id as the index and the keys hold it: 32 lowercase hex digits."""
    return _REPLAY_ID.fullmatch(value) is not None


def segment_key(project_id: int, replay_id: str, segment_id: int, blob: bytes | None = None) -> str:
    """Where the segment's ``blob`` is kept: named by the segment and the bytes' digest (without
    ``blob``, the key of replayd before digests)."""
    key = f"{project_id}/{replay_id}/{segment_id:06d}"
    if blob is not None:
        key += "-" + hashlib.blake2b(blob, digest_size=8).hexdigest()
    return check_segment_key(key)


def compacted_key(project_id: int, replay_id: str, generation: int, digest: str | None = None) -> str:
    """Where compaction writes a replay's segments the ``generation``-th time, named by the object's
    ``digest`` (16 hex digits of BLAKE2b, ``object_digest``), as a segment is: a key always holds the
    same bytes, so an object the index pointed at is never overwritten with others — not even when a
    replay whose every segment was sent again is compacted again at the same generation. Keys without
    a digest, written before, stay readable."""
    return check_blob_key(f"{project_id}/{replay_id}/compacted-{generation:06d}"
                          + ("" if digest is None else f"-{digest}"))


def object_digest(parts: list[bytes]) -> str:
    """The digest ``compacted_key`` names an object by: of its parts' bytes, one after the other."""
    hashed = hashlib.blake2b(digest_size=8)
    for part in parts:
        hashed.update(part)
    return hashed.hexdigest()


def compacted_generation(key: str) -> int | None:
    """The generation of a ``compacted_key``; None for any other key."""
    match = _COMPACTED_KEY.fullmatch(key)
    return int(match.group(1)) if match else None


def replay_prefix(project_id: int, replay_id: str) -> str:
    return check_replay_prefix(f"{project_id}/{replay_id}/")


def check_segment_key(key: str) -> str:
    """``key`` if ``segment_key`` could have made it, else ValueError."""
    if _SEGMENT_KEY.fullmatch(key) is None:
        raise ValueError(f"not a segment key: {key!r:.80}")
    return key


def check_blob_key(key: str) -> str:
    """``key`` if ``segment_key`` or ``compacted_key`` could have made it, else ValueError."""
    if _SEGMENT_KEY.fullmatch(key) is None and _COMPACTED_KEY.fullmatch(key) is None:
        raise ValueError(f"not a blob key: {key!r:.80}")
    return key


def check_replay_prefix(prefix: str) -> str:
    """``prefix`` if it names exactly one replay's blobs, else ValueError (it could match others)."""
    if _REPLAY_PREFIX.fullmatch(prefix) is None:
        raise ValueError(f"not a replay prefix: {prefix!r:.80}")
    return prefix
