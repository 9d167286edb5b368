"""Benchmark: near-duplicate quality of the dedup stage, as pair precision / recall / F1 against the
ground-truth clusters of bench/dedup_data.py's quality set, next to two references on the same
documents and the same shingles:

  * datasketch    ``MinHash(num_perm=112, seed=1)`` per document and ``MinHashLSH(threshold=0.8,
                  num_perm=112, params=(14, 8))`` (FineWeb's 14 bands x 8 rows); every document is
                  queried, every candidate pair is a link, clusters are the connected components
                  (no Jaccard check of candidates, as FineWeb).
  * exact oracle  connected components of the pairs whose exact Jaccard (true shingle sets, no
                  MinHash) is >= the threshold: the best any MinHash-LSH at that threshold can do.

Pairs, not documents, are scored: a cluster of k documents holds k(k-1)/2 pairs. Precision is the
share of predicted same-cluster pairs that are true ones, recall the share of true pairs predicted.

Shingles: if ``thresher.filters.minhash`` has a ``shingles(text)`` function the references use it, so
they see exactly what the stage sees; otherwise lowercase word tokens (``\\w+``) in 5-grams, a text
shorter than 5 tokens being one shingle. The table names the one used.

Predictions (``--pred``, repeatable) are any of:
  * a thresher output folder: ``documents/`` and ``rejected/`` Parquet with ``id``, ``dup_cluster``
    and, on rejected duplicates, ``duplicate_of``;
  * a Parquet file or folder, or a JSONL(.gz) file, with ``id`` and ``cluster`` (or ``dup_cluster``,
    ``duplicate_of``).
Rows sharing a cluster value, and a row and its ``duplicate_of``, are one cluster. A document of the
truth missing from a prediction (dropped by another stage, say) counts as a singleton, and is
reported.

    .venv/bin/python bench/dedup_quality.py [--data bench/data/dedup_quality.jsonl]
        [--pred OUT_DIR_OR_FILE ...] [--threshold 0.8] [--out bench/results/dedup_quality.json]

Goal: the prediction's F1 >= 0.95 and >= datasketch's.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components

ROOT = Path(__file__).resolve().parent.parent
NUM_PERM, BANDS, ROWS, NGRAM = 112, 14, 8, 5
GOAL_F1 = 0.95


class Shingler:
    """The shingle sets both references hash: the stage's own function when it exists."""

    def __init__(self, ngram: int = NGRAM):
        self.ngram = ngram
        try:
            from thresher.filters.minhash import shingles
        except ImportError:
            shingles = None
        self._stage = shingles
        self.name = "thresher.filters.minhash.shingles" if shingles else f"lowercase \\w+ word {ngram}-grams"

    def __call__(self, text: str) -> set:
        if self._stage is not None:
            out = self._stage(text)
            return set(out.tolist() if isinstance(out, np.ndarray) else out)
        words = re.findall(r"\w+", text.lower())
        if len(words) < self.ngram:
            return {" ".join(words)} if words else set()
        return {" ".join(words[i : i + self.ngram]) for i in range(len(words) - self.ngram + 1)}


def as_bytes(shingle) -> bytes:
    if isinstance(shingle, bytes):
        return shingle
    if isinstance(shingle, str):
        return shingle.encode("utf-8")
    return int(shingle).to_bytes(8, "little", signed=int(shingle) < 0)


