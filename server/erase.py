"""Erase one user: every replay (blobs, spooled segments, rows, clicks) and every error whose user
is theirs, and an audit row saying who asked, when and how many — never whom.

Stored users are hashed by the default ``user.policy`` (``scrubbing/user.py``), so the address or id
given is looked for both as given and as the keyed hash the scrubber writes (``user_forms``): the
same rule the search's ``user.*`` fields use.
"""

from __future__ import annotations

from replayd.scrubbing.redaction import hash_token

from .index import Index
from .spool import Spool
from .storage import BlobStore, is_replay_id, replay_prefix

USER_FIELDS = ("id", "email", "username")


def user_forms(secret: str, value: str) -> list[str]:
    """How a user value may be stored: as given (policy ``keep``, or a kept field such as ``id``), or
    hashed with the scrubbing secret (policy ``hash``)."""
    return list(dict.fromkeys([value, hash_token(secret.encode(), value)]))


async def erase_user(index: Index, blobs: BlobStore, spool: Spool | None, project_id: int, field: str, value: str,
                     secret: str, actor: str) -> dict[str, int]:
    if field not in USER_FIELDS:
        raise ValueError(f"user field must be one of {', '.join(USER_FIELDS)}")
    forms = user_forms(secret, value)
    replay_ids = await index.user_replays(project_id, field, forms)
    deleted_blobs = 0
    for replay_id in replay_ids:
        deleted_blobs += await delete_replay_data(index, blobs, spool, project_id, replay_id)
    errors = await index.delete_user_errors(project_id, field, forms)
    counts = {"replays": len(replay_ids), "errors": errors, "blobs": deleted_blobs}
    await index.add_audit(actor, f"erase-user-{field}", project_id, counts)
    return counts


async def delete_replay_data(index: Index, blobs: BlobStore, spool: Spool | None, project_id: int,
                             replay_id: str) -> int:
    """A replay's blobs (store and spool), then its rows, then its blobs again; the blobs deleted.

    Blobs first: a crash leaves rows to find again, never orphan blobs. Again after the rows: a
    segment being written by another node (it holds the replay's lock, which ``delete_replay`` waits
    for) may have put its blob after the first pass and committed its row before ours; that blob no
    row names any more, and retention would never find it.
    """
    prefix = replay_prefix(project_id, replay_id) if is_replay_id(replay_id) else None
    # an id from before ids were checked: no prefix names only its blobs
    deleted = await blobs.delete_prefix(prefix) if prefix else 0
    if spool is not None:
        deleted += spool.remove_replay(project_id, replay_id)
    await index.delete_replay(project_id, replay_id)
    if prefix:
        deleted += await blobs.delete_prefix(prefix)
    return deleted
