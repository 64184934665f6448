"""`ferbench fetch`: put each upstream repository into `vendor/<name>` at its pinned commit.

ferbench never copies upstream code; it clones it, so every result traces to an exact
commit. Some public copies of the upstreams lack the content of large optional files
(missing blob objects); those paths are left out with a non-cone sparse checkout whose
patterns file doubles as the durable record of what is absent.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlparse

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn
from rich.table import Table
from rich.text import Text

from harness.errors import FerbenchError
from harness.tables import folded

if TYPE_CHECKING:
    import git

NO_LICENCE_NOTE = "no licence file: use under the authors' terms, for research only"
REACH_HINT = "point ferbench at a reachable copy with --mirror TEMPLATE or git's url.<base>.insteadOf"
OK_ACTIONS = ("cloned", "updated", "up to date")
_SHA = re.compile(r"[0-9a-f]{40}")
_NETWORK_ENV = {"GIT_TERMINAL_PROMPT": "0"}


class Upstream(Protocol):
    """The fields of a `benchmark.toml` upstream entry that fetching needs."""

    name: str
    url: str
    commit: str
    licence: str
    optional_paths: tuple[str, ...]


@dataclass(frozen=True)
class VendorStatus:
    """What `check` found in one `vendor/<name>` tree."""

    name: str
    pin: str
    status: str  # missing | ok | wrong commit | modified | untracked files
    detail: str = ""
    absent_optional: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class FetchOutcome:
    """What `fetch` did for one upstream; `error` is a one-line message when it failed."""

    name: str
    pin: str
    action: str  # cloned | updated | up to date | refused | failed
    licence: str
    absent_optional: tuple[str, ...] = ()
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.action in OK_ACTIONS


class _UpstreamFailure(Exception):
    """One upstream could not be fetched; the others carry on."""


def _gitpython() -> Any:
    """Import GitPython lazily: its import fails when no git executable is installed."""
    try:
        import git
    except ModuleNotFoundError as err:
        raise FerbenchError(f"GitPython is not installed ({err}): pip install GitPython") from None
    except ImportError:
        raise FerbenchError(
            "git executable not found: install git and put it on PATH (or set GIT_PYTHON_GIT_EXECUTABLE)"
        ) from None
    return git


def select(upstreams: Mapping[str, Upstream], names: Iterable[str] | None) -> list[Upstream]:
    """The upstreams named (all when none are), refusing names the registry does not know."""
    names = list(dict.fromkeys(names or ()))
    if not names:
        return list(upstreams.values())
    unknown = [n for n in names if n not in upstreams]
    if unknown:
        raise FerbenchError(
            f"unknown upstream {', '.join(map(repr, unknown))}; valid names: {', '.join(upstreams)}",
            exit_code=2,
        )
    return [upstreams[n] for n in names]


# --- inspection ---------------------------------------------------------------------------


def check(upstreams: Sequence[Upstream], vendor_dir: Path) -> list[VendorStatus]:
    """Inspect every vendor tree without network access or writes."""
    _gitpython()
    return [_inspect(u, Path(vendor_dir) / u.name) for u in upstreams]


def vendor_status(upstream: Upstream, vendor_dir: Path) -> str:
    """One word for `ferbench list`: "fetched" when the tree is at its pin and clean."""
    try:
        status = check([upstream], vendor_dir)[0]
    except FerbenchError:
        return "unknown (no git)"
    return "fetched" if status.ok else status.status


def check_table(statuses: Sequence[VendorStatus]) -> Table:
    """The `fetch --check` table."""
    table = Table(title="vendor trees")
    for column in ("name", "pin", "status"):
        table.add_column(column, no_wrap=True)
    table.add_column("detail", overflow="fold")
    for s in statuses:
        style = "green" if s.ok else "red"
        table.add_row(s.name, s.pin[:12], Text(s.status, style=style), Text(s.detail))
    return table


def _is_missing(dest: Path) -> bool:
    return not dest.exists() or (dest.is_dir() and not any(dest.iterdir()))


def _inspect(upstream: Upstream, dest: Path) -> VendorStatus:
    def status(kind: str, detail: str = "", absent: tuple[str, ...] = ()) -> VendorStatus:
        return VendorStatus(upstream.name, upstream.commit, kind, detail, absent)

    if _is_missing(dest):
        return status("missing")
    repo = _open_repo(dest)
    if repo is None:
        return status("modified", f"{dest} is not a git checkout")
    with repo:
        head = _head(repo)
        if head != upstream.commit:
            return status("wrong commit", f"HEAD at {head[:12]}" if head else "no commit checked out")
        excluded = _sparse_exclusions(repo)
        stray = [p for p in excluded if not _is_optional(p, upstream.optional_paths)]
        if stray:
            return status("modified", f"sparse checkout leaves out non-optional {_few(stray)}")
        changed, untracked = _worktree_changes(repo)
        if changed:
            return status("modified", f"{len(changed)} changed: {_few(changed)}")
        if untracked:
            return status("untracked files", f"{len(untracked)} untracked: {_few(untracked)}")
        detail = f"optional files absent: {', '.join(excluded)}" if excluded else ""
        return status("ok", detail, tuple(excluded))


def _open_repo(dest: Path) -> git.Repo | None:
    """The repository whose work tree is exactly `dest` (never an enclosing one)."""
    git = _gitpython()
    try:
        repo = git.Repo(dest)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    if repo.bare or Path(repo.working_tree_dir).resolve() != dest.resolve():
        repo.close()
        return None
    return repo


def _head(repo: git.Repo) -> str:
    return repo.head.commit.hexsha if repo.head.is_valid() else ""


def _worktree_changes(repo: git.Repo) -> tuple[list[str], list[str]]:
    """Tracked paths changed and untracked paths, read without refreshing the index."""
    with repo.git.custom_environment(GIT_OPTIONAL_LOCKS="0"):
        out = repo.git.status("--porcelain=v1", "-z", "--untracked-files=normal", strip_newline_in_stdout=False)
    entries = iter(out.split("\0"))
    changed, untracked = [], []
    for entry in entries:
        if not entry:
            continue
        code, path = entry[:2], entry[3:]
        if code == "??":
            untracked.append(path)
            continue
        changed.append(path)
        if "R" in code or "C" in code:
            next(entries, None)
    return changed, untracked


def _few(paths: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (", …" if len(paths) > limit else "")


# --- sparse checkout: the record of absent optional files ---------------------------------


def _is_optional(path: str, optional_paths: Iterable[str]) -> bool:
    return any(path == o.strip("/") or path.startswith(o.strip("/") + "/") for o in optional_paths)


def _sparse_file(repo: git.Repo) -> Path:
    return Path(repo.git_dir) / "info" / "sparse-checkout"


def _sparse_enabled(repo: git.Repo) -> bool:
    """Asked of git itself: `sparse-checkout set` may keep the setting in config.worktree."""
    git = _gitpython()
    try:
        return repo.git.config("--bool", "--get", "core.sparseCheckout") == "true"
    except git.GitCommandError:
        return False


def _sparse_exclusions(repo: git.Repo) -> list[str]:
    """Paths the sparse-checkout patterns leave out: only `!/<path>` lines are ours."""
    sparse = _sparse_file(repo)
    if not (_sparse_enabled(repo) and sparse.is_file()):
        return []
    lines = sparse.read_text(encoding="utf-8").splitlines()
    return [re.sub(r"\\(.)", r"\1", line[2:]) for line in lines if line.startswith("!/")]


def _pattern(path: str) -> str:
    """A gitignore-style pattern matching exactly `path` from the repository root."""
    escaped = re.sub(r"([*?\[\\])", r"\\\1", path)
    if escaped.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return "!/" + escaped


def _set_sparse(repo: git.Repo, absent: Sequence[str]) -> None:
    if absent:
        repo.git.sparse_checkout("set", "--no-cone", "/*", *map(_pattern, absent))
    elif _sparse_enabled(repo):
        repo.git.sparse_checkout("disable")


# --- fetching -----------------------------------------------------------------------------


def fetch(
    upstreams: Sequence[Upstream],
    vendor_dir: Path,
    *,
    force: bool = False,
    mirror: str | None = None,
    console: Console,
) -> list[FetchOutcome]:
    """Bring every upstream to its pin, report each, and return outcomes (failures included)."""
    _gitpython()
    if mirror is not None:
        _check_template(mirror)
    vendor_dir = Path(vendor_dir)
    try:
        vendor_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FerbenchError(f"cannot create the vendor directory {vendor_dir}: {err.strerror}") from None
    outcomes = [_fetch_one(u, vendor_dir, force, mirror, console) for u in upstreams]
    console.print(folded(outcome_table(outcomes)))
    for u in upstreams:
        if _unlicensed(u.licence):
            console.print(Text(f"{u.name}: {NO_LICENCE_NOTE}", style="yellow"))
    for o in outcomes:
        if not o.ok:
            console.print(Text(f"error: {o.name}: {o.error}", style="red"), soft_wrap=True)
    return outcomes


def outcome_table(outcomes: Sequence[FetchOutcome]) -> Table:
    """The closing table of `ferbench fetch`."""
    table = Table(title="ferbench fetch")
    for column in ("name", "pin", "status"):
        table.add_column(column, no_wrap=True)
    table.add_column("optional files absent", overflow="fold")
    table.add_column("licence", max_width=36)
    for o in outcomes:
        style = "green" if o.ok else "red"
        licence = Text("no licence file", style="yellow") if _unlicensed(o.licence) else Text(o.licence)
        table.add_row(o.name, o.pin[:12], Text(o.action, style=style), Text("\n".join(o.absent_optional)), licence)
    return table


def _unlicensed(licence: str) -> bool:
    return licence.strip().lower() == "none"


def _fetch_one(
    upstream: Upstream, vendor_dir: Path, force: bool, mirror: str | None, console: Console
) -> FetchOutcome:
    def outcome(action: str, absent: Sequence[str] = (), error: str = "") -> FetchOutcome:
        return FetchOutcome(upstream.name, upstream.commit, action, upstream.licence, tuple(absent), error)

    dest = vendor_dir / upstream.name
    try:
        if not _SHA.fullmatch(upstream.commit):
            raise _UpstreamFailure(f"pin {upstream.commit!r} for {upstream.url} is not a 40-hex commit id")
        before = _inspect(upstream, dest)
        if before.ok:
            console.print(f"{upstream.name}: up to date at {upstream.commit[:12]}", highlight=False)
            return outcome("up to date", before.absent_optional)
        if before.status != "missing" and not force:
            return outcome("refused", error=_refusal(dest, before))
        with _progress(console, upstream.name) as progress:
            action = _update_in_place(upstream, dest, progress) if before.status != "missing" else None
            if action is None:
                _clone_fresh(upstream, dest, _source(upstream, mirror), progress)
                action = "cloned" if before.status == "missing" else "updated"
        after = _inspect(upstream, dest)
        if not after.ok:
            raise _UpstreamFailure(f"{dest} is '{after.status}' after checkout ({after.detail})")
        console.print(f"{upstream.name}: {action} at {upstream.commit[:12]}", highlight=False)
        return outcome(action, after.absent_optional)
    except _UpstreamFailure as err:
        return outcome("failed", error=str(err))
    except _gitpython().GitCommandError as err:
        return outcome("failed", error=f"git failed in {dest}: {_reason(err)}")
    except OSError as err:
        return outcome("failed", error=f"{dest}: {err}")


def _refusal(dest: Path, status: VendorStatus) -> str:
    what = {"wrong commit": "is not at the pin", "untracked files": "has untracked files"}.get(
        status.status, "has local modifications"
    )
    return f"{dest} {what} ({status.detail}); rerun with --force to overwrite it"


def _update_in_place(upstream: Upstream, dest: Path, progress: _Display) -> str | None:
    """Force an existing checkout to the pin from its own objects; None when it cannot."""
    repo = _open_repo(dest)
    if repo is None:
        return None
    with repo:
        if not _has_commit(repo, upstream.commit):
            return None
        progress.stage("checking out")
        _checkout(repo, upstream, force=True)
    return "updated"


def _clone_fresh(upstream: Upstream, dest: Path, source: str, progress: _Display) -> None:
    """Clone into a scratch directory beside `dest` and move it in only once it is complete."""
    scratch = dest.with_name(f".{dest.name}.partial")
    _remove(scratch)
    try:
        with _download(source, scratch, upstream, progress) as repo:
            progress.stage("checking out")
            _checkout(repo, upstream, force=False)
        _remove(dest)
        scratch.rename(dest)
    finally:
        _remove(scratch)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _has_commit(repo: git.Repo, sha: str) -> bool:
    try:
        return repo.git.get_object_header(sha)[1] == b"commit"
    except ValueError:
        return False


def _checkout(repo: git.Repo, upstream: Upstream, *, force: bool) -> None:
    """Detach at the pin, leaving out optional files whose content this copy lacks."""
    absent = _unavailable_optional(repo, upstream)
    _set_sparse(repo, absent)
    repo.git.checkout("--detach", "--quiet", *(["--force"] if force else []), upstream.commit)
    if force:
        repo.git.clean("-ffdq")


def _unavailable_optional(repo: git.Repo, upstream: Upstream) -> list[str]:
    """Files at the pin whose blobs are missing; any that is not optional is an error."""
    listing = repo.git.ls_tree("-r", "-z", "--full-tree", upstream.commit, strip_newline_in_stdout=False)
    missing = []
    for entry in filter(None, listing.split("\0")):
        meta, path = entry.split("\t", 1)
        _mode, kind, sha = meta.split()
        if kind == "blob" and not _has_object(repo, sha):
            missing.append(path)
    required = [p for p in missing if not _is_optional(p, upstream.optional_paths)]
    if required:
        raise _UpstreamFailure(
            f"{upstream.url} lacks the content of {_few(required)} at {upstream.commit[:12]}, "
            "which is not declared optional; fetch from a complete copy (--mirror or url.<base>.insteadOf)"
        )
    return missing


def _has_object(repo: git.Repo, sha: str) -> bool:
    try:
        repo.git.get_object_header(sha)
    except ValueError:
        return False
    return True


# --- download: local-path clone, or shallow fetch with a full fallback ---------------------


def _check_template(template: str) -> None:
    if "{name}" not in template:
        raise FerbenchError(
            f"--mirror template {template!r} must contain {{name}} (and usually {{owner}})", exit_code=2
        )
    try:
        template.format_map({"owner": "o", "name": "n"})
    except (KeyError, ValueError, IndexError, AttributeError) as err:
        raise FerbenchError(
            f"--mirror template {template!r} is malformed ({err!r}); only {{owner}} and {{name}} are filled",
            exit_code=2,
        ) from None


def _owner_name(url: str) -> tuple[str, str]:
    """The last two path parts of an upstream URL (https or scp-like): GitHub's owner and name."""
    path = urlparse(url).path if "://" in url else url.split(":", 1)[-1]
    parts = [p for p in path.split("/") if p]
    if len(parts) < 2:
        raise _UpstreamFailure(f"cannot tell owner and name from {url} to fill --mirror")
    return parts[-2], parts[-1].removesuffix(".git")


