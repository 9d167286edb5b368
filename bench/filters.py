"""Benchmark: filter-stage throughput per core, thresher against datatrove's same filters, and the
filters' cost as a share of extraction's.

FineWeb's filter chain (language: English above 0.65 with fastText lid.176; Gopher repetition;
Gopher quality; C4 with FineWeb's settings; FineWeb quality), on two sets of real documents:

  * corpus - the 685 texts of tests/data/filter_corpus.jsonl.gz, repeated ``--copies`` times
             (identical texts: from the second copy on, thresher's spaCy vocabulary cache already
             holds every token, which datatrove's per-call memory zone never keeps, so copies > 1
             flatter thresher; 1 copy is the fair comparison)
  * warc   - the text thresher's extract stage gets from bench/data/pages-1x.warc.gz (the ~611
             real pages of bench/build_warc.py; built if missing), the documents it keeps

Each measurement runs in a fresh subprocess pinned to one core (``--cpu``), with the libraries
imported and the documents in memory before the clock starts (reading is not measured on either
side); model loading (fastText, spaCy's tokenizer) happens lazily inside the timed run on both,
and so does thresher's one-time numba start-up (~0.3 s per process: its n-gram loops' machine code
is cached on disk, but the first compiled call of a process initialises numba).

  * datatrove        ``LocalPipelineExecutor(tasks=1, workers=1)`` over [an in-memory reader of
                     datatrove Documents, LanguageFilter, GopherRepetitionFilter,
                     GopherQualityFilter, C4QualityFilter, FineWebQualityFilter, a counter of the
                     documents that come out]; ``executor.run()`` timed end to end. Also quoted:
                     the time spent inside the filters by datatrove's own step statistics.
  * thresher filter  ``LanguageFilter`` then ``QualityFilter`` (thresher's stages, default
                     configs) called on Arrow batches of 64 rows as its Ray actors call them,
                     including each stage's Arrow <-> Python conversion; rows a stage drops are
                     skipped by the next one, as in datatrove.
  * thresher tag     the same in tag mode: every signal computed for every document.
  * steady           thresher, mode filter, as a long-running Ray actor sees it: the same stage
                     objects first process every other warc document (untimed: models loaded,
                     numba started, caches filled from other texts), then the rest are timed;
                     quoted as the share of extraction the 608 documents would cost at that rate.
  * extract          thresher's ``Extractor(ExtractConfig())`` on 64-row batches of the WARC's
                     records as ``read_unit`` yields them (trafilatura.bare_extraction per page).

The kept documents must be the same on both sides (ids compared; a difference is printed loudly).
Runs alternate (datatrove first on odd repeats, thresher first on even ones) ``--repeats`` times;
the table quotes medians and the min-max spread. Goals: thresher(filter)/datatrove >= 1.0 on
docs/s per core; thresher's filters under 10% of extraction's time on the same pages.

    .venv/bin/python bench/filters.py [--repeats 3] [--copies 1] [--cpu 0] [--profile]
                                      [--out bench/results/filters.json]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extraction import REPO, write_result  # noqa: E402

PYTHON = sys.executable
CORPUS = REPO / "tests" / "data" / "filter_corpus.jsonl.gz"
BATCH_ROWS = 64  # the rows of one Arrow batch a thresher stage is called on
MAX_RECORD_BYTES = 64 * 2**20
SIDES = ("datatrove", "thresher-filter", "thresher-tag")


# --- children: each runs in its own process and prints one JSON line -------------------------

def load_docs(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def pin(cpu: int) -> None:
    if cpu >= 0:
        os.sched_setaffinity(0, {cpu})


def datatrove_child(docs_path: str) -> dict:
    import fasttext  # noqa: F401  imported before the clock, as thresher's side does
    import spacy  # noqa: F401
    from datatrove.data import Document
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                            GopherRepetitionFilter, LanguageFilter)
    from datatrove.utils import lid
    from datatrove.utils.stats import Stats

    from thresher.filters.language import LID176

    def shipped_model(remote_path, **_):
        # datatrove would download lid.176.bin; the shipped lid.176.ftz is the model thresher uses
        assert remote_path == lid.FT176LID.MODEL_URL, remote_path
        return str(LID176.path)

    lid.cached_asset_path_or_download = shipped_model
    docs = [Document(text=d["text"], id=d["id"], metadata={"url": d["url"]}) for d in load_docs(docs_path)]
    kept: list[str] = []

    # Plain functions: the executor deep-copies its pipeline, and copy treats functions as atoms,
    # so the documents are not copied and the counter's list is this one.
    def reader(data, rank, world_size):
        yield from docs

    def counter(data, rank, world_size):
        for doc in data:
            kept.append(doc.id)
            yield doc

    with tempfile.TemporaryDirectory(prefix="thresher-bench-dt-") as logs:
        executor = LocalPipelineExecutor(
            pipeline=[reader, LanguageFilter(languages=["en"], language_threshold=0.65), GopherRepetitionFilter(),
                      GopherQualityFilter(), C4QualityFilter(filter_no_terminal_punct=False), FineWebQualityFilter(),
                      counter],
            tasks=1, workers=1, logging_dir=logs, skip_completed=False)
        started = time.perf_counter()
        stats = executor.run()
        seconds = time.perf_counter() - started
    in_filters = sum(s.time_stats.total for s in stats.stats if isinstance(s, Stats))
    return {"docs": len(docs), "kept": len(kept), "kept_ids": kept, "seconds": seconds,
            "docs_per_s": len(docs) / seconds, "in_filters_s": in_filters}


def thresher_batches(docs_path: str) -> list:
    from thresher.schema import KEPT, empty_row, rows_to_table

    docs = load_docs(docs_path)
    return [rows_to_table([empty_row(id=d["id"], text=d["text"], url=d["url"], status=KEPT)
                           for d in docs[i:i + BATCH_ROWS]]) for i in range(0, len(docs), BATCH_ROWS)]


def thresher_filters(batches: list, mode: str) -> list:
    """The timed part: the stages are built here, so their lazy model loads are inside it."""
    from thresher.config import LanguageConfig, QualityConfig
    from thresher.filters.language import LanguageFilter
    from thresher.filters.quality import QualityFilter

    stages = [LanguageFilter(LanguageConfig(mode=mode)), QualityFilter(QualityConfig(mode=mode))]
    out = []
    for batch in batches:
        for stage in stages:
            batch = stage(batch)
        out.append(batch)
    return out


def thresher_child(docs_path: str, mode: str) -> dict:
    import fasttext  # noqa: F401  imported before the clock, as datatrove's side does
    import spacy  # noqa: F401

    import thresher.filters.language  # noqa: F401
    import thresher.filters.quality  # noqa: F401
    from thresher.schema import ERRORED, KEPT

    batches = thresher_batches(docs_path)
    started = time.perf_counter()
    out = thresher_filters(batches, mode)
    seconds = time.perf_counter() - started
    rows = [row for batch in out for row in batch.select(["id", "status", "flags"]).to_pylist()]
    kept = [row["id"] for row in rows if row["status"] == KEPT and not row["flags"]]
    return {"docs": len(rows), "kept": len(kept), "kept_ids": kept, "seconds": seconds,
            "docs_per_s": len(rows) / seconds, "errored": sum(row["status"] == ERRORED for row in rows)}


def steady_child(docs_path: str) -> dict:
    """Mode filter as a long-running Ray actor runs it: the stages have already processed every
    other document (models loaded, numba started, caches filled from *other* texts); only the
    remaining half is timed."""
    from thresher.config import LanguageConfig, QualityConfig
    from thresher.filters.language import LanguageFilter
    from thresher.filters.quality import QualityFilter

    batches = thresher_batches(docs_path)
    warm, timed = batches[0::2], batches[1::2]
    stages = [LanguageFilter(LanguageConfig()), QualityFilter(QualityConfig())]
    for batch in warm:
        for stage in stages:
            batch = stage(batch)
    started = time.perf_counter()
    for batch in timed:
        for stage in stages:
            batch = stage(batch)
    seconds = time.perf_counter() - started
    docs = sum(b.num_rows for b in timed)
    return {"docs": docs, "seconds": seconds, "docs_per_s": docs / seconds}


def extract_child(warc: str, texts_out: str) -> dict:
    import trafilatura  # noqa: F401  imported before the clock

    from thresher.config import ExtractConfig
    from thresher.pipelines.extract import Extractor
    from thresher.pipelines.readers import read_unit
    from thresher.pipelines.readers.common import Unit
    from thresher.schema import KEPT, rows_to_table

    rows = [row for row in read_unit(Unit(warc, "warc"), MAX_RECORD_BYTES) if row["status"] == KEPT]
    batches = [rows_to_table(rows[i:i + BATCH_ROWS]) for i in range(0, len(rows), BATCH_ROWS)]
    extractor = Extractor(ExtractConfig())
    started = time.perf_counter()
    out = [extractor(batch) for batch in batches]
    seconds = time.perf_counter() - started
    kept = [row for batch in out for row in batch.select(["id", "url", "text", "status"]).to_pylist()
            if row["status"] == KEPT]
    text = "".join(json.dumps({"id": r["id"], "url": r["url"], "text": r["text"]}) + "\n" for r in kept)
    Path(texts_out).write_text(text, encoding="utf-8")
    return {"pages": len(rows), "extracted": len(kept), "seconds": seconds, "pages_per_s": len(rows) / seconds,
            "texts_sha256": hashlib.sha256(text.encode()).hexdigest()}


def profile_child(docs_path: str) -> dict:
    """cProfile of the thresher side's timed part in filter mode: where its time goes."""
    import cProfile
    import io
    import pstats

    import spacy  # noqa: F401

    batches = thresher_batches(docs_path)
    profiler = cProfile.Profile()
    profiler.runcall(thresher_filters, batches, "filter")
    report = io.StringIO()
    stats = pstats.Stats(profiler, stream=report)
    stats.sort_stats("tottime").print_stats(15)
    stats.sort_stats("cumulative").print_stats(r"filters/|thresher/|pyarrow|spacy/tokenizer", 15)
    # pyarrow's to_pylist is compiled without profiling hooks: time the stages' conversions alone,
    # on the batches each stage receives (the input, then the language stage's output)
    from thresher.config import LanguageConfig
    from thresher.filters.language import LanguageFilter
    from thresher.schema import rows_to_table

    language = LanguageFilter(LanguageConfig())
    received = batches + [language(batch) for batch in batches]
    started = time.perf_counter()
    for batch in received:
        rows_to_table(batch.to_pylist())
    arrow = time.perf_counter() - started
    report.write(f"Arrow -> Python -> Arrow, once per stage and batch as FilterStage.__call__ does: {arrow:.2f} s "
                 f"(unprofiled), for {sum(b.num_rows for b in batches)} documents\n")
    return {"profile": report.getvalue()}


