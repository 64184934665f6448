"""`ferbench fetch` against throwaway git repositories built in tmp_path (no network)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from harness import fetch as F
from harness.errors import FerbenchError


@dataclass(frozen=True)
class Up:
    name: str
    url: str
    commit: str
    licence: str = "MIT"
    optional_paths: tuple[str, ...] = ()


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture(autouse=True)
def gitconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated global git config, so the developer's insteadOf rules cannot interfere."""
    config = tmp_path / "gitconfig"
    config.write_text("[user]\n\tname = t\n\temail = t@e\n[init]\n\tdefaultBranch = main\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY"):
        monkeypatch.delenv(var, raising=False)
    return config


@dataclass
class Source:
    bare: Path
    old: str  # first commit
    pin: str  # second (tip) commit

    def drop_blob(self, path: str) -> None:
        """Delete the loose object holding `path`'s content, as in incomplete public copies."""
        sha = git("rev-parse", f"{self.pin}:{path}", cwd=self.bare)
        (self.bare / "objects" / sha[:2] / sha[2:]).unlink()


def make_source(root: Path, rel: str = "src.git") -> Source:
    """A bare repository (loose objects only) with model code, a large optional csv and a figure."""
    work = root / (rel.replace("/", "_") + ".work")
    git("init", "-q", str(work))
    (work / "data").mkdir()
    (work / "model.py").write_text("W = 1\n")
    (work / "data" / "big.csv").write_text("a,b\n1,2\n")
    git("add", ".", cwd=work)
    git("commit", "-qm", "one", cwd=work)
    (work / "asset").mkdir()
    (work / "asset" / "fig 1.png").write_text("png")
    (work / "model.py").write_text("W = 2\n")
    git("add", ".", cwd=work)
    git("commit", "-qm", "two", cwd=work)
    bare = root / rel
    git("clone", "-q", "--bare", str(work), str(bare))
    return Source(bare, git("rev-parse", "HEAD~1", cwd=work), git("rev-parse", "HEAD", cwd=work))


@pytest.fixture
def source(tmp_path: Path) -> Source:
    return make_source(tmp_path)


@pytest.fixture
def console() -> Console:
    return Console(file=io.StringIO(), width=250, force_terminal=False)


def output(console: Console) -> str:
    return console.file.getvalue()


def run(ups, vendor: Path, console: Console, **kw):
    return {o.name: o for o in F.fetch(ups, vendor, console=console, **kw)}


def status(up: Up, vendor: Path) -> F.VendorStatus:
    return F.check([up], vendor)[0]


def test_first_clone_is_detached_at_the_pin(tmp_path, source, console):
    up = Up("dan", str(source.bare), source.pin)
    vendor = tmp_path / "deep" / "vendor"
    out = run([up], vendor, console)["dan"]
    assert (out.action, out.ok, out.absent_optional) == ("cloned", True, ()), out.error
    tree = vendor / "dan"
    assert (tree / "model.py").read_text() == "W = 2\n"
    assert git("rev-parse", "HEAD", cwd=tree) == source.pin
    assert subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=tree).returncode == 1
    assert git("remote", "get-url", "origin", cwd=tree) == str(source.bare)
    assert status(up, vendor).status == "ok"
    assert F.vendor_status(up, vendor) == "fetched"
    assert not list(vendor.glob(".*partial"))


def test_second_run_needs_no_source(tmp_path, source, console):
    up = Up("dan", str(source.bare), source.pin)
    run([up], tmp_path / "vendor", console)
    source.bare.rename(tmp_path / "gone.git")
    out = run([up], tmp_path / "vendor", console)["dan"]
    assert out.action == "up to date"
    assert "dan: up to date" in output(console)


