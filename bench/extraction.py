"""Benchmark: HTML extraction throughput and peak memory, pipeline vs a bare trafilatura loop.

What it measures, on the real corpus pages of bench/build_warc.py (~611 pages; built into
bench/data/ if missing):

  * baseline   - one process, a plain loop of ``trafilatura.extract`` over the pages of the 1x WARC,
                 with the pipeline's options. Pages are loaded into memory first (untimed); only the
                 loop is timed. Runs in a fresh subprocess. -> pages/s
  * pipeline   - ``thresher run pipelines/configs/sample.yaml --input WARC`` as a subprocess, on the
                 1x and the {copies}x WARC. Rates quoted:
                   end-to-end  counts.read / wall time measured from outside (interpreter, imports,
                               Ray start-up and shut-down, reading, extraction, writing Parquet)
                   in-driver   counts.read / manifest run.wall_seconds (after imports; still includes
                               ray.init and writing)
                   marginal    (read_Nx - read_1x) / (wall_Nx - wall_1x), end-to-end walls: the
                               steady-state rate with every fixed start-up cost cancelled out
  * peak memory - while each pipeline subprocess runs, RSS (and USS, if sampling it is cheap) summed
                 over the whole process tree (driver, raylet, GCS, Ray workers...), sampled every
                 0.2 s; peak at 1x vs {copies}x shows whether memory grows with input size.

Baseline and pipeline runs alternate ``--repeats`` times; the table quotes medians. Goals: pipeline
end-to-end >= 1.8x baseline on 2 cores; peak RSS does not grow with input size.

    .venv/bin/python bench/extraction.py [--copies 5] [--repeats 3] [--out bench/results/extraction.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
THRESHER = str(Path(sys.executable).parent / "thresher")
OPTIONS = dict(with_metadata=True, favor_precision=True, include_comments=False, include_tables=True,
               deduplicate=False)
SAMPLE_EVERY_S = 0.2
# The sample config runs every stage; this benchmark measures reading and extraction alone.
EXTRACT_ONLY = [f"--set=stages.{stage}=false" for stage in ("url", "language", "quality", "pii", "decontaminate", "dedup", "classify", "tokens")]
USS_BUDGET_S = 0.1  # a USS sample slower than this (half the period) turns USS sampling off for the run


def ensure_warc(copies: int) -> Path:
    path = REPO / "bench" / "data" / f"pages-{copies}x.warc.gz"
    if not path.exists():
        sys.path.insert(0, str(REPO / "bench"))
        import build_warc

        n = build_warc.write_warc(str(path), build_warc.corpus_pages(), copies)
        print(f"built {path.relative_to(REPO)}: {n} records", flush=True)
    return path


def baseline_child(warc: str) -> None:
    """Runs in the subprocess: load pages, time the bare extract loop, print JSON."""
    import logging

    import trafilatura
    from warcio.archiveiterator import ArchiveIterator

    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)  # as the pipeline does
    pages = []
    with open(warc, "rb") as f:
        for record in ArchiveIterator(f):
            if record.rec_type == "response" and record.http_headers is not None:  # what the pipeline reads
                pages.append((record.rec_headers.get_header("WARC-Target-URI"), record.content_stream().read()))
    started = time.perf_counter()
    extracted = sum(1 for url, html in pages if trafilatura.extract(html, url=url, **OPTIONS))
    seconds = time.perf_counter() - started
    print(json.dumps({"pages": len(pages), "extracted": extracted, "seconds": seconds,
                      "pages_per_s": len(pages) / seconds,
                      "peak_rss_mb": peak_rss_mb()}))


def run_baseline(warc: Path) -> dict:
    done = subprocess.run([PYTHON, __file__, "--baseline-child", str(warc)], capture_output=True, text=True,
                          check=True, cwd=REPO)
    return json.loads(done.stdout.strip().splitlines()[-1])


def tree_memory(root: psutil.Process, with_uss: bool) -> tuple[int, int | None]:
    """(RSS, USS or None) in bytes summed over root and all its descendants still alive."""
    rss = uss = 0
    try:
        procs = [root] + root.children(recursive=True)
    except psutil.Error:
        return 0, None
    for proc in procs:
        try:
            if with_uss:
                info = proc.memory_full_info()
                rss, uss = rss + info.rss, uss + info.uss
            else:
                rss += proc.memory_info().rss
        except psutil.Error:  # a process that ended between listing and reading
            pass
    return rss, uss if with_uss else None


def run_pipeline(warc: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="thresher-bench-") as out:
        cmd = [THRESHER, "run", "pipelines/configs/sample.yaml", "--input", str(warc), "--output", out,
               "--set", "execution.progress=false", *EXTRACT_ONLY]
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        root = psutil.Process(proc.pid)
        peak_rss, peak_uss, with_uss, samples = 0, 0, True, 0
        while proc.poll() is None:
            t = time.perf_counter()
            rss, uss = tree_memory(root, with_uss)
            if with_uss and time.perf_counter() - t > USS_BUDGET_S:
                with_uss = False
            peak_rss, peak_uss, samples = max(peak_rss, rss), max(peak_uss, uss or 0), samples + 1
            time.sleep(max(0.0, SAMPLE_EVERY_S - (time.perf_counter() - t)))
        wall = time.perf_counter() - started
        log = proc.stdout.read()
        if proc.returncode != 0:
            raise RuntimeError(f"thresher run failed (exit {proc.returncode}):\n{log}")
        manifest = json.loads((Path(out) / "manifest.json").read_text())
    read, inside = manifest["counts"]["read"], manifest["run"]["wall_seconds"]
    return {"read": read, "kept": manifest["counts"]["kept"], "errored": manifest["counts"]["errored"],
            "wall_s": wall, "driver_wall_s": inside, "docs_per_s": read / wall, "driver_docs_per_s": read / inside,
            "peak_rss_mb": peak_rss / 2**20, "peak_uss_mb": peak_uss / 2**20 if with_uss else None,
            "samples": samples, "ray_cpus": manifest["run"].get("ray_cpus")}


def median(runs: list[dict], key: str):
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def summarise(copies: int, base: list[dict], one: list[dict], many: list[dict]) -> dict:
    b, p1, pn = (median(base, "pages_per_s"), median(one, "docs_per_s"), median(many, "docs_per_s"))
    wall_1, wall_n = median(one, "wall_s"), median(many, "wall_s")
    read_1, read_n = median(one, "read"), median(many, "read")
    marginal = (read_n - read_1) / (wall_n - wall_1) if wall_n > wall_1 else None
    rss_1, rss_n = median(one, "peak_rss_mb"), median(many, "peak_rss_mb")
    uss_1, uss_n = median(one, "peak_uss_mb"), median(many, "peak_uss_mb")
    return {
        "machine": {"cpu_count": os.cpu_count(), "cpu_affinity": len(os.sched_getaffinity(0)),
                    "python": platform.python_version(), "platform": platform.platform(),
                    "ram_gb": round(psutil.virtual_memory().total / 2**30, 1)},
        "copies": copies, "repeats": len(base),
        "baseline_pages_per_s": b,
        "pipeline_1x": {"docs_per_s_end_to_end": p1, "docs_per_s_in_driver": median(one, "driver_docs_per_s"),
                        "wall_s": wall_1, "read": read_1},
        f"pipeline_{copies}x": {"docs_per_s_end_to_end": pn, "docs_per_s_in_driver": median(many, "driver_docs_per_s"),
                                "wall_s": wall_n, "read": read_n},
        "pipeline_marginal_docs_per_s": marginal,
        "ratio_pipeline_1x_over_baseline": p1 / b,
        f"ratio_pipeline_{copies}x_over_baseline": pn / b,
        "ratio_marginal_over_baseline": marginal / b if marginal else None,
        "peak_rss_mb": {"1x": rss_1, f"{copies}x": rss_n, "ratio": rss_n / rss_1},
        "peak_uss_mb": {"1x": uss_1, f"{copies}x": uss_n, "ratio": uss_n / uss_1 if uss_1 and uss_n else None},
        "baseline_peak_rss_mb": median(base, "peak_rss_mb"),
        "runs": {"baseline": base, "pipeline_1x": one, f"pipeline_{copies}x": many},
    }


def table(r: dict) -> str:
    n, m = r["copies"], r["machine"]
    fmt = lambda v, spec=".1f": "n/a" if v is None else format(v, spec)  # noqa: E731
    p1, pn = r["pipeline_1x"], r[f"pipeline_{n}x"]
    lines = [
        f"extraction benchmark: medians of {r['repeats']} repeats; {m['cpu_count']} CPUs "
        f"({m['cpu_affinity']} usable), {m['ram_gb']} GB RAM, Python {m['python']}",
        f"  baseline, 1 process, trafilatura.extract loop     {fmt(r['baseline_pages_per_s']):>8} pages/s",
        f"  pipeline 1x  end to end (incl. Ray start-up)      {fmt(p1['docs_per_s_end_to_end']):>8} docs/s"
        f"   ({p1['read']:.0f} docs in {p1['wall_s']:.1f}s)",
        f"  pipeline {n}x  end to end (incl. Ray start-up)      {fmt(pn['docs_per_s_end_to_end']):>8} docs/s"
        f"   ({pn['read']:.0f} docs in {pn['wall_s']:.1f}s)",
        f"  pipeline 1x  in driver (no imports; incl. ray.init) {fmt(p1['docs_per_s_in_driver']):>6} docs/s",
        f"  pipeline marginal, 1x->{n}x (no start-up costs)     {fmt(r['pipeline_marginal_docs_per_s']):>8} docs/s",
        f"  ratio pipeline/baseline, 1x end to end            {fmt(r['ratio_pipeline_1x_over_baseline'], '.2f'):>8}"
        f"   (goal >= 1.8 on 2 cores)",
        f"  ratio pipeline/baseline, {n}x end to end            {fmt(r[f'ratio_pipeline_{n}x_over_baseline'], '.2f'):>8}",
        f"  ratio pipeline/baseline, marginal                 {fmt(r['ratio_marginal_over_baseline'], '.2f'):>8}",
        f"  peak RSS, process tree   1x {fmt(r['peak_rss_mb']['1x'], '.0f')} MB   {n}x "
        f"{fmt(r['peak_rss_mb'][f'{n}x'], '.0f')} MB   ratio {fmt(r['peak_rss_mb']['ratio'], '.2f')}"
        f"   (goal: no growth with input size)",
        f"  peak USS, process tree   1x {fmt(r['peak_uss_mb']['1x'], '.0f')} MB   {n}x "
        f"{fmt(r['peak_uss_mb'][f'{n}x'], '.0f')} MB   ratio {fmt(r['peak_uss_mb']['ratio'], '.2f')}",
        f"  baseline peak RSS (1 process)  {fmt(r['baseline_peak_rss_mb'], '.0f')} MB",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=5, help="size of the large input, in copies of the pages")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="bench/results/extraction.json")
    parser.add_argument("--baseline-child", metavar="WARC", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_child:
        return baseline_child(args.baseline_child)
    if args.copies < 2:
        parser.error("--copies must be at least 2 (1x is always run)")

    warc_1, warc_n = ensure_warc(1), ensure_warc(args.copies)
    base, one, many = [], [], []
    for i in range(args.repeats):
        base.append(run_baseline(warc_1))
        print(f"[{i + 1}/{args.repeats}] baseline    {base[-1]['pages_per_s']:.1f} pages/s", flush=True)
        for warc, runs, label in ((warc_1, one, "1x"), (warc_n, many, f"{args.copies}x")):
            runs.append(run_pipeline(warc))
            print(f"[{i + 1}/{args.repeats}] pipeline {label:<3}{runs[-1]['docs_per_s']:.1f} docs/s end to end, "
                  f"peak RSS {runs[-1]['peak_rss_mb']:.0f} MB", flush=True)

    result = summarise(args.copies, base, one, many)
    print(table(result))
    write_result(result, args.out)


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not getrusage's ru_maxrss: Linux keeps the high-water mark
    of the image a process exec'd from, so a child forked by a big benchmark driver reported the
    driver's size (measured: a 290 MB copy reported 526 MB)."""
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def write_result(result: dict, path: str) -> None:
    """A benchmark's JSON, relative paths under the repository root."""
    out = Path(path) if Path(path).is_absolute() else REPO / path
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")


if __name__ == "__main__":
    main()
