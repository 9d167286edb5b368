"""Benchmark: the dedup stage end to end at scale. ``thresher run`` with only the dedup stage (exact
and MinHash LSH 14 x 8, defaults) over bench/dedup_data.py's scale set (1,000,000 short real
paragraphs, 30% of them near copies), on this machine's embedded Ray; wall time, peak memory of the
whole process tree (RSS and USS, sampled every 0.2 s), the manifest's dedup figures, then pair
precision / recall / F1 of the clusters against the set's ground truth (bench/dedup_quality.py).

    .venv/bin/python bench/dedup_scale.py [--data bench/data/dedup_scale] [--batch-rows 1024]

Goal (issue #4): 1,000,000 documents in under 10 minutes and under 6 GB on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extraction import REPO, SAMPLE_EVERY_S, THRESHER, tree_memory, write_result  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(REPO / "bench/data/dedup_scale"), help="scale set folder or one shard")
    ap.add_argument("--batch-rows", type=int, default=1024, help="execution.batch_rows")
    ap.add_argument("--no-score", action="store_true")
    ap.add_argument("--out", default=str(REPO / "bench/results/dedup_scale.json"))
    args = ap.parse_args()
    if not Path(args.data).exists():
        sys.exit(f"{args.data} is missing: build it with .venv/bin/python bench/dedup_data.py scale")
    work = Path(tempfile.mkdtemp(prefix="thresher-dedup-scale-", dir=REPO / "bench" / "data"))
    try:
        config = work / "config.yaml"
        output = work / "out"
        config.write_text(yaml.safe_dump({
            "input": {"paths": [str(Path(args.data).resolve())], "format": "parquet"},
            "output": {"path": str(output)},
            "stages": {"dedup": {}},
            "execution": {"progress": False, "batch_rows": args.batch_rows},
        }))
        started = time.perf_counter()
        proc = subprocess.Popen([THRESHER, "run", str(config)], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        root = psutil.Process(proc.pid)
        peak_rss = peak_uss = 0
        while proc.poll() is None:
            rss, uss = tree_memory(root, True)
            peak_rss, peak_uss = max(peak_rss, rss), max(peak_uss, uss or 0)
            time.sleep(SAMPLE_EVERY_S)
        wall = time.perf_counter() - started
        log = proc.stdout.read()
        if proc.returncode != 0:
            sys.exit(f"thresher run failed (exit {proc.returncode}):\n{log[-3000:]}")
        manifest = json.loads((output / "manifest.json").read_text())
        result = {
            "documents": manifest["counts"]["read"], "kept": manifest["counts"]["kept"],
            "rejected": manifest["counts"]["rejected"], "wall_s": round(wall, 1),
            "docs_per_s": round(manifest["counts"]["read"] / wall),
            "peak_rss_gb": round(peak_rss / 2**30, 2), "peak_uss_gb": round(peak_uss / 2**30, 2),
            "dedup": manifest["dedup"], "batch_rows": args.batch_rows, "ray_cpus": manifest["run"]["ray_cpus"],
        }
        print(f"{result['documents']:,} documents in {wall:.0f} s ({result['docs_per_s']:,} docs/s), "
              f"peak RSS {result['peak_rss_gb']} GB, USS {result['peak_uss_gb']} GB (goal: < 600 s, < 6 GB)")
        print(f"dropped: {result['rejected']}; dedup step: {manifest['dedup']}")
        if not args.no_score:
            scored = subprocess.run([sys.executable, str(REPO / "bench/dedup_quality.py"), "--data", args.data,
                                     "--pred", str(output), "--no-references", "--out", str(work / "quality.json")],
                                    cwd=REPO, capture_output=True, text=True)
            print(scored.stdout[-1500:])
            if scored.returncode == 0:
                result["quality"] = json.loads((work / "quality.json").read_text())
        write_result(result, args.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
