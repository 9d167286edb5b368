"""The decontaminate stage: documents that share word n-grams with a benchmark item.

A benchmark is a JSONL or Parquet file, one item per row, with text fields (question, answer,
code, or those named in the config). Each field is normalised (lower case, Unicode word
characters; punctuation and spacing dropped, so a reformatted copy still matches) and cut into
word n-grams; each n-gram is hashed to 64 bits (xxh3 of each word, combined by a polynomial
over the window) and the index is a sorted array of those hashes with the item each came from.
A document's n-grams are hashed the same way and looked up by binary search; it is contaminated
when it shares at least ``min_matches`` distinct n-grams with one item.

Defaults, and why: 13-word n-grams (GPT-3's and Phi-4's choice) and a single shared n-gram
(GPT-3's rule): 13 consecutive words of a benchmark item almost never occur by chance (none of
685 real texts matches HumanEval, ``tests/test_decontaminate.py``, nor 20,164 real BIG-bench and
HumanEval items, ``bench/decontaminate.py``, where 7-grams match 6 of them), and a model judged
on a benchmark must not see even one such passage. N-grams never span two fields
of an item, and an n-gram of numbers only is left out: a test case's "1 2 3 ... 13" matched 2
of 685 real web texts, and a count or a table of figures says nothing about contamination. An
item with fewer than ``ngram`` words in every field cannot be matched (14,043 of 20,000
BIG-bench items at 13 words, 12,409 at 7: arithmetic, short questions); ``BenchmarkIndex.stats``
counts them per benchmark (``short_items``) so the loss is visible.

The benchmarks travel inside the stage: the driver reads the files when the run is configured,
and the stage carries their items (not the paths) to every Ray actor, wherever it runs, so every
actor matches against the same items, whatever happens to the files later and whether or not its
node can see them. Each actor builds the index once, from those items.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from xxhash import xxh3_64_intdigest

from thresher.classifiers.model_dir import sha256_file
from thresher.config import BenchmarkConfig, DecontaminateConfig
from thresher.filters.base import FilterStage
from thresher.schema import CONTAMINATION, KEPT

DEFAULT_FIELDS = ("question", "answer", "code")
_WORD = re.compile(r"\w+")
_BASE = np.uint64(0x9E3779B97F4A7C15)  # odd, so the polynomial hash spreads every word's bits


class BenchmarkError(ValueError):
    """A benchmark file that cannot be used, phrased as one line naming the file and the problem."""


@dataclass(frozen=True)
class Benchmark:
    name: str
    path: str
    sha256: str
    ids: list[str]
    texts: list[list[str]]  # per item, its fields' texts


def _rows(path: str):
    """(line or row number from 1, object) of a JSONL (plain, .gz, .zst) or Parquet file."""
    if path.lower().endswith(".parquet"):
        rows = (row for batch in pq.ParquetFile(path).iter_batches(batch_size=4096) for row in batch.to_pylist())
        yield from enumerate(rows, 1)
        return
    from thresher.pipelines.readers.jsonl import MalformedLine, json_objects

    try:
        yield from json_objects(path)
    except MalformedLine as e:
        raise BenchmarkError(str(e)) from None


def _as_text(value) -> str:
    """A field's text: lists (choices, test cases) and mappings joined, numbers spelled out."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return "\n".join(_as_text(v) for v in value)
    return str(value)


def read_benchmark(config: BenchmarkConfig) -> Benchmark:
    path = config.path
    name = config.name or path.replace("\\", "/").rsplit("/", 1)[-1].split(".", 1)[0]
    try:
        sha256 = sha256_file(path)
        fields, ids, texts = config.fields, [], []
        for number, row in _rows(path):
            if fields is None:
                fields = [f for f in DEFAULT_FIELDS if f in row]
                if not fields:
                    raise BenchmarkError(f"{path}: the first item has none of the fields {', '.join(DEFAULT_FIELDS)} "
                                         f"(it has {', '.join(row) or 'none'}); name its text fields with `fields:`")
            missing = [f for f in (*fields, *([config.id] if config.id else [])) if f not in row]
            if missing:
                raise BenchmarkError(f"{path}: item {len(ids)} (line {number}) has no field {missing[0]!r}")
            ids.append(str(row[config.id]) if config.id else str(len(ids)))
            texts.append([_as_text(row[f]) for f in fields])
    except OSError as e:
        raise BenchmarkError(f"{path}: cannot read benchmark: {e.strerror or e}") from None
    except (EOFError, ValueError) as e:
        if isinstance(e, BenchmarkError):
            raise
        raise BenchmarkError(f"{path}: cannot read benchmark: {type(e).__name__}: {e}") from None
    if not ids:
        raise BenchmarkError(f"{path}: the benchmark has no items")
    return Benchmark(name, path, sha256, ids, texts)


