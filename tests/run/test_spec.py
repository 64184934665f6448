import dataclasses
import json
import subprocess
import sys

from harness.run.spec import RunSpec
from tests.conftest import child_env

SPEC = RunSpec(
    model="baseline", dataset="synthetic", protocol="official", splits="official-val0.1-0123456789abcdef", aligned=None, fold=0, repeat=1, seed=1,
    classes=("a", "b"), input_size=32, recipe={"epochs": 1, "lr": 0.001, "optimizer": "adam"},
    pretrained=False, val_fraction=0.1, selection="val_balanced_accuracy", upstream=None, upstream_commit=None,
)


def test_run_id_is_stable_across_processes():
    code = (
        "import json,sys; from harness.run.spec import RunSpec; "
        "print(RunSpec.from_dict(json.loads(sys.argv[1])).run_id)"
    )
    ids = {
        subprocess.run(
            [sys.executable, "-c", code, json.dumps(SPEC.to_dict())], capture_output=True, text=True,
            env=dict(child_env(), PYTHONHASHSEED=str(seed)), check=True,
        ).stdout.strip()
        for seed in (1, 2)
    }
    assert ids == {SPEC.run_id}
    assert len(SPEC.run_id) == 16


def test_run_id_ignores_key_order_but_not_values():
    reordered = dataclasses.replace(SPEC, recipe={"optimizer": "adam", "lr": 0.001, "epochs": 1})
    assert reordered.run_id == SPEC.run_id
    for change in ({"seed": 2}, {"recipe": {**SPEC.recipe, "epochs": 2}}, {"upstream_commit": "f" * 40}, {"splits": "official-val0.1-fedcba9876543210"}, {"aligned": "aligned_112-0123456789abcdef"}):
        assert dataclasses.replace(SPEC, **change).run_id != SPEC.run_id


def test_round_trip():
    assert RunSpec.from_dict(SPEC.to_dict()) == SPEC
