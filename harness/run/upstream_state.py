"""Is the vendored upstream the pinned code? A run refuses a tree that is not, unless told to run anyway.

`ferbench run` inspects `vendor/<name>` as `ferbench fetch --check` does (HEAD at the pin, no changed
tracked file, no untracked file). A clean tree runs as before. Otherwise the run stops, naming the
files; `--allow-modified-upstream` runs anyway and records what ran: `upstream_dirty: true`, the
checked-out HEAD, the changed and untracked files, and one sha256 over `git diff HEAD` and the untracked
files' names and bytes. That hash is part of the run id, so a modified tree never shares results with
the pinned one, and the report labels such runs `(modified upstream)`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import FerbenchError

SHOWN = 10


@dataclass(frozen=True)
class UpstreamState:
    dirty: bool
    head: str = ""
    changed: tuple[str, ...] = ()
    untracked: tuple[str, ...] = ()
    problem: str = ""
    """`wrong commit`, `modified` or `untracked files` (fetch's words), empty when clean."""
    diff_sha256: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def record(self) -> dict:
        """What env.json says of the upstream tree."""
        return dict(upstream_dirty=self.dirty, upstream_diff_sha256=self.diff_sha256,
                    upstream_changed=list(self.changed), upstream_untracked=list(self.untracked))


def _listed(paths: tuple[str, ...]) -> str:
    more = f" (+{len(paths) - SHOWN} more)" if len(paths) > SHOWN else ""
    return ", ".join(paths[:SHOWN]) + more


def _diff_sha256(repo, untracked: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    with repo.git.custom_environment(GIT_OPTIONAL_LOCKS="0"):
        digest.update(repo.git.diff("HEAD", "--binary", stdout_as_string=False))
    root = Path(repo.working_tree_dir)
    for name in sorted(untracked):
        digest.update(b"\0untracked\0" + name.encode() + b"\0")
        path = root / name
        if path.is_file():
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def inspect(upstream, upstream_dir: Path) -> UpstreamState:
    """The tree's state against `upstream.commit`: clean, or what differs (and its hash)."""
    from harness import fetch

    status = fetch.check([upstream], upstream_dir.parent)[0]
    if status.ok:
        return UpstreamState(dirty=False, head=upstream.commit)
    repo = fetch._open_repo(upstream_dir)
    if repo is None:
        return UpstreamState(dirty=True, problem="not a git checkout", notes=(status.detail,))
    with repo:
        head = fetch._head(repo)
        changed, untracked = fetch._worktree_changes(repo)
        return UpstreamState(
            dirty=True, head=head, changed=tuple(changed), untracked=tuple(untracked), problem=status.status,
            diff_sha256=_diff_sha256(repo, tuple(untracked)), notes=(status.detail,) if status.detail else (),
        )


def describe(state: UpstreamState, upstream, upstream_dir: Path) -> str:
    parts = []
    if state.head and state.head != upstream.commit:
        parts.append(f"HEAD at {state.head[:12]}, not the pinned {upstream.commit[:12]}")
    if state.changed:
        parts.append(f"{len(state.changed)} changed: {_listed(state.changed)}")
    if state.untracked:
        parts.append(f"{len(state.untracked)} untracked: {_listed(state.untracked)}")
    if not parts:
        parts = [state.problem, *state.notes]
    return "; ".join(p for p in parts if p)


def require_pinned(upstream, upstream_dir: Path, allow_modified: bool) -> UpstreamState:
    """The tree's state; a tree that is not the pinned code stops the run unless `allow_modified`."""
    state = inspect(upstream, upstream_dir)
    if state.dirty and not allow_modified:
        raise FerbenchError(
            f"{upstream_dir}: upstream '{upstream.name}' is not its pinned commit as fetched "
            f"({describe(state, upstream, upstream_dir)}); run `ferbench fetch {upstream.name} --force` to restore it, "
            "or pass --allow-modified-upstream to run anyway (recorded in env.json and labelled in the report)"
        )
    return state
