"""Classification metrics, all from scikit-learn."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    recall_score,
)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict:
    labels = list(range(num_classes))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # classes absent from a small split are expected, not news
        return dict(
            accuracy=float(accuracy_score(y_true, y_pred)),
            balanced_accuracy=float(balanced_accuracy_score(y_true, y_pred)),
            macro_f1=float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
            per_class_recall=recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0).tolist(),
            confusion_matrix=confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        )
