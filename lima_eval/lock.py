"""One writer per run folder: an advisory lock on RUN/.lock, held for the life of a command that writes there.

The lock is the kernel's (flock), so a process that dies, however it dies, holds nothing: there is no stale lock
to clean up after a crash. The file also records who holds it (pid, host, command, start time) for the message a
second writer gets. Nested holders in one process (a run that builds its report) share the one lock.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from lima_eval.errors import RunLockedError

F = TypeVar("F", bound=Callable[..., Any])
LOCK = ".lock"
_held: dict[Path, tuple[int, int]] = {}  # resolved run folder -> (fd, depth) held by this process


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "another lima-eval process"
    return (f"pid {info.get('pid')} on {info.get('host', '?')} (`{info.get('command', '?')}`, since "
            f"{info.get('since', '?')})")


class RunLock:
    """`with RunLock(folder):` makes this process the folder's one writer, or raises RunLockedError naming the
    holder; with wait=True it waits for the holder to finish instead."""

    def __init__(self, root: Path | str, wait: bool = False, on_wait: Callable[[str], None] | None = None):
        self.root = Path(root)
        self.wait = wait
        self.on_wait = on_wait  # called once with the holder's description when waiting starts

    def __enter__(self) -> Self:
        self.created = not self.root.exists()
        self.root.mkdir(parents=True, exist_ok=True)
        key = self.root.resolve()
        if key in _held:
            fd, depth = _held[key]
            _held[key] = (fd, depth + 1)
            return self
        fd = os.open(key / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if not self.wait:
                os.close(fd)
                raise RunLockedError(f"{self.root} is being written by {holder}; wait for it to finish, or pass "
                                     "--wait to start when it does") from None
            if self.on_wait is not None:
                self.on_wait(holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                  "command": " ".join(["lima-eval", *sys.argv[1:3]]),
                                  "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode(), 0)
        _held[key] = (fd, 1)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        key = self.root.resolve()
        fd, depth = _held[key]
        if depth > 1:
            _held[key] = (fd, depth - 1)
            return
        del _held[key]
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        if exc_type is not None and self.created and [p.name for p in key.iterdir()] == [LOCK]:
            (key / LOCK).unlink()  # a command that failed on bad input leaves no folder it made behind
            key.rmdir()


def writes_run(fn: F) -> F:
    """For functions whose first argument is a run folder they write to: hold its lock while they run."""

    @functools.wraps(fn)
    def locked(run_dir: Path | str, *args: Any, **kwargs: Any) -> Any:
        with RunLock(run_dir):
            return fn(run_dir, *args, **kwargs)

    return locked  # type: ignore[return-value]
