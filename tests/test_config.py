import pytest

from harness import config
from harness.cli import main
from harness.errors import FerbenchError
from tests.conftest import TINY_TOML


def test_repository_registry_loads():
    cfg = config.load()
    assert "baseline" in cfg.models and "synthetic" in cfg.datasets
    assert len(cfg.upstreams) == 13
    reference = cfg.upstreams["fer-crossval"]
    assert reference.purpose and not any(m.upstream == "fer-crossval" for m in cfg.models.values())
    assert cfg.models["baseline"].recipe.epochs >= 1
    assert cfg.upstreams["dan"].name == "dan"


def _error(text: str) -> FerbenchError:
    with pytest.raises(FerbenchError) as info:
        config.parse(text, source="bench.toml")
    assert info.value.exit_code == 2
    assert "\n" not in str(info.value)
    return info.value


def test_unknown_key_names_its_path():
    err = _error(TINY_TOML.replace("lr = 1e-3", "lr = 1e-3\nlearning_rate = 3"))
    assert str(err).startswith("bench.toml: models.baseline.recipe.learning_rate: unknown key")


def test_wrong_type_names_its_path():
    err = _error(TINY_TOML.replace("epochs = 1", 'epochs = "many"'))
    assert "models.baseline.recipe.epochs" in str(err)


def test_value_out_of_range():
    err = _error(TINY_TOML.replace("val_fraction = 0.2", "val_fraction = 1.5"))
    assert "defaults.val_fraction" in str(err)


def test_unknown_upstream_reference():
    err = _error(TINY_TOML.replace('adapter = "baseline"', 'adapter = "baseline"\nupstream = "nope"'))
    assert "models.baseline.upstream: unknown upstream 'nope'" in str(err)


def test_missing_adapter_module():
    err = _error(TINY_TOML.replace('adapter = "baseline"', 'adapter = "no_such_adapter"'))
    assert "models.baseline.adapter: no module adapters/no_such_adapter.py" in str(err)


def test_toml_syntax_error_names_line():
    err = _error("[defaults]\nrepeats = = 3\n")
    assert "bench.toml: invalid TOML" in str(err) and "line 2" in str(err)


def test_bad_pin_rejected():
    err = _error('[upstreams.x]\nurl = "u"\ncommit = "abc"\nlicence = "MIT"\n')
    assert "upstreams.x.commit" in str(err)


def test_unknown_model_lists_valid_names():
    cfg = config.parse(TINY_TOML)
    with pytest.raises(FerbenchError, match=r"unknown model 'dan'; valid: baseline") as info:
        cfg.model("dan")
    assert info.value.exit_code == 2


def test_cli_reports_bad_registry_in_one_line(tmp_path, capsys):
    bad = tmp_path / "b.toml"
    bad.write_text(TINY_TOML.replace("batch_size = 8", "batch_size = 1"))
    with pytest.raises(SystemExit) as info:
        main(["--config", str(bad), "list"])
    assert info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "models.baseline.recipe.batch_size" in lines[0]


def test_cli_unknown_model_exit_2(workspace, capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--model", "nope", "--dataset", "synthetic"])
    assert info.value.code == 2
    assert "unknown model 'nope'; valid: baseline" in capsys.readouterr().err


def test_model_variant_must_exist_in_the_adapter_module():
    err = _error(TINY_TOML.replace('adapter = "baseline"', 'adapter = "baseline"\nvariant = "label-caption"'))
    assert "models.baseline.variant: adapters/baseline.py has no variant 'label-caption' (known: none)" in str(err)


def test_variants_display_names_and_label_input_of_the_repository_registry():
    from harness.config import adapter_variants

    cfg = config.load()
    assert adapter_variants("clivpfer") == ("label-caption", "every-caption")
    leaky = {name for name, model in cfg.models.items() if model.test_label_input}
    assert leaky == {"clivpfer-label-caption"}
    assert cfg.model("clivpfer-label-caption").label == "clivpfer (label caption)" and cfg.model("dan").label == "dan"


def test_a_display_name_names_one_model():
    other = '\n[models.other]\nadapter = "baseline"\ndisplay = "baseline"\ninput_size = 32\n[models.other.recipe]\noptimizer = "adam"\nlr = 1e-3\nepochs = 1\nbatch_size = 8\n'
    err = _error(TINY_TOML + other)
    assert "models.other.display: 'baseline' names another model too" in str(err)

