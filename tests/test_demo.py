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
    assert "Chance level: 1/7 = 0.143" in out and f"for {demo.DEMO_EPOCHS} epochs" in out


def test_demo_draws_what_plain_synth_draws():
    """So `ferbench synth` after the demo finds the dataset as it is, rather than refusing or redrawing it."""
    from harness.cli import app
    from harness.cli_reference import commands

    defaults = {p.name: p.default for p in commands(app)[("synth",)].command.params}
    assert (defaults["images_per_class"], defaults["size"], defaults["seed"]) == (demo.DEMO_IMAGES_PER_CLASS, demo.DEMO_SIZE, 0)
