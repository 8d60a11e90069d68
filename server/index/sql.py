"""What the SQL backends share: the list filters' LIKE patterns."""

from __future__ import annotations


def like_pattern(text: str) -> str:
    """``text`` as a substring pattern for LIKE/ILIKE ... ESCAPE '\\': its % and _ are literal."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
