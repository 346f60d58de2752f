"""Claims on videos, so that processes sharing an output folder never compute one video twice.

A claim is an exclusive POSIX lock (``fcntl.lockf``) on ``<output>/.claims/<video>.lock``,
held while the video is computed. The kernel drops the lock when its process dies, however
it dies, so a claim left by a dead process is free again with no timeout to wait out; the
lock files themselves stay (deleting one could let two processes lock two different files
for the same video). POSIX locks also work across machines on NFS (v4, or v3 with lockd).
They belong to a process, not a thread: the threads of one process (``--videos_per_device``)
share one ``Claims``, which keeps them off each other's videos itself.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import threading
import time
from pathlib import Path

CLAIMS_FOLDER = ".claims"


class Claim:
    def __init__(self, fd: int, path: Path):
        self.fd, self.path = fd, path

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # drops the lock
            self.fd = -1


class Claims:
    def __init__(self, out_root: Path):
        self.folder = out_root / CLAIMS_FOLDER
        self.folder.mkdir(parents=True, exist_ok=True)
        self.held: dict[str, Claim] = {}
        self._threads = threading.Lock()

    def try_claim(self, video: str) -> Claim | None:
        """The claim on ``video``, or None when another process (or thread) holds it."""
        with self._threads:
            if video in self.held:  # another thread's: a second descriptor of that lock would drop it on close
                return None
            claim = self._lock(video)
            if claim is not None:
                self.held[video] = claim
            return claim

    def _lock(self, video: str) -> Claim | None:
        path = self.folder / f"{video}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EACCES, errno.EAGAIN):
                return None
            raise
        os.ftruncate(fd, 0)  # who holds it, for a person looking
        os.write(fd, f"{socket.gethostname()} pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        return Claim(fd, path)

    def release(self, video: str) -> None:
        with self._threads:
            self.held.pop(video).release()