def _source(upstream: Upstream, mirror: str | None) -> str:
    if mirror is None:
        return upstream.url
    owner, name = _owner_name(upstream.url)
    return os.path.expanduser(mirror.format_map({"owner": owner, "name": name}))


def _local_path(url: str) -> Path | None:
    """The directory `url` names after git's insteadOf rewriting, or None for a network URL."""
    git = _gitpython()
    rewritten = git.Git().ls_remote("--get-url", url)
    if "://" in rewritten or re.match(r"[^/]*:", rewritten):
        return None
    return Path(rewritten).absolute()


@contextmanager
def _download(source: str, scratch: Path, upstream: Upstream, progress: _Display) -> Iterator[git.Repo]:
    """A repository in `scratch` holding the pinned commit, not yet checked out.

    A local path is cloned by copying its objects, the only transfer that tolerates a
    source missing some blobs; network URLs get a shallow fetch of just the pin.
    """
    git = _gitpython()
    local = _local_path(source)
    if local is not None:
        _clone_local(local, source, scratch, progress)
    else:
        git.Repo.init(scratch).close()
    with git.Repo(scratch) as repo:
        if local is None:
            _fetch_network(repo, source, upstream.commit, progress)
        if not _has_commit(repo, upstream.commit):
            raise _UpstreamFailure(f"pinned commit {upstream.commit} is not in {_describe(source)}")
        _set_origin(repo, upstream.url)
        yield repo


