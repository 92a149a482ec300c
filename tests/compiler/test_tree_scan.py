"""A folder's signature from one GNU find call (``tree_scan``) and the Python walk it steps aside for.

Both must trust exactly the same things: one stat per file, a file rewritten with its size and mtime put
back is seen (its ctime moved), an added, removed or renamed file is seen, and the folder's digest (the
sha256s of its files) is the same whichever signed it. Each scenario runs with find and with find absent
(as on macOS, where the Python walk signs the folder).
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import pytest

from tfspec.compiler import file_digests, tree_scan
from tfspec.compiler.file_digests import InputLimits, InputTooLarge, StatMemo, UnreadableFile, digest_listing

GNU_FIND = shutil.which("find") is not None and tree_scan.scan_tree(os.getcwd(), ".tfspec", -1) is not None
needs_gnu_find = pytest.mark.skipif(not GNU_FIND, reason="GNU find (with -printf) is not installed here")


@pytest.fixture(params=["find", "python"])
def signer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which signs folders: GNU find, or the Python walk (find hidden)."""
    if request.param == "find" and not GNU_FIND:
        pytest.skip("GNU find (with -printf) is not installed here")
    if request.param == "python":
        monkeypatch.setattr(tree_scan.shutil, "which", lambda name: None)
    return request.param


def _images(root: Path) -> None:
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for index in range(5):
            (root / label / f"{index}.png").write_bytes(f"{label}{index}".encode())


def _settled() -> None:
    """Let the files fall out of the memo's racy window (files changed in the second it is written)."""
    time.sleep(1.05 - time.time() % 1.0)


def _digest(spec_dir: Path, root: Path) -> tuple[str, StatMemo]:
    """The folder's digest, and the memo written as if 2 s later: the files are out of its racy window
    (tests of that window are in test_input_fingerprints.py) without a sleep in each test."""
    memo = StatMemo(spec_dir)
    digest = memo.tree_digest(root, "images")
    real_time_ns = time.time_ns
    with mock.patch.object(file_digests.time, "time_ns", lambda: real_time_ns() + 2_000_000_000):
        memo.save()
    return digest, memo


def _fresh_walk(memo: StatMemo, root: Path) -> str:
    return digest_listing(memo.tree(root, "images"))


def test_an_unchanged_folder_is_taken_whole_from_the_memo(tmp_path: Path, signer: str) -> None:
    _images(tmp_path / "images")
    first, memo = _digest(tmp_path, tmp_path / "images")
    assert memo.stats.hashed == 10
    second, memo = _digest(tmp_path, tmp_path / "images")
    assert (second, memo.stats.files, memo.stats.hashed, memo.stats.reused, memo.stats.bytes) == (first, 10, 0, 10, 40)
    assert first == _fresh_walk(StatMemo(tmp_path / "other"), tmp_path / "images")


def _rewrite_keeping_stat(path: Path) -> None:
    info = path.stat()
    with open(path, "r+b") as handle:
        handle.write(b"X" * info.st_size)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (info.st_size, info.st_mtime_ns)


