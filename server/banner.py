"""What ``replayd serve`` prints once at start-up: where it listens, the DSN, the snippet, the admin login."""

from __future__ import annotations

import sys

from aiohttp import web

from .bootstrap import dsn, public_url
from .keys import config_key, credentials_key, projects_key


def banner(app: web.Application) -> str:
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
    password = "(set in config: auth.admin_password)" if config.auth.admin_password else credentials.admin_password
    lines += [
        f"  sign in: {base}/login  password: {password}",
        f"  API token (Authorization: Bearer): {credentials.admin_token}",
    ]
    return "\n".join(lines)


def print_banner_on_startup(app: web.Application) -> None:
    async def on_startup(app: web.Application) -> None:
        print(banner(app), file=sys.stdout, flush=True)

    app.on_startup.append(on_startup)
