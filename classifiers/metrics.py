"""Held-out metrics of a scorer, as FineWeb-Edu reports its classifier's.

The binary task behind ``*_at_3`` is FineWeb-Edu's filter: a document is educational when its
label is >= 3 (the contract's positive class) and predicted so when ``edu_int`` >= 3, i.e.
``edu_score`` >= 2.5 (FineWeb-Edu thresholds the rounded score). AUC ranks by the continuous score.
"""

from __future__ import annotations

import numpy as np

from thresher.classifiers.scorer import MAX_SCORE, edu_int

THRESHOLD = 3


def evaluate(y_true, y_pred) -> dict:
    from scipy.stats import spearmanr
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    positive, predicted = y_true >= THRESHOLD, edu_int(y_pred) >= THRESHOLD
    precision, recall, f1, _ = precision_recall_fscore_support(positive, predicted, average="binary", zero_division=0)
    both_classes = 0 < positive.sum() < len(positive)
    constant = np.ptp(y_true) == 0 or np.ptp(y_pred) == 0  # no ranking to correlate
    classes = list(range(MAX_SCORE + 1))
    return {
        "n": len(y_true),
        "spearman": None if constant else float(spearmanr(y_true, y_pred).statistic),
        "mae": float(np.abs(y_true - y_pred).mean()),
        "accuracy": float((edu_int(y_true) == edu_int(y_pred)).mean()),
        # undefined, not 0, without documents of the class they are measured on
        "precision_at_3": float(precision) if predicted.any() else None,
        "recall_at_3": float(recall) if positive.any() else None,
        "f1_at_3": float(f1) if positive.any() else None,
        "auc_at_3": float(roc_auc_score(positive, y_pred)) if both_classes else None,
        "positives": int(positive.sum()),
        "confusion": {  # rows: label (rounded), columns: edu_int
            "labels": classes,
            "matrix": confusion_matrix(edu_int(y_true), edu_int(y_pred), labels=classes).tolist(),
        },
    }