# --- parent -----------------------------------------------------------------------------------

def child(args: list[str], cpu: int) -> dict:
    done = subprocess.run([PYTHON, __file__, "--cpu", str(cpu), "--child", *args], capture_output=True, text=True,
                          cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"child {args} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ensure_warc() -> Path:
    path = REPO / "bench" / "data" / "pages-1x.warc.gz"
    if not path.exists():
        sys.path.insert(0, str(REPO / "bench"))
        import build_warc

        n = build_warc.write_warc(str(path), build_warc.corpus_pages(), 1)
        print(f"built {path.relative_to(REPO)}: {n} records", flush=True)
    return path


def write_corpus(path: Path, copies: int) -> int:
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    with open(path, "w", encoding="utf-8") as out:
        for copy in range(copies):
            for i, d in enumerate(docs):
                out.write(json.dumps({"id": f"{copy}-{i}", "url": d["url"], "text": d["text"]}) + "\n")
    return len(docs) * copies


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise(runs: dict, extract: list[dict], steady: list[dict], agreement: dict, args) -> dict:
    import psutil

    sets = {}
    for name, by_side in runs.items():
        dt, tf, tt = (by_side[side] for side in SIDES)
        dt_rate, tf_rate = spread([r["docs_per_s"] for r in dt]), spread([r["docs_per_s"] for r in tf])
        sets[name] = {
            "docs": dt[0]["docs"],
            "kept": {side: by_side[side][0]["kept"] for side in SIDES},
            "kept_disagreements": agreement[name],
            "docs_per_s": {"datatrove": dt_rate, "thresher_filter": tf_rate,
                           "thresher_tag": spread([r["docs_per_s"] for r in tt]),
                           "datatrove_in_filters_only": spread([r["docs"] / r["in_filters_s"] for r in dt])},
            # ratio of medians, and the spread of the per-repeat ratios (each from one alternation)
            "ratio_thresher_filter_over_datatrove": tf_rate["median"] / dt_rate["median"],
            "ratio_per_repeat": spread([f["docs_per_s"] / d["docs_per_s"] for f, d in zip(tf, dt)]),
            "seconds": {side: spread([r["seconds"] for r in by_side[side]]) for side in SIDES},
        }
    ext_s = spread([r["seconds"] for r in extract])
    warc = sets["warc"]["seconds"]
    per_repeat = [f["seconds"] / e["seconds"] for f, e in zip(runs["warc"]["thresher-filter"], extract)]
    result = {
        "machine": {"cpu_count": os.cpu_count(), "pinned_cpu": args.cpu, "python": platform.python_version(),
                    "platform": platform.platform(), "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
                    "load_avg_at_end": os.getloadavg()},
        "repeats": args.repeats, "copies": args.copies, "batch_rows": BATCH_ROWS,
        "sets": sets,
        "extract": {"pages": extract[0]["pages"], "extracted": extract[0]["extracted"], "seconds": ext_s,
                    "pages_per_s": spread([r["pages_per_s"] for r in extract])},
        "filters_over_extraction": {
            "thresher_filter": warc["thresher-filter"]["median"] / ext_s["median"],
            "thresher_tag": warc["thresher-tag"]["median"] / ext_s["median"],
            "datatrove": warc["datatrove"]["median"] / ext_s["median"],
            "thresher_filter_per_repeat": spread(per_repeat),
            # the same 608 documents at a warm actor's rate, over the same extraction time
            "thresher_filter_steady": spread([sets["warc"]["docs"] / st["docs_per_s"] / e["seconds"]
                                              for st, e in zip(steady, extract)])},
        "steady_docs_per_s": spread([st["docs_per_s"] for st in steady]),
        "runs": {name: {side: [{k: v for k, v in r.items() if k != "kept_ids"} for r in rs]
                        for side, rs in by_side.items()} for name, by_side in runs.items()} | {"extract": extract},
    }
    return result


def table(r: dict) -> str:
    def rate(s):
        return f"{s['median']:8.1f}  ({s['min']:.1f}-{s['max']:.1f})"

    cpu = r["machine"]["pinned_cpu"]
    pinned = f"pinned to cpu {cpu}" if cpu >= 0 else "not pinned"
    lines = [f"filter benchmark: medians (min-max) of {r['repeats']} alternating repeats, one process per run, "
             f"{pinned}; {r['machine']['cpu_count']} CPUs, load avg at end {r['machine']['load_avg_at_end'][0]:.2f}"]
    for name, s in r["sets"].items():
        label = f"corpus x{r['copies']}" if name == "corpus" else "warc (extracted)"
        d = s["docs_per_s"]
        lines += [
            f"  {label}: {s['docs']} docs; kept: datatrove {s['kept']['datatrove']}, thresher filter "
            f"{s['kept']['thresher-filter']}, thresher tag (unflagged) {s['kept']['thresher-tag']}",
            f"    datatrove LocalPipelineExecutor     {rate(d['datatrove'])} docs/s",
            f"    datatrove, time inside its filters  {rate(d['datatrove_in_filters_only'])} docs/s",
            f"    thresher, mode filter               {rate(d['thresher_filter'])} docs/s",
            f"    thresher, mode tag                  {rate(d['thresher_tag'])} docs/s",
            f"    ratio thresher(filter)/datatrove    {s['ratio_thresher_filter_over_datatrove']:8.2f}  "
            f"({s['ratio_per_repeat']['min']:.2f}-{s['ratio_per_repeat']['max']:.2f} per repeat)   (goal >= 1.0)",
        ]
        if s["kept_disagreements"]:
            lines.append(f"    !!! KEPT DOCUMENTS DIFFER: {s['kept_disagreements']}")
    e, f = r["extract"], r["filters_over_extraction"]
    lines += [
        f"  extract (thresher Extractor): {e['pages']} pages, {e['extracted']} with text   "
        f"{rate(e['pages_per_s'])} pages/s, {e['seconds']['median']:.1f} s",
        f"    thresher filters / extraction, mode filter  {100 * f['thresher_filter']:6.1f}%   "
        f"({100 * f['thresher_filter_per_repeat']['min']:.1f}-{100 * f['thresher_filter_per_repeat']['max']:.1f}% "
        f"per repeat)   (goal < 10%)",
        f"    thresher filters / extraction, mode filter, warm actor (every other document first)  "
        f"{100 * f['thresher_filter_steady']['median']:6.1f}%   ({rate(r['steady_docs_per_s'])} docs/s)",
        f"    thresher filters / extraction, mode tag     {100 * f['thresher_tag']:6.1f}%",
        f"    datatrove filters / extraction              {100 * f['datatrove']:6.1f}%",
    ]
    return "\n".join(lines)


def disagreements(by_side: dict) -> dict:
    """Kept-id differences between datatrove and each thresher mode, in every repeat."""
    found = {}
    expected = set(by_side["datatrove"][0]["kept_ids"])
    for side in SIDES:
        for i, run in enumerate(by_side[side]):
            got = set(run["kept_ids"])
            if got != expected:
                found[f"{side}#{i + 1}"] = {"only_datatrove": sorted(expected - got)[:20],
                                            "only_this": sorted(got - expected)[:20],
                                            "counts": [len(expected), len(got)]}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--copies", type=int, default=1, help="copies of the filter corpus in the corpus set")
    parser.add_argument("--cpu", type=int, default=0, help="core every measured process is pinned to; -1: no pinning")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile summary of the thresher side")
    parser.add_argument("--out", default="bench/results/filters.json")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        pin(args.cpu)
        kind, *rest = args.child
        result = {"datatrove": datatrove_child, "thresher-filter": lambda p: thresher_child(p, "filter"),
                  "thresher-tag": lambda p: thresher_child(p, "tag"), "extract": extract_child,
                  "steady": steady_child,
                  "profile": profile_child}[kind](*rest)
        print(json.dumps(result))
        return

    warc = ensure_warc()
    with tempfile.TemporaryDirectory(prefix="thresher-bench-filters-") as tmp:
        paths = {"corpus": Path(tmp) / "corpus.jsonl", "warc": Path(tmp) / "warc.jsonl"}
        write_corpus(paths["corpus"], args.copies)
        runs = {name: {side: [] for side in SIDES} for name in paths}
        extract, steady = [], []
        for i in range(args.repeats):
            extract.append(child(["extract", str(warc), str(paths["warc"])], args.cpu))
            if extract[-1]["texts_sha256"] != extract[0]["texts_sha256"]:
                print("!!! extraction gave different texts from one repeat to the next", flush=True)
            print(f"[{i + 1}/{args.repeats}] extract          {extract[-1]['pages_per_s']:7.1f} pages/s", flush=True)
            order = SIDES if i % 2 == 0 else SIDES[::-1]
            for name, path in paths.items():
                for side in order:
                    runs[name][side].append(child([side, str(path)], args.cpu))
                    print(f"[{i + 1}/{args.repeats}] {name:<6} {side:<16}{runs[name][side][-1]['docs_per_s']:7.1f} "
                          f"docs/s", flush=True)
            steady.append(child(["steady", str(paths["warc"])], args.cpu))
            print(f"[{i + 1}/{args.repeats}] warc   steady filter   {steady[-1]['docs_per_s']:7.1f} docs/s", flush=True)
        profile = child(["profile", str(paths["corpus"])], args.cpu)["profile"] if args.profile else None

    agreement = {name: disagreements(by_side) for name, by_side in runs.items()}
    result = summarise(runs, extract, steady, agreement, args)
    if profile:
        print("cProfile of thresher, mode filter, on the corpus set:\n" + profile.strip())
        result["thresher_profile"] = profile
    print(table(result))
    write_result(result, args.out)


if __name__ == "__main__":
    main()
