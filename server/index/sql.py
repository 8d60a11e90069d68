"""What the SQL backends share: the list filters' LIKE patterns, the issue list's totals (the list's sort
expressions and searches are ``search_sql``'s)."""

from __future__ import annotations


def like_pattern(text: str) -> str:
    """``text`` as a substring pattern for LIKE/ILIKE ... ESCAPE '\\': its % and _ are literal."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# An issue's replays and latest error, for a SELECT over ``issues i``.
ISSUE_TOTALS = """(SELECT COUNT(DISTINCT l.replay_id) FROM errors e JOIN replay_errors l
        ON l.project_id = e.project_id AND l.event_id = e.event_id
        WHERE e.issue_id = i.id) AS replay_count,
    (SELECT event_id FROM errors e WHERE e.issue_id = i.id ORDER BY timestamp DESC LIMIT 1) AS latest_event_id"""
