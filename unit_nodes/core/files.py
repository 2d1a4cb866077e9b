"""Files the user names, checked before anything opens them; folder scans that cannot loop;
one lock per training run folder; clean-up of temporary files left by a killed save.

Opening a FIFO blocks until a writer appears, and a device or socket is no image or model
either, so every file is checked to be a regular one (after following symlinks) before it
is opened. Folder scans follow symlinked folders (people link data sets into place) but
enter each real folder once, so ``ln -s . loop`` neither hangs a scan nor repeats its files.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def regular_file(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` if it is (a symlink to) a regular file; a clear error otherwise, without opening it."""
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError(f"{what} {path} is a symbolic link loop") from None
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise FileNotFoundError(f"{what} not found: {path}") from None
        raise ValueError(f"{what} {path} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{what} {path} is {_kind(st.st_mode)}, not a regular file")
    return path


def walk_files(root: str | os.PathLike) -> Iterator[Path]:
    """Regular files under ``root``, recursively, sorted per folder; symlinked folders are
    followed, each real folder entered once; FIFOs, devices, sockets and broken links skipped."""
    root = Path(root)
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError:
            dirnames[:] = []
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:  # a loop, or a second link to a folder already scanned
            dirnames[:] = []
            continue
        seen.add(key)
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            try:
                if stat.S_ISREG(os.stat(path).st_mode):
                    yield path
            except OSError:  # broken link or link loop
                continue


# --- temporary files of atomic writes ---------------------------------------------------
def remove_stale_temp_files(target: str | os.PathLike) -> list[Path]:
    """Delete the temporary files an atomic write of ``target`` leaves when it is killed
    (``.<name>.XXXX.tmp`` beside it). Only call this where no other writer can be saving the
    same file (e.g. under the run folder's lock)."""
    target = Path(target)
    removed = []
    try:
        candidates = list(target.parent.glob(f".{target.name}.*.tmp"))
    except OSError:
        return removed
    for tmp in candidates:
        try:
            if tmp.is_file() and not tmp.is_symlink():
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            pass
    return removed


# --- one training per run folder ----------------------------------------------------------
LOCK_FILE = ".unit-train.lock"


class RunFolderBusy(ValueError):
    """Another process is training into the same run folder."""


class RunLock:
    """An exclusive lock on a run folder, held while a training runs into it.

    The lock is an OS file lock (``flock``; ``msvcrt.locking`` on Windows) on ``LOCK_FILE`` in
    the folder, so it dies with its process: a lock left by a killed run is simply taken
    over. The file records who holds it (pid, host, start time, command), for the message a
    second training gets.
    """

    def __init__(self, folder: str | os.PathLike, command: str = ""):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.command = command
        self._fd: int | None = None

    def holder(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}

    def acquire(self) -> "RunLock":
        for _ in range(20):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if not _try_lock(fd):
                    info = self.holder()
                    who = f"pid {info.get('pid', '?')} on host {info.get('host', '?')}"
                    since = info.get("started")
                    since_text = f", running since {since}" if since else ""
                    raise RunFolderBusy(
                        f"{self.folder} is in use by another training ({who}{since_text}); wait for it to "
                        f"finish or stop it, or train into another folder")
                # The holder may have removed the file between our open and our lock: then we
                # locked an orphan, and must lock the file that is there now.
                try:
                    same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
                except FileNotFoundError:
                    same = False
                if not same:
                    os.close(fd)
                    continue
                info = {"pid": os.getpid(), "host": socket.gethostname(),
                        "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": self.command}
                os.ftruncate(fd, 0)
                os.write(fd, json.dumps(info).encode())
                self._fd = fd
                return self
            except BaseException:
                if self._fd is None:
                    os.close(fd)
                raise
        raise RunFolderBusy(f"could not lock {self.path}: it keeps being replaced by another process")

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        try:
            os.close(self._fd)  # closing drops the OS lock
        finally:
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise
