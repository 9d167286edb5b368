"""Benchmark: MinHash signature throughput, thresher's MinHasher against datasketch, same run.

Documents: the 685 real texts of tests/data/filter_corpus.jsonl.gz, as two workloads:

  * 500w    the texts of at least 500 words, cut to their first 500 (~500 shingles each)
  * corpus  every text, whole (median ~450 words, the longest ~77,000)

Shingles are thresher's ``shingles()`` (FineWeb's normalisation, word 5-grams), made before the
clock for the sides that take shingles. Sides, each timed over a whole workload:

  * datasketch update   a copy of one ``MinHash(num_perm, seed)`` per document, ``.update(s)`` per
                        shingle
  * datasketch batch    ``MinHash.bulk(shingle lists, num_perm, seed)``: datasketch's own way for
                        many documents, ``.update_batch(shingles)`` on a copy of one MinHash each
                        (creating a MinHash per document instead is ~15% slower)
  * thresher            ``MinHasher(num_perm, seed).sign(shingle lists)``, ``--batch`` documents a
                        call (the pipeline's batch_rows)
  * thresher from text  ``MinHasher.signatures(texts)``, ``--batch`` documents a call: the same,
                        plus normalisation and shingling
  * shingling           ``[shingles(t) for t in texts]``: what a datasketch pipeline adds to go
                        from text, so "datasketch from text" below is shingling + the side's time
  * datasketch legacy   for reference only: the same with ``scheme="legacy"``, datasketch
                        < 2.0's only scheme ((a*h+b) mod 2**61-1 in uint64), other signatures

All sides give the same signatures (checked on every document, legacy excepted). One process,
pinned to ``--cpu`` if given; every repeat runs all sides in a rotated order; the table quotes
medians of ``--repeats``. Goals (issue #4): thresher >= 30x datasketch update, >= 5x update_batch.

    .venv/bin/python bench/minhash.py [--repeats 5] [--cpu 1] [--num-perm 112] [--seed 1]
                                      [--batch 64] [--out bench/results/minhash.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "data" / "filter_corpus.jsonl.gz"
GOALS = {"datasketch update": 30.0, "datasketch batch": 5.0}


def workloads() -> dict[str, list[str]]:
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    cut = [" ".join(t.split()[:500]) for t in texts if len(t.split()) >= 500]
    return {"500w": cut, "corpus": texts}


def sides(num_perm: int, seed: int, batch: int):
    from datasketch import MinHash

    from thresher.filters.minhash import MinHasher

    hasher = MinHasher(num_perm=num_perm, seed=seed)

    def datasketch_update(texts, shingle_lists):
        empty = MinHash(num_perm=num_perm, seed=seed)
        out = []
        for shingles in shingle_lists:
            m = empty.copy()
            for s in shingles:
                m.update(s)
            out.append(m.hashvalues)
        return np.array(out)

    def datasketch_batch(texts, shingle_lists, scheme=None):
        minhashes = MinHash.bulk(shingle_lists, num_perm=num_perm, seed=seed, scheme=scheme)
        return np.array([m.hashvalues for m in minhashes])

    def thresher(texts, shingle_lists):
        return np.concatenate([hasher.sign(shingle_lists[i : i + batch]) for i in range(0, len(texts), batch)])

    def thresher_text(texts, shingle_lists):
        return np.concatenate([hasher.signatures(texts[i : i + batch]) for i in range(0, len(texts), batch)])

    def shingling(texts, shingle_lists):
        from thresher.filters.minhash import shingles

        return [shingles(t) for t in texts]

    return {
        "datasketch update": datasketch_update,
        "datasketch batch": datasketch_batch,
        "thresher": thresher,
        "thresher from text": thresher_text,
        "shingling": shingling,
        "datasketch legacy": lambda texts, sl: datasketch_batch(texts, sl, scheme="legacy"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cpu", type=int, default=-1, help="pin to this core (-1: no pinning)")
    ap.add_argument("--num-perm", type=int, default=112)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64, help="documents per thresher call")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "minhash.json"))
    args = ap.parse_args()
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})

    from thresher.filters.minhash import shingles

    runs = sides(args.num_perm, args.seed, args.batch)
    names = list(runs)
    results = {}
    for workload, texts in workloads().items():
        shingle_lists = [shingles(t) for t in texts]
        n_shingles = sum(map(len, shingle_lists))
        reference = runs["datasketch batch"](texts, shingle_lists)  # also warms every import and table
        for name in ("datasketch update", "thresher", "thresher from text"):
            if not np.array_equal(runs[name](texts, shingle_lists), reference):
                print(f"MISMATCH: {name} signatures differ from datasketch update_batch on {workload}")
                return 1
        times = {name: [] for name in names}
        for r in range(args.repeats):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                start = time.perf_counter()
                runs[name](texts, shingle_lists)
                times[name].append(time.perf_counter() - start)
        median = {name: statistics.median(t) for name, t in times.items()}
        results[workload] = {
            "docs": len(texts),
            "shingles": n_shingles,
            "seconds": times,
            "median_s": median,
            "docs_per_s": {name: len(texts) / s for name, s in median.items()},
            "shingles_per_s": {name: n_shingles / s for name, s in median.items()},
            "thresher_speedup": {b: median[b] / median["thresher"] for b in GOALS},
            "from_text_speedup": {
                b: (median[b] + median["shingling"]) / median["thresher from text"] for b in GOALS
            },
        }

    print_table(results, args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"run": run_info(args), "goals": GOALS, "results": results}, indent=2))
    print(f"\nwritten: {out}")
    return 0


def print_table(results: dict, args) -> None:
    print(f"num_perm={args.num_perm} seed={args.seed} batch={args.batch}; medians of {args.repeats}")
    for workload, r in results.items():
        print(f"\n{workload}: {r['docs']} documents, {r['shingles']:,} shingles")
        print(f"  {'side':22s} {'docs/s':>10s} {'shingles/s':>12s} {'median s':>9s}")
        for name, s in r["median_s"].items():
            print(f"  {name:22s} {r['docs_per_s'][name]:10,.0f} {r['shingles_per_s'][name]:12,.0f} {s:9.3f}")
        for b, goal in GOALS.items():
            got = r["thresher_speedup"][b]
            print(f"  thresher vs {b}: {got:.1f}x (goal >= {goal:.0f}x: {'met' if got >= goal else 'NOT met'})"
                  f"; from text, vs shingling + {b}: {r['from_text_speedup'][b]:.1f}x")


def run_info(args) -> dict:
    import datasketch

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    return {
        "args": vars(args),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "datasketch": datasketch.__version__,
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


if __name__ == "__main__":
    sys.exit(main())
