"""The one exception of ingest: an envelope, item or recording that is refused, with its HTTP answer."""

from __future__ import annotations


class IngestRefused(Exception):
    """Something ingest will not take; ``status`` is the HTTP status to answer, ``detail`` says why."""

    def __init__(self, status: int, detail: str):
        super().__init__(status, detail)
        self.status = status
        self.detail = detail
