# scrubbing/_domwalk.c: the scrubber's DOM walk of the nodes no rule touches, in C.
from collections.abc import Callable
from typing import Any

def walk(stack: list[Any], walk_kids: Callable[..., None], common_nodes: tuple[Any, ...], /) -> None: ...
