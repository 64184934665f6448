import dataclasses
import hashlib
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
    for change in ({"seed": 2}, {"recipe": {**SPEC.recipe, "epochs": 2}}, {"upstream_commit": "f" * 40}, {"splits": "official-val0.1-fedcba9876543210"}, {"aligned": "aligned_112-0123456789abcdef"},
                   {"augment_on": "device"}, {"upstream_diff": "d" * 64}):
        assert dataclasses.replace(SPEC, **change).run_id != SPEC.run_id


def test_round_trip():
    assert RunSpec.from_dict(SPEC.to_dict()) == SPEC


def test_fields_added_later_keep_the_ids_of_older_stores_at_their_defaults():
    """A store written before `upstream_diff` and `augment_on` existed keeps its run ids."""
    older = {k: v for k, v in dataclasses.asdict(SPEC).items() if k not in ("upstream_diff", "augment_on")}
    canonical = json.dumps(older, sort_keys=True, separators=(",", ":"))
    assert SPEC.run_id == hashlib.sha256(canonical.encode()).hexdigest()[:16]


def test_device_augmented_runs_are_a_report_column_of_their_own():
    from harness.report.aggregate import _model_label

    config = dataclasses.asdict(SPEC)
    assert _model_label(config) == "baseline"
    assert _model_label(dict(config, augment_on="device")) == "baseline (device augment)"
    assert _model_label(dict(config, augment_on="device", selection="final")) == "baseline (final, device augment)"
