"""Objects of a replay that no index row may name any more — replaced by compaction, by a re-sent
segment, or uploaded from the spool after a re-send replaced their row — deleted safely.

A segment's key names its bytes, so a re-send with the same bytes writes the very key of an object
about to be deleted, and commits its row naming it. Such an object is therefore deleted only under the
replay's segment lock (``Index.replay_writer``, which ingest holds from its blob write to its row's
commit, on any node) and only while no row names it; what cannot be deleted now (the replay is being
written, the store is failing) stays in the index's ``blob_garbage`` list, which every compaction round
works off first (``Compactor.collect_garbage``).
"""

from __future__ import annotations

from .index import Index
from .storage import BlobStore


async def delete_unreferenced(index: Index, blobs: BlobStore, project_id: int, replay_id: str, keys: list[str],
                              lock_timeout: float) -> int:
    """Delete each of ``keys`` no row of the replay names, and take every one off the garbage list;
    how many were deleted. ReplayBusy (nothing done) when the replay's lock is not had within
    ``lock_timeout``; an OSError of the store leaves the keys not yet done on the list."""
    deleted = 0
    async with index.replay_writer(project_id, replay_id, 0, lock_timeout) as writer:
        for key in keys:  # on the writer's connection: no second one taken while holding it
            if not await writer.blob_referenced(key):
                await blobs.delete(key)
                deleted += 1
            await writer.forget_garbage(key)
    return deleted
