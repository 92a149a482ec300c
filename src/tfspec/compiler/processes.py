"""Whether a process is alive: for files named after their writer's pid (the input-digest memo's temporary
files here, staging folders in ``tfspec.io.write``)."""

from __future__ import annotations

import os

__all__ = ["process_alive"]


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (staging and scratch folders carry their writer's pid)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
