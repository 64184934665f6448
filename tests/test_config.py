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


def test_dataset_recipes_override_a_models_recipe_on_one_dataset_and_are_validated():
    from harness.run.optim import lr_factor
    from tests.conftest import TINY_TOML

    cfg = config.load()
    for name in ("vgg19", "resnet18"):
        model = cfg.model(name)
        fer, ck = cfg.recipe(model, dataset="fer2013"), cfg.recipe(model, dataset="ckplus")
        assert (fer.epochs, fer.lr, fer.batch_size, fer.grad_clamp, fer.momentum, fer.weight_decay) == (250, 0.01, 128, 0.1, 0.9, 5e-4)
        assert ck == model.recipe and ck.epochs == 60
        for epoch in range(250):  # mainpro_FER.py: lr * 0.9 ** ((epoch - 80) // 5) once epoch > 80 (0-based)
            expected = 0.9 ** ((epoch - 80) // 5) if epoch > 80 else 1.0
            assert lr_factor(fer, epoch) == pytest.approx(expected)
    extra = TINY_TOML.replace("[datasets.synthetic]", "[models.baseline.dataset_recipes.{0}]\n{1}\n\n[datasets.synthetic]")
    assert config.parse(extra.format("synthetic", "epochs = 5")).model("baseline").recipe_for("synthetic").epochs == 5
    for dataset, body, words in (
        ("rafdb", "epochs = 5", "models.baseline.dataset_recipes.rafdb: unknown dataset"),
        ("synthetic", "epochs = 0", "dataset_recipes.synthetic.epochs"),
        ("synthetic", "epochs = 100000", "dataset_recipes.synthetic.epochs"),
        ("synthetic", "nesterov = true", "nesterov: unknown key"),
    ):
        with pytest.raises(FerbenchError, match=words):
            config.parse(extra.format(dataset, body))


def test_models_can_state_what_of_their_paper_setting_cannot_be_reproduced():
    cfg = config.load()
    assert [flag.what for flag in cfg.model("mfer").not_reproducible] == [
        "MS-Celeb-1M pretraining of the ConvNeXt-B backbone", "the DSF feature loss"]
    assert "RAF_model.pth" in cfg.model("gsdnet").not_reproducible[0].why
    with pytest.raises(FerbenchError, match="not_reproducible.0.why"):
        config.parse('[models.m]\nadapter = "baseline"\ninput_size = 32\n[models.m.recipe]\noptimizer = "adam"\n'
                     'lr = 1e-3\nepochs = 1\nbatch_size = 8\n[[models.m.not_reproducible]]\nwhat = "x"\n')