def _set_origin(repo: git.Repo, url: str) -> None:
    """Record the upstream's own URL, so the checkout traces to it whatever copy served it."""
    verb = "set-url" if "origin" in (r.name for r in repo.remotes) else "add"
    repo.git.remote(verb, "origin", url)


def _clone_local(local: Path, source: str, scratch: Path, progress: _Display) -> None:
    git = _gitpython()
    runner = git.Git()
    try:
        args = ("--no-checkout", "--progress", "--", str(local), str(scratch))
        _with_progress(runner, "clone", *args, progress=progress)
    except git.GitCommandError as err:
        raise _UpstreamFailure(f"cannot fetch {_describe(source)}: {_reason(err)}; {REACH_HINT}") from None


def _fetch_network(repo: git.Repo, source: str, pin: str, progress: _Display) -> None:
    """Shallow-fetch the pin; where the server refuses a bare commit id, fetch everything."""
    git = _gitpython()
    try:
        args = ("--depth=1", "--no-tags", "--progress", "--", source, pin)
        _with_progress(repo.git, "fetch", *args, progress=progress)
        return
    except git.GitCommandError:
        progress.stage("shallow fetch refused, fetching everything")
    try:
        refspecs = ("+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")
        _with_progress(repo.git, "fetch", "--progress", "--", source, *refspecs, progress=progress)
    except git.GitCommandError as err:
        raise _UpstreamFailure(f"cannot fetch {_describe(source)}: {_reason(err)}; {REACH_HINT}") from None


