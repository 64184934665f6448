"""`ferbench synth` never silently replaces a drawn dataset that runs may have been trained on."""

import json
from tests.conftest import cli



def test_synth_with_other_settings_is_refused_unless_overwrite(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FERBENCH_DATA_ROOT", str(tmp_path))
    assert cli("synth", "--images-per-class", "4", "--size", "32") == 0
    manifest = tmp_path / "synthetic" / "synth.json"
    drawn = manifest.read_text()
    assert cli("synth", "--images-per-class", "4", "--size", "32") == 0  # the same settings: nothing to do
    capsys.readouterr()
    assert cli("synth", "--images-per-class", "5", "--size", "32") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "already holds a dataset drawn with 4 images per class, 32 px, seed 0" in err
    assert "not 5 images per class, 32 px, seed 0" in err and "--overwrite" in err
    assert manifest.read_text() == drawn
    assert cli("synth", "--images-per-class", "5", "--size", "32", "--overwrite") == 0
    assert json.loads(manifest.read_text())["images_per_class"] == 5


def test_synth_video_with_other_settings_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FERBENCH_DATA_ROOT", str(tmp_path))
    tiny = ("--video", "--clips-per-class", "5", "--frames", "8", "--size", "16")
    assert cli("synth", *tiny) == 0
    capsys.readouterr()
    assert cli("synth", *tiny[:-1], "24") == 2
    assert "5 clips per class of 8-8 frames, 16 px" in " ".join(capsys.readouterr().err.split())
