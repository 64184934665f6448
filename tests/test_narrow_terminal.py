"""At 80 columns, `list` and `weights` wrap long paths and URLs instead of cutting them with an ellipsis."""

from harness.cli import main

LONG_URL = "https://github.com/a-rather-long-organisation-name/an-even-longer-repository-name-for-testing"


def printed(args, monkeypatch, capsys) -> tuple[str, str]:
    monkeypatch.setenv("COLUMNS", "80")
    try:
        main(args)
    except SystemExit:
        pass
    captured = capsys.readouterr()
    return captured.out, captured.err


def squeezed(text: str) -> str:
    """The table's text with borders and wrapping removed, so a folded cell reads as one string again."""
    return "".join(ch for ch in text if not ch.isspace() and ch not in "│┃━─┏┓┗┛┡┩╇┳┻╋┣┫└┘┌┐├┤┼┬┴")


def test_list_keeps_every_url_and_path_whole(workspace, monkeypatch, capsys):
    toml = workspace / "benchmark.toml"
    toml.write_text(toml.read_text() + f'\n[upstreams.dan]\nurl = "{LONG_URL}"\n'
                    + 'commit = "3872eefef1441231342b1a798719f6e69cdbc1fd"\nlicence = "MIT"\n')
    deep = workspace / "a-deeply-nested-folder-holding-the-datasets-of-this-project"
    monkeypatch.setenv("FERBENCH_DATA_ROOT", str(deep))
    out, _ = printed(["list"], monkeypatch, capsys)
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "…" not in out
    assert LONG_URL in squeezed(out) and str(deep) in squeezed(out)


def test_weights_keeps_every_url_whole(workspace, monkeypatch, capsys):
    toml = workspace / "benchmark.toml"
    toml.write_text(toml.read_text().replace(
        "[models.baseline.recipe]",
        f'[[models.baseline.pretrained]]\nname = "backbone.pth"\nurl = "{LONG_URL}/releases/backbone.pth"\n'
        'initialises = "the backbone"\n[models.baseline.recipe]'))
    out, err = printed(["weights"], monkeypatch, capsys)
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "…" not in out
    assert f"{LONG_URL}/releases/backbone.pth" in squeezed(out)
