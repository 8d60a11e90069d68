"""Browser, OS and device from a User-Agent string: the common families, nothing more."""

from __future__ import annotations

import re

# Order matters: Edge and Opera also claim Chrome; Chrome also claims Safari.
_BROWSERS = [
    ("Edge", re.compile(r"Edg(?:e|A|iOS)?/(\d+)")),
    ("Opera", re.compile(r"(?:OPR|Opera)/(\d+)")),
    ("Samsung Internet", re.compile(r"SamsungBrowser/(\d+)")),
    ("Firefox", re.compile(r"(?:Firefox|FxiOS)/(\d+)")),
    ("Headless Chrome", re.compile(r"HeadlessChrome/(\d+)")),
    ("Chrome", re.compile(r"(?:Chrome|CriOS)/(\d+)")),
    ("Safari", re.compile(r"Version/(\d+)[\d.]* (?:Mobile/\S+ )?Safari/")),
]
_OSES = [
    ("iOS", re.compile(r"(?:iPhone|iPad|iPod).*? OS (\d+)")),
    ("Android", re.compile(r"Android (\d+)")),
    ("Chrome OS", re.compile(r"CrOS \S+ (\d+)")),
    ("Windows", re.compile(r"Windows NT (\d+\.\d+)")),
    ("macOS", re.compile(r"Mac OS X (\d+)[_.](\d+)")),
    ("Linux", re.compile(r"Linux|X11")),
]
_WINDOWS = {"10.0": "10", "6.3": "8.1", "6.2": "8", "6.1": "7"}


def parse_user_agent(ua: str | None) -> tuple[str, str, str]:
    """(browser, os, device) such as ("Chrome 126", "Windows 10", "desktop"); empty strings if unknown."""
    if not ua:
        return "", "", ""
    ua = ua[:1000]
    browser = ""
    for name, pattern in _BROWSERS:
        if m := pattern.search(ua):
            browser = f"{name} {m.group(1)}"
            break
    os_name = ""
    for name, pattern in _OSES:
        if m := pattern.search(ua):
            if name == "Windows":
                os_name = f"Windows {_WINDOWS.get(m.group(1), m.group(1))}"
            elif name == "macOS":
                os_name = f"macOS {m.group(1)}.{m.group(2)}"
            elif name == "Linux":
                os_name = "Linux"
            else:
                os_name = f"{name} {m.group(1)}"
            break
    if "iPad" in ua or "Tablet" in ua:
        device = "tablet"
    elif "Mobi" in ua or "iPhone" in ua or "Android" in ua:
        device = "mobile"
    else:
        device = "desktop"
    return browser, os_name, device
