import hashlib
import json
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from harness import weights
from harness.config import WeightFile, parse
from harness.errors import FerbenchError
from tests.conftest import TINY_TOML, child_env, ferbench_argv
from tests.weight_files import python2_pickle

URL = "https://example.org/tiny.pth"


def tiny(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))


def record(path, name=None) -> WeightFile:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return WeightFile(name=name or path.name, sha256=digest, url=URL, initialises="the tiny backbone")


@pytest.fixture
def saved(tmp_path):
    """weights dir holding tiny.pth (a plain state dict) and its WeightFile record."""
    path = tmp_path / "tiny.pth"
    torch.save(tiny().state_dict(), path)
    return path, record(path)


class Meter:
    """Stands in for the training-log objects some released checkpoints pickle (POSTER_V2's RecorderMeter)."""


def test_present_file_is_located_and_verified(saved):
    path, weight = saved
    assert weights.locate(weight, path.parent, "tinynet") == path
    weights.verify(weight, path, "tinynet")
    assert weights.status(weight, path.parent) == weights.VERIFIED


def test_missing_file_says_where_to_put_it_and_where_to_get_it(tmp_path, saved):
    _, weight = saved
    empty = tmp_path / "elsewhere"
    with pytest.raises(FerbenchError) as caught:
        weights.locate(weight, empty, "tinynet")
    message = str(caught.value)
    assert message.startswith(f"{empty / 'tiny.pth'}: pretrained weights for tinynet (the tiny backbone) not found")
    assert URL in message and f"into {empty}/" in message and "--no-pretrained" in message
    assert "\n" not in message and caught.value.exit_code == 1
    assert weights.status(weight, empty) == "missing"


def test_checksum_mismatch_is_an_error(saved):
    path, weight = saved
    wrong = weight.model_copy(update={"sha256": "0" * 64})
    with pytest.raises(FerbenchError) as caught:
        weights.verify(wrong, path, "tinynet")
    message = str(caught.value)
    assert message.startswith(f"{path}: sha256 {weight.sha256[:12]}… does not match the 000000000000…")
    assert "models.tinynet.pretrained" in message and URL in message
    assert weights.status(wrong, path.parent) == "checksum mismatch"


def test_require_checks_every_declared_file(saved):
    path, weight = saved
    model = parse(TINY_TOML).model("baseline").model_copy(update={"pretrained": (weight,)})
    assert weights.require(model, path.parent) == {"tiny.pth": path}
    broken = model.model_copy(update={"pretrained": (weight, weight.model_copy(update={"name": "gone.pth"}))})
    with pytest.raises(FerbenchError, match="gone.pth: pretrained weights for baseline"):
        weights.require(broken, path.parent)


def test_hash_cache_is_reused_and_never_vouches_for_a_changed_file(saved, monkeypatch):
    path, weight = saved
    hashed = []
    digest = weights._digest
    monkeypatch.setattr(weights, "_digest", lambda p: hashed.append(p) or digest(p))
    assert weights.sha256_file(path) == weight.sha256
    assert weights.sha256_file(path) == weight.sha256
    assert len(hashed) == 1 and (path.parent / weights.CACHE_NAME).is_file()

    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    assert weights.sha256_file(path) == hashlib.sha256(data).hexdigest() != weight.sha256
    assert len(hashed) == 2
    assert weights.status(weight, path.parent) == "checksum mismatch"


def test_a_corrupt_cache_is_ignored(saved):
    path, weight = saved
    (path.parent / weights.CACHE_NAME).write_text("{not json")
    assert weights.sha256_file(path) == weight.sha256


NUMPY_GLOBALS = ("numpy.core.multiarray._reconstruct", "numpy.ndarray", "numpy.dtype")


def test_plain_state_dict_loads_with_no_declared_globals(saved):
    path, _ = saved
    state = weights.load_state(path)
    assert set(state) == set(tiny().state_dict())


