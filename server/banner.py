"""What ``replayd serve`` prints once at start-up: where it listens, the DSN, the snippet, the admin login.

A generated password or token is printed on the start that generated it only (logs are kept and
copied; the index keeps just a hash); later starts say how to get a new one instead.
"""

from __future__ import annotations

import shlex
import sys

from aiohttp import web

from .bootstrap import PASSWORD_KEY, TOKEN_KEY, dsn, public_url
from .keys import config_key, credentials_key, projects_key


def _shown_before(secret: str, config_path: str | None) -> str:
    command = f"replayd rotate {secret}" + (f" --config {shlex.quote(config_path)}" if config_path else "")
    return f"(shown on first start; `{command}` makes a new one)"


def banner(app: web.Application, config_path: str | None = None) -> str:
    """The banner's text; it forgets the credentials' once-shown secrets."""
    config, credentials = app[config_key], app[credentials_key]
    base = public_url(config)
    lines = [f"replayd listening on {base}"]
    for project in app[projects_key].by_id.values():
        project_dsn = dsn(base, project)
        lines += [
            f"  project {project.id} ({project.name})",
            f"    DSN:     {project_dsn}",
            f'    snippet: <script src="{base}/static/replayd.js" data-dsn="{project_dsn}" async></script>',
        ]
    shown = credentials.shown_once
    if config.auth.admin_password:
        password = "(set in config: auth.admin_password)"
    else:
        password = shown.get(PASSWORD_KEY) or _shown_before("admin-password", config_path)
    token = shown.get(TOKEN_KEY) or _shown_before("api-token", config_path)
    lines += [f"  sign in: {base}/login  password: {password}", f"  API token (Authorization: Bearer): {token}"]
    if shown:
        lines.append("  (generated now and shown this once: the index keeps only a hash; see docs/security.md)")
    shown.clear()
    return "\n".join(lines)


def print_banner_on_startup(app: web.Application, config_path: str | None = None) -> None:
    async def on_startup(app: web.Application) -> None:
        print(banner(app, config_path), file=sys.stdout, flush=True)

    app.on_startup.append(on_startup)