def test_check_reports_each_state(tmp_path, source):
    up = Up("dan", str(source.bare), source.pin)
    vendor = tmp_path / "vendor"
    assert status(up, vendor).status == "missing"
    F.fetch([up], vendor, console=Console(file=io.StringIO()))
    tree = vendor / "dan"

    (tree / "notes.txt").write_text("x")
    assert status(up, vendor).status == "untracked files"
    assert "notes.txt" in status(up, vendor).detail

    (tree / "model.py").write_text("W = 3\n")
    assert status(up, vendor).status == "modified"
    assert "model.py" in status(up, vendor).detail

    git("checkout", "-q", "--force", source.old, cwd=tree)
    wrong = status(up, vendor)
    assert (wrong.status, wrong.detail) == ("wrong commit", f"HEAD at {source.old[:12]}")
    assert F.vendor_status(up, vendor) == "wrong commit"


def test_check_writes_nothing(tmp_path, source):
    up = Up("dan", str(source.bare), source.pin)
    vendor = tmp_path / "vendor"
    F.fetch([up], vendor, console=Console(file=io.StringIO()))
    index = vendor / "dan" / ".git" / "index"
    os.utime(vendor / "dan" / "model.py")
    before = index.stat().st_mtime_ns
    assert status(up, vendor).status == "ok"
    assert index.stat().st_mtime_ns == before


def test_check_table_lists_every_tree(tmp_path, source):
    ups = [Up("dan", str(source.bare), source.pin), Up("mfer", str(source.bare), source.pin)]
    F.fetch(ups[:1], tmp_path / "vendor", console=Console(file=io.StringIO()))
    console = Console(file=io.StringIO(), width=200)
    console.print(F.check_table(F.check(ups, tmp_path / "vendor")))
    text = output(console)
    assert "dan" in text and "ok" in text and "mfer" in text and "missing" in text
    assert source.pin[:12] in text


def test_refuses_to_overwrite_without_force(tmp_path, source, console):
    up = Up("dan", str(source.bare), source.pin)
    vendor = tmp_path / "vendor"
    run([up], vendor, console)
    (vendor / "dan" / "model.py").write_text("mine\n")
    out = run([up], vendor, console)["dan"]
    assert out.action == "refused" and "--force" in out.error and str(vendor / "dan") in out.error
    assert (vendor / "dan" / "model.py").read_text() == "mine\n"

    git("checkout", "-q", "--force", source.old, cwd=vendor / "dan")
    assert run([up], vendor, console)["dan"].action == "refused"
    assert git("rev-parse", "HEAD", cwd=vendor / "dan") == source.old


def test_force_restores_in_place_without_the_source(tmp_path, source, console):
    up = Up("dan", str(source.bare), source.pin)
    vendor = tmp_path / "vendor"
    run([up], vendor, console)
    tree = vendor / "dan"
    git("checkout", "-q", source.old, cwd=tree)
    (tree / "model.py").write_text("mine\n")
    (tree / "scratch.txt").write_text("x")
    source.bare.rename(tmp_path / "gone.git")
    out = run([up], vendor, console, force=True)["dan"]
    assert out.action == "updated", out.error
    assert (tree / "model.py").read_text() == "W = 2\n"
    assert not (tree / "scratch.txt").exists()
    assert status(up, vendor).status == "ok"


def test_new_pin_is_fetched_only_with_force(tmp_path, source, console):
    """A shallow tree lacks a newly pinned commit, so --force fetches it anew."""
    vendor = tmp_path / "vendor"
    run([Up("dan", source.bare.as_uri(), source.old)], vendor, console)
    bumped = Up("dan", source.bare.as_uri(), source.pin)
    assert status(bumped, vendor).status == "wrong commit"
    assert run([bumped], vendor, console)["dan"].action == "refused"
    out = run([bumped], vendor, console, force=True)["dan"]
    assert out.action == "updated", out.error
    assert git("rev-parse", "HEAD", cwd=vendor / "dan") == source.pin


def test_force_reclones_a_tree_that_is_not_a_checkout(tmp_path, source, console):
    up = Up("dan", str(source.bare), source.pin)
    (tmp_path / "vendor" / "dan").mkdir(parents=True)
    (tmp_path / "vendor" / "dan" / "stray.txt").write_text("x")
    assert status(up, tmp_path / "vendor").status == "modified"
    assert run([up], tmp_path / "vendor", console)["dan"].action == "refused"
    assert run([up], tmp_path / "vendor", console, force=True)["dan"].action == "updated"
    assert status(up, tmp_path / "vendor").status == "ok"