CHANGES: dict[str, Callable[[Path], None]] = {
    "rewritten, size and mtime put back": lambda root: _rewrite_keeping_stat(root / "dog" / "3.png"),
    "added": lambda root: (root / "dog" / "9.png").write_bytes(b"dog9"),
    "removed": lambda root: (root / "cat" / "0.png").unlink(),
    "renamed to another class": lambda root: os.rename(root / "cat" / "1.png", root / "dog" / "1b.png"),
    "a new class folder": lambda root: (root / "owl").mkdir() or (root / "owl" / "0.png").write_bytes(b"owl0"),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_changed_folder_gets_the_digest_of_what_it_now_holds(tmp_path: Path, signer: str, change: str) -> None:
    _images(tmp_path / "images")
    before, _ = _digest(tmp_path, tmp_path / "images")
    _digest(tmp_path, tmp_path / "images")  # recorded and trusted
    CHANGES[change](tmp_path / "images")
    after, memo = _digest(tmp_path, tmp_path / "images")
    assert after != before
    assert after == _fresh_walk(StatMemo(tmp_path / "other"), tmp_path / "images")


def test_the_memo_folder_is_not_an_input(tmp_path: Path, signer: str) -> None:
    _images(tmp_path / "images")
    before, _ = _digest(tmp_path, tmp_path / "images")
    (tmp_path / "images" / "cat" / ".tfspec").mkdir()
    (tmp_path / "images" / "cat" / ".tfspec" / "cache.json").write_text("{}")
    after, memo = _digest(tmp_path, tmp_path / "images")
    assert after == before and memo.stats.files == 10


def test_a_linked_image_is_followed_as_the_python_walk_follows_it(tmp_path: Path, signer: str) -> None:
    _images(tmp_path / "images")
    (tmp_path / "elsewhere.png").write_bytes(b"linked")
    os.symlink(tmp_path / "elsewhere.png", tmp_path / "images" / "cat" / "linked.png")
    os.symlink(tmp_path / "images" / "dog", tmp_path / "images" / "linked-folder")  # not followed
    first, memo = _digest(tmp_path, tmp_path / "images")
    assert memo.stats.files == 11
    second, memo = _digest(tmp_path, tmp_path / "images")
    assert second == first and memo.stats.hashed == 0


def test_a_fifo_in_a_folder_is_named(tmp_path: Path, signer: str) -> None:
    _images(tmp_path / "images")
    os.mkfifo(tmp_path / "images" / "dog" / "pipe.png")
    with pytest.raises(UnreadableFile, match=r"^images/dog/pipe.png is a named pipe"):
        _digest(tmp_path, tmp_path / "images")


def test_too_many_files_are_refused_with_the_same_line(tmp_path: Path, signer: str) -> None:
    _images(tmp_path / "images")  # the root, 2 folders, 10 files: 13 entries
    for limit in (5, 12):
        with pytest.raises(InputTooLarge, match=rf"^images holds more than {limit} files and folders, "):
            StatMemo(tmp_path, InputLimits(files=limit)).tree_digest(tmp_path / "images", "images")
    _digest(tmp_path, tmp_path / "images")
    StatMemo(tmp_path, InputLimits(files=13)).tree_digest(tmp_path / "images", "images")  # from the memo: fits
    with pytest.raises(InputTooLarge, match=r"^images holds more than 12 files and folders, "):
        StatMemo(tmp_path, InputLimits(files=12)).tree_digest(tmp_path / "images", "images")
    with pytest.raises(InputTooLarge, match=r"^images holds more than 39 bytes of files, "):
        StatMemo(tmp_path, InputLimits(bytes=39)).tree_digest(tmp_path / "images", "images")


@needs_gnu_find
def test_an_unchanged_folder_costs_no_stat_in_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """find stats the files: the second compile's Python makes no stat call per file."""
    _images(tmp_path / "images")
    first, _ = _digest(tmp_path, tmp_path / "images")
    calls: list[object] = []
    real_stat = os.stat

    def counting_stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
        calls.append(path)
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting_stat)
    second, memo = _digest(tmp_path, tmp_path / "images")
    assert second == first and memo.stats.reused == 10
    assert [c for c in calls if str(c).endswith(".png")] == []


