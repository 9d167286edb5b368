"""A model directory's report.md and its plots (PNG, matplotlib's Agg backend: no display)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from thresher.classifiers.metrics import THRESHOLD
from thresher.classifiers.scorer import MAX_SCORE, edu_int

# The FineWeb-Edu classifier (HuggingFaceFW/fineweb-edu-classifier, a regression head on
# Snowflake-arctic-embed-m, 450k Llama-3-70B annotations): binary F1 at threshold 3 on its held-out set.
FINEWEB_EDU_F1_AT_3 = 0.82


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=(5.5, 4), dpi=100)


def plot_learning_curve(path: Path, curve: list[dict]) -> None:
    plt, fig, ax = _figure()
    n = [point["n_train"] for point in curve]
    for key in ("spearman", "f1_at_3", "auc_at_3"):
        ax.plot(n, [np.nan if p[key] is None else p[key] for p in curve], marker="o", label=key)
    ax.axhline(FINEWEB_EDU_F1_AT_3, color="grey", linestyle=":", label="FineWeb-Edu F1 at 3")
    ax.set_xscale("log", base=2)
    ax.set_xticks(n, [str(v) for v in n])
    ax.set(xlabel="training documents", ylabel="held-out metric", ylim=(0, 1), title="Learning curve")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_confusion(path: Path, matrix: list[list[int]]) -> None:
    plt, fig, ax = _figure()
    counts = np.asarray(matrix)
    ax.imshow(counts, cmap="Blues")
    for (i, j), value in np.ndenumerate(counts):
        ax.text(j, i, str(value), ha="center", va="center", color="white" if value > counts.max() / 2 else "black")
    ticks = range(MAX_SCORE + 1)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set(xlabel="predicted edu_int", ylabel="label (rounded)", title="Held-out confusion matrix")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_scores(path: Path, y_true, y_pred) -> None:
    plt, fig, ax = _figure()
    classes = edu_int(np.asarray(y_true))
    bins = np.linspace(0, MAX_SCORE, 26)
    present = sorted(set(classes.tolist()))
    ax.hist([np.asarray(y_pred)[classes == c] for c in present], bins=bins, stacked=True, label=[f"label {c}" for c in present])
    ax.axvline(THRESHOLD - 0.5, color="black", linestyle=":", label="edu_int >= 3")
    ax.set(xlabel="predicted edu_score", ylabel="held-out documents", title="Predicted scores by label")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _f(value, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _more_labels(curve: list[dict]) -> str:
    """What the last doubling of the training data bought, read as a guide to the next one."""
    half, full = curve[-2], curve[-1]
    if any(point[k] is None for point in (half, full) for k in ("spearman", "f1_at_3")):
        return "Spearman or F1 at 3 is undefined on this held-out set (one label value, or none >= 3): the curve says nothing."
    gain = full["spearman"] - half["spearman"]
    f1_gain = full["f1_at_3"] - half["f1_at_3"]
    said = (f"From {half['n_train']} to {full['n_train']} training documents Spearman moved by {gain:+.3f} and "
            f"F1 at 3 by {f1_gain:+.3f}. ")
    if max(gain, f1_gain) > 0.02:
        return said + (f"Still rising: if the curve stays log-linear, doubling the labels (about {2 * full['n_train']} "
                       f"to train on) would add about as much again ({gain:+.3f} Spearman, {f1_gain:+.3f} F1), "
                       f"less than that if it is flattening.")
    if min(gain, f1_gain) >= -0.02:
        return said + "Flat: more labels of the same kind would buy little; the model or the features limit it."
    return said + "It fell: the held-out set is small enough for noise to outweigh the added data."


def _by_method_table(by_method: dict) -> list[str]:
    if not by_method:
        return []
    return [
        "The same held-out documents by how their label was given:",
        "",
        "| label method | documents | label >= 3 | Spearman | F1 at 3 | AUC at 3 | MAE |",
        "|---|---|---|---|---|---|---|",
        *(f"| {method} | {m['n']} | {m['positives']} | {_f(m['spearman'])} | {_f(m['f1_at_3'])} | {_f(m['auc_at_3'])} "
          f"| {_f(m['mae'])} |" for method, m in by_method.items()),
        "",
    ]


def write_report(directory: Path, card: dict, y_true, y_pred) -> None:
    metrics, data, curve = card["metrics"], card["data"], card["learning_curve"]
    plot_learning_curve(directory / "learning_curve.png", curve)
    plot_confusion(directory / "confusion_matrix.png", metrics["confusion"]["matrix"])
    plot_scores(directory / "scores.png", y_true, y_pred)
    if metrics["f1_at_3"] is None:
        versus = "F1 at 3 is undefined here: no held-out document has a label >= 3."
    else:
        gap = FINEWEB_EDU_F1_AT_3 - metrics["f1_at_3"]
        versus = (f"This model is {abs(gap):.2f} {'below' if gap > 0 else 'above'} it on this held-out set (other "
                  f"documents and annotators: a guide, not a like-for-like comparison).")
    lines = [
        f"# Educational-value model: {card['kind']}",
        "",
        f"Rebuild: `{card['command']}`" if card.get("command") else "",
        "",
        "## Data",
        "",
        "| file | rows | duplicates dropped | SHA-256 |",
        "|---|---|---|---|",
        *(f"| {f['path']} | {f['rows']} | {f['duplicates']} | `{f['sha256']}` |" for f in data["files"]),
        "",
        f"{data['documents']} documents in {data['groups']} groups (label counts {data['score_counts']}); split "
        f"stratified by label with whole groups on one side, seed {data['seed']}: "
        f"{data['train']} to train on, {data['test']} held out ({data['test_size']:.0%}).",
        "",
        f"## Held-out metrics ({metrics['n']} documents, {metrics['positives']} with label >= {THRESHOLD})",
        "",
        "| Spearman | MAE | accuracy (edu_int) | precision at 3 | recall at 3 | F1 at 3 | AUC at 3 |",
        "|---|---|---|---|---|---|---|",
        f"| {_f(metrics['spearman'])} | {_f(metrics['mae'])} | {_f(metrics['accuracy'])} | {_f(metrics['precision_at_3'])} "
        f"| {_f(metrics['recall_at_3'])} | {_f(metrics['f1_at_3'])} | {_f(metrics['auc_at_3'])} |",
        "",
        f"The FineWeb-Edu classifier reaches F1 {FINEWEB_EDU_F1_AT_3} at threshold 3 on its own held-out set. {versus}",
        "",
        *_by_method_table(card.get("metrics_by_method", {})),
        "![predicted scores by label](scores.png)",
        "",
        "Confusion matrix (rows: label rounded; columns: predicted edu_int):",
        "",
        "| label \\ predicted | " + " | ".join(map(str, metrics["confusion"]["labels"])) + " |",
        "|---" * (len(metrics["confusion"]["labels"]) + 1) + "|",
        *(f"| {label} | " + " | ".join(map(str, row)) + " |"
          for label, row in zip(metrics["confusion"]["labels"], metrics["confusion"]["matrix"])),
        "",
        "![confusion matrix](confusion_matrix.png)",
        "",
        "## Learning curve (same held-out documents)",
        "",
        "| share of the training split | documents | Spearman | F1 at 3 | AUC at 3 | MAE |",
        "|---|---|---|---|---|---|",
        *(f"| {p['fraction']:.0%} | {p['n_train']} | {_f(p['spearman'])} | {_f(p['f1_at_3'])} | {_f(p['auc_at_3'])} "
          f"| {_f(p['mae'])} |" for p in curve),
        "",
        _more_labels(curve),
        "",
        "![learning curve](learning_curve.png)",
        "",
    ]
    if "quantization" in card:
        q = card["quantization"]
        lines += [
            "## Quantisation (same training, same seed)",
            "",
            "| model | size | Spearman | F1 at 3 | AUC at 3 | MAE |",
            "|---|---|---|---|---|---|",
            *(f"| {name} | {side['bytes'] / 1e6:.2f} MB | {_f(side['spearman'])} | {_f(side['f1_at_3'])} "
              f"| {_f(side['auc_at_3'])} | {_f(side['mae'])} |" for name, side in q.items()),
            "",
        ]
    lines += [
        "## Model",
        "",
        f"Parameters: `{card['params']}`",
        "",
        *(f"- `{name}` SHA-256 `{digest}`" for name, digest in card["files"].items()),
        "",
        f"Library versions: {', '.join(f'{k} {v}' for k, v in card['versions'].items())}",
        "",
    ]
    (directory / "report.md").write_text("\n".join(lines), encoding="utf-8")