class ExactJaccard:
    """Exact Jaccard of every pair of documents that share a shingle (a sparse doc x shingle product)."""

    def __init__(self, sets: list[set]):
        self.sets = sets
        vocab: dict = {}
        rows, cols = [], []
        for doc, shingles in enumerate(sets):
            for s in shingles:
                rows.append(doc)
                cols.append(vocab.setdefault(s, len(vocab)))
        m = csr_matrix((np.ones(len(rows), np.int32), (rows, cols)), shape=(len(sets), max(len(vocab), 1)))
        inter = (m @ m.T).tocoo()
        upper = inter.row < inter.col
        self.a, self.b = inter.row[upper], inter.col[upper]
        sizes = np.array([len(s) for s in sets], np.int64)
        shared = inter.data[upper].astype(np.int64)
        self.j = shared / (sizes[self.a] + sizes[self.b] - shared)

    def __call__(self, a: int, b: int) -> float:
        x, y = self.sets[a], self.sets[b]
        return len(x & y) / len(x | y) if x or y else 1.0

    def pairs_at_least(self, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        keep = self.j >= threshold
        return self.a[keep], self.b[keep]


def components(n: int, a, b) -> np.ndarray:
    """Cluster label per document: connected components of the links a[i] - b[i]."""
    graph = coo_matrix((np.ones(len(a), np.int8), (np.asarray(a, np.int64), np.asarray(b, np.int64))), shape=(n, n))
    return connected_components(graph, directed=False)[1]


class DatasketchLSH:
    """The baseline: datasketch's MinHash + MinHashLSH with FineWeb's bands, candidates unioned."""

    def __init__(self, threshold: float = 0.8):
        self.threshold = threshold
        self.name = f"datasketch MinHashLSH {BANDS}x{ROWS}"

    def __call__(self, sets: list[set]) -> np.ndarray:
        from datasketch import MinHash, MinHashLSH

        lsh = MinHashLSH(threshold=self.threshold, num_perm=NUM_PERM, params=(BANDS, ROWS))
        present = [i for i, s in enumerate(sets) if s]  # an empty set would match every other empty set
        hashes = MinHash.bulk([[as_bytes(x) for x in sets[i]] for i in present], num_perm=NUM_PERM, seed=1)
        for i, mh in zip(present, hashes):
            lsh.insert(i, mh)
        a, b = [], []
        for i, mh in zip(present, hashes):
            for j in lsh.query(mh):
                if j != i:
                    a.append(i)
                    b.append(j)
        return components(len(sets), a, b)


@dataclass
class PairScores:
    true_pairs: int
    pred_pairs: int
    tp: int

    @property
    def precision(self) -> float:
        return self.tp / self.pred_pairs if self.pred_pairs else 1.0  # no pair claimed, none wrong

    @property
    def recall(self) -> float:
        return self.tp / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict:
        return {"true_pairs": self.true_pairs, "pred_pairs": self.pred_pairs, "tp": self.tp,
                "precision": self.precision, "recall": self.recall, "f1": self.f1}


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def pair_scores(truth: list, pred: list) -> PairScores:
    """Pair counts from the contingency of two labelings of the same documents (linear time)."""
    return PairScores(true_pairs=sum(_pairs(n) for n in Counter(truth).values()),
                      pred_pairs=sum(_pairs(n) for n in Counter(pred).values()),
                      tp=sum(_pairs(n) for n in Counter(zip(truth, pred)).values()))


class Predictions:
    """A cluster label per document id from a thresher output folder or an id/cluster table."""

    CLUSTER_COLUMNS = ("cluster", "dup_cluster")

    def __init__(self, path: str):
        self.path = Path(path)
        self.rows = list(self._read())

    def _read(self):
        p = self.path
        if p.is_dir() and ((p / "documents").is_dir() or (p / "rejected").is_dir()):
            files = sorted(p.glob("documents/*.parquet")) + sorted(p.glob("rejected/*.parquet"))
        elif p.is_dir():
            files = sorted(p.rglob("*.parquet"))
        else:
            files = [p]
        for f in files:
            if f.suffix == ".parquet":
                names = set(pq.read_schema(f).names)
                cols = ["id", *[c for c in (*self.CLUSTER_COLUMNS, "duplicate_of") if c in names]]
                yield from pq.read_table(f, columns=cols).to_pylist()
            else:
                with (gzip.open(f, "rt", encoding="utf-8") if f.suffix == ".gz" else open(f, encoding="utf-8")) as lines:
                    yield from (json.loads(line) for line in lines if line.strip())

    def labels(self, ids: list[str]) -> tuple[list, int, int]:
        """Labels aligned with ``ids``, the number of ids absent from the predictions, and the
        number of predicted ids absent from ``ids``."""
        index = {i: k for k, i in enumerate(ids)}
        extra = {}
        node = lambda doc_id: index[doc_id] if doc_id in index else extra.setdefault(doc_id, len(ids) + len(extra))
        a, b, seen = [], [], set()
        by_cluster: dict = {}
        for row in self.rows:
            me = node(str(row["id"]))
            seen.add(me)
            for col in self.CLUSTER_COLUMNS:
                if row.get(col) is not None:
                    first = by_cluster.setdefault((col, str(row[col])), me)
                    a.append(first)
                    b.append(me)
            if row.get("duplicate_of") is not None:
                a.append(me)
                b.append(node(str(row["duplicate_of"])))
        labels = components(len(ids) + len(extra), a, b)[: len(ids)]
        missing = sum(1 for k in range(len(ids)) if k not in seen)
        unknown = sum(1 for k in seen if k >= len(ids))
        return labels.tolist(), missing, unknown


def read_truth(path: str) -> list[dict]:
    p = Path(path)
    if p.is_dir() or p.suffix == ".parquet":
        files = sorted(p.glob("*.parquet")) if p.is_dir() else [p]
        return [r for f in files for r in pq.read_table(f).to_pylist()]
    with (gzip.open(p, "rt", encoding="utf-8") if p.suffix == ".gz" else open(p, encoding="utf-8")) as lines:
        return [json.loads(line) for line in lines if line.strip()]


def _quantiles(values, qs=(0, 0.01, 0.05, 0.1, 0.25, 0.5)) -> dict:
    if len(values) == 0:
        return {}
    return {f"p{round(q * 100)}": round(float(np.quantile(values, q)), 3) for q in qs}


def jaccard_report(docs: list[dict], exact: ExactJaccard, threshold: float) -> dict:
    """How hard the set is: exact Jaccard of the true pairs, and of the closest different documents."""
    cluster = [d["cluster"] for d in docs]
    members = defaultdict(list)
    for k, c in enumerate(cluster):
        members[c].append(k)
    positive = [exact(a, b) for m in members.values() for x, a in enumerate(m) for b in m[x + 1 :]]
    codes = np.unique(np.array(cluster, dtype=object).astype(str), return_inverse=True)[1]
    is_neg = codes[exact.a] != codes[exact.b]
    a_neg, b_neg, j_neg = exact.a[is_neg], exact.b[is_neg], exact.j[is_neg]
    order = np.argsort(-j_neg, kind="stable")
    negative = j_neg[order]
    closest = [(docs[a]["id"], docs[b]["id"], round(float(j), 3))
               for a, b, j in zip(a_neg[order[:10]], b_neg[order[:10]], negative[:10])]
    per_doc_closest = np.zeros(len(docs))  # each document's closest other-cluster neighbour
    np.maximum.at(per_doc_closest, a_neg, j_neg)
    np.maximum.at(per_doc_closest, b_neg, j_neg)
    positive = np.array(positive)
    return {
        "positive_pairs": len(positive),
        "positive_quantiles": _quantiles(positive),
        "positive_at_least_threshold": float((positive >= threshold).mean()) if len(positive) else 1.0,
        "positive_below": {t: int((positive < t).sum()) for t in (0.5, 0.7, threshold)},
        "negative_pairs_at_least": {t: int((negative >= t).sum()) for t in (0.3, 0.5, 0.7, threshold)},
        "closest_negatives_top20": [round(float(x), 3) for x in negative[:20]],
        "closest_negative_pairs": closest,
        "closest_negative_per_doc_quantiles": _quantiles(per_doc_closest, qs=(0.5, 0.9, 0.99, 1.0)),
    }


def error_pairs(docs, truth, pred, exact: ExactJaccard, limit=10) -> dict:
    """The most telling misses (true pairs split, highest Jaccard first) and false merges (lowest first)."""
    def grouped(labels):
        g = defaultdict(list)
        for k, c in enumerate(labels):
            g[c].append(k)
        return [m for m in g.values() if 1 < len(m) <= 500]

    def show(a, b):
        return {"a": docs[a]["id"], "b": docs[b]["id"], "jaccard": round(exact(a, b), 3),
                "edits": [docs[a].get("edits"), docs[b].get("edits")]}

    missed = [(exact(a, b), a, b) for m in grouped(truth) for x, a in enumerate(m) for b in m[x + 1 :] if pred[a] != pred[b]]
    merged = [(exact(a, b), a, b) for m in grouped(pred) for x, a in enumerate(m) for b in m[x + 1 :] if truth[a] != truth[b]]
    return {"missed": [show(a, b) for _, a, b in sorted(missed, reverse=True)[:limit]],
            "merged": [show(a, b) for _, a, b in sorted(merged)[:limit]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT / "bench/data/dedup_quality.jsonl"))
    ap.add_argument("--pred", action="append", default=[], help="thresher output folder or id/cluster file")
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--no-references", action="store_true", help="score predictions only (large sets)")
    ap.add_argument("--out", default=str(ROOT / "bench/results/dedup_quality.json"))
    args = ap.parse_args()

    docs = read_truth(args.data)
    ids = [str(d["id"]) for d in docs]
    truth = [d["cluster"] for d in docs]
    result: dict = {"data": args.data, "documents": len(docs), "clusters": len(set(truth)), "threshold": args.threshold}
    rows: list[tuple[str, PairScores, float | None]] = []
    exact = None
    if not args.no_references:
        shingler = Shingler()
        result["shingles"] = shingler.name
        sets = [shingler(d["text"]) for d in docs]
        t = time.perf_counter()
        exact = ExactJaccard(sets)
        oracle = components(len(docs), *exact.pairs_at_least(args.threshold))
        rows.append((f"exact Jaccard >= {args.threshold} (oracle)", pair_scores(truth, oracle.tolist()), time.perf_counter() - t))
        result["jaccard"] = jaccard_report(docs, exact, args.threshold)
        t = time.perf_counter()
        baseline = DatasketchLSH(args.threshold)
        labels = baseline(sets)
        rows.append((baseline.name, pair_scores(truth, labels.tolist()), time.perf_counter() - t))
        result["datasketch_errors"] = error_pairs(docs, truth, labels.tolist(), exact)
    for path in args.pred:
        labels, missing, unknown = Predictions(path).labels(ids)
        if missing or unknown:
            print(f"{path}: {missing} documents of the truth have no prediction (counted as singletons); "
                  f"{unknown} predicted ids are not in the truth (ignored)", file=sys.stderr)
        rows.append((f"prediction: {path}", pair_scores(truth, labels), None))  # timed by its own run
        result.setdefault("predictions", {})[path] = {"missing": missing, "unknown": unknown}
        if exact is not None:
            result["predictions"][path]["errors"] = error_pairs(docs, truth, labels, exact)

    print(f"{len(docs)} documents, {len(set(truth))} true clusters, {rows[0][1].true_pairs if rows else 0} true pairs"
          + (f"; shingles: {result['shingles']}" if "shingles" in result else ""))
    if "jaccard" in result:
        jr = result["jaccard"]
        print(f"exact Jaccard of true pairs: {jr['positive_quantiles']}, {jr['positive_at_least_threshold']:.1%} >= {args.threshold}")
        print(f"closest different documents: top {jr['closest_negatives_top20'][:5]}, pairs >= 0.3/0.5/0.7/{args.threshold}: "
              f"{list(jr['negative_pairs_at_least'].values())}")
    print(f"\n| method | pred pairs | true pos | precision | recall | F1 | s |\n|---|---|---|---|---|---|---|")
    for name, s, secs in rows:
        print(f"| {name} | {s.pred_pairs} | {s.tp} | {s.precision:.4f} | {s.recall:.4f} | {s.f1:.4f} | "
              f"{'-' if secs is None else f'{secs:.1f}'} |")
    result["scores"] = {name: s.as_dict() for name, s, _ in rows}
    ref = next((s.f1 for name, s, _ in rows if name.startswith("datasketch")), None)
    for name, s, _ in rows:
        if name.startswith("prediction"):
            ok = s.f1 >= GOAL_F1 and (ref is None or s.f1 >= ref)
            print(f"goal (F1 >= {GOAL_F1} and >= datasketch): {name}: {'met' if ok else 'NOT met'}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1, default=str))
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