def read_benchmarks(configs: list[BenchmarkConfig]) -> list[Benchmark]:
    benchmarks = [read_benchmark(c) for c in configs]
    names = [b.name for b in benchmarks]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise BenchmarkError(f"two benchmarks are named {twice[0]!r}: give one a `name:`")
    return benchmarks


def ngram_hashes(text: str, n: int, distinct: bool = True) -> np.ndarray:
    """The hashes of the text's normalised word n-grams, each once unless ``distinct`` is False
    (empty under n words)."""
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return np.empty(0, np.uint64)
    word_hashes = np.fromiter(map(xxh3_64_intdigest, words), np.uint64, len(words))
    windows = len(words) - n + 1
    hashes = word_hashes[:windows].copy()
    for i in range(1, n):  # h = (...(w0 * B + w1) * B + ...) + w_{n-1}, mod 2**64
        hashes *= _BASE
        hashes += word_hashes[i:i + windows]
    numbers = np.cumsum(np.fromiter(map(str.isdigit, words), np.int64, len(words)))
    numbers = numbers[n - 1:] - np.concatenate(([0], numbers[:windows - 1]))
    hashes = hashes[numbers < n]
    return np.unique(hashes) if distinct else hashes


@dataclass(frozen=True)
class Match:
    benchmark: str
    item: str
    ngrams: int  # distinct n-grams the document shares with the item


class BenchmarkIndex:
    """Every n-gram hash of every item, sorted, with the item it came from."""

    def __init__(self, benchmarks: list[Benchmark], ngram: int):
        self.ngram = ngram
        self.items: list[tuple[str, str]] = []
        self.stats: dict[str, dict] = {}
        hashes, refs = [], []
        for bench in benchmarks:
            short = ngrams = 0
            for item_id, fields in zip(bench.ids, bench.texts):
                item_hashes = np.unique(np.concatenate([ngram_hashes(t, ngram) for t in fields]))
                if not len(item_hashes):
                    short += 1
                    continue
                hashes.append(item_hashes)
                refs.append(np.full(len(item_hashes), len(self.items), np.int64))
                self.items.append((bench.name, item_id))
                ngrams += len(item_hashes)
            self.stats[bench.name] = {"items": len(bench.ids), "short_items": short, "ngrams": ngrams}
        hashes = np.concatenate(hashes) if hashes else np.empty(0, np.uint64)
        refs = np.concatenate(refs) if refs else np.empty(0, np.int64)
        order = np.argsort(hashes, kind="stable")
        self.hashes, self.refs = hashes[order], refs[order]

    def match(self, text: str) -> Match | None:
        """The item sharing the most distinct n-grams with the text (the first such item on a tie)."""
        hashes = ngram_hashes(text, self.ngram, distinct=False)  # hits are rare: made distinct after the lookup
        left = np.searchsorted(self.hashes, hashes)
        found = self.hashes[np.minimum(left, len(self.hashes) - 1)] == hashes
        if not found.any():
            return None
        hashes = np.unique(hashes[found])
        left = np.searchsorted(self.hashes, hashes, "left")
        right = np.searchsorted(self.hashes, hashes, "right")
        sizes = right - left  # an n-gram may come from several items
        positions = np.repeat(left - np.cumsum(sizes) + sizes, sizes) + np.arange(sizes.sum())
        items, counts = np.unique(self.refs[positions], return_counts=True)
        best = int(np.argmax(counts))
        benchmark, item = self.items[int(items[best])]
        return Match(benchmark, item, int(counts[best]))


class Decontaminator(FilterStage):
    stage = "decontaminate"

    def __init__(self, config: DecontaminateConfig):
        super().__init__(config.mode)
        self.benchmarks = read_benchmarks(config.benchmarks)
        self.ngram, self.min_matches = config.ngram, config.min_matches
        self._index = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_index": None}  # each process builds its own (the items travel, not the index)

    @property
    def index(self) -> BenchmarkIndex:
        if self._index is None:
            self._index = BenchmarkIndex(self.benchmarks, self.ngram)
        return self._index

    def __call__(self, batch: pa.Table) -> pa.Table:
        """Matches the kept rows' texts; only a batch with a contaminated document goes through
        the per-row verdicts (a batch's conversion to Python rows costs more than its matching)."""
        kept = pc.equal(batch.column("status"), KEPT).to_numpy(zero_copy_only=False)
        found = [self.index.match(text or "") if k else None for k, text in zip(kept, batch.column("text").to_pylist())]
        found = [{"benchmark": m.benchmark, "item": m.item, "ngrams": m.ngrams}
                 if m is not None and m.ngrams >= self.min_matches else None for m in found]
        if not any(found):
            return batch
        column = batch.schema.get_field_index("contamination")
        return super().__call__(batch.set_column(column, "contamination", pa.array(found, CONTAMINATION)))

    def process(self, row: dict) -> str | None:
        return "contaminated" if row["contamination"] is not None else None
