"""Secrets stay secret: shown once, kept as hashes, private files, rotation (docs/security.md)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from replayd.server.app import create_app
from replayd.server.auth import token_digest, verify_password
from replayd.server.bootstrap import PASSWORD_KEY, TOKEN_KEY
from replayd.server.index import SQLiteIndex
from replayd.server.keys import credentials_key
from replayd.server.spool import Spool
from replayd.server.storage.local import LocalBlobStore
from tests.envelopes import new_id, page_events, post_envelope, replay_envelope
from tests.harness import free_port, make_config, wait_healthy
from tests.test_player_auth import sign_in


def banner_value(text: str, label: str) -> str:
    match = re.search(rf"{label}\s+(\S+)", text)
    assert match, text
    return match.group(1)


@contextlib.contextmanager
def serving(cwd: Path, **overrides: str) -> Iterator[tuple[str, Path]]:
    """``replayd serve`` on the embedded defaults (and ``REPLAYD_*`` ``overrides``) in ``cwd``; yields
    its URL and output file."""
    port, log_path = free_port(), cwd / "out.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLAYD_")}
    env.update(PYTHONUNBUFFERED="1", REPLAYD_SERVER__PORT=str(port), **overrides)
    log_path.write_text("")
    with log_path.open("ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "replayd.server.cli", "serve"], cwd=cwd, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process, log_path)
        yield f"http://127.0.0.1:{port}", log_path
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


def api_status(url: str, token: str) -> int:
    request = urllib.request.Request(url + "/api/0/projects/1/replays/", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def meta(db_path: Path) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        return dict(db.execute("SELECT key, value FROM meta").fetchall())


def stored_bytes(db_path: Path) -> bytes:
    """The database and its write-ahead log, as they lie on disk."""
    wal = db_path.with_name(db_path.name + "-wal")
    return db_path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- shown once, kept as hashes ---------------------------------------------------------------

def test_generated_password_and_token_are_printed_on_the_first_start_only(tmp_path):
    with serving(tmp_path) as (url, log):
        first = log.read_text()
    password = banner_value(first, "password:")
    token = banner_value(first, r"API token \(Authorization: Bearer\):")
    assert len(password) >= 12 and token.startswith("rpd_")

    with serving(tmp_path, REPLAYD_AUTH__API_TOKENS="[old-token-0123]") as (url, log):
        second = log.read_text()
        assert api_status(url, token) == 200  # still the token, though not shown again
    assert password not in second and token not in second
    assert "replayd rotate admin-password" in second and "replayd rotate api-token" in second
    # a token listing no scopes may delete: said at each start, by its place, never the token
    assert "auth.api_tokens.0: lists no scopes, so it may read and delete" in second
    assert "old-token-0123" not in second

    db_path = tmp_path / "var" / "replayd.sqlite3"
    kept = meta(db_path)
    assert verify_password(kept[PASSWORD_KEY], password)
    assert kept[TOKEN_KEY] == token_digest(token)
    assert password.encode() not in stored_bytes(db_path) and token.encode() not in stored_bytes(db_path)


async def test_clear_text_secrets_of_an_older_index_are_hashed_on_start(aiohttp_client, tmp_path):
    old_password, old_token = "older-clear-password", "rpd_older-clear-token-0123456789"
    config = make_config(tmp_path, auth={"admin_password": None, "api_tokens": []})
    await (await SQLiteIndex.open(config.sqlite_path)).close()
    with contextlib.closing(sqlite3.connect(config.sqlite_path)) as db, db:
        db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                       [("auth.admin_password", old_password), ("auth.admin_token", old_token)])

    client = await aiohttp_client(create_app(config))
    assert client.app[credentials_key].shown_once == {}  # nothing new was generated
    assert (await sign_in(client, password=old_password)).status == 303
    response = await client.get("/api/0/projects/1/replays/", headers={"Authorization": f"Bearer {old_token}"})
    assert response.status == 200
    await client.close()

    kept = meta(config.sqlite_path)
    assert "auth.admin_password" not in kept and "auth.admin_token" not in kept
    assert verify_password(kept[PASSWORD_KEY], old_password)
    on_disk = stored_bytes(config.sqlite_path)
    assert old_password.encode() not in on_disk and old_token.encode() not in on_disk


# --- private files ---------------------------------------------------------------------------

def test_serve_creates_its_data_for_its_owner_only(tmp_path):
    with serving(tmp_path) as (url, log):
        key = re.search(r"DSN:\s+http://([0-9a-f]{32})@", log.read_text()).group(1)
        body = replay_envelope(new_id(), 0, page_events(1_795_650_000_000, "https://shop.test/", "Hi"))
        post_envelope(url, body, key)
    var = tmp_path / "var"
    blobs = [p for p in (var / "blobs").rglob("*") if p.is_file()]
    assert blobs, "the segment was stored"
    for path in [var, *var.rglob("*")]:
        assert mode(path) == (0o700 if path.is_dir() else 0o600), path


async def test_index_blob_root_and_spool_are_private_without_the_serve_umask(tmp_path):
    old = tmp_path / "old.sqlite3"
    old.touch(mode=0o644)  # as replayd created it before
    old.chmod(0o644)
    for path in (old, tmp_path / "data" / "new.sqlite3"):
        await (await SQLiteIndex.open(path)).close()
        assert mode(path) == 0o600, path
    assert mode(tmp_path / "data") == 0o700
    assert mode(LocalBlobStore(tmp_path / "blobs").root) == 0o700
    assert mode(Spool(tmp_path / "spool", 1024).path) == 0o700


# --- rotation --------------------------------------------------------------------------------

def rotate(config_path: Path, secret: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "replayd.server.cli", "rotate", secret, "--config", str(config_path)],
                          capture_output=True, text=True, timeout=60)


async def test_rotate_replaces_the_generated_password_token_and_cookie_key(aiohttp_client, tmp_path):
    config = make_config(tmp_path, auth={"admin_password": None, "api_tokens": []})
    client = await aiohttp_client(create_app(config))
    first = dict(client.app[credentials_key].shown_once)
    old_password, old_token = first[PASSWORD_KEY], first[TOKEN_KEY]
    assert (await sign_in(client, password=old_password)).status == 303
    old_session = {c.key: c.value for c in client.session.cookie_jar}
    await client.close()

    results = {name: rotate(tmp_path / "replayd.yaml", name) for name in ("admin-password", "api-token", "cookie-key")}
    assert all(r.returncode == 0 for r in results.values()), {n: r.stderr for n, r in results.items()}
    new_password = banner_value(results["admin-password"].stdout, "new admin password:")
    new_token = banner_value(results["api-token"].stdout, "new API token:")

    client = await aiohttp_client(create_app(config))
    assert client.app[credentials_key].shown_once == {}
    client.session.cookie_jar.update_cookies(old_session)
    assert (await client.get("/", allow_redirects=False)).status == 302  # the old cookie key signed it
    assert (await sign_in(client, password=old_password)).status == 401
    assert (await sign_in(client, password=new_password)).status == 303
    for token, status in ((old_token, 401), (new_token, 200)):
        response = await client.get("/api/0/projects/1/replays/", headers={"Authorization": f"Bearer {token}"})
        assert response.status == status, token
    # the generated admin token has every scope: it may delete (404: no such replay, not 403)
    response = await client.delete("/api/0/projects/1/replays/0123456789abcdef0123456789abcdef/",
                                   headers={"Authorization": f"Bearer {new_token}"})
    assert response.status == 404


def test_rotate_refuses_a_secret_the_config_sets(tmp_path):
    make_config(tmp_path, auth={"admin_password": "from-config", "secret_key": "from-config"})
    for secret, field in (("admin-password", "auth.admin_password"), ("cookie-key", "auth.secret_key")):
        result = rotate(tmp_path / "replayd.yaml", secret)
        assert result.returncode == 2
        assert result.stderr.strip() == f"config error: {field}: set in the config, so change it there"
