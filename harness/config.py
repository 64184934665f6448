"""`benchmark.toml` → frozen, validated records.

The registry is plain data: listing models or datasets never imports torch or vendored code.
Every problem is reported as `benchmark.toml: <key.path>: <reason>` so a user can find it.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.errors import FerbenchError

IDENTIFIER = re.compile(r"[a-z0-9][a-z0-9_-]*")
"""Registry names: they become path components (results/<dataset>/<model>/…, vendor/<upstream>)."""
MAX_EPOCHS = 10_000
"""Upper bound of any recipe's epochs and of `--epochs`: far above any published schedule (250), far below a typo."""
MAX_REPEATS = 100
"""Upper bound of `--repeats` and `defaults.repeats`: seeds per fold, or repeats of a single split."""

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "benchmark.toml"
ADAPTERS_DIR = Path(__file__).resolve().parent.parent / "adapters"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Upstream(_Record):
    url: str
    commit: str = Field(pattern=r"^[0-9a-f]{40}$")
    licence: str
    optional_paths: tuple[str, ...] = ()
    purpose: str = ""
    """For a reference upstream that no model drives: what ferbench reads from it (shown by `ferbench list`)."""
    name: str = ""


class Recipe(_Record):
    """Optimiser, schedule and budget of one model's training, as its authors ran it.

    Schedules are factors of `lr` (harness/run/optim.py): per epoch by default, or per optimizer step
    (`schedule_unit = "step"`, as timm's cosine in LNSU-Net), after an optional linear warm-up.
    """

    name: str = "upstream"
    optimizer: Literal["sgd", "adam", "adamw"]
    lr: float = Field(gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    schedule: Literal["constant", "cosine", "step", "exponential", "multistep"] = "constant"
    schedule_unit: Literal["epoch", "step"] = "epoch"
    step_size: int = Field(default=10, ge=1)
    gamma: float = Field(default=0.1, gt=0, le=1)
    milestones: tuple[int, ...] = ()
    decay_start: int = Field(default=0, ge=0)
    warmup_epochs: float = Field(default=0.0, ge=0)
    warmup_start: float = Field(default=0.0, ge=0, lt=1)
    """Fraction of `lr` the linear warm-up starts from: 0 as MAE-style `adjust_learning_rate` (CEPrompt),
    `warmup_lr_init / lr` for timm schedulers (LNSU-Net)."""
    cosine_after_warmup: bool = True
    """The cosine spans the epochs after the warm-up (MAE's `adjust_learning_rate`), or, False, the whole run with
    the warm-up overriding its start (timm's CosineLRScheduler without `warmup_prefix`: LNSU-Net)."""
    min_lr: float = Field(default=0.0, ge=0)
    epochs: int = Field(ge=1, le=MAX_EPOCHS)
    batch_size: int = Field(ge=2)
    sam_rho: float = Field(default=0.0, ge=0)
    grad_clip_norm: float | None = Field(default=None, gt=0)
    grad_clamp: float | None = Field(default=None, gt=0)
    patience: int | None = Field(default=None, ge=1)
    loss_scaling: bool = False
    """float16 loss scaling (GradScaler) on GPUs, for models that autocast to float16 inside their forward."""
    amp: bool = False
    """bfloat16 autocast and channels-last (`ferbench run --amp`): faster on GPUs, different numbers."""


class RecipeTemplate(_Record):
    """A shared recipe (`[recipes.unified]`) applied to every model; each model keeps its batch size
    unless the template sets one, and its own input size, augmentations and loss."""

    optimizer: Literal["sgd", "adam", "adamw"]
    lr: float = Field(gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    schedule: Literal["constant", "cosine", "step", "exponential", "multistep"] = "constant"
    epochs: int = Field(ge=1, le=MAX_EPOCHS)
    batch_size: int | None = Field(default=None, ge=2)
    patience: int | None = Field(default=None, ge=1)
    description: str = ""

    def for_model(self, name: str, base: Recipe) -> Recipe:
        fields = self.model_dump(exclude={"description", "batch_size"})
        return Recipe(name=name, batch_size=self.batch_size or base.batch_size, **fields)


class WeightFile(_Record):
    """A pretrained file. Without `sha256` the first file used is recorded and later ones must match it."""

    name: str
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    url: str
    initialises: str = ""
    globals: tuple[str, ...] = ()
    """`module.Name`s the file's pickle may reference beyond torch's tensor rebuilders (numpy arrays, the
    upstream's module classes); the weights-only unpickler refuses anything else."""


class RecipeOverride(_Record):
    """`[models.M.dataset_recipes.D]`: the fields of the model's recipe that differ on dataset D (the upstream
    ran another script there, e.g. WuJie1010's `mainpro_FER.py`); the merged recipe is validated as a whole."""

    optimizer: Literal["sgd", "adam", "adamw"] | None = None
    lr: float | None = None
    weight_decay: float | None = None
    momentum: float | None = None
    schedule: Literal["constant", "cosine", "step", "exponential", "multistep"] | None = None
    schedule_unit: Literal["epoch", "step"] | None = None
    step_size: int | None = None
    gamma: float | None = None
    milestones: tuple[int, ...] | None = None
    decay_start: int | None = None
    warmup_epochs: float | None = None
    warmup_start: float | None = None
    cosine_after_warmup: bool | None = None
    min_lr: float | None = None
    epochs: int | None = None
    batch_size: int | None = None
    sam_rho: float | None = None
    grad_clip_norm: float | None = None
    grad_clamp: float | None = None
    patience: int | None = None
    loss_scaling: bool | None = None
    source: str = ""
    """Where the values come from (the upstream script), for the reader of benchmark.toml."""

    def apply(self, base: Recipe) -> Recipe:
        changes = self.model_dump(exclude_unset=True, exclude={"source"})
        return Recipe.model_validate({**base.model_dump(), **changes})


class Irreproducible(_Record):
    """`[[models.M.not_reproducible]]`: a part of the paper's setting that cannot be reproduced, and why.
    The report prints it beside that model's published numbers."""

    what: str = Field(min_length=1)
    why: str = Field(min_length=1)


class Model(_Record):
    adapter: str
    description: str = ""
    upstream: str | None = None
    input_size: int = Field(ge=8)
    video: bool = False
    """Takes clips [B, T, 3, H, W] and trains only on video datasets (DFER-CLIP)."""
    recipe: Recipe
    stages: dict[str, Recipe] = {}
    """Recipes of later training stages, in order (CEPrompt's `cat`); the first stage uses `recipe`."""
    pretrained: tuple[WeightFile, ...] = ()
    variant: str = ""
    """One of the adapter module's `VARIANTS` (CLIVP-FER's label-caption and every-caption models); empty: `ADAPTER`."""
    display: str = ""
    """The model's column name in reports (`clivpfer (label caption)`); empty: the model's key."""
    test_label_input: bool = False
    """The model reads each evaluated sample's TRUE LABEL as an input (CLIVP-FER's published mode 1). Must match the
    adapter (the worker refuses a mismatch); reports name such a model and never rank it best."""
    dataset_recipes: dict[str, RecipeOverride] = {}
    """Per-dataset changes to `recipe`, by dataset name (the first stage only; later stages keep theirs)."""
    not_reproducible: tuple[Irreproducible, ...] = ()
    name: str = ""

    @property
    def label(self) -> str:
        return self.display or self.name

    @model_validator(mode="after")
    def _merged_recipes_valid(self) -> Model:
        for dataset, override in self.dataset_recipes.items():
            try:
                override.apply(self.recipe)
            except ValidationError as err:
                first = err.errors()[0]
                raise ValueError(f"dataset_recipes.{dataset}.{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        return self

    def recipe_for(self, dataset: str) -> Recipe:
        """The model's own recipe on `dataset`: its per-dataset override applied, if it has one."""
        override = self.dataset_recipes.get(dataset)
        return override.apply(self.recipe) if override else self.recipe


class Dataset(_Record):
    """A dataset: its classes (canonical names, in label order) and the on-disk layouts it accepts."""

    classes: tuple[str, ...] = Field(min_length=2)
    layouts: tuple[str, ...] = Field(min_length=1)
    protocol: str = "official"
    folds: int = Field(default=10, ge=2)
    video: bool = False
    description: str = ""
    name: str = ""


class Defaults(_Record):
    repeats: int = Field(default=3, ge=1, le=MAX_REPEATS)
    """Seeded repeats of a single-split protocol; fold protocols run every fold once per seed (default 1 seed)."""
    base_seed: int = Field(default=0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    val_fraction: float = Field(default=0.1, ge=0, lt=1)
    selection: Literal["val_accuracy", "val_balanced_accuracy", "val_loss"] = "val_balanced_accuracy"
    save_model: bool = False
    """Keep each run's selected weights as model.safetensors (`ferbench run --save-model`)."""
    checkpoint_interval: float = Field(default=60, ge=0)
    """Seconds between epoch checkpoints (`ferbench run --checkpoint-interval`); 0: after every epoch."""


REPORT_METRICS = ("accuracy", "balanced_accuracy", "macro_f1")
VIDEO_METRICS = {"uar": "balanced_accuracy", "war": "accuracy"}
"""Video papers report UAR (unweighted average recall = balanced accuracy) and WAR (weighted = accuracy)."""


class Published(_Record):
    """A headline number from a model's paper or README (`[[published]]`), shown beside the reproduced mean."""

    model: str = Field(min_length=1)
    dataset: str
    metric: Literal["accuracy", "balanced_accuracy", "macro_f1", "uar", "war", "pooled_accuracy"]
    """`pooled_accuracy`: correct over all test predictions of all folds (WuJie1010's CK+ figure), not a mean."""
    protocol: str = Field(min_length=1)
    """The split the paper used, in ferbench's protocol names where one fits (`official`), else free text."""
    selection: str = Field(min_length=1)
    """How the paper picked its epoch, e.g. `best test epoch`, `final epoch`, `validation`."""
    value: float = Field(gt=0, le=1)
    source: str = Field(min_length=1)
    note: str = ""
    training_share: float = Field(default=1.0, gt=0, le=1)
    """Share of the official training split the paper trained on (upstream scripts train on all of it)."""
    images: str = ""
    """The images the paper trained on, e.g. `aligned (MTCNN)`; empty: not recorded."""
    initialisation: str = ""
    """How the paper's network started, e.g. `MS-Celeb-1M pretrained`; empty: as the model record's weights say."""

    @property
    def measure(self) -> str:
        """The stored metric this number compares with (`uar` → balanced_accuracy, `war` → accuracy)."""
        return VIDEO_METRICS.get(self.metric, self.metric)


class Reference(_Record):
    """A published table of repeated runs (`[references.NAME]`): dataset → model → [mean, std] per metric."""

    protocol: str
    std: Literal["population", "sample"]
    source: str = Field(min_length=1)
    repeats: int | None = Field(default=None, ge=1)
    description: str = ""
    accuracy: dict[str, dict[str, tuple[float, float]]] = {}
    balanced_accuracy: dict[str, dict[str, tuple[float, float]]] = {}

    def table(self, metric: str) -> dict[str, dict[str, tuple[float, float]]]:
        return getattr(self, metric) if metric in ("accuracy", "balanced_accuracy") else {}


class Checkpoint(_Record):
    """A released or upstream-trained checkpoint's kind (`[[checkpoints]]`): which model, trained on which dataset,
    in which saving format (harness/evaluate/formats.py), with its output classes in order, read from the training
    script that wrote it. `ferbench evaluate --checkpoint` maps these classes onto the evaluated dataset's."""

    model: str = Field(min_length=1)
    trained_on: str
    format: str
    classes: tuple[str, ...] = Field(min_length=2)
    """Canonical class names, in the order of the checkpoint's outputs."""
    source: str = Field(min_length=1)
    """Where the order and the format come from (upstream file and line)."""
    input_size: int | None = Field(default=None, ge=8)
    """The side the training script resized images to, where it is not the model's `input_size` (FER-crossval's
    SFEW and POSTER++ scripts): evaluation resizes to it. None: the model's."""
    swap_channels: bool = False
    """The script fed its network the other channel order (RGB vs BGR) than ferbench's adapter for the model
    does (FER-crossval's POSTER on SFEW converts to RGB; POSTER's own scripts keep cv2's BGR): evaluation swaps
    the input channels before the adapter's evaluation transform."""
    note: str = ""
    """Shown by `ferbench evaluate` and kept in its record: what a user of this checkpoint must know."""


class SlurmLauncher(_Record):
    """`[launcher.slurm]`: resources of each array task (one run) and how many run at once."""

    partition: str = ""
    account: str = ""
    qos: str = ""
    constraint: str = ""
    gpus_per_task: int = Field(default=1, ge=0)
    cpus_per_task: int = Field(default=8, ge=1)
    mem_gb: int = Field(default=64, ge=1)
    time_limit_min: int = Field(default=720, ge=1)
    max_concurrent: int = Field(default=32, ge=1)


class Launchers(_Record):
    slurm: SlurmLauncher = SlurmLauncher()


class Config(_Record):
    defaults: Defaults = Defaults()
    upstreams: dict[str, Upstream] = {}
    models: dict[str, Model] = {}
    datasets: dict[str, Dataset] = {}
    recipes: dict[str, RecipeTemplate] = {}
    published: tuple[Published, ...] = ()
    references: dict[str, Reference] = {}
    checkpoints: tuple[Checkpoint, ...] = ()
    launcher: Launchers = Launchers()
    source: str = "benchmark.toml"

    @model_validator(mode="after")
    def _cross_references(self) -> Config:
        for section in ("upstreams", "models", "datasets", "recipes"):
            for name in getattr(self, section):
                if not IDENTIFIER.fullmatch(name):
                    raise ValueError(
                        f"{section}.{name}: not a name; names are lower-case letters, digits, '-' and '_', starting "
                        "with a letter or digit (they become folder names under the results and vendor dirs)"
                    )
        for name, model in self.models.items():
            if model.upstream is not None and model.upstream not in self.upstreams:
                raise ValueError(
                    f"models.{name}.upstream: unknown upstream '{model.upstream}' "
                    f"(known: {', '.join(sorted(self.upstreams)) or 'none'})"
                )
            if not (ADAPTERS_DIR / f"{model.adapter}.py").is_file():
                raise ValueError(f"models.{name}.adapter: no module adapters/{model.adapter}.py")
            if model.variant and model.variant not in adapter_variants(model.adapter):
                known = ", ".join(adapter_variants(model.adapter)) or "none"
                raise ValueError(f"models.{name}.variant: adapters/{model.adapter}.py has no variant '{model.variant}' (known: {known})")
        labels = [model.label for model in self.models.values()]
        for name, model in self.models.items():
            if model.display and (labels.count(model.display) > 1 or model.display in set(self.models) - {name}):
                raise ValueError(f"models.{name}.display: '{model.display}' names another model too")
            for dataset in model.dataset_recipes:
                if dataset not in self.datasets:
                    raise ValueError(
                        f"models.{name}.dataset_recipes.{dataset}: unknown dataset "
                        f"(known: {', '.join(sorted(self.datasets)) or 'none'})"
                    )
        self._check_published()
        self._check_checkpoints()
        return self

    def _check_checkpoints(self) -> None:
        from harness.data.vocabulary import CANONICAL
        from harness.evaluate.formats import FORMATS

        seen = set()
        for i, record in enumerate(self.checkpoints):
            if record.model not in self.models:
                raise ValueError(f"checkpoints.{i}.model: unknown model '{record.model}'")
            if record.trained_on not in self.datasets:
                raise ValueError(f"checkpoints.{i}.trained_on: unknown dataset '{record.trained_on}'")
            if record.format not in FORMATS:
                raise ValueError(f"checkpoints.{i}.format: unknown format '{record.format}' (known: {', '.join(FORMATS)})")
            unknown = [name for name in record.classes if name not in CANONICAL]
            if unknown or len(set(record.classes)) != len(record.classes):
                raise ValueError(f"checkpoints.{i}.classes: {', '.join(unknown) or 'a repeated name'} "
                                 "(canonical names, each once: harness/data/vocabulary.py)")
            key = (record.model, record.trained_on, record.format)
            if key in seen:
                raise ValueError(f"checkpoints.{i}: a second entry for {record.model} trained on {record.trained_on} in format {record.format}")
            seen.add(key)

    def _check_published(self) -> None:
        """Datasets must be registered (models need not be: a paper's number may precede its adapter)."""
        seen = set()
        for i, record in enumerate(self.published):
            dataset = self.datasets.get(record.dataset)
            if dataset is None:
                raise ValueError(f"published.{i}.dataset: unknown dataset '{record.dataset}'")
            if record.metric in VIDEO_METRICS and not dataset.video:
                raise ValueError(f"published.{i}.metric: '{record.metric}' is for video datasets; '{record.dataset}' is not one")
            key = (record.model, record.dataset, record.measure, record.protocol, record.selection)
            if key in seen:
                raise ValueError(f"published.{i}: a second number for {record.model} on {record.dataset} ({record.metric})")
            seen.add(key)
        for name, reference in self.references.items():
            for metric in ("accuracy", "balanced_accuracy"):
                for dataset, row in reference.table(metric).items():
                    if dataset not in self.datasets:
                        raise ValueError(f"references.{name}.{metric}.{dataset}: unknown dataset")
                    for model, (_, std) in row.items():
                        if std < 0:
                            raise ValueError(f"references.{name}.{metric}.{dataset}.{model}: negative std")

    def model(self, name: str) -> Model:
        return _lookup("model", name, self.models)

    def dataset(self, name: str) -> Dataset:
        return _lookup("dataset", name, self.datasets)

    def upstream(self, name: str) -> Upstream:
        return _lookup("upstream", name, self.upstreams)

    def recipe(self, model: Model, name: str = "upstream", stage: str | None = None, dataset: str | None = None) -> Recipe:
        """`upstream` is the model's own recipe (of `stage`, when given; on `dataset`, with its per-dataset
        override); any other name is a `[recipes.NAME]` template, applied to every stage."""
        base = model.stages[stage] if stage else (model.recipe_for(dataset) if dataset else model.recipe)
        if name == "upstream":
            return base
        return _lookup("recipe", name, {"upstream": None, **self.recipes}).for_model(name, base)


def adapter_variants(adapter: str) -> tuple[str, ...]:
    """The keys of an adapter module's `VARIANTS = {"name": Adapter(...), ...}`, read from its source so that
    validating the registry imports neither torch nor upstream code."""
    import ast

    tree = ast.parse((ADAPTERS_DIR / f"{adapter}.py").read_text(encoding="utf-8"))
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0] if isinstance(node, ast.Assign) else None
        if isinstance(target, ast.Name) and target.id == "VARIANTS" and isinstance(node.value, ast.Dict):
            return tuple(k.value for k in node.value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str))
    return ()


def _lookup(kind: str, name: str, table: dict):
    if name not in table:
        raise FerbenchError(f"unknown {kind} '{name}'; valid: {', '.join(sorted(table))}", exit_code=2)
    return table[name]


def _named(raw: dict) -> dict:
    """Copy each table's key into its records' `name`, so a record knows what it is called."""
    out = dict(raw)
    for section in ("upstreams", "models", "datasets"):
        table = out.get(section)
        if isinstance(table, dict):
            out[section] = {
                key: ({**value, "name": key} if isinstance(value, dict) and "name" not in value else value)
                for key, value in table.items()
            }
    return out


def _describe(error: dict) -> str:
    path = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown key"
    if error["type"] == "missing":
        return f"{path}: required key is missing"
    message = error["msg"].removeprefix("Value error, ")
    return f"{path}: {message}" if path else message


def parse(text: str, source: str = "benchmark.toml") -> Config:
    """Parse and validate TOML text; raise FerbenchError (exit 2) naming the first bad key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise FerbenchError(f"{source}: invalid TOML: {err}", exit_code=2) from None
    try:
        return Config.model_validate({**_named(raw), "source": source})
    except ValidationError as err:
        errors = err.errors()
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise FerbenchError(f"{source}: {_describe(errors[0])}{more}", exit_code=2) from None


def load(path: Path | None = None) -> Config:
    path = Path(path) if path else DEFAULT_CONFIG
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise FerbenchError(f"{path}: cannot read the registry: {err.strerror}", exit_code=2) from None
    return parse(text, source=str(path))