def _with_progress(runner: git.Git, command: str, *args: str, progress: _Display) -> None:
    """Run a git transfer command, feeding its --progress output to the rich display."""
    git = _gitpython()
    parser = progress.parser()
    with runner.custom_environment(**_NETWORK_ENV):
        proc = getattr(runner, command)(*args, as_process=True, with_stdout=False, universal_newlines=True)
    git.cmd.handle_process_output(proc, None, parser.new_message_handler(), finalizer=None, decode_streams=False)
    proc.wait(stderr="\n".join(parser.other_lines + parser.error_lines))


def _describe(source: str) -> str:
    """`source`, and where git's insteadOf rewrites it, what it became."""
    rewritten = _gitpython().Git().ls_remote("--get-url", source)
    return source if rewritten == source else f"{source} (rewritten to {rewritten})"


def _reason(err: Exception) -> str:
    """The last line git printed on stderr, without GitPython's framing or git's 'fatal:'."""
    text = re.sub(r"^\s*stderr: '|'\s*$", "", str(getattr(err, "stderr", "") or err))
    if "corruption on the remote side" in text:
        return "the source lacks some objects, which only a clone from its plain local path can skip"
    lines = [re.sub(r"^(fatal|error): ", "", ln.strip()) for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "unknown git error"


# --- progress display ---------------------------------------------------------------------


class _Display:
    """One rich task per upstream, fed by GitPython's parser of git's --progress lines."""

    _STAGES = {
        "COUNTING": "counting objects",
        "COMPRESSING": "compressing objects",
        "RECEIVING": "receiving objects",
        "RESOLVING": "resolving deltas",
        "CHECKING_OUT": "checking out",
        "WRITING": "writing objects",
        "FINDING_SOURCES": "finding sources",
    }

    def __init__(self, bar: Progress, name: str):
        self._bar, self._name = bar, name
        self._task = bar.add_task(f"{name}: starting", total=None)

    def stage(self, text: str) -> None:
        self.show(text, completed=0, total=None)

    def show(self, text: str, *, completed: float, total: float | None) -> None:
        self._bar.update(self._task, description=f"{self._name}: {text}", completed=completed, total=total)

    def parser(self) -> git.RemoteProgress:
        """A fresh RemoteProgress whose updates move this task (and which keeps git's errors)."""
        base = _gitpython().RemoteProgress
        labels = {getattr(base, k): v for k, v in self._STAGES.items()}
        display = self

        class Parser(base):
            def update(self, op_code: int, cur_count: Any, max_count: Any = None, message: str = "") -> None:
                label = labels.get(op_code & base.OP_MASK, "transferring")
                total = float(max_count) if max_count else None
                display.show(label, completed=float(cur_count or 0), total=total)

        return Parser()


@contextmanager
def _progress(console: Console, name: str) -> Iterator[_Display]:
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TaskProgressColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        yield _Display(bar, name)
