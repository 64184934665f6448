"""Schemas of the files in a run folder, so the report and `status` read the store defensively.

A run folder is a directory anyone with write access can edit, truncate or fill with another tool's
output. Before a run's numbers reach a table, its marker, config.json, result.json and env.json are
validated here: types, value ranges (a metric outside [0, 1] is not averaged in) and the run id that
ties the four files and the folder name together. A run that fails is `Unreadable`: left out of every
table and listed as `unreadable: PATH: reason`. Extra keys are allowed, so newer files still read.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from harness.run.store import MARKER


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


Fraction = Annotated[float, Field(ge=0, le=1), AfterValidator(_finite)]
Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
RunId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


class _File(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class RecipeRecord(_File):
    name: str = "upstream"
    epochs: int = Field(ge=1)


class ConfigFile(_File):
    """config.json: the run's spec (harness.run.spec.RunSpec) plus the request's repeats and device."""

    run_id: RunId
    model: Name
    dataset: Name
    protocol: Name
    splits: str = ""
    aligned: str | None = None
    fold: int = Field(default=0, ge=0)
    repeat: int = Field(ge=0)
    repeats: int = Field(ge=1)
    seed: int = Field(ge=0)
    pretrained: bool
    recipe: RecipeRecord
    selection: str | None = None
    classes: tuple[str, ...] = ()
    upstream: str | None = None
    upstream_commit: str | None = None
    video: bool | None = None
    fold_count: int = Field(default=1, ge=1)
    """Folds of the run's split file (fold protocols: the report's cell is complete only with all of them)."""


class CostRecord(_File):
    """result.json's `cost`: what `ferbench report --cost` shows."""

    params_total: int = Field(ge=0)
    params_trainable: int = Field(ge=0)
    gflops: Annotated[float, Field(ge=0), AfterValidator(_finite)]
    inference_img_s: Annotated[float, Field(ge=0), AfterValidator(_finite)]
    latency_ms: Annotated[float, Field(ge=0), AfterValidator(_finite)]
    latency_batch: int = 1
    input_shape: list[int] = []
    device: str


class ResultFile(_File):
    """result.json: the selected epoch's test metrics."""

    run_id: RunId | None = None
    accuracy: Fraction
    balanced_accuracy: Fraction
    macro_f1: Fraction
    selected_epoch: int = Field(ge=0)
    classes: tuple[str, ...] = ()
    per_class_recall: list[Fraction] | None = None
    confusion_matrix: list[list[Annotated[int, Field(ge=0)]]] | None = None
    history: list[dict] = []
    stages: dict = {}
    selection_rule: str = ""
    training_share: Fraction | None = None
    """Share of the protocol's training data trained on (1.0 under `--selection final`)."""
    samples: dict[str, Annotated[int, Field(ge=0)]] = {}
    cost: dict | None = None
    """Model cost (harness/run/cost.py; a failed measurement holds only `error`): `CostRecord` is checked where it
    is shown, so a bad cost leaves the run's metrics readable."""


class EnvFile(_File):
    """env.json: provenance; optional in old stores, checked for types when present."""

    upstream_head: str | None = None
    upstream_dirty: bool = False
    upstream_diff_sha256: str | None = None
    ferbench_version: str | None = None
    ferbench_git_sha: str | None = None
    ferbench_git_dirty: bool | None = None
    device: str | None = None
    device_name: str | None = None
    torch: str | None = None
    weights: dict[str, str] = {}
    split_variant: str | None = None


class MarkerFile(_File):
    """COMPLETE: written last, so its presence says the other files are whole."""

    run_id: RunId | None = None
    finished: str = ""


@dataclass(frozen=True)
class Unreadable:
    path: Path
    reason: str

    @property
    def line(self) -> str:
        return f"unreadable: {self.path}: {self.reason}"


@dataclass(frozen=True)
class RunRecord:
    folder: Path
    config: ConfigFile
    result: ResultFile
    env: EnvFile
    marker: MarkerFile


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    message = first["msg"].removeprefix("Value error, ")
    return f"{where}: {message}{more}" if where else f"{message}{more}"


class _Bad(Exception):
    def __init__(self, path: Path, reason: str):
        super().__init__(reason)
        self.path, self.reason = path, reason


def _load(path: Path, schema: type[_File], optional: bool = False) -> _File:
    if optional and not path.exists():
        return schema()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise _Bad(path, (error.strerror or type(error).__name__).lower()) from None
    except UnicodeDecodeError:
        raise _Bad(path, "not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise _Bad(path, f"not valid JSON (line {error.lineno}: {error.msg})") from None
    if not isinstance(raw, dict):
        raise _Bad(path, f"expected a JSON object, got {type(raw).__name__}")
    try:
        return schema.model_validate(raw)
    except ValidationError as error:
        raise _Bad(path, _describe(error)) from None


def read_run(folder: Path) -> RunRecord | Unreadable:
    """The validated files of a complete run folder, or why they cannot be trusted."""
    try:
        marker = _load(folder / MARKER, MarkerFile)
        config = _load(folder / "config.json", ConfigFile)
        result = _load(folder / "result.json", ResultFile)
        env = _load(folder / "env.json", EnvFile, optional=True)
    except _Bad as bad:
        return Unreadable(bad.path, bad.reason)
    for path, run_id in ((folder, folder.name), (folder / "result.json", result.run_id), (folder / MARKER, marker.run_id)):
        if run_id is not None and run_id != config.run_id:
            return Unreadable(path, f"run id {run_id} differs from config.json's {config.run_id}")
    counts = [len(x) for x in (result.classes, result.per_class_recall or result.classes) if x]
    if len(set(counts)) > 1:
        return Unreadable(folder / "result.json", "per_class_recall and classes differ in length")
    return RunRecord(folder, config, result, env, marker)


def json_dump(model: BaseModel) -> dict[str, Any]:
    """A validated file back as the plain dict the report reads: only the keys the file holds."""
    return model.model_dump(mode="json", exclude_unset=True)
