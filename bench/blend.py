"""Benchmark: `thresher blend` throughput (MB/s of source text) and peak memory, against a
streaming copy of the same sources, at two input sizes.

Sources, from real data (built once in bench/data/blend/):

  * web-Nx   a Thresher output made by thresher's own writer and token stage from the 685 real
             texts of tests/data/filter_corpus.jsonl.gz, repeated N times under distinct ids
             (n_tokens trusted: counted with the mix's encoding)
  * labels   data/labels/labels.jsonl.gz, the 1,777 labelled real texts, as a JSONL source
             whose tokens the blend counts itself (like a synthetic set without n_tokens)

The mix: web 75% (filter ``n_tokens >= 50``), labels 25% with ``max_epochs: 1.5``, total_tokens
= the web source's tokens, so web is cut at a partial epoch and labels, repeated 1.5 times,
runs out (a shortfall);
``shuffle_bytes`` 16 MB, so the shuffle spills to several buckets.

  * blend   ``thresher.pipelines.blend.blend`` end to end (three passes), in a fresh process
  * copy    the baseline: the same source files read in batches and their ``text`` written to
            one zstd Parquet file with pyarrow, in a fresh process (the I/O floor)

MB/s is source text bytes (UTF-8) over wall seconds; peak memory is the process's peak RSS.
Runs alternate over ``--repeats``; medians and min-max. Memory should not grow with the input.

    .venv/bin/python bench/blend.py [--sizes 4 16 48] [--repeats 3] [--out bench/results/blend.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extraction import REPO, peak_rss_mb  # noqa: E402

DATA = REPO / "bench" / "data" / "blend"
CORPUS = REPO / "tests" / "data" / "filter_corpus.jsonl.gz"
LABELS = REPO / "data" / "labels" / "labels.jsonl.gz"


def web_source(copies: int) -> Path:
    out = DATA / f"web-{copies}x"
    if (out / "manifest.json").exists():
        return out
    from thresher.config import OutputConfig, RunConfig
    from thresher.filters.tokens import TokenCounter
    from thresher.pipelines.output import OutputWriter
    from thresher.schema import KEPT, empty_row, rows_to_table

    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        corpus = [json.loads(line) for line in f]
    writer, counter = OutputWriter(OutputConfig(path=str(out))), TokenCounter("cl100k_base")
    for copy in range(copies):
        for start in range(0, len(corpus), 256):
            rows = [empty_row(id=f"{copy}-{i}", source=d["source"], text=d["text"], status=KEPT)
                    for i, d in enumerate(corpus[start:start + 256], start)]
            writer.add(counter(rows_to_table(rows)))
    config = RunConfig.model_validate({"input": {"paths": [str(CORPUS)]}, "output": {"path": str(out)}})
    writer.commit(["tokens"], {"config": config.model_dump(mode="json")})
    print(f"built {out.relative_to(REPO)}")
    return out


def mix(web: Path, out: str) -> dict:
    manifest = json.loads((web / "manifest.json").read_text())
    return {"total_tokens": manifest["tokens"]["kept"], "seed": 0, "shuffle_bytes": 16 * 2**20,
            "output": {"path": out},
            "sources": [{"name": "web", "paths": [str(web)], "filter": "n_tokens >= 50", "share": 0.75},
                        {"name": "labels", "paths": [str(LABELS)], "share": 0.25, "max_epochs": 1.5}]}


def source_text_bytes(web: Path) -> int:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    web_bytes = sum(int(pc.sum(pc.binary_length(pq.read_table(p, columns=["text"])["text"].cast("large_binary"))).as_py())
                    for p in sorted((web / "documents").glob("*.parquet")))
    with gzip.open(LABELS, "rt", encoding="utf-8") as f:
        return web_bytes + sum(len(json.loads(line)["text"].encode()) for line in f)


def child(kind: str, web: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-blend-") as tmp:
        start = time.perf_counter()
        if kind == "blend":
            from thresher.pipelines.blend import MixConfig, blend

            manifest = blend(MixConfig.model_validate(mix(web, f"{tmp}/out")))
            extra = {"buckets": manifest["mixture"]["shuffle_buckets"], "tokens": manifest["mixture"]["tokens"],
                     "sources": {k: {f: v[f] for f in ("tokens", "epochs", "shortfall_tokens")}
                                 for k, v in manifest["mixture"]["sources"].items()}}
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            schema = pa.schema([pa.field("text", pa.large_string())])
            with pq.ParquetWriter(f"{tmp}/copy.parquet", schema, compression="zstd") as writer:
                for path in sorted((web / "documents").glob("*.parquet")):
                    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024, columns=["text"]):
                        writer.write_table(pa.Table.from_batches([batch]).cast(schema))
                with gzip.open(LABELS, "rt", encoding="utf-8") as f:
                    rows = []
                    for line in f:
                        rows.append({"text": json.loads(line)["text"]})
                        if len(rows) == 1024:
                            writer.write_table(pa.Table.from_pylist(rows, schema))
                            rows = []
                    writer.write_table(pa.Table.from_pylist(rows, schema))
            extra = {}
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), **extra}


def run_child(kind: str, web: Path) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", kind, "--web", str(web)],
                            capture_output=True, text=True, cwd=REPO, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 16, 48], help="copies of the corpus in the web source")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="bench/results/blend.json")
    parser.add_argument("--child")
    parser.add_argument("--web")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.web))))
        return
    result = {}
    print(f"{'input':<10}{'MB':>8}{'blend MB/s':>12}{'min-max':>14}{'copy MB/s':>11}{'ratio':>7}"
          f"{'blend peak RSS':>16}{'copy peak RSS':>15}")
    for size in args.sizes:
        web = web_source(size)
        megabytes = source_text_bytes(web) / 2**20
        runs = {"blend": [], "copy": []}
        for repeat in range(args.repeats):
            for kind in (("blend", "copy") if repeat % 2 == 0 else ("copy", "blend")):
                runs[kind].append(run_child(kind, web))
        rate = {k: [megabytes / r["seconds"] for r in v] for k, v in runs.items()}
        med = {k: statistics.median(v) for k, v in rate.items()}
        rss = {k: statistics.median(r["peak_rss_mb"] for r in v) for k, v in runs.items()}
        print(f"{size}x{'':<8}{megabytes:>8.1f}{med['blend']:>12.1f}{min(rate['blend']):>7.1f}-{max(rate['blend']):<6.1f}"
              f"{med['copy']:>11.1f}{med['blend'] / med['copy']:>7.2f}{rss['blend']:>13.0f} MB{rss['copy']:>12.0f} MB")
        result[f"{size}x"] = {"source_mb": megabytes, "mb_per_s_median": med, "mb_per_s": rate, "peak_rss_mb_median": rss,
                              "mixture": runs["blend"][0]}
    print("mixture (largest input):", json.dumps(result[f"{args.sizes[-1]}x"]["mixture"]["sources"]))
    from extraction import write_result

    write_result({"repeats": args.repeats, "sizes": result}, args.out)


if __name__ == "__main__":
    main()