def test_missing_optional_blob_is_left_out(tmp_path, source, console):
    source.drop_blob("data/big.csv")
    plain = subprocess.run(["git", "clone", "-q", str(source.bare), str(tmp_path / "plain")], capture_output=True)
    assert plain.returncode == 128
    up = Up("dan", str(source.bare), source.pin, optional_paths=("data/big.csv", "asset"))
    vendor = tmp_path / "vendor"
    out = run([up], vendor, console)["dan"]
    assert (out.action, out.absent_optional) == ("cloned", ("data/big.csv",)), out.error
    tree = vendor / "dan"
    assert not (tree / "data" / "big.csv").exists()
    assert (tree / "asset" / "fig 1.png").read_text() == "png"
    assert "data/big.csv" in output(console)
    checked = status(up, vendor)
    assert (checked.status, checked.absent_optional) == ("ok", ("data/big.csv",))
    assert "!/data/big.csv" in (tree / ".git" / "info" / "sparse-checkout").read_text()
    again = run([up], vendor, console)["dan"]
    assert (again.action, again.absent_optional) == ("up to date", ("data/big.csv",))


def test_missing_optional_blob_survives_force(tmp_path, source, console):
    source.drop_blob("data/big.csv")
    up = Up("dan", str(source.bare), source.pin, optional_paths=("data/",))
    vendor = tmp_path / "vendor"
    run([up], vendor, console)
    (vendor / "dan" / "model.py").write_text("mine\n")
    out = run([up], vendor, console, force=True)["dan"]
    assert (out.action, out.absent_optional) == ("updated", ("data/big.csv",)), out.error
    assert status(up, vendor).status == "ok"


def test_present_optional_files_are_checked_out(tmp_path, source, console):
    up = Up("dan", str(source.bare), source.pin, optional_paths=("data/big.csv",))
    out = run([up], tmp_path / "vendor", console)["dan"]
    assert out.absent_optional == ()
    assert (tmp_path / "vendor" / "dan" / "data" / "big.csv").exists()


def test_missing_required_blob_is_an_error(tmp_path, source, console):
    source.drop_blob("model.py")
    up = Up("dan", str(source.bare), source.pin, optional_paths=("data/big.csv",))
    out = run([up], tmp_path / "vendor", console)["dan"]
    assert out.action == "failed"
    assert "model.py" in out.error and "not declared optional" in out.error and str(source.bare) in out.error
    assert not (tmp_path / "vendor" / "dan").exists()
    assert not list((tmp_path / "vendor").iterdir())


@pytest.mark.parametrize("url", ["https://127.0.0.1:9/x/y", "/nonexistent/ferbench/repo.git"])
def test_unreachable_url_fails_alone(tmp_path, source, console, url):
    ups = [Up("bad", url, source.pin), Up("good", str(source.bare), source.pin)]
    outs = run(ups, tmp_path / "vendor", console)
    assert outs["good"].action == "cloned"
    bad = outs["bad"]
    assert bad.action == "failed"
    assert url in bad.error and "--mirror" in bad.error and "insteadOf" in bad.error
    assert "\n" not in bad.error
    assert f"error: bad: cannot fetch {url}" in output(console)


def test_mirror_template_fills_owner_and_name(tmp_path, console):
    src = make_source(tmp_path, "mirror/yaoing+DAN/repo")
    up = Up("dan", "https://github.com/yaoing/DAN", src.pin)
    out = run([up], tmp_path / "vendor", console, mirror=str(tmp_path / "mirror" / "{owner}+{name}" / "repo"))
    assert out["dan"].action == "cloned", out["dan"].error
    assert git("remote", "get-url", "origin", cwd=tmp_path / "vendor" / "dan") == up.url


@pytest.mark.parametrize("template", ["/srv/git/fixed", "/srv/{owner}/{repo}", "/srv/{name"])
def test_bad_mirror_template_is_rejected(tmp_path, console, template):
    with pytest.raises(FerbenchError) as err:
        F.fetch([], tmp_path / "vendor", console=console, mirror=template)
    assert err.value.exit_code == 2 and template in str(err.value)


