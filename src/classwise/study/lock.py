"""One writer per study folder (a `classwise study` run folder, a sweep's store, a `train`
run): a lock file in the folder holding who took it (pid, host, start time), locked with
`flock`, so the kernel releases it the moment its process dies. A lock file left by a killed
process is therefore simply taken over; on a file system without `flock` the pid is checked
instead (a dead process on this host holds nothing).

Two sweeps of one grid would both run every unfinished run: the sweep takes the lock, its
workers (local processes or Slurm jobs, which write the same SQLite store in transactions) do
not."""

from __future__ import annotations

import errno
import json
import os
import socket
import time
from pathlib import Path

from ..errors import ClasswiseError

LOCK = ".classwise.lock"
POLL = 2.0  # seconds between tries with --wait


class FolderBusyError(ClasswiseError):
    """The folder is locked by another live process."""


def _holder(path: Path) -> dict:
    try:
        data = json.loads(path.read_text() or "{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:
        return True
    return True


def holder_text(info: dict) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["started"])) if info.get("started") else "?"
    cmd = f" ({info['command']})" if info.get("command") else ""
    return f"process {info.get('pid', '?')} on {info.get('host', '?')}{cmd}, since {since}"


class FolderLock:
    """`with FolderLock(folder, what="study"):` the folder is this process's until the block
    ends. Another live holder: `FolderBusyError` naming it, or with `wait=True` a line saying
    so and a poll every POLL seconds until it is free. Creates the folder."""

    def __init__(self, folder, *, what: str = "study", wait: bool = False, command: str | None = None):
        self.folder = Path(folder)
        self.path = self.folder / LOCK
        self.what, self.wait, self.command = what, wait, command
        self._fd: int | None = None

    def _try(self) -> dict | None:
        """Take the lock: None, or the holder's record when another process has it."""
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return _holder(self.path) or {"pid": "?"}
            return self._try_without_flock()
        # the file may have been removed (and made again) by its last holder between our open
        # and our flock: then we hold a lock on a file nobody else will ever open
        try:
            same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            return self._try()
        self._fd = fd
        self._write(fd)
        return None

    def _try_without_flock(self) -> dict | None:
        info = _holder(self.path)
        if info and info.get("host") == socket.gethostname() and _alive(info.get("pid")) \
                and info.get("pid") != os.getpid():
            return info
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._fd = fd
        self._write(fd)
        return None

    def _write(self, fd: int) -> None:
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                  "command": self.command}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)

    def holder(self) -> dict | None:
        """Who holds the folder now (None if nobody), without taking it or creating anything."""
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return _holder(self.path) or {"pid": "?"}
            info = _holder(self.path)
            alive = info.get("host") == socket.gethostname() and _alive(info.get("pid"))
            return info if alive and info.get("pid") != os.getpid() else None
        finally:
            os.close(fd)  # closing drops a lock we may just have taken
        return None

    def check(self) -> None:
        """Refuse now (before any work) a folder another live process holds, unless waiting."""
        held = self.holder()
        if held is not None and not self.wait:
            raise self._busy(held)

    def _busy(self, held: dict) -> FolderBusyError:
        return FolderBusyError(f"{self.folder} is in use by another classwise {self.what}: {holder_text(held)}; "
                               "wait for it to end, rerun with --wait to wait for it, or give another --out")

    def acquire(self) -> FolderLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        said = False
        while True:
            held = self._try()
            if held is None:
                return self
            if not self.wait:
                raise self._busy(held)
            if not said:
                from ..progress import console

                console.print(f"{self.folder} is in use by {holder_text(held)}; waiting for it to end")
                said = True
            time.sleep(POLL)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still holding it: nobody can have opened it since
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