@pytest.mark.parametrize("content", [tiny(), {"state_dict": tiny().state_dict(), "recorder": Meter()}], ids=["module", "object"])
def test_an_undeclared_global_is_refused_by_name(tmp_path, content):
    path = tmp_path / "whole.pth"
    torch.save(content, path)
    with pytest.raises(FerbenchError) as caught:
        weights.load_state(path, NUMPY_GLOBALS)
    message = str(caught.value)
    needed = "torch.nn.modules.container.Sequential" if isinstance(content, nn.Module) else "tests.test_weights.Meter"
    assert message.startswith(f"{path}: refused: the file needs the global {needed}, which benchmark.toml does not allow")
    assert "\n" not in message


def test_a_pickled_module_loads_with_its_classes_declared(tmp_path):
    path = tmp_path / "whole.pth"
    torch.save(tiny(), path)
    classes = ("torch.nn.modules.container.Sequential", "torch.nn.modules.conv.Conv2d", "torch.nn.modules.batchnorm.BatchNorm2d",
               "torch.nn.modules.flatten.Flatten", "torch.nn.modules.linear.Linear")
    loaded = weights.load_state(path, classes)
    assert isinstance(loaded, nn.Sequential) and torch.equal(loaded[0].weight, tiny()[0].weight)


def test_python2_pickle_of_numpy_arrays_loads_with_numpy_globals_only(tmp_path):
    array = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5
    path = tmp_path / "vgg_msceleb_resnet50_ft_weight.pkl"
    path.write_bytes(python2_pickle({"fc.weight": array}))
    with pytest.raises(UnicodeDecodeError):
        pickle.loads(path.read_bytes())
    with pytest.raises(FerbenchError, match="needs the global numpy.core.multiarray._reconstruct"):
        weights.load_state(path)
    loaded = weights.load_state(path, NUMPY_GLOBALS)
    np.testing.assert_array_equal(loaded["fc.weight"], array)
    head = nn.ModuleDict({"fc": nn.Linear(3, 2, bias=False)})
    assert weights.load_into(head, loaded, what="vgg head") == 1
    assert torch.equal(head["fc"].weight, torch.from_numpy(array))