def test_insteadof_rewrite_reaches_an_incomplete_local_copy(tmp_path, gitconfig, console):
    """The local-path decision must use the rewritten URL: only a local clone copes with missing blobs."""
    src = make_source(tmp_path, "mirror/owner/DDAMFN")
    src.drop_blob("data/big.csv")
    with gitconfig.open("a") as f:
        f.write(f'[url "{tmp_path / "mirror"}/"]\n\tinsteadOf = https://github.com/\n')
    up = Up("ddamfn", "https://github.com/owner/DDAMFN", src.pin, optional_paths=("data/big.csv",))
    out = run([up], tmp_path / "vendor", console)["ddamfn"]
    assert (out.action, out.absent_optional) == ("cloned", ("data/big.csv",)), out.error


def test_network_url_gets_a_shallow_fetch(tmp_path, source, console):
    up = Up("dan", source.bare.as_uri(), source.pin)
    out = run([up], tmp_path / "vendor", console)["dan"]
    assert out.action == "cloned", out.error
    assert (tmp_path / "vendor" / "dan" / ".git" / "shallow").read_text().strip() == source.pin


def test_refused_shallow_fetch_falls_back_to_full(tmp_path, source, gitconfig, console):
    with gitconfig.open("a") as f:
        f.write("[protocol]\n\tversion = 0\n")  # v0 servers refuse unadvertised commit ids
    up = Up("dan", source.bare.as_uri(), source.old)
    out = run([up], tmp_path / "vendor", console)["dan"]
    assert out.action == "cloned", out.error
    tree = tmp_path / "vendor" / "dan"
    assert not (tree / ".git" / "shallow").exists()
    assert git("rev-parse", "HEAD", cwd=tree) == source.old


@pytest.mark.parametrize("as_uri", [False, True])
def test_absent_pin_is_a_clear_error(tmp_path, source, console, as_uri):
    url = source.bare.as_uri() if as_uri else str(source.bare)
    up = Up("dan", url, "0123456789abcdef0123456789abcdef01234567")
    out = run([up], tmp_path / "vendor", console)["dan"]
    assert out.action == "failed"
    assert out.error == f"pinned commit {up.commit} is not in {url}"
    assert not (tmp_path / "vendor" / "dan").exists()


def test_malformed_pin_is_an_error(tmp_path, source, console):
    out = run([Up("dan", str(source.bare), "main")], tmp_path / "vendor", console)["dan"]
    assert out.action == "failed" and "40-hex" in out.error


def test_progress_renders_on_a_terminal(tmp_path, source):
    console = Console(file=io.StringIO(), width=120, force_terminal=True)
    out = run([Up("dan", source.bare.as_uri(), source.pin)], tmp_path / "vendor", console)["dan"]
    assert out.action == "cloned", out.error
    assert "dan: cloned at" in output(console)


def test_unknown_name_lists_valid_ones():
    ups = {"dan": Up("dan", "u", "c"), "mfer": Up("mfer", "u", "c")}
    with pytest.raises(FerbenchError) as err:
        F.select(ups, ["dan", "nope"])
    assert err.value.exit_code == 2
    assert "'nope'" in str(err.value) and "valid names: dan, mfer" in str(err.value)
    assert [u.name for u in F.select(ups, [])] == ["dan", "mfer"]
    assert [u.name for u in F.select(ups, ["mfer", "mfer"])] == ["mfer"]


def test_licence_status_is_printed(tmp_path, source, console):
    ups = [Up("dan", str(source.bare), source.pin, licence="none"), Up("mfer", str(source.bare), source.pin)]
    run(ups, tmp_path / "vendor", console)
    text = output(console)
    assert "dan: no licence file: use under the authors' terms, for research only" in text
    assert "MIT" in text


def test_missing_git_is_a_clear_error(tmp_path):
    code = (
        "from harness.fetch import check\n"
        "from harness.errors import FerbenchError\n"
        "try:\n    check([], '.')\nexcept FerbenchError as e:\n    print(e)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_PYTHON")}
    env["PATH"] = str(tmp_path)
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "git executable not found" in done.stdout
