"""First-start set-up: the embedded default project and the generated credentials."""

from __future__ import annotations

import secrets

from .config import Config, ProjectConfig
from .index import SQLiteIndex
from .keys import Credentials, Projects


async def load_projects(config: Config, index: SQLiteIndex) -> Projects:
    if config.projects is not None:
        return Projects({p.id: p for p in config.projects})
    key = await index.meta_get_or_create("project.1.public_key", lambda: secrets.token_hex(16))
    return Projects({1: ProjectConfig(id=1, name="default", public_keys=[key], allowed_origins=["*"])})


async def load_credentials(config: Config, index: SQLiteIndex) -> Credentials:
    admin_password = config.auth.admin_password or await index.meta_get_or_create(
        "auth.admin_password", lambda: secrets.token_urlsafe(12)
    )
    admin_token = await index.meta_get_or_create("auth.admin_token", lambda: "rpd_" + secrets.token_urlsafe(24))
    secret_key = config.auth.secret_key or await index.meta_get_or_create(
        "auth.secret_key", lambda: secrets.token_urlsafe(32)
    )
    scrub_secret = config.scrubbing.secret or await index.meta_get_or_create(
        "scrubbing.secret", lambda: secrets.token_urlsafe(32)
    )
    return Credentials(
        admin_password=admin_password,
        admin_token=admin_token,
        api_tokens=frozenset([*config.auth.api_tokens, admin_token]),
        secret_key=secret_key,
        scrub_secret=scrub_secret,
    )


def public_url(config: Config, host: str | None = None, port: int | None = None) -> str:
    if config.server.public_url:
        return config.server.public_url.rstrip("/")
    host = host or config.server.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port or config.server.port}"


def dsn(base_url: str, project: ProjectConfig) -> str:
    scheme, _, rest = base_url.partition("://")
    return f"{scheme}://{project.public_keys[0]}@{rest}/{project.id}"
