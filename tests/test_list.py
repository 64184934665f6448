import subprocess
import sys

from tests.conftest import child_env

PROBE = """
import sys
from harness.cli import main
try:
    main(["list"])
except SystemExit as done:
    assert not done.code, done.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"torch", "torchvision", "adapters"})
print("HEAVY", heavy)
"""


def test_list_shows_status_without_importing_torch(workspace):
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=child_env(), cwd=workspace)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout
    assert "baseline" in out.stdout and "built in" in out.stdout
    assert "synthetic" in out.stdout and "present" in out.stdout


def test_list_shows_upstreams_missing_before_fetch(workspace):
    toml = workspace / "benchmark.toml"
    toml.write_text(
        toml.read_text()
        + '\n[upstreams.dan]\nurl = "https://github.com/yaoing/DAN"\n'
        + 'commit = "3872eefef1441231342b1a798719f6e69cdbc1fd"\nlicence = "MIT"\n'
    )
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=child_env(), cwd=workspace)
    assert out.returncode == 0, out.stderr
    assert "Upstreams" in out.stdout and "3872eefef144" in out.stdout and "missing" in out.stdout


def test_list_says_what_a_reference_upstream_is_used_for(workspace):
    toml = workspace / "benchmark.toml"
    toml.write_text(
        toml.read_text()
        + '\n[upstreams.fer-crossval]\nurl = "https://github.com/StevenHSKim/FER-crossval"\n'
        + 'commit = "16e0f1199ec9320ef98bcadd9226d5da0fa17088"\nlicence = "none"\npurpose = "reference: splits"\n'
    )
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=child_env(), cwd=workspace)
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if "fer-crossval" in line)
    assert "16e0f1199ec9" in row and "reference:" in row and "missing" in row
