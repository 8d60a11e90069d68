"""First-start set-up: the embedded default project and the generated credentials."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

from .auth import generate_password, generate_token, hash_password, token_digest
from .config import ALL_SCOPES, Config, ConfigError, ProjectConfig
from .index import Index
from .keys import Credentials, Projects


async def load_projects(config: Config, index: Index) -> Projects:
    if config.projects is not None:
        return Projects({p.id: p for p in config.projects})
    key = await index.meta_get_or_create("project.1.public_key", lambda: secrets.token_hex(16))
    return Projects({1: ProjectConfig(id=1, name="default", public_keys=[key], allowed_origins=["*"])})


# Keys of the index's meta table: a hash of the generated admin password, a digest of the generated
# admin API token, and two keys (kept as they are: they must stay usable).
PASSWORD_KEY = "auth.admin_password_hash"
TOKEN_KEY = "auth.admin_token_sha256"
SECRET_KEY_KEY = "auth.secret_key"
SCRUB_SECRET_KEY = "scrubbing.secret"


async def hash_clear_text_secrets(index: Index) -> None:
    """Older versions kept the generated password and token in clear: replace them by their hashes."""
    await index.meta_replace("auth.admin_password", PASSWORD_KEY, hash_password)
    await index.meta_replace("auth.admin_token", TOKEN_KEY, token_digest)


async def _generated_secret(index: Index, key: str, generate: Callable[[], str],
                            digest: Callable[[str], str], shown_once: dict[str, str]) -> str:
    """The hash kept under ``key``. On the start that generates the secret, the secret itself goes
    into ``shown_once[key]`` (for the banner) and is never stored."""

    def make() -> str:
        secret = shown_once[key] = generate()
        return digest(secret)

    return await index.meta_get_or_create(key, make)


def _new_key() -> str:
    return secrets.token_urlsafe(32)


async def load_credentials(config: Config, index: Index) -> Credentials:
    await hash_clear_text_secrets(index)
    shown_once: dict[str, str] = {}
    if config.auth.admin_password:
        password_hash = await asyncio.to_thread(hash_password, config.auth.admin_password)
    else:
        password_hash = await _generated_secret(index, PASSWORD_KEY, generate_password, hash_password, shown_once)
    admin_token_digest = await _generated_secret(index, TOKEN_KEY, generate_token, token_digest, shown_once)
    return Credentials(
        admin_password_hash=password_hash,
        # the generated admin token may do everything, as the admin signed in may
        token_scopes={**{token_digest(t.token): t.granted for t in config.auth.api_tokens},
                      admin_token_digest: ALL_SCOPES},
        secret_key=config.auth.secret_key or await index.meta_get_or_create(SECRET_KEY_KEY, _new_key),
        scrub_secret=await scrubbing_secret(config, index),
        shown_once=shown_once,
    )


async def scrubbing_secret(config: Config, index: Index) -> str:
    """The key of the ``hash`` redaction (and of the search's and erasure's user hashes)."""
    return config.scrubbing.secret or await index.meta_get_or_create(SCRUB_SECRET_KEY, _new_key)


async def rotate_secret(config: Config, index: Index, name: str) -> str:
    """Replace a generated secret (``admin-password``, ``api-token``, ``cookie-key``) in the index;
    returns the line to print, with a new password or token shown this once. Used from the next start."""
    await hash_clear_text_secrets(index)  # else that start would turn an old clear value into the current hash
    if name == "admin-password":
        if config.auth.admin_password:
            raise ConfigError(["auth.admin_password: set in the config, so change it there"])
        password = generate_password()
        await index.meta_set(PASSWORD_KEY, await asyncio.to_thread(hash_password, password))
        return f"new admin password: {password}"
    if name == "api-token":
        token = generate_token()
        await index.meta_set(TOKEN_KEY, token_digest(token))
        return f"new API token: {token} (the previous generated token stops working; auth.api_tokens are unchanged)"
    if name == "cookie-key":
        if config.auth.secret_key:
            raise ConfigError(["auth.secret_key: set in the config, so change it there"])
        await index.meta_set(SECRET_KEY_KEY, _new_key())
        return "new cookie key stored: every session and remembered browser ends"
    raise ValueError(f"unknown secret {name!r}")


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
