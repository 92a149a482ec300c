"""Reading the files a spec draws on: regular files only, with a size bound.

A name that points at a FIFO would block ``open()`` forever, ``/dev/zero`` never ends, a folder or a
symbolic-link loop is not a file: :func:`file_problem` names what is wrong before anything is opened, and
:func:`read_regular_file` opens without blocking and checks again on the open file (the name could have
been replaced in between).
"""

import errno
import os
import stat

__all__ = ["FileProblem", "file_problem", "read_regular_file"]

_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class FileProblem(Exception):
    """A path that is not a readable regular file; ``reason`` completes "<file> ..." (``is a folder, not a file``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def file_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is not a regular file one can read (``not found``, ``is a folder, not a file``, ``is a
    symbolic link loop``, ``is a named pipe (FIFO), not a regular file``, ...); None when it is one."""
    try:
        info = os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "is a symbolic link loop"
        if os.path.islink(path):
            return "is a symbolic link to a missing file"
        if error.errno in (errno.ENOENT, errno.ENOTDIR):
            return "not found"
        if error.errno == errno.ENAMETOOLONG:
            return "has a name too long for the file system"
        return f"cannot be read: {error.strerror or error}"
    except ValueError:  # a NUL byte in the name
        return "is not a valid file name"
    if stat.S_ISREG(info.st_mode):
        return None
    if stat.S_ISDIR(info.st_mode):
        return "is a folder, not a file"
    kind = next((name for test, name in _KINDS if test(info.st_mode)), "a special file")
    return f"is {kind}, not a regular file"


def read_regular_file(path: str | os.PathLike[str], limit: int) -> bytes:
    """At most ``limit + 1`` bytes of the regular file ``path`` (a caller compares the length with ``limit``);
    raises :class:`FileProblem` for anything else, never blocks on a FIFO."""
    problem = file_problem(path)
    if problem is not None:
        raise FileProblem(problem)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        raise FileProblem(file_problem(path) or f"cannot be read: {error.strerror or error}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced since the check
            raise FileProblem("is not a regular file")
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError as error:
        raise FileProblem(f"cannot be read: {error.strerror or error}") from None
    finally:
        os.close(fd)
