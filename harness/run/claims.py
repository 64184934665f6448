"""Run claims: on a shared results folder, one run is trained by one process at a time.

A claim is a file created with O_EXCL (atomic on local and NFSv3+ filesystems) holding the owner's
host, pid and a heartbeat the owner refreshes while the run trains. A claim is stale when its owner is
gone: same host and the pid no longer exists, or no heartbeat for `STALE_AFTER_S`. Taking over a stale
claim happens under an flock that re-checks staleness, so of two processes racing for it exactly one wins.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from harness.files import write_json_atomic

CLAIM = "CLAIM"
HEARTBEAT_S = 30.0
STALE_AFTER_S = 300.0


def _owner() -> dict:
    return dict(host=socket.gethostname(), pid=os.getpid(), slurm_job=os.environ.get("SLURM_JOB_ID"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_claim(folder: Path) -> dict | None:
    try:
        return json.loads((folder / CLAIM).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_stale(claim: dict | None, now: float | None = None) -> bool:
    if claim is None:
        return True
    now = time.time() if now is None else now
    job = os.environ.get("SLURM_JOB_ID")
    if job and claim.get("slurm_job") == job and claim.get("pid") != os.getpid():
        return True  # an earlier incarnation of this very Slurm task, before it was requeued
    if claim.get("host") == socket.gethostname() and not _pid_alive(int(claim.get("pid", 0))):
        return True
    return now - float(claim.get("heartbeat", 0)) > STALE_AFTER_S


def is_claimed(folder: Path) -> bool:
    """True while another live process holds the run."""
    return (folder / CLAIM).exists() and not is_stale(read_claim(folder))


@dataclass
class Claim:
    folder: Path
    token: str
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def payload(self) -> dict:
        return dict(_owner(), token=self.token, heartbeat=time.time())

    def beat(self) -> None:
        current = read_claim(self.folder)
        if current is not None and current.get("token") == self.token:
            write_json_atomic(self.folder / CLAIM, {**current, "heartbeat": time.time()})

    def start_heartbeat(self) -> None:
        def loop():
            while not self._stop.wait(HEARTBEAT_S):
                self.beat()

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        current = read_claim(self.folder)
        if current is not None and current.get("token") == self.token:
            (self.folder / CLAIM).unlink(missing_ok=True)

    def __enter__(self) -> Claim:
        self.start_heartbeat()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _create(folder: Path, token: str) -> bool:
    try:
        fd = os.open(folder / CLAIM, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)  # the umask decides, as for every store file
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(dict(_owner(), token=token, heartbeat=time.time(), started=time.time()), handle)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def try_claim(folder: Path) -> Claim | None:
    """The run's claim, or None when a live process holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    if _create(folder, token):
        return Claim(folder, token)
    with open(folder / ".claim.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # takeovers are serialised and re-check staleness under the lock
        if not is_stale(read_claim(folder)):
            return None
        write_json_atomic(folder / CLAIM, dict(_owner(), token=token, heartbeat=time.time(), started=time.time()))
    return Claim(folder, token)
