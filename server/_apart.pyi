# server/_apart.c: strings_apart's walk in C.
from typing import Any

def split(
    document: Any, id_keys: frozenset[str], max_depth: int, max_id: int, /
) -> tuple[bytes, bytes, int, list[int]] | None: ...
