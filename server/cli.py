"""The ``replayd`` command: serve, check-config, rotate, copy-index, compact, erase, scrub."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from . import __version__
from .config import Config, ConfigError, load_config, unscoped_token_notes
from .scrub_cli import add_scrub_parser

# Each subcommand imports what it needs inside its function: a command starts without loading the
# app, the index drivers or the scrubber when it does not use them.

EXIT_CONFIG = 2


def _config_path(args: argparse.Namespace) -> str | None:
    return getattr(args, "config", None) or os.environ.get("REPLAYD_CONFIG")


def _refuse(problems: list[str]) -> int:
    for line in problems:
        print(f"config error: {line}", file=sys.stderr)
    return EXIT_CONFIG


# Files and directories replayd creates (index, blobs, spool) are its owner's only: the index holds
# keys, the blobs and spool hold recordings.
PRIVATE_UMASK = 0o077


def cmd_serve(args: argparse.Namespace) -> int:
    from .app import create_app
    from .banner import print_banner_on_startup
    from .logs import setup_logging
    from .runner import run
    from .spool import SpoolLocked

    os.umask(PRIVATE_UMASK)
    try:
        config = load_config(_config_path(args))
        if args.host:
            config.server.host = args.host
        if args.port is not None:
            config.server.port = args.port
        problems = validate_rules(config)
    except ConfigError as exc:
        return _refuse(exc.problems)
    if problems:
        return _refuse(problems)
    setup_logging(config.server.log_format)
    for note in unscoped_token_notes(config):
        logging.getLogger("replayd").warning(note)
    app = create_app(config)
    print_banner_on_startup(app, _config_path(args))
    try:
        run(app, config.server.host, config.server.port, config.server.shutdown_timeout)
    except SpoolLocked as exc:
        return _refuse([f"spool.path: {exc}"])
    logging.getLogger("replayd").info("stopped")
    return 0


def validate_rules(config: Config, strict: bool = False) -> list[str]:
    """Problems in the scrubbing rules file named by the config, as ``scrubbing.rules: ...`` lines."""
    from .scrub_rules import load_rules_file

    try:
        load_rules_file(config.scrubbing.rules, strict=strict)
    except ConfigError as exc:
        return exc.problems
    return []


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.path)
    except ConfigError as exc:
        return _refuse(exc.problems)
    problems = validate_rules(config, strict=True)
    if problems:
        return _refuse(problems)
    projects = "embedded default project" if config.projects is None else f"{len(config.projects)} project(s)"
    rules = config.scrubbing.rules or "built-in scrubbing rules"
    print(
        f"{args.path}: ok — {config.storage.backend} storage, index {config.index.display_url}, {projects}, "
        f"{rules}, retention {config.retention_days} days"
    )
    for note in unscoped_token_notes(config):
        print(f"note: {note}")
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    from .bootstrap import rotate_secret
    from .index import open_index

    async def rotate(config: Config) -> str:
        index = await open_index(config.index)
        try:
            return await rotate_secret(config, index, args.secret)
        finally:
            await index.close()

    os.umask(PRIVATE_UMASK)
    try:
        config = load_config(_config_path(args))
        line = asyncio.run(rotate(config))
    except ConfigError as exc:
        return _refuse(exc.problems)
    print(line)
    print("restart replayd to use it")
    return 0


def _index_url_problem(url: str, wanted: str) -> str | None:
    from .config import index_backend

    try:
        backend = index_backend(url)
    except ValueError as exc:
        return str(exc)
    return None if backend == wanted else f"not a {wanted} URL"


def cmd_copy_index(args: argparse.Namespace) -> int:
    from .config import IndexConfig, sqlite_path
    from .index.copy import TargetNotEmpty, copy_sqlite_to_postgres

    problems = [f"{option}: {problem}" for option, url, wanted in (("--from", args.source, "sqlite"),
                                                                   ("--to", args.target, "postgresql"))
                if (problem := _index_url_problem(url, wanted))]
    for line in problems:
        print(f"copy-index: {line}", file=sys.stderr)
    if problems:
        return EXIT_CONFIG
    source, target = IndexConfig(url=args.source), IndexConfig(url=args.target)
    os.umask(PRIVATE_UMASK)
    try:
        counts = asyncio.run(copy_sqlite_to_postgres(sqlite_path(source.url), target.url))
    except (TargetNotEmpty, FileNotFoundError) as exc:
        print(f"copy-index: {exc}", file=sys.stderr)
        return 1
    rows = ", ".join(f"{table} {count}" for table, count in counts.items())
    print(f"copied {source.display_url} to {target.display_url}: {rows}")
    return 0


def cmd_compact(args: argparse.Namespace) -> int:
    from .compaction import CompactionError, compact_now

    if args.older_than is not None and not args.older_than >= 0:
        print(f"compact: --older-than must be 0 or more seconds, not {args.older_than}", file=sys.stderr)
        return EXIT_CONFIG
    os.umask(PRIVATE_UMASK)
    try:
        config = load_config(_config_path(args))
    except ConfigError as exc:
        return _refuse(exc.problems)
    try:
        totals = asyncio.run(compact_now(config, args.older_than))
    except (CompactionError, OSError) as exc:
        print(f"compact: {exc}", file=sys.stderr)
        return 1
    ratio = f" ({totals.bytes_after / totals.bytes_before:.2f}x)" if totals.bytes_before else ""
    print(f"compacted {totals.replays} replays ({totals.segments} segments): {totals.bytes_before} -> "
          f"{totals.bytes_after} bytes{ratio}; {totals.failed} failed, {totals.skipped} left for later, "
          f"{totals.deleted} replaced objects deleted")
    return 1 if totals.failed else 0


def cmd_erase(args: argparse.Namespace) -> int:
    from .bootstrap import scrubbing_secret
    from .erase import erase_user
    from .index import open_index
    from .spool import Spool
    from .storage.backends import open_blob_store

    field, value = ("email", args.user_email) if args.user_email is not None else ("id", args.user_id)
    if not value:
        print("erase: the user's address or id is empty", file=sys.stderr)
        return EXIT_CONFIG

    async def erase(config: Config) -> dict[str, int]:
        index = await open_index(config.index)
        try:
            blobs = await open_blob_store(config.storage)
            try:
                secret = await scrubbing_secret(config, index)
                spool = Spool(config.spool.path, config.spool.max_bytes)
                actor = f"cli:{os.environ.get('USER') or os.getuid()}"
                return await erase_user(index, blobs, spool, args.project, field, value, secret, actor)
            finally:
                await blobs.close()
        finally:
            await index.close()

    os.umask(PRIVATE_UMASK)
    try:
        config = load_config(_config_path(args))
        if config.projects is not None and args.project not in {p.id for p in config.projects}:
            print(f"erase: no project {args.project} in the config", file=sys.stderr)
            return EXIT_CONFIG
        counts = asyncio.run(erase(config))
    except ConfigError as exc:
        return _refuse(exc.problems)
    print(f"erased user {field} in project {args.project}: {counts['replays']} replays, {counts['errors']} errors, "
          f"{counts['blobs']} blobs")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="replayd",
        description="Self-hosted session replay: Sentry-compatible ingest, server-side scrubbing, a fast player.",
    )
    parser.add_argument("--version", action="version", version=f"replayd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the service", description="Run the replayd service.")
    serve.add_argument("--config", metavar="PATH",
                       help="YAML config file (default: $REPLAYD_CONFIG or embedded defaults)")
    serve.add_argument("--host", help="address to listen on (overrides server.host)")
    serve.add_argument("--port", type=int, help="port to listen on (overrides server.port)")
    serve.set_defaults(func=cmd_serve)

    check = sub.add_parser(
        "check-config",
        help="validate a config file and its scrubbing rules",
        description="Validate a config file (and the scrubbing rules it names). Exit 0 with a summary, "
        "or exit 2 with one line per problem naming the field.",
    )
    check.add_argument("path", metavar="PATH")
    check.set_defaults(func=cmd_check_config)

    rotate = sub.add_parser(
        "rotate",
        help="replace a generated secret: the admin password, the admin API token or the cookie key",
        description="Replace a secret generated on first start and kept in the index. A new password or "
        "token is printed this once; replayd uses it from its next start. See docs/security.md.",
    )
    rotate.add_argument("secret", choices=("admin-password", "api-token", "cookie-key"))
    rotate.add_argument("--config", metavar="PATH", help="the config `replayd serve` uses (default: $REPLAYD_CONFIG)")
    rotate.set_defaults(func=cmd_rotate)

    copy = sub.add_parser(
        "copy-index",
        help="copy a SQLite index into a new PostgreSQL database",
        description="Copy every row of a SQLite index (replays, segments, errors, issues, scrubber states and "
        "the generated keys) into a PostgreSQL database no replayd has started on, in one transaction. "
        "Stop replayd first: what it writes during the copy is not copied. See docs/deploy.md.",
    )
    copy.add_argument("--from", dest="source", required=True, metavar="sqlite:///PATH", help="the SQLite index")
    copy.add_argument("--to", dest="target", required=True, metavar="postgresql://...",
                      help="the PostgreSQL database (its schema is created)")
    copy.set_defaults(func=cmd_copy_index)

    compact = sub.add_parser(
        "compact",
        help="compact finished replays now",
        description="Rewrite finished replays (compaction.idle_seconds without a write, or at "
        "compaction.max_duration_seconds) as one object each, then delete their segment objects; what the "
        "server's background job does every compaction.interval_seconds. See docs/architecture.md.",
    )
    compact.add_argument("--config", metavar="PATH", help="the config `replayd serve` uses (default: $REPLAYD_CONFIG)")
    compact.add_argument("--older-than", type=float, metavar="SECONDS", dest="older_than",
                         help="compact every replay not written for this many seconds (instead of the config's rule)")
    compact.set_defaults(func=cmd_compact)

    erase = sub.add_parser(
        "erase",
        help="delete every replay and error of one user (GDPR erasure)",
        description="Delete every replay (blobs, spooled segments, rows, clicks) and every error of one user in "
        "a project. The value is matched as given and as the scrubbing policy hashes it. An audit row keeps "
        "who, when and how many, never the value. See docs/search.md.",
    )
    erase.add_argument("--project", type=int, required=True, metavar="ID")
    who = erase.add_mutually_exclusive_group(required=True)
    who.add_argument("--user-email", metavar="ADDRESS")
    who.add_argument("--user-id", metavar="ID")
    erase.add_argument("--config", metavar="PATH", help="the config `replayd serve` uses (default: $REPLAYD_CONFIG)")
    erase.set_defaults(func=cmd_erase)

    add_scrub_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
