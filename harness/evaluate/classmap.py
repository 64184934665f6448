"""A model's output classes onto a dataset's classes, by canonical name (harness/data/vocabulary.py).

Scoring is over the classes both share: the model's outputs for classes the dataset lacks are left out of the
argmax (a CK+48 face cannot be called neutral: CK+48 has no neutral), and the dataset's samples of classes the
model never learnt are left out of the metrics (contempt, for a 7-class model). Both are recorded and reported
with their sample counts, never dropped silently.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from harness.errors import FerbenchError


@dataclass(frozen=True)
class ClassMap:
    model_classes: tuple[str, ...]
    """The model's outputs, in order."""
    dataset_classes: tuple[str, ...]
    shared: tuple[str, ...]
    """Scored classes, in the dataset's order: label i of the metrics."""
    outputs: tuple[int, ...]
    """For each shared class, its column among the model's outputs."""
    unscored: tuple[str, ...]
    """Dataset classes the model cannot predict: their samples are left out."""
    masked: tuple[str, ...]
    """Model outputs the dataset has no class for: left out of the argmax."""

    @property
    def identity(self) -> bool:
        return self.model_classes == self.dataset_classes

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        if self.identity:
            return f"the model's {len(self.shared)} classes are the dataset's, in the same order"
        parts = [f"scored over {len(self.shared)} shared classes ({', '.join(self.shared)})"]
        if tuple(c for c in self.model_classes if c in self.shared) != self.shared:
            parts.append("model outputs reordered to the dataset's order")
        if self.masked:
            parts.append(f"model output(s) {', '.join(self.masked)} masked (not in the dataset)")
        if self.unscored:
            parts.append(f"dataset class(es) {', '.join(self.unscored)} not scored (the model lacks them)")
        return "; ".join(parts)


def class_map(model_classes, dataset_classes, what: str = "") -> ClassMap:
    model_classes, dataset_classes = tuple(model_classes), tuple(dataset_classes)
    shared = tuple(c for c in dataset_classes if c in model_classes)
    if len(shared) < 2:
        raise FerbenchError(
            f"{what or 'evaluation'}: the model's classes ({', '.join(model_classes)}) and the dataset's "
            f"({', '.join(dataset_classes)}) share {len(shared)} class(es); at least 2 are needed", exit_code=2,
        )
    return ClassMap(
        model_classes=model_classes,
        dataset_classes=dataset_classes,
        shared=shared,
        outputs=tuple(model_classes.index(c) for c in shared),
        unscored=tuple(c for c in dataset_classes if c not in model_classes),
        masked=tuple(c for c in model_classes if c not in dataset_classes),
    )
