"""The class order declared for every FER-crossval checkpoint (benchmark.toml `[[checkpoints]]`, format
`fer-crossval`) against the script that trained it, read from vendor/fer-crossval at test time.

Each script's own lines build its first iteration's training loader (a backward slice from `train_loader`,
tests/upstream_lines.py) over generated label files in FER-crossval's layouts (tests/data/fer_crossval_fakes.py,
every class present). Every label the model would be trained with must, through the declared order, name the
class ferbench reads for the same image from the same label file (harness/data/vocabulary.py). Also checked: the
number of outputs every model construction in the script asks for, the class-name lists some scripts keep for
their plots, and that `source` cites a label-reading line of the right script. Nothing from the upstream is
copied here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from harness import config
from harness.data import fer_crossval
from harness.data.table import load_table
from tests.conftest import REPO
from tests.data.fer_crossval_fakes import write_all
from tests.upstream_lines import run_splits

VENDOR = REPO / "vendor" / "fer-crossval"
PAIRS = [(model, dataset) for model in fer_crossval.MODELS for dataset in fer_crossval.LAYOUTS]
IDS = [f"{m}-{d}" for m, d in PAIRS]

needs_vendor = pytest.mark.skipif(
    not VENDOR.is_dir(), reason="vendor/fer-crossval is not fetched (run `ferbench fetch fer-crossval`)"
)

CONSTRUCTORS = {  # ferbench model → (the call that builds it in FER-crossval's scripts, its class-count argument)
    "adadf": ("create_model", "num_classes"), "dan": ("DAN", "num_class"), "ddamfn": ("DDAMNet", "num_class"),
    "gsdnet": ("GSDNet", "num_class"), "lnsunet": ("SwinTransFER", "num_classes"),
    "poster": ("pyramid_trans_expr", "num_classes"), "posterpp": ("pyramid_trans_expr2", "num_classes"),
}
NO_LOADER = {
    ("adadf", "rafdb"): "calls get_dataloaders, defined nowhere in FER-crossval (and `logger`): its pooled "
                        "`labels` line, the script's only label line, is checked instead",
}
NAMES = {  # the spellings of the scripts' plot labels (POSTER's labels_name, DDAMFN's class_names)
    "an": "anger", "angry": "anger", "anger": "anger", "co": "contempt", "contempt": "contempt",
    "di": "disgust", "disgust": "disgust", "fe": "fear", "fear": "fear", "ha": "happy", "happy": "happy",
    "happiness": "happy", "sa": "sad", "sad": "sad", "sadness": "sad", "su": "surprise", "surprise": "surprise",
    "ne": "neutral", "neutral": "neutral",
}
UNUSED_NAMES = {
    ("ddamfn", "rafdb"): "class_names lists neutral first but is never used (the plot call is commented out)",
}


def declared(model: str, dataset: str):
    entries = [c for c in config.load().checkpoints
               if c.model == model and c.trained_on == dataset and c.format == "fer-crossval"]
    assert len(entries) == 1, f"{len(entries)} fer-crossval [[checkpoints]] entries for {model} on {dataset}"
    return entries[0]


def script(model: str, dataset: str) -> Path:
    return VENDOR / fer_crossval.script(model, dataset)


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    return write_all(tmp_path_factory.mktemp)


def ferbench_labels(root: Path, dataset: str) -> list[str]:
    """The canonical class of each pooled row, as ferbench reads FER-crossval's label file."""
    cfg = config.load().dataset(dataset)
    table = load_table(root, cfg.model_copy(update={"layouts": (fer_crossval.LAYOUTS[dataset],)}))
    return table["label"].tolist()


@needs_vendor
@pytest.mark.filterwarnings("ignore:This DataLoader will create")  # the scripts' num_workers; nothing iterates
@pytest.mark.parametrize("model,dataset", PAIRS, ids=IDS)
def test_training_labels_name_the_declared_classes(roots, model, dataset):
    classes = declared(model, dataset).classes
    truth = ferbench_labels(roots[dataset], dataset)
    if (model, dataset) in NO_LOADER:
        ((labels,),) = run_splits(script(model, dataset), roots[dataset], produced=("labels",), first_only=True)
        assert [classes[int(label)] for label in labels] == truth
        return
    ((loader,),) = run_splits(script(model, dataset), roots[dataset], produced=("train_loader",), first_only=True)
    rows = fer_crossval.draw(len(truth), fer_crossval.variant(model, dataset))[0][0]
    assert len(loader.dataset) == len(rows)
    seen = set()
    for position, row in enumerate(rows):
        label = int(loader.dataset[position][1])
        assert 0 <= label < len(classes), f"training label {label} for {len(classes)} declared classes"
        assert classes[label] == truth[row], f"training sample {position} (row {row}): label {label}"
        seen.add(truth[row])
        if seen == set(truth) and position >= 20:
            break
    assert seen == set(truth), "the generated training split must hold every class"


def _argparse_defaults(tree: ast.Module) -> dict[str, object]:
    defaults = {}
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, "attr", "") == "add_argument" and call.args:
            default = next((k.value for k in call.keywords if k.arg == "default"), None)
            if isinstance(call.args[0], ast.Constant) and isinstance(default, ast.Constant):
                defaults[call.args[0].value.lstrip("-")] = default.value
    return defaults


