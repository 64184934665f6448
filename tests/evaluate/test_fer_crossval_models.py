"""FER-crossval checkpoints of all seven models load into ferbench's adapter models (tests/evaluate/
fer_crossval_models.py builds both, on the meta device where possible), and the arguments that helper builds
FER-crossval's networks with are the ones the scripts use, read from vendor/fer-crossval at test time."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import pytest

from harness import config
from harness.data import fer_crossval
from tests.conftest import REPO, child_env
from tests.evaluate.fer_crossval_models import SAVED, saved_key
from tests.evaluate.test_fer_crossval_classes import PAIRS, IDS, VENDOR, _argparse_defaults, needs_vendor


@pytest.mark.slow
@needs_vendor
def test_every_fer_crossval_checkpoint_loads_into_ferbenchs_model():
    models = sorted(fer_crossval.MODELS)
    for upstream in {config.load().model(m).upstream for m in models}:
        if not (REPO / "vendor" / upstream).is_dir():
            pytest.skip(f"vendor/{upstream} is not fetched (run `ferbench fetch {upstream}`)")
    env = dict(child_env(), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("FERBENCH_CONFIG", None)
    done = subprocess.run([sys.executable, "-m", "tests.evaluate.fer_crossval_models", *models], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert sorted((r["model"], r["trained_on"]) for r in results) == sorted(PAIRS)
    for result in results:
        assert result["error"] == "" and result["same_tensors"], result
        assert result["wrappings"] == ["DataParallel", "plain"]


def _saved_keys(tree: ast.Module) -> set[str]:
    """Keys of the dict literals that hold `model.state_dict()` (what torch.save or save_checkpoint gets)."""
    keys = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and isinstance(value, ast.Call) and \
                        getattr(value.func, "attr", "") == "state_dict" and getattr(value.func.value, "id", "") == "model":
                    keys.add(key.value)
    return keys


@needs_vendor
@pytest.mark.parametrize("model,dataset", PAIRS, ids=IDS)
def test_the_helper_builds_and_saves_as_the_script_does(model, dataset):
    path = VENDOR / fer_crossval.script(model, dataset)
    text = path.read_text()
    tree = ast.parse(text)
    assert _saved_keys(tree) == {saved_key(model, dataset)}, "the container key the weights are saved under"
    assert path.parent.name == SAVED[model][0]
    defaults = _argparse_defaults(tree)
    if model == "dan":
        assert defaults["num_head"] == 4
    if model == "ddamfn":
        assert defaults["num_head"] == 2 and "DDAMNet(num_class=" in text
    if model == "poster":
        assert defaults["modeltype"] == "large" and "type=args.modeltype" in text
    if model == "posterpp":
        entry = "PosterV2_8cls" if dataset == "ferplus" else "PosterV2_7cls"
        assert re.search(rf"^from models\.{entry} import pyramid_trans_expr2", text, re.M)
    if model == "lnsunet":
        assert "SwinTransformer(num_classes=512)" in text and "swin_num_features=768" in text
    if model == "gsdnet":
        assert "GSDNet(num_class=args.num_class)" in text
    if model == "adadf":
        assert "create_model(args.num_classes, args.drop_rate)" in text
