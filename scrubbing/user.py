"""The ``user`` of an error or replay event, by the rules' ``user.policy``: kept, removed, only
its id kept, its values hashed, or scrubbed like any payload (``keep_fields`` always kept)."""

from __future__ import annotations

from typing import Any

from .compiled import Compiled
from .payloads import scrub_fields, scrub_json, scrub_key
from .redaction import hash_token
from .report import ScrubReport


def scrub_user(c: Compiled, holder: dict[str, Any], report: ScrubReport, location: str = "user") -> None:
    user = holder.get("user")
    if not isinstance(user, dict) or c.user_policy == "keep":
        return
    policy = c.user_policy
    if policy == "remove":
        del holder["user"]
        report.add("@user", location)
        return
    if policy == "scrub":  # every field but keep_fields, by name, key and value
        scrub_fields(c, user, c.user_keep, location, report)
        return
    for k in list(user):
        if k in c.user_keep:
            continue
        if policy == "id_only":
            del user[k]
            report.add("@user", location)
        elif policy == "hash":
            if k.__class__ is str:
                k = scrub_key(c, user, k, location, report)
            v = user[k]
            if isinstance(v, (str, int, float)) and not isinstance(v, bool) and v not in ("", "{{auto}}"):
                user[k] = hash_token(c.secret, str(v))
                report.add("@user", location)
            elif isinstance(v, (dict, list)):
                scrub_json(c, v, location, report)