def _parameter_default(folder: Path, callee: str, parameter: str) -> object:
    """The default of `parameter` in the definition of `callee` among the script folder's model files."""
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(errors="replace"))):
            function = node if isinstance(node, ast.FunctionDef) and node.name == callee else None
            if isinstance(node, ast.ClassDef) and node.name == callee:
                function = next((f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
            if function is not None:
                names = [a.arg for a in function.args.args]
                defaults = dict(zip(names[len(names) - len(function.args.defaults):], function.args.defaults))
                return ast.literal_eval(defaults[parameter])
    raise AssertionError(f"no definition of {callee} under {folder}")


@needs_vendor
@pytest.mark.parametrize("model,dataset", PAIRS, ids=IDS)
def test_every_model_construction_has_as_many_outputs_as_declared_classes(roots, model, dataset):
    path = script(model, dataset)
    tree = ast.parse(path.read_text())
    callee, parameter = CONSTRUCTORS[model]
    calls = [c for c in ast.walk(tree) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id == callee]
    assert calls, f"{path.name} never calls {callee}"
    counts = set()
    for call in calls:
        argument = next((k.value for k in call.keywords if k.arg == parameter), call.args[0] if call.args else None)
        if argument is None:
            counts.add(_parameter_default(path.parent, callee, parameter))
        elif isinstance(argument, ast.Constant):
            counts.add(argument.value)
        elif isinstance(argument, ast.Attribute) and getattr(argument.value, "id", "") == "args":
            counts.add(_argparse_defaults(tree)[argument.attr])
        else:  # a name the script computes (DAN: the label file's distinct labels; POSTER: get_datasets)
            ((value,),) = run_splits(path, roots[dataset], produced=(argument.id,), first_only=True)
            counts.add(int(value))
    assert counts == {len(declared(model, dataset).classes)}, f"{callee}(...) in {path.name}"


def _plot_names(tree: ast.Module) -> tuple[int, list[str]] | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") in ("labels_name", "class_names") for t in node.targets):
            if isinstance(node.value, ast.List) and all(isinstance(e, ast.Constant) for e in node.value.elts):
                return node.lineno, [NAMES[e.value.lower()] for e in node.value.elts]
    return None


NAMED = [(m, d) for m, d in PAIRS if m in ("poster", "ddamfn")]  # the scripts that name their classes


@needs_vendor
@pytest.mark.parametrize("model,dataset", NAMED, ids=[f"{m}-{d}" for m, d in NAMED])
def test_the_scripts_own_class_names_agree(model, dataset):
    found = _plot_names(ast.parse(script(model, dataset).read_text()))
    assert found is not None, f"{fer_crossval.script(model, dataset)} no longer names its classes"
    line, names = found
    if (model, dataset) in UNUSED_NAMES:
        assert tuple(names) != declared(model, dataset).classes, f"line {line}: {UNUSED_NAMES[model, dataset]}"
    else:
        assert tuple(names) == declared(model, dataset).classes, f"{fer_crossval.script(model, dataset)}:{line}"


@needs_vendor
@pytest.mark.parametrize("model,dataset", PAIRS, ids=IDS)
def test_source_cites_a_label_line_of_the_script(model, dataset):
    entry = declared(model, dataset)
    cited = re.match(r"StevenHSKim/FER-crossval (\S+?):(\d+): ", entry.source)
    assert cited and cited[1] == fer_crossval.script(model, dataset), entry.source
    line = script(model, dataset).read_text().splitlines()[int(cited[2]) - 1]
    assert re.search(r"label|emotion", line), f"{cited[1]}:{cited[2]} is `{line.strip()}`"


def test_every_fer_crossval_checkpoint_entry_is_one_of_the_42_scripts():
    entries = [(c.model, c.trained_on) for c in config.load().checkpoints if c.format == "fer-crossval"]
    assert sorted(entries) == sorted(PAIRS)


COLOUR = [(model, dataset) for model, dataset in PAIRS if dataset in ("rafdb", "sfew", "expw")]


@needs_vendor
@pytest.mark.parametrize("model,dataset", COLOUR, ids=[f"{m}-{d}" for m, d in COLOUR])
def test_swap_channels_is_declared_where_the_script_saw_the_other_channel_order(model, dataset):
    """cv2.imread without a BGR→RGB conversion feeds BGR; PIL's convert('RGB') RGB. ferbench's adapter feeds BGR
    where its module says so (POSTER, as POSTER's own dataset_raf.py), RGB otherwise."""
    import importlib

    if (model, dataset) in NO_LOADER:
        pytest.skip(NO_LOADER[(model, dataset)])
    text = script(model, dataset).read_text()
    reads = "cv2.imread(" in text and "BGR2RGB" not in text
    assert reads or "convert('RGB')" in text or "BGR2RGB" in text, "the script's channel order is not recognised"
    adapter = importlib.import_module(f"adapters.{config.load().model(model).adapter}")
    assert declared(model, dataset).swap_channels == (reads != getattr(adapter, "BGR", False))
