"""Content hashes of dataset files, so a rewritten image changes the manifest (and with it the split key,
the image-cache key and every run id), even when its size is unchanged.

The hash is xxHash's XXH3-128 (the `xxhash` package): it runs at memory speed (several GB/s on one core,
against ~0.5 for sha256 and ~0.25 for blake2b on the machines this was written on), so a dataset is hashed
at the speed the disk reads it. It is not a cryptographic hash: it detects changed files, not an adversary
who crafts a collision — anyone who can rewrite the dataset can change the labels anyway. Weight files,
which do come from strangers, keep their sha256 pins.

Hashes are cached per file, keyed by size, mtime, ctime and inode (ctime moves on any write, rename or
`touch -m` back-dating; the inode on replacement), the way `harness.weights` caches sha256. The data folder
is never written to (it may be read-only): the cache lives under `$FERBENCH_CACHE_DIR`, else
`$XDG_CACHE_HOME/ferbench`, else `~/.cache/ferbench`, one JSON file per dataset root. A cache that cannot be
written only costs a re-hash next time.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import suppress
from pathlib import Path

import xxhash

from harness.files import hash_file, write_json_atomic

ALGORITHM = "xxh3-128"


def cache_dir() -> Path:
    if os.environ.get("FERBENCH_CACHE_DIR"):
        return Path(os.environ["FERBENCH_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ferbench"


def file_hash(path: Path) -> str:
    return hash_file(path, xxhash.xxh3_128())


def _stamp(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


class ContentHashes:
    """`of(relative path)` → the file's content hash, from the cache while its stamp is unchanged."""

    def __init__(self, root: Path, cache: Path | None = None):
        self.root = root
        key = hashlib.sha256(os.fsencode(os.path.realpath(root))).hexdigest()[:16]
        self.cache = cache or cache_dir() / "content-hashes" / f"{key}.json"
        self.entries = self._read()
        self.changed = False

    def _read(self) -> dict:
        with suppress(OSError, ValueError):
            entries = json.loads(self.cache.read_text(encoding="utf-8"))
            if isinstance(entries, dict) and entries.get("algorithm") == ALGORITHM and isinstance(entries.get("files"), dict):
                return entries["files"]
        return {}

    def of(self, relative: str) -> str:
        path = self.root / relative
        before = _stamp(path.stat())
        cached = self.entries.get(relative)
        if isinstance(cached, list) and len(cached) == 5 and cached[:4] == before:
            return cached[4]
        digest = file_hash(path)
        if _stamp(path.stat()) == before:  # written while we read it: do not vouch for it next time
            self.entries[relative] = [*before, digest]
            self.changed = True
        return digest

    def save(self) -> None:
        if self.changed:
            with suppress(OSError):
                write_json_atomic(self.cache, {"algorithm": ALGORITHM, "root": str(self.root), "files": self.entries})
            self.changed = False
