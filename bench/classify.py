"""Benchmark: classify-stage scoring throughput per core, fastText and scikit-learn, same run.

Documents: real texts cut to their first 500 words (formatting kept): those of at least 500 words
among tests/data/filter_corpus.jsonl.gz's pages and data/labels/labels.jsonl.gz's documents,
as 64-row Arrow batches (the pipeline's batch_rows) of kept rows.

Sides, each timed over every batch:

  * fasttext raw     the shipped model's own multi-line predict (``model.f.multilinePredict``, every
                     label) on lines already lower-cased and tokenised: the library alone, the
                     baseline the stage's overhead is measured against
  * fasttext stage   ``EduClassifier`` with the shipped model (data/models/edu) called on the
                     batches as a Ray actor calls it: Arrow in and out, tokenising, the expected
                     score, edu_int
  * sklearn stage    the same stage with a scikit-learn model (``thresher train --kind sklearn``
                     defaults, trained here on the labels before the clock starts)

One process pinned to ``--cpu`` (BLAS held to one thread), so docs/s is per core; every repeat
runs all sides in a rotated order; the table quotes medians of ``--repeats`` and the min-max
spread, by the process's CPU time (docs per CPU-second: what a core delivers, steadier on a
shared machine, where another process's turn on the core would count against wall time) and by
wall time. Goal (issue #5): >= 2,000 documents/s per core for the default model (the fastText stage).

    .venv/bin/python bench/classify.py [--repeats 5] [--cpu 0] [--out bench/results/classify.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extraction import REPO, write_result  # noqa: E402

CORPUS = REPO / "tests" / "data" / "filter_corpus.jsonl.gz"
LABELS = REPO / "data" / "labels" / "labels.jsonl.gz"
GOAL = 2000.0
BATCH_ROWS = 64
WORDS = 500


def first_words(text: str, n: int = WORDS) -> str | None:
    """The text up to its n-th word, line breaks and spacing kept; None if it is shorter."""
    ends = [m.end() for _, m in zip(range(n), re.finditer(r"\S+", text))]
    return text[: ends[-1]] if len(ends) == n else None


def documents() -> list[str]:
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        pages = [json.loads(line)["text"] for line in f]
    from thresher.classifiers.labels import read_labels

    cut = (first_words(t) for t in [*pages, *read_labels([LABELS]).texts])
    return [t for t in cut if t is not None]


def batches(texts: list[str]):
    from thresher.schema import KEPT, empty_row, rows_to_table

    rows = [empty_row(id=str(i), text=t, status=KEPT) for i, t in enumerate(texts)]
    return [rows_to_table(rows[i : i + BATCH_ROWS]) for i in range(0, len(rows), BATCH_ROWS)]


def sides(texts: list[str], sklearn_dir: Path) -> dict:
    from thresher.classifiers.fasttext_scorer import fasttext_line
    from thresher.classifiers.model_dir import SHIPPED_MODEL, load_model
    from thresher.classifiers.stage import EduClassifier
    from thresher.config import ClassifyConfig

    shipped = load_model(SHIPPED_MODEL).model_
    lines = [fasttext_line(t) + "\n" for t in texts]
    fasttext_stage = EduClassifier(ClassifyConfig(model=str(SHIPPED_MODEL)))
    sklearn_stage = EduClassifier(ClassifyConfig(model=str(sklearn_dir)))
    tables = batches(texts)

    def raw():
        for i in range(0, len(lines), BATCH_ROWS):
            shipped.f.multilinePredict(lines[i : i + BATCH_ROWS], -1, 0.0, "strict")

    return {
        "fasttext raw": raw,
        "fasttext stage": lambda: [fasttext_stage(t) for t in tables],
        "sklearn stage": lambda: [sklearn_stage(t) for t in tables],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cpu", type=int, default=0, help="pin to this core (-1: no pinning)")
    ap.add_argument("--out", default="bench/results/classify.json")
    args = ap.parse_args()
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)

    from thresher.classifiers.labels import read_labels
    from thresher.classifiers.linear_scorer import LinearScorer
    from thresher.classifiers.model_dir import save_model

    texts = documents()
    words = sum(len(t.split()) for t in texts)
    with tempfile.TemporaryDirectory() as tmp:
        labels = read_labels([LABELS])
        save_model(LinearScorer().fit(labels.texts, labels.scores), tmp, {"data": {"files": labels.files}})
        runs = sides(texts, Path(tmp))
        for run in runs.values():  # warm: model loading, first-call costs
            run()
        names = list(runs)
        times = {clock: {name: [] for name in names} for clock in ("cpu", "wall")}
        for r in range(args.repeats):
            for name in names[r % len(names):] + names[: r % len(names)]:
                cpu, wall = time.process_time(), time.perf_counter()
                runs[name]()
                times["cpu"][name].append(time.process_time() - cpu)
                times["wall"][name].append(time.perf_counter() - wall)

    median = {clock: {name: statistics.median(t) for name, t in by_name.items()} for clock, by_name in times.items()}
    rate = {clock: {name: len(texts) / s for name, s in by_name.items()} for clock, by_name in median.items()}
    cpu_rate = rate["cpu"]
    result = {
        "run": {"args": vars(args), "python": sys.version.split()[0], "platform": platform.platform(),
                "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "load_average": os.getloadavg()},
        "documents": len(texts), "words": words, "batch_rows": BATCH_ROWS, "goal_docs_per_s": GOAL,
        "seconds": times, "median_s": median, "docs_per_s": rate,
        "goal_ratio": {name: r / GOAL for name, r in cpu_rate.items()},
        "fasttext_vs_sklearn": cpu_rate["fasttext stage"] / cpu_rate["sklearn stage"],
        "stage_vs_raw": cpu_rate["fasttext stage"] / cpu_rate["fasttext raw"],
    }
    print(f"{len(texts)} documents of {WORDS} words, {BATCH_ROWS}-row batches, one core; medians of {args.repeats}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"  {'side':16s} {'docs/CPU-s':>11s} {'min-max CPU s':>15s} {'vs goal 2,000':>14s} {'docs/wall-s':>12s}")
    for name in names:
        spread = f"{min(times['cpu'][name]):.3f}-{max(times['cpu'][name]):.3f}"
        print(f"  {name:16s} {cpu_rate[name]:11,.0f} {spread:>15s} {cpu_rate[name] / GOAL:13.2f}x {rate['wall'][name]:12,.0f}")
    print(f"  fastText stage / sklearn stage: {result['fasttext_vs_sklearn']:.2f}x; "
          f"fastText stage / raw predict: {result['stage_vs_raw']:.2f}x (CPU time)")
    met = cpu_rate["fasttext stage"] >= GOAL
    print(f"  goal (default model >= {GOAL:,.0f} docs/s/core): {'met' if met else 'NOT met'}")
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
