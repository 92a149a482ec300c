"""Read a Git revision's files into a temporary folder, without touching the working tree or the index.

``tfspec diff`` compiles the specs of two revisions. Each revision's tracked files are written, as Git stores
them, into a fresh temporary folder (:func:`exported`): ``git ls-tree`` lists the files, ``git cat-file
--batch`` gives their bytes. Nothing runs ``checkout``, ``worktree`` or ``stash``, so the user's working
tree, index and refs are never changed, and no filter runs (Git LFS files are their pointers, as in a clone
without LFS). Symbolic links are kept only when they point inside the revision's tree; submodules are left
out. The folder holds an empty ``.git`` folder at its root, so the search for the project file
``tfspec.yaml`` stops there as it stops at the repository's root. The folder is removed when the ``with``
block ends, however it ends (an error, Ctrl-C, SIGTERM turned into an interrupt by the caller).

A revision is bounded: more than :data:`EXPORT_LIMIT` bytes of files (``TFSPEC_DIFF_LIMIT`` to change it)
is refused before anything is written.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from tfspec.base.errors import TfspecError
from tfspec.spec.loader import cap

__all__ = ["EXPORT_LIMIT", "LIMIT_VARIABLE", "GitError", "repository_root", "resolve_commit", "exported"]

EXPORT_LIMIT = 2 * 1024**3
"""Most bytes of tracked files one revision may hold (all of them are written to a temporary folder)."""
LIMIT_VARIABLE = "TFSPEC_DIFF_LIMIT"
_GIT_TIMEOUT = 600


class GitError(TfspecError):
    """Git is missing, the folder is not in a repository, or a revision is unknown (exit 2)."""


def _environment() -> dict[str, str]:
    # Messages in English (they are quoted in ours); never a prompt for credentials in CI.
    return {**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}


def _git(args: list[str], cwd: Path, what: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, env=_environment(), capture_output=True, timeout=_GIT_TIMEOUT)
    except FileNotFoundError:
        raise GitError("git is not installed (tfspec diff reads revisions with git)") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"{what}: git took more than {_GIT_TIMEOUT} s") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"{what}: {cap(message[-1] if message else f'git exited {done.returncode}')}")
    return done.stdout.decode("utf-8", "surrogateescape")


def repository_root(path: Path) -> Path:
    """The top folder of the Git working tree that holds ``path`` (raises :class:`GitError`)."""
    folder = path if path.is_dir() else path.parent
    if not folder.is_dir():
        raise GitError(f"{path}: no such file or folder")
    try:
        top = _git(["rev-parse", "--show-toplevel"], folder, f"{path}")
    except GitError as error:
        if "not a git repository" in str(error):
            raise GitError(f"{path}: not in a Git repository (tfspec diff compares two revisions of one)") from None
        raise
    return Path(top.strip())


def resolve_commit(root: Path, revision: str) -> str:
    """The full commit id ``revision`` names (a branch, a tag, ``HEAD~1``, an id), or :class:`GitError`."""
    if not revision or revision.startswith("-"):
        raise GitError(f"{cap(revision)!r}: not a revision")
    try:
        found = _git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}"], root,
                     f"revision {cap(revision)!r}")
    except GitError:
        raise GitError(f"unknown revision {cap(revision)!r} in {root} (fetched? a shallow clone holds only "
                       "the commits it fetched)") from None
    return found.strip()


def _limit() -> int:
    text = os.environ.get(LIMIT_VARIABLE)
    if not text:
        return EXPORT_LIMIT
    try:
        value = int(text)
    except ValueError:
        raise GitError(f"{LIMIT_VARIABLE}={cap(text)!r}: not a number of bytes") from None
    if value <= 0:
        raise GitError(f"{LIMIT_VARIABLE}={value}: must be above 0")
    return value


def _entries(root: Path, commit: str) -> list[tuple[str, str, int, str]]:
    """``(mode, object id, size, path)`` of every file and symbolic link of ``commit`` (submodules left out)."""
    listing = _git(["ls-tree", "-r", "-l", "-z", "--full-tree", commit], root, f"listing {commit[:12]}")
    out = []
    for record in listing.split("\0"):
        if not record:
            continue
        meta, _, path = record.partition("\t")
        mode, kind, oid, size = meta.split()
        if kind != "blob":
            continue  # a submodule (a commit): its files are in another repository
        out.append((mode, oid, int(size), path))
    return out


def _safe_relative(path: str) -> PurePosixPath | None:
    """``path`` when it is a plain relative path (Git never stores another, but a crafted tree might)."""
    pure = PurePosixPath(path)
    if pure.is_absolute() or any(part in ("", ".", "..", ".git") for part in pure.parts):
        return None
    return pure


def _link_stays_inside(destination: Path, link: Path, target: str) -> bool:
    if os.path.isabs(target):
        return False
    resolved = os.path.normpath(os.path.join(os.path.dirname(link), target))
    return resolved == str(destination) or resolved.startswith(str(destination) + os.sep)


def _write_files(root: Path, entries: list[tuple[str, str, int, str]], destination: Path) -> None:
    """Every entry's bytes, from one ``git cat-file --batch`` process, into ``destination``."""
    # The object ids go in from a file, not a pipe: writing them all into a pipe while cat-file's answers
    # fill the other one would block both processes on a large tree.
    links: list[Path] = []
    with tempfile.TemporaryFile() as ids:
        ids.write("".join(f"{oid}\n" for _, oid, _, _ in entries).encode("ascii"))
        ids.seek(0)
        process = subprocess.Popen(["git", "cat-file", "--batch"], cwd=root, env=_environment(), stdin=ids,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert process.stdout is not None
        try:
            for mode, oid, size, path in entries:
                header = process.stdout.readline().split()
                if len(header) != 3 or header[0].decode() != oid or int(header[2]) != size:
                    raise GitError(f"reading {path}: git cat-file answered {header!r}")
                data = process.stdout.read(size)
                process.stdout.read(1)  # the newline after each object
                relative = _safe_relative(path)
                if relative is None:
                    continue
                target = destination.joinpath(*relative.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                if mode == "120000":  # a symbolic link: its blob is the link's target
                    link = data.decode("utf-8", "surrogateescape")
                    if _link_stays_inside(destination, target, link):
                        os.symlink(link, target)
                        links.append(target)
                    continue
                target.write_bytes(data)
                if mode == "100755":
                    target.chmod(0o755)
        finally:
            process.stdout.close()
            process.kill()
            process.wait()
    _drop_escaping_links(destination, links)


def _drop_escaping_links(destination: Path, links: list[Path]) -> None:
    """Links that resolve outside ``destination`` through other links (``sub/up -> ..``, then ``sub/out ->
    up/..``) are removed, until none is left."""
    inside = os.path.realpath(destination)
    while True:
        escaping = [link for link in links if not (os.path.realpath(link) + os.sep).startswith(inside + os.sep)]
        if not escaping:
            return
        for link in escaping:
            link.unlink()
            links.remove(link)


@contextlib.contextmanager
def exported(root: Path, commit: str, label: str) -> Iterator[Path]:
    """The files of ``commit`` in a temporary folder, removed when the block ends (``label`` names the
    revision in messages: base or head)."""
    entries = _entries(root, commit)
    total, limit = sum(size for _, _, size, _ in entries), _limit()
    if total > limit:
        raise GitError(f"{label} revision {commit[:12]}: its files hold {total:,} bytes, more than the "
                       f"{limit:,} tfspec diff writes to a temporary folder (set {LIMIT_VARIABLE} to raise it)")
    folder: Path | None = None
    try:
        # made with the signals held, inside the try: an interrupt that arrives as the folder appears is
        # raised only once ``folder`` names it, so the ``finally`` removes it
        with _signals_held():
            folder = Path(tempfile.mkdtemp(prefix=f"tfspec-diff-{label}-"))
        (folder / ".git").mkdir()  # the project-file search stops at the repository root, as in a checkout
        _write_files(root, entries, folder)
        yield folder
    finally:
        with _signals_held():
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block ends: a second interrupt cannot stop the removal half-way
    (the held signal is delivered, and raises, right after)."""
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