@pytest.fixture
def fake_find(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A ``find`` on PATH that is not GNU find: it knows no -printf (BSD find's answer)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "find"
    script.write_text("#!/bin/sh\necho 'find: -printf: unknown primary or operator' >&2\nexit 1\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(folder))
    yield script


def test_a_find_without_printf_leaves_the_folder_to_the_python_walk(tmp_path: Path, fake_find: Path) -> None:
    assert tree_scan.scan_tree(str(tmp_path), ".tfspec", 100) is None
    (tmp_path / "spec").mkdir()
    _images(tmp_path / "spec" / "images")
    first, _ = _digest(tmp_path / "spec", tmp_path / "spec" / "images")
    second, memo = _digest(tmp_path / "spec", tmp_path / "spec" / "images")
    assert second == first and (memo.stats.hashed, memo.stats.reused) == (0, 10)


@needs_gnu_find
def test_a_prefetched_scan_is_taken_once_and_only_while_fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _images(tmp_path / "images")
    root = str(tmp_path / "images")
    fresh = tree_scan.scan_tree(root, ".tfspec", 100)
    tree_scan.prefetch_tree(root, ".tfspec", 100)
    (tmp_path / "images" / "cat" / "new.png").write_bytes(b"new")  # after the prefetch started: not in it
    taken = tree_scan.scan_tree(root, ".tfspec", 100)
    assert taken is not None and fresh is not None and taken.entries in (fresh.entries, fresh.entries + 1)
    assert tree_scan._PREFETCHED == {}
    now = tree_scan.scan_tree(root, ".tfspec", 100)  # no prefetch left: scanned now
    assert now is not None and now.entries == fresh.entries + 1
    tree_scan.prefetch_tree(root, ".tfspec", 100)
    started = time.monotonic()
    monkeypatch.setattr(tree_scan.time, "monotonic", lambda: started + 60)  # a minute later: stale
    assert tree_scan.scan_tree(root, ".tfspec", 100) == now and tree_scan._PREFETCHED == {}


@needs_gnu_find
def test_plan_twice_then_an_image_rewritten_keeping_its_stat(tmp_path: Path) -> None:
    """The real CLI: the first plan records the folder (and that this spec reads it), the second prefetches it
    and finds it unchanged, the third sees the rewritten image."""
    import json
    import subprocess
    import sys

    _images(tmp_path / "images")
    spec = tmp_path / "deploy.yaml"
    spec.write_text("api_version: tfspec/v1\nname: t\nversion: 1\ndata:\n  source: {kind: image_folder, path: images, "
                    "image_size: [4, 4], color_mode: grayscale}\n  num_classes: 2\nmodel:\n  kind: sequential\n"
                    "  input_shape: [4, 4, 1]\n  layers:\n    - {type: flatten}\n    - {type: dense, units: 2, activation: softmax}\n"
                    "targets: [{kind: tflite, name: m}]\n", encoding="utf-8")
    _settled()
    tfspec = Path(sys.executable).with_name("tfspec")

    def data_fingerprint() -> str:
        out = subprocess.run([str(tfspec), "plan", str(spec), "--json"], check=True, capture_output=True, timeout=300)
        return next(s["fingerprint"] for s in json.loads(out.stdout)["steps"] if s["id"] == "data")

    first = data_fingerprint()
    trees = json.loads((tmp_path / ".tfspec" / "input-trees.json").read_text())
    assert trees["read_by"] == {"deploy.yaml": ["images"]} and trees["trees"]["images"][0].startswith("find:")
    assert data_fingerprint() == first
    _rewrite_keeping_stat(tmp_path / "images" / "cat" / "2.png")
    assert data_fingerprint() != first


@needs_gnu_find
def test_prefetch_lists_only_folders_below_the_spec(tmp_path: Path) -> None:
    """A folder outside the project is read only once the compiled spec opts in: the prefetch, which runs
    before the compile, never starts on one, whatever the memo says."""
    import json

    _images(tmp_path / "outside")
    _images(tmp_path / "spec" / "images")
    memo_dir = tmp_path / "spec" / file_digests.MEMO_DIR
    memo_dir.mkdir()
    (memo_dir / file_digests.TREES_FILE).write_text(json.dumps({
        "version": file_digests._TREES_VERSION, "trees": {},
        "read_by": {"deploy.yaml": ["../outside", "images"]}}), encoding="utf-8")
    try:
        file_digests.prefetch_folders(tmp_path / "spec" / "deploy.yaml")
        assert sorted(Path(root).name for root, _ in tree_scan._PREFETCHED) == ["images"]
    finally:
        for scan in tree_scan._PREFETCHED.values():
            scan.cancel()
        tree_scan._PREFETCHED.clear()
