"""`ferbench demo` end to end with tiny settings: draws data, runs three repeats, prints both tables."""

from harness import demo
from harness.cli import main
from harness.run.store import complete_runs


def test_demo_end_to_end(workspace, monkeypatch, capsys):
    monkeypatch.setenv("FERBENCH_DATA_ROOT", str(workspace / "data"))
    monkeypatch.setattr(demo, "DEMO_IMAGES_PER_CLASS", 6)
    monkeypatch.setattr(demo, "DEMO_SIZE", 32)
    monkeypatch.setattr(demo, "DEMO_EPOCHS", 1)
    try:
        main(["demo"])
    except SystemExit as done:
        assert not done.code
    out = capsys.readouterr().out
    assert "## Accuracy — protocol `official`" in out and "## Balanced accuracy — protocol `official`" in out
    assert "| synthetic | **" in out and " ± " in out
    assert len(list(complete_runs(workspace / "results"))) == demo.DEMO_REPEATS == 3
    assert (workspace / "data" / "synthetic" / "train" / "happy").is_dir()