class WritesAFile:
    """A weight file's payload that, unpickled by a full unpickler, creates `target`."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (exec, (f"open({self.target!r}, 'w').write('pwned')",))


def _malicious(path, target, kind: str) -> None:
    if kind == "bare":  # GSDNet's format: a Python-2 pickle of numpy arrays
        path.write_bytes(python2_pickle({"hook": WritesAFile(target), "fc.weight": np.zeros((2, 3), np.float32)}))
    else:
        payload = {"hook": WritesAFile(target), "state_dict": tiny().state_dict()}
        torch.save(payload, path, _use_new_zipfile_serialization=kind == "zip")


DDAMFN_LIKE = NUMPY_GLOBALS + ("torch.nn.modules.conv.Conv2d", "torch.nn.modules.container.Sequential")


@pytest.mark.parametrize("kind", ["zip", "legacy", "bare"])
@pytest.mark.parametrize("allowed", [(), NUMPY_GLOBALS, DDAMFN_LIKE], ids=["none", "gsdnet", "ddamfn"])
def test_a_malicious_pickle_is_refused_and_runs_nothing(tmp_path, kind, allowed):
    path, target = tmp_path / "evil.pth", tmp_path / "pwned.txt"
    _malicious(path, target, kind)
    with pytest.raises(FerbenchError) as caught:
        weights.load_state(path, allowed)
    assert re.search(r"needs the global (builtins|__builtin__)\.exec, which", str(caught.value)), caught.value
    assert not target.exists()


def test_no_flag_bypasses_the_allowlist(workspace):
    done = subprocess.run(ferbench_argv("run", "--model", "baseline", "--trust-pickle"), capture_output=True, text=True,
                          env=child_env(), cwd=workspace)
    assert done.returncode == 2 and "No such option: --trust-pickle" in done.stderr


def test_unreadable_file_is_one_line(tmp_path):
    path = tmp_path / "truncated.pth"
    torch.save(tiny().state_dict(), path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(FerbenchError, match=r"truncated.pth: cannot be read as a weight file") as caught:
        weights.load_state(path)
    assert "\n" not in str(caught.value)


def test_random_bytes_are_not_a_weight_file(tmp_path):
    path = tmp_path / "noise.pth"
    path.write_bytes(np.random.default_rng(0).integers(1, 255, 5000, dtype=np.uint8).tobytes())
    unpinned = WeightFile(name="noise.pth", url=URL)
    assert weights.status(unpinned, tmp_path) == "not a weight file"
    with pytest.raises(FerbenchError, match="not a weight file"):
        weights.load_state(path)


def test_strict_load_copies_every_tensor():
    source, target = tiny(0), tiny(1)
    state = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert weights.load_into(target, state, what="tiny") == len(state)
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value)


@pytest.mark.parametrize(
    "edit, shown",
    [
        (lambda s: s.pop("3.weight"), "not in the file: 3.weight"),
        (lambda s: s.update(extra=torch.zeros(1)), "not in the module: extra"),
        (lambda s: s.update({"0.weight": torch.zeros(4, 3, 5, 5)}), "shape of 0.weight: file (4, 3, 5, 5), module (4, 3, 3, 3)"),
    ],
    ids=["missing", "unexpected", "shape"],
)
def test_strict_partial_load_is_an_error(edit, shown):
    state = dict(tiny().state_dict())
    edit(state)
    target = tiny()
    with pytest.raises(FerbenchError) as caught:
        weights.load_into(target, state, what="tiny.pth → backbone")
    message = str(caught.value)
    assert message.startswith("tiny.pth → backbone: partial load") and shown in message
    assert "not a silent random init" in message and "\n" not in message


def test_lenient_load_must_match_the_expected_count():
    source = tiny().state_dict()
    renamed = {("body." + k if k.startswith("0.") else k): v for k, v in source.items()}
    target = tiny(1)
    expected = len(source)
    with pytest.raises(FerbenchError) as caught:
        weights.load_into(target, renamed, what="ir50.pth → ir_back", expected=expected)
    assert str(caught.value).startswith(
        f"ir50.pth → ir_back: partial load, {expected - 2} tensors match by name and shape, {expected} expected; "
        "not in the file: 0.bias, 0.weight; not in the module: body.0.bias, body.0.weight"
    )
    extra = {**source, "output_layer.weight": torch.zeros(9)}
    assert weights.load_into(target, extra, what="ir50.pth → ir_back", expected=expected) == expected
    assert all(torch.equal(target.state_dict()[k], v) for k, v in source.items())


def test_state_must_be_a_mapping_of_tensors():
    with pytest.raises(FerbenchError, match="expected a state dict"):
        weights.load_into(tiny(), tiny(), what="whole module")
    with pytest.raises(FerbenchError, match="entry 'epoch' is a int, not a tensor"):
        weights.load_into(tiny(), {"epoch": 3}, what="checkpoint")


LISTING = """
import json
import sys
from pathlib import Path
from harness import config, weights
rows = weights.rows(config.load(Path(sys.argv[1])), Path(sys.argv[2]))
print(json.dumps(rows))
print("TORCH", "torch" in sys.modules)
"""


def test_rows_list_every_file_without_importing_torch(tmp_path, saved):
    path, weight = saved
    toml = TINY_TOML.replace(
        'input_size = 32\n',
        'input_size = 32\n'
        f'pretrained = [{{ name = "tiny.pth", sha256 = "{weight.sha256}", url = "{URL}", initialises = "backbone" }},'
        f' {{ name = "gone.pth", sha256 = "{"1" * 64}", url = "{URL}" }},'
        f' {{ name = "tiny.pth", sha256 = "{"2" * 64}", url = "{URL}" }}]\n',
    )
    (tmp_path / "benchmark.toml").write_text(toml)
    out = subprocess.run(
        [sys.executable, "-c", LISTING, str(tmp_path / "benchmark.toml"), str(path.parent)],
        capture_output=True, text=True, env=child_env(), check=True,
    )
    assert "TORCH False" in out.stdout
    assert json.loads(out.stdout.splitlines()[0]) == [
        ["baseline", "tiny.pth", "backbone", weights.VERIFIED, URL],
        ["baseline", "gone.pth", "", "missing", URL],
        ["baseline", "tiny.pth", "", "checksum mismatch", URL],
    ]


def test_weights_command_lists_status_and_fails_while_any_file_is_unusable(workspace, saved, monkeypatch):
    path, weight = saved
    toml = workspace / "benchmark.toml"
    declared = f'{{ name = "tiny.pth", sha256 = "{weight.sha256}", url = "{URL}", initialises = "backbone" }}'
    monkeypatch.setenv("FERBENCH_WEIGHTS_DIR", str(path.parent))
    run = lambda: subprocess.run(ferbench_argv("weights"), capture_output=True, text=True, env=child_env(), cwd=workspace)

    toml.write_text(TINY_TOML.replace("input_size = 32\n", f"input_size = 32\npretrained = [{declared}]\n"))
    done = run()
    assert done.returncode == 0, done.stderr
    assert "tiny.pth" in done.stdout and "verified" in done.stdout

    missing = f'{{ name = "gone.pth", sha256 = "{"1" * 64}", url = "{URL}" }}'
    toml.write_text(TINY_TOML.replace("input_size = 32\n", f"input_size = 32\npretrained = [{declared}, {missing}]\n"))
    done = run()
    assert done.returncode == 1
    assert "gone.pth" in done.stdout and "missing" in done.stdout and "--no-pretrained" in done.stderr


def test_an_unpinned_file_is_pinned_by_its_first_use(saved):
    path, weight = saved
    unpinned = weight.model_copy(update={"sha256": None})
    assert weights.status(unpinned, path.parent) == "present, not verified (no sha256 in benchmark.toml)"
    weights.verify(unpinned, path, "tinynet")
    assert json.loads((path.parent / weights.FIRST_SEEN_NAME).read_text()) == {"tiny.pth": weight.sha256}
    assert weights.status(unpinned, path.parent) == "present, not verified (no sha256 in benchmark.toml)"
    torch.save(tiny(seed=1).state_dict(), path)
    with pytest.raises(FerbenchError, match="recorded when it was first used"):
        weights.verify(unpinned, path, "tinynet")
    assert weights.status(unpinned, path.parent) == "changed since its first use"


def test_zero_dimensional_numpy_entries_keep_their_shape():
    module = nn.BatchNorm1d(2)
    state = {k: v.numpy() for k, v in module.state_dict().items()}
    assert weights.load_into(module, state, what="bn") == 5  # weight, bias, running mean and var, and the 0-d counter


def test_run_names_every_unpinned_file_it_will_load(saved):
    path, weight = saved
    model = parse(TINY_TOML).model("baseline")
    unpinned = weight.model_copy(update={"sha256": None, "name": "other.pth"})
    model = model.model_copy(update={"pretrained": (weight, unpinned)})
    assert weights.unverified([model, model], path.parent) == [
        f"{path.parent / 'other.pth'}: present, not verified (no sha256 in benchmark.toml)"
    ]
    assert weights.verification(model) == {"tiny.pth": "verified", "other.pth": "not verified (no sha256 in benchmark.toml)"}


def test_a_read_only_weights_folder_with_an_unpinned_file_still_runs(saved, monkeypatch, capsys):
    import errno

    from harness import files

    path, weight = saved
    unpinned = weight.model_copy(update={"sha256": None})

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(path.parent))

    monkeypatch.setattr(files.tempfile, "mkstemp", read_only)
    weights.verify(unpinned, path, "tinynet")
    warning = capsys.readouterr().err.strip()
    assert warning == f"warning: {path.parent}: read-only file system; the first-use sha256 of tiny.pth is not recorded"
    assert weights.status(unpinned, path.parent) == weights.UNVERIFIED
