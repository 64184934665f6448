"""Store files: atomic writes that honour the umask, and operating-system errors as one line.

A reader never sees half a file and a crash never leaves one behind: every write goes to a temporary
file in the target's folder, is fsynced and renamed over the target, and the temporary file is removed
on any failure (a full disk included). Files get the permissions any Unix tool gives them under the
process umask (0644 under 022, 0664 under 002), so a group can share a store; folders are made with
`mkdir`, which honours the umask and inherits a setgid group folder's group.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator


def umask() -> int:
    """The process umask, read without changing it (Linux: /proc/self/status), else by setting and restoring."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def file_mode() -> int:
    return 0o666 & ~umask()


@contextmanager
def atomic_file(path: Path, mode: str = "w") -> Iterator[IO]:
    """A handle to a temporary file that replaces `path` when the block ends without an exception."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode())  # mkstemp creates 0600 whatever the umask
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError) and error.filename is None:
            error.filename = str(path)  # a failed write or fsync (ENOSPC) names no file; the message must
        raise


def hash_file(path: Path, digest) -> str:
    """`digest` (a hashlib/xxhash object) fed with the file's bytes in 4 MiB chunks; its hex digest."""
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_file(path) as handle:
        handle.write(text)


def write_json_atomic(path: Path, payload: Any) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a file is where a folder is expected",
    errno.EEXIST: "already exists (a file where a folder is expected?)",
    errno.EISDIR: "a folder is where a file is expected",
    errno.ENOENT: "no such file or folder",
}


def _blocking_file(path: Path) -> Path | None:
    """The nearest existing ancestor of `path` (itself included) when it is a file, not a folder."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate if not candidate.is_dir() else None
    return None


def os_error_line(error: OSError) -> str:
    """`PATH: reason` for an operating-system error: the one line the CLI and the worker print."""
    reason = _REASONS.get(error.errno or -1) or (error.strerror or type(error).__name__).lower()
    name = error.filename if error.filename is not None else error.filename2
    if name is None:
        return reason
    path = Path(os.fsdecode(name))
    if error.errno in (errno.ENOTDIR, errno.EEXIST):
        blocking = _blocking_file(path)
        if blocking is not None:
            return f"{blocking}: a file is where a folder is expected"
    return f"{path}: {reason}"
