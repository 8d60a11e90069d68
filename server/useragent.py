"""Browser, OS and device from a User-Agent string, by uap-core's rules (the ``ua-parser`` package).

Browser and OS carry uap-core's family names ("Chrome Mobile", "Mac OS X"), as Sentry labels them too.
ua-parser caches its answers by string, so the one parse per replay_event or error costs microseconds
once a user agent has been seen; the first parse in a process compiles the rules (a few hundred
milliseconds), which ``compile_user_agent_rules`` does at start-up instead.
"""

from __future__ import annotations

import ua_parser
from aiohttp import web

# Longer strings are not browsers; the cut keeps the cache's keys and the regex work bounded.
MAX_USER_AGENT = 1000


async def compile_user_agent_rules(app: web.Application) -> None:
    """On start-up: compile the rules now rather than on the first request, which would wait for it."""
    _ = ua_parser.parser  # the first access builds the module's shared, cached parser


def parse_user_agent(ua: str | None) -> tuple[str, str, str]:
    """(browser, os, device) such as ("Chrome 126", "Windows 10", "desktop"); empty strings if unknown."""
    if not ua:
        return "", "", ""
    ua = ua[:MAX_USER_AGENT]
    result = ua_parser.parse(ua)
    browser = _label(result.user_agent.family, result.user_agent.major) if result.user_agent else ""
    os_name = _label(result.os.family, result.os.major, result.os.minor) if result.os else ""
    return browser, os_name, _device(ua, result.device)


def _label(family: str, *version: str | None) -> str:
    """"Windows 8.1", "Android 14", "Linux": the family and what is known of the version."""
    return " ".join([family, ".".join(v for v in version if v)]).strip()


def _device(ua: str, device: ua_parser.Device | None) -> str:
    """uap-core names devices, not their kind: the kind follows the browsers' own conventions
    (Android phones say "Mobile", Android tablets do not)."""
    if device is not None and device.family == "Spider":
        return "bot"
    if "iPad" in ua or "Tablet" in ua or ("Android" in ua and "Mobi" not in ua):
        return "tablet"
    if "Mobi" in ua or "iPhone" in ua:
        return "mobile"
    return "desktop"
