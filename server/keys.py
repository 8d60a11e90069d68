"""Typed application keys of what several modules share: the config, the index, the blob store...

A key that belongs to one part is defined in that part's module, beside what it holds: the metrics
(server/metrics.py), the session checker (server/auth.py), the ingest rate limiter, the sign-in
throttle, the player's templates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from .config import Config, ProjectConfig
from .index import Index
from .spool import Spool
from .storage import BlobStore
from .uploader import Uploader
from .workers import WorkerPool


@dataclass(slots=True)
class Credentials:
    """What sign-ins and API calls are checked against, and the keys (server/bootstrap.py).

    The password and tokens are only hashes (server/auth.py), each token's digest mapped to its
    scopes; the two keys must stay usable, so the index keeps them as they are (its file is 0600).
    ``shown_once`` maps the index key of a password or token generated on this start to the secret
    itself, for the banner, which prints and forgets it.
    """

    admin_password_hash: str
    token_scopes: dict[str, frozenset[str]]
    secret_key: str
    scrub_secret: str
    shown_once: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Projects:
    by_id: dict[int, ProjectConfig] = field(default_factory=dict)

    def get(self, project_id: int) -> ProjectConfig | None:
        return self.by_id.get(project_id)


config_key = web.AppKey("config", Config)
index_key = web.AppKey("index", Index)
blobs_key = web.AppKey("blobs", BlobStore)
projects_key = web.AppKey("projects", Projects)
credentials_key = web.AppKey("credentials", Credentials)
pool_key = web.AppKey("pool", WorkerPool)
spool_key = web.AppKey("spool", Spool)
uploader_key = web.AppKey("uploader", Uploader)
