"""Whether a process is alive: for files named after their writer (the input-digest memo's temporary files,
staging folders in :mod:`tfspec.base.atomic`, which carry an :func:`owner_token`)."""

from __future__ import annotations

import os

__all__ = ["process_alive", "owner_token", "owner_alive"]


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


def _proc_stat(pid: int | str) -> tuple[str, str] | None:
    """``(state, start time)`` of a process from ``/proc/<pid>/stat``, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read().decode("ascii", errors="replace")
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
    return fields[0], fields[19]  # fields 3 (state) and 22 (starttime) of proc(5)


def owner_token() -> str:
    """``<pid>-<start>`` naming this process in staging folder names (``<pid>`` where ``/proc`` is missing)."""
    stat = _proc_stat("self")
    return f"{os.getpid()}-{stat[1]}" if stat is not None else str(os.getpid())


def owner_alive(token: str) -> bool:
    """Whether the process named by an :func:`owner_token` still runs (a zombie or a reused pid does not count)."""
    pid_text, _, start = token.partition("-")
    pid = int(pid_text)
    if pid == os.getpid() and (not start or start == owner_token().partition("-")[2]):
        return True
    if not os.path.isdir("/proc/self") or not start:  # no /proc, or a name from before start times were recorded
        return process_alive(pid)
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X") and stat[1] == start
