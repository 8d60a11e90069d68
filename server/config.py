"""Configuration: one YAML file validated by pydantic, overridable by REPLAYD_<SECTION>__<FIELD>.

Every problem is reported as ``field.path: message`` so that ``replayd check-config`` and
``replayd serve`` can refuse a bad file with one line per problem instead of a traceback.
"""

from __future__ import annotations

import os
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, ValidationError, model_validator
from pydantic_core import ErrorDetails

from .search import SearchLimits

ENV_PREFIX = "REPLAYD_"
# Environment variables with this prefix that are not config fields (the second names the
# PostgreSQL server the tests use, and `replayd serve` started by a test inherits it).
ENV_RESERVED = {"REPLAYD_CONFIG", "REPLAYD_TEST_POSTGRES_URL"}

MiB = 1024 * 1024
SEARCH = SearchLimits()  # the defaults


class ConfigError(Exception):
    """A configuration that cannot be used; ``problems`` holds one ``path: message`` line each."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    public_url: str | None = None
    log_format: Literal["text", "json"] = "text"
    # Processes that decompress, scrub and compress segments; 0 means one per core.
    workers: int = Field(0, ge=0, le=256)
    # Seconds in-flight requests get to finish on SIGTERM/SIGINT.
    shutdown_timeout: float = Field(30.0, gt=0)
    # Reverse proxies (addresses or CIDRs) whose X-Forwarded-For names the client; none by default.
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    # When set, GET /metrics requires `Authorization: Bearer <this>`; unset, /metrics is open.
    metrics_token: str | None = Field(None, min_length=16)


class StorageConfig(_Section):
    backend: Literal["local", "s3"] = "local"
    path: str = "./var/blobs"
    bucket: str | None = None
    prefix: str = ""
    endpoint_url: str | None = None
    region: str = "us-east-1"
    compression_quality: int = Field(5, ge=0, le=11)
    # Seconds a blob write may take before the segment goes to the spool instead.
    put_timeout: float = Field(5.0, gt=0)


class SpoolConfig(_Section):
    path: str = "./var/spool"
    max_bytes: int = Field(1024 * MiB, ge=1)
    # Seconds between upload attempts while the blob store keeps failing (doubling up to this).
    max_backoff: float = Field(60.0, gt=0)


class IndexConfig(_Section):
    # sqlite:///PATH (one file, the default) or postgresql://USER:PASSWORD@HOST:PORT/DATABASE.
    url: str = "sqlite:///./var/replayd.sqlite3"
    # PostgreSQL only: connections each process keeps open (pool_min_size) and may open at most.
    pool_min_size: int = Field(1, ge=0)
    pool_max_size: int = Field(10, ge=1)
    # PostgreSQL only: seconds a request waits for a pooled connection (or a replay writer for its
    # slot) before it is answered 503 with Retry-After instead.
    pool_acquire_timeout: float = Field(10.0, gt=0)
    # Seconds a segment waits for its replay's lock (held by another segment of the replay being
    # scrubbed and stored, on this node or another) before the answer is 503 with Retry-After.
    replay_lock_timeout: float = Field(10.0, gt=0)

    @property
    def display_url(self) -> str:
        """The URL as it may be printed or logged: a password in it (either place libpq takes one)
        shown as ***."""
        parts = urlsplit(self.url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        if parts.password is None and "password" not in dict(query):
            return self.url
        user, at, host = parts.netloc.rpartition("@")
        if parts.password is not None:
            user = user.partition(":")[0] + ":***"
        query = [(k, "***" if k == "password" else v) for k, v in query]
        return urlunsplit(parts._replace(netloc=user + at + host, query=urlencode(query, safe="*")))


class ProjectConfig(_Section):
    id: int = Field(ge=1)
    name: str = "default"
    public_keys: list[str] = Field(default_factory=list)
    allowed_origins: list[str] = Field(default_factory=lambda: ["*"])


# What an API token may do: read (every GET of the API and the player's pages) and delete (a replay,
# or every replay and error of a user). A signed-in session and the generated admin token may do both.
Scope = Literal["read", "delete"]
ALL_SCOPES: frozenset[str] = frozenset(get_args(Scope))


class ApiToken(_Section):
    """One of ``auth.api_tokens``: ``{token: ..., scopes: [read]}``, or the token alone (a string).

    A token that lists no scopes has all of them: the rights every token had before tokens had scopes,
    so an upgrade neither takes access away nor gives any; ``replayd serve`` and ``check-config`` say
    so about each such token (``unscoped_token_notes``)."""

    token: str = Field(min_length=1)
    scopes: list[Scope] | None = Field(None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _bare_token(cls, data: Any) -> Any:
        return {"token": data} if isinstance(data, str) else data

    @property
    def granted(self) -> frozenset[str]:
        return ALL_SCOPES if self.scopes is None else frozenset(self.scopes)


class AuthConfig(_Section):
    api_tokens: list[ApiToken] = Field(default_factory=list)
    # Generated on first start (shown once, kept as a hash) when unset; empty is refused, not "unset".
    admin_password: str | None = Field(None, min_length=1)
    # Signs session and remembered-browser cookies; generated and kept in the index when unset.
    secret_key: str | None = Field(None, min_length=1)
    # Failed sign-ins one client (an address, an IPv6 /64, or a browser that signed in before) may
    # make within sign_in_window seconds before it gets 429 until the window passes.
    sign_in_failures: int = Field(10, ge=1)
    # Failed sign-ins of all clients together within the window before sign-in pauses for clients
    # that never signed in; browsers that did keep their own budget (docs/security.md).
    sign_in_failures_total: int = Field(100, ge=1)
    sign_in_window: float = Field(600.0, gt=0)


class ScrubbingConfig(_Section):
    rules: str | None = None
    # Key of the `hash` redaction; generated and kept in the index when unset.
    secret: str | None = None


class LimitsConfig(_Section):
    max_envelope_bytes: int = Field(20 * MiB, ge=1)
    # One recording decompressed. The Sentry SDK ends a replay whose segment passes 20 MB, and parsing
    # costs up to ~9x the bytes (text held once as bytes, once as str, and again as string values,
    # each up to 4 bytes a character): this bounds a worker's memory on text-heavy recordings.
    max_recording_bytes: int = Field(32 * MiB, ge=1)
    max_events_per_segment: int = Field(100_000, ge=1)
    # Clicks of one segment indexed with their element (all of them are counted).
    max_clicks_per_segment: int = Field(1_000, ge=0)
    max_items_per_envelope: int = Field(1000, ge=1)
    # One header line (the envelope's, an item's, a recording's segment line); the envelope header is
    # read before the sender's key is known, so this bounds what an unauthenticated request costs.
    max_header_line_bytes: int = Field(64 * 1024, ge=1024)
    # JSON nesting a recording or item may have (a DOM level is two: the node and its childNodes).
    max_nesting_depth: int = Field(100_000, ge=100, le=200_000)
    # JSON values (counted from brackets and commas before parsing) in one recording or item: what
    # bounds a worker's memory, since parsed JSON costs up to ~170 bytes per value.
    max_json_values: int = Field(2_500_000, ge=1)
    # Breadcrumbs of one replay in the player, and stored segment bytes decoded at once to build them.
    max_breadcrumbs: int = Field(5000, ge=1)
    max_read_batch_bytes: int = Field(16 * MiB, ge=1)
    # What a stored blob (a segment, a compacted chunk; each of a v3 blob's streams, and their output) may decompress
    # to when it is read: a few hundred bytes of brotli expand to gigabytes, and a blob a buggy node
    # wrote or someone put in the store is read like any other. Past it the read fails (a CodecError).
    max_decoded_bytes: int = Field(256 * MiB, ge=1)
    # Envelopes accepted per project per second, averaged over a minute; 0 disables.
    rate_limit_per_second: float = Field(0, ge=0)
    # The replay list counts its matches up to here; past it the total reads "10000+". An exact count
    # of a million rows costs PostgreSQL up to a second, one that stops at 10,000 tens of ms.
    list_total_cap: int = Field(10_000, ge=1)
    # One search (the API's query=, the list page's box): its characters, terms, parentheses nested in
    # parentheses, and one value's characters (a LIKE pattern tried on every candidate row). The upper
    # bounds keep the SQL within what both databases take (SQLite's parser stack ends at 34 levels of
    # alternating AND and OR) and the request line (server/app.py) short.
    max_search_characters: int = Field(SEARCH.characters, ge=1, le=10_000)
    max_search_terms: int = Field(SEARCH.terms, ge=1, le=500)
    max_search_nesting: int = Field(SEARCH.nesting, ge=0, le=30)
    max_search_value_characters: int = Field(SEARCH.value_characters, ge=1, le=10_000)

    @property
    def search(self) -> SearchLimits:
        return SearchLimits(characters=self.max_search_characters, terms=self.max_search_terms,
                            nesting=self.max_search_nesting, value_characters=self.max_search_value_characters)


class CompactionConfig(_Section):
    """When and how finished replays are rewritten as one object of a few chunks (server/compaction.py)."""

    enabled: bool = True
    # A replay is finished when nothing was written to it for idle_seconds (the Sentry SDK's session
    # expiry: 15 minutes idle), or when it is max_duration_seconds long (the SDK's maximum replay
    # length: 60 minutes) and nothing was written to it for settle_seconds.
    idle_seconds: float = Field(900.0, gt=0)
    max_duration_seconds: float = Field(3600.0, gt=0)
    settle_seconds: float = Field(60.0, ge=0)
    # Seconds between two rounds of the background job; replays compacted per round at most.
    interval_seconds: float = Field(60.0, gt=0)
    batch: int = Field(100, ge=1)
    # brotli quality of a compacted chunk (window 16 MiB); docs/benchmarks.md measures each.
    quality: int = Field(9, ge=0, le=11)
    # A chunk ends before a segment with a full snapshot once it holds chunk_bytes of decompressed
    # segments (so playback starts at a chunk's first segment), and before any segment that would take
    # it past max_chunk_bytes: what a reader decompresses to play one moment.
    chunk_bytes: int = Field(16 * MiB, ge=1)
    max_chunk_bytes: int = Field(32 * MiB, ge=1)
    # Decompressed chunks each process keeps for readers (the player's batches of one seek, and the
    # next seek into the same chunk); 0 keeps none.
    read_cache_bytes: int = Field(64 * MiB, ge=0)


class Config(_Section):
    server: ServerConfig = Field(default_factory=ServerConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)
    spool: SpoolConfig = Field(default_factory=SpoolConfig)
    # None means the embedded default: project 1 with a generated key kept in the index.
    projects: list[ProjectConfig] | None = None
    auth: AuthConfig = Field(default_factory=AuthConfig)
    scrubbing: ScrubbingConfig = Field(default_factory=ScrubbingConfig)
    retention_days: int = Field(90, ge=1)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    compaction: CompactionConfig = Field(default_factory=CompactionConfig)

    @property
    def sqlite_path(self) -> Path:
        return sqlite_path(self.index.url)


INDEX_URL_FORMS = "sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"


def index_backend(url: str) -> str:
    """``sqlite`` or ``postgresql``, from the URL's scheme; ValueError naming only the scheme (a
    URL may hold a password) for anything else."""
    scheme = url.partition(":")[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        sqlite_path(url)
        return "sqlite"
    if scheme in ("postgresql", "postgres"):
        return "postgresql"
    named = f"{scheme!r} is not a supported database" if scheme else "not a database URL"
    raise ValueError(f"{named} (use {INDEX_URL_FORMS})")


def sqlite_path(url: str) -> Path:
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise ValueError(f"a SQLite URL has three slashes: sqlite:///PATH (use {INDEX_URL_FORMS})")
    return Path(url[len(prefix):])


def _is_text(annotation: Any) -> bool:
    """A ``str`` field, optional or not, or a ``Literal`` of strings."""
    if get_origin(annotation) in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        return bool(options) and all(_is_text(a) for a in options)
    if get_origin(annotation) is Literal:
        return all(isinstance(v, str) for v in get_args(annotation))
    return annotation is str


def _field_annotation(path: list[str]) -> Any:
    """The annotation of the config field at ``path``, or None when no such field exists."""
    model: Any = Config
    annotation = None
    for part in path:
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        annotation = model = model.model_fields[part].annotation
    return annotation


def _env_value(path: list[str], raw: str) -> Any:
    """A string field takes the variable's text as is (``12345678``, ``on`` and ``null`` are strings);
    any other field (numbers, booleans, lists, sections) parses it as YAML, so ``[a, b]`` is a list."""
    if _is_text(_field_annotation(path)):
        return raw
    try:
        return yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw  # validation then names the field and what it expected


def _env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """REPLAYD_SERVER__PORT=9000 -> {"server": {"port": 9000}}; see ``_env_value`` for the values."""
    tree: dict[str, Any] = {}
    problems = []
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name in ENV_RESERVED:
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX):].split("__")]
        if not all(path):
            problems.append(f"{name}: malformed variable name")
            continue
        value = _env_value(path, raw)
        node = tree
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                problems.append(f"{name}: conflicts with another variable")
                break
            node = child
        else:
            node[path[-1]] = value
    return tree, problems


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(error: ErrorDetails) -> str:
    path = ".".join(str(part) for part in error["loc"]) or "(top level)"
    message = error["msg"]
    if error["type"] == "missing":
        message = "field required"
    elif error["type"] == "extra_forbidden":
        message = "unknown field"
    return f"{path}: {message}"


def _semantic_problems(config: Config) -> list[str]:
    problems = []
    if config.storage.backend == "s3" and not config.storage.bucket:
        problems.append("storage.bucket: field required when storage.backend is s3")
    try:
        index_backend(config.index.url)
    except ValueError as exc:
        problems.append(f"index.url: {exc}")
    if config.index.pool_min_size > config.index.pool_max_size:
        problems.append("index.pool_min_size: larger than index.pool_max_size")
    if config.compaction.chunk_bytes > config.compaction.max_chunk_bytes:
        problems.append("compaction.chunk_bytes: larger than compaction.max_chunk_bytes")
    if config.compaction.max_chunk_bytes > config.limits.max_decoded_bytes:  # its chunks would not read back
        problems.append("compaction.max_chunk_bytes: larger than limits.max_decoded_bytes")
    seen_tokens: dict[str, int] = {}
    for i, api_token in enumerate(config.auth.api_tokens):
        if api_token.token in seen_tokens:  # which scopes would hold? (the token itself is never printed)
            problems.append(f"auth.api_tokens.{i}: the same token as auth.api_tokens.{seen_tokens[api_token.token]}")
        seen_tokens.setdefault(api_token.token, i)
    if config.projects is not None:
        seen = set()
        for i, project in enumerate(config.projects):
            if project.id in seen:
                problems.append(f"projects.{i}.id: duplicate project id {project.id}")
            seen.add(project.id)
            if not project.public_keys:
                problems.append(f"projects.{i}.public_keys: at least one key is needed")
    return problems


def unscoped_token_notes(config: Config) -> list[str]:
    """One line per API token that lists no scopes: it may read and delete, as every token could
    before tokens had scopes. Said at each start and by check-config, so that no one keeps delete
    rights on a token without knowing."""
    return [f"auth.api_tokens.{i}: lists no scopes, so it may read and delete (as before scopes existed); "
            "write {token: ..., scopes: [read]} to make it read-only" for i, t in enumerate(config.auth.api_tokens)
            if t.scopes is None]


def load_config(path: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read the YAML file (optional), apply environment overrides, validate; raise ConfigError."""
    environ = os.environ if environ is None else environ
    data: Any = {}
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError([f"{path}: not valid YAML: {exc}".replace("\n", " ")]) from None
        if not isinstance(data, dict):
            raise ConfigError([f"{path}: the top level must be a mapping of sections"])
    overrides, problems = _env_overrides(environ)
    if problems:
        raise ConfigError(problems)
    data = _merge(data, overrides)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([_describe(e) for e in exc.errors()]) from None
    problems = _semantic_problems(config)
    if problems:
        raise ConfigError(problems)
    return config
