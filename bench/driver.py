"""Benchmark: the driver's share of a run, the one part of the plan that does not spread over a
cluster. Every row the stage actors produce reaches the driver, which commits it to the work
journal (DIR/.work) and, at the end, replays the journal into the output writer (shards, manifest
tallies, the dedup key index and the corpus-wide dedup). Its throughput caps how many stage
actors one run can feed, whatever the cluster's size: docs/SCALING.md extrapolates from it.

Rows: the 685 real texts of tests/data/filter_corpus.jsonl.gz (mean ~5 KB), repeated under
distinct ids to ``--docs`` rows, ``--kept`` of them kept and the rest rejected with their text
(as the contract writes rejected documents); each kept copy has its words shuffled (seeded), so
that kept documents are not near duplicates of each other and dedup clusters are singletons, as
in most of a crawl; dedup keys are computed beforehand, as the stage actors would. One process pinned to ``--cpu``; three phases timed separately, as ``thresher run`` does
them: journal (commit the rows of 64-row batches, items of ``--item-rows``), replay + write
(dedup off), and replay + write with dedup (index, links, clusters, final shards). Medians of
``--repeats``; docs/s, MB/s of text, peak RSS.

    .venv/bin/python bench/driver.py [--docs 200000] [--kept 0.2] [--repeats 3] [--cpu 0]
                                     [--out bench/results/driver.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extraction import REPO, peak_rss_mb, write_result  # noqa: E402

from thresher.config import DedupConfig, OutputConfig  # noqa: E402
from thresher.filters.dedup import DedupKeys  # noqa: E402
from thresher.pipelines.journal import WorkJournal  # noqa: E402
from thresher.pipelines.output import OutputWriter  # noqa: E402
from thresher.schema import ITEM_BEGIN, ITEM_END, KEPT, REJECTED, empty_row, rows_to_table  # noqa: E402

BATCH_ROWS = 64


def batches(texts: list[str], docs: int, kept_share: float, item_rows: int, dedup: DedupKeys) -> list[pa.Table]:
    """64-row batches as the stage actors send them: item begin/end markers, kept and rejected rows."""
    out, rows = [], []
    keep_every = round(1 / kept_share)
    for n in range(docs):
        item = n // item_rows
        if n % item_rows == 0:
            rows.append(empty_row(status=ITEM_BEGIN, item=item))
        kept = n % keep_every == 0
        text = texts[n % len(texts)]
        if kept:
            words = text.split(" ")
            random.Random(n).shuffle(words)
            text = " ".join(words)
        row = empty_row(id=f"{n:012d}", source="bench", record=n, format="warc", url=f"https://example.org/{n}",
                        text=text, language="en", language_score=0.9,
                        status=KEPT if kept else REJECTED, stage=None if kept else "quality",
                        reason=None if kept else "gopher_short_doc", item=item)
        rows.append(row)
        if n % item_rows == item_rows - 1 or n == docs - 1:
            rows.append(empty_row(status=ITEM_END, item=item))
        if len(rows) >= BATCH_ROWS or n == docs - 1:
            out.append(dedup(rows_to_table(rows)))
            rows = []
    return out


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def one_run(prepared: list[pa.Table], workdir: str, dedup: DedupConfig | None) -> dict:
    out = tempfile.mkdtemp(dir=workdir)
    journal = WorkJournal(out, "bench")

    def commit():
        for batch in prepared:
            journal.add(batch)
        journal.close()

    def write():
        writer = OutputWriter(OutputConfig(path=out), dedup)
        for batch in journal.replay(2000):
            writer.add(batch)
        writer.commit(["quality"], {})

    seconds = {"journal": timed(commit), "write": timed(write)}
    index = Path(out) / "dedup"
    if index.is_dir():  # the dedup state a later run keeps: key partitions and ids
        seconds["index_bytes"] = sum(f.stat().st_size for f in index.iterdir())
    shutil.rmtree(out)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=200_000)
    parser.add_argument("--kept", type=float, default=0.2, help="share of rows kept (the rest rejected)")
    parser.add_argument("--item-rows", type=int, default=2000, help="rows per work item")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpu", type=int, default=0)
    parser.add_argument("--out", default="bench/results/driver.json")
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.cpu})
    with gzip.open(REPO / "tests" / "data" / "filter_corpus.jsonl.gz", "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    dedup_config = DedupConfig()
    prepared = batches(texts, args.docs, args.kept, args.item_rows, DedupKeys(dedup_config))
    text_mb = sum(len(texts[n % len(texts)].encode()) for n in range(args.docs)) / 1e6
    runs = {"journal": [], "write, dedup off": [], "write, dedup on": []}
    index_bytes = 0
    with tempfile.TemporaryDirectory(prefix="thresher-bench-driver-", dir=REPO / "bench" / "data") as workdir:
        for repeat in range(args.repeats):
            off = one_run(prepared, workdir, None)
            on = one_run(prepared, workdir, dedup_config)
            runs["journal"] += [off["journal"], on["journal"]]
            runs["write, dedup off"].append(off["write"])
            runs["write, dedup on"].append(on["write"])
            index_bytes = on["index_bytes"]
            print(f"round {repeat + 1}: journal {off['journal']:.1f} / {on['journal']:.1f} s, write {off['write']:.1f} s, "
                  f"write with dedup {on['write']:.1f} s", flush=True)
    peak_mb = peak_rss_mb()
    result = {"docs": args.docs, "kept_share": args.kept, "text_mb": text_mb, "repeats": args.repeats,
              "machine": platform.node(), "peak_rss_mb": peak_mb, "phases": {}}
    print(f"\n{args.docs} rows ({text_mb:.0f} MB of text, {args.kept:.0%} kept), one core; peak RSS {peak_mb:.0f} MB")
    print(f"{'phase':18} {'seconds':>8} {'docs/s':>9} {'MB/s':>6}")
    for phase, values in runs.items():
        median = statistics.median(values)
        result["phases"][phase] = {"seconds": median, "min": min(values), "max": max(values),
                                   "docs_per_s": args.docs / median, "mb_per_s": text_mb / median}
        print(f"{phase:18} {median:8.1f} {args.docs / median:9.0f} {text_mb / median:6.0f}")
    total = statistics.median(runs["journal"]) + statistics.median(runs["write, dedup on"])
    result["driver_docs_per_s"] = args.docs / total
    kept = len(range(0, args.docs, round(1 / args.kept)))
    result["dedup_index_bytes_per_kept_doc"] = index_bytes / kept
    print(f"dedup index (DIR/dedup): {index_bytes / 1e6:.1f} MB for {kept} kept documents, {index_bytes / kept:.0f} bytes each")
    print(f"{'whole driver path':18} {total:8.1f} {args.docs / total:9.0f} {text_mb / total:6.0f}  (journal + write with dedup)")
    write_result(result, args.out)


if __name__ == "__main__":
    main()
