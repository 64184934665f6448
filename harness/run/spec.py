"""The run unit: everything that determines a run's result, and its stable id."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class RunSpec:
    """`splits` names the saved split file, which encodes the protocol, its parameters and the dataset
    manifest: changed data or folds give new run ids instead of silently reusing old results. `aligned` is
    the aligned set's hash prefix (None for the raw images), so raw and aligned runs never share an id."""

    model: str
    dataset: str
    protocol: str
    splits: str
    aligned: str | None
    fold: int
    repeat: int
    seed: int
    classes: tuple[str, ...]
    input_size: int
    recipe: dict
    pretrained: bool
    val_fraction: float
    selection: str
    upstream: str | None
    upstream_commit: str | None
    stages: dict = field(default_factory=dict)
    """Recipes of later training stages by name (empty for single-stage models)."""
    upstream_diff: str | None = None
    """sha256 of a modified upstream tree's changes (`--allow-modified-upstream`); None for the pinned code."""
    augment_on: str = "host"
    """`device` (`--augment-on device`) draws other random augmentations than the per-sample reference, so its
    runs are runs of their own."""

    @property
    def run_id(self) -> str:
        """sha256 of the canonical JSON of the spec: equal specs give equal ids in any process."""
        fields = asdict(self)
        # the defaults of fields added later leave the ids of stores written before them unchanged
        if fields["upstream_diff"] is None:
            del fields["upstream_diff"]
        if fields["augment_on"] == "host":
            del fields["augment_on"]
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> RunSpec:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["classes"] = tuple(fields["classes"])
        return cls(**fields)
