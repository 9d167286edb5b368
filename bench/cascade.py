"""Benchmark: the extraction cascade against the trafilatura-only pipeline, on the same pages.

Input: the WARCs of bench/doc_pages.py (``--pages``, default 5,000 real pages: the shared corpus
and Debian documentation in ~26 languages; built if missing). Stages as FineWeb's: language
(en > 0.65), quality (Gopher repetition and quality, C4, FineWeb), MinHash and exact dedup, and
in the ``edu`` scenario classify with ``min_score`` (``--min-edu``, default 3); pii and tokens off.

1. ``thresher run`` with ``engine: trafilatura`` for each scenario: the reference kept set.
2. The cheap pass's signals for every page, with the cascade's own functions (resiliparse's
   text, the language stage's model, the word count, C4's curly-bracket rule, the classify
   stage's model): the margins, and the curly-bracket rule on or off, are swept offline over
   them. For each setting: recall (the share of the reference's kept documents that pass the
   cheap pass) and the share of pages that still reach trafilatura.
   The setting quoted is the cheapest one whose recall is >= ``--target`` in every scenario.
3. ``thresher run`` with ``engine: cascade`` at that setting (and at the defaults, if they
   differ), for each scenario: recall = |kept cascade & kept trafilatura| / |kept trafilatura|
   and precision = the same over |kept cascade|, measured on the real runs' documents/ ids,
   and documents/s (input pages / wall seconds, Ray start-up included) as a ratio against the
   trafilatura run of the same scenario. ``--repeats`` alternating runs of each; medians.

    .venv/bin/python bench/cascade.py [--pages 5000] [--repeats 1] [--min-edu 3] [--target 0.97]
                                      [--edu-model DIR] [--out bench/results/cascade.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
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
LANGUAGE_MARGINS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, None]
WORDS_FRACTIONS = [1.0, 0.75, 0.5, 0.25, None]
EDU_MARGINS = [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, None]
CURLY_BRACKET = [True, False]


def stages(engine: str, min_edu: float | None, cascade: dict | None = None, edu_model: str | None = None) -> dict:
    extract = {"engine": engine, **({"cascade": cascade} if cascade else {})}
    chosen = {"extract": extract, "language": {"keep": ["en"]}, "quality": {}, "dedup": {}, "tokens": False}
    if min_edu is not None:
        chosen["classify"] = {"min_score": min_edu, **({"model": edu_model} if edu_model else {})}
    return chosen


def thresher_run(warcs: list[str], stage_config: dict, workdir: str) -> dict:
    """One ``thresher run`` in a subprocess: wall seconds and the kept ids."""
    out = tempfile.mkdtemp(prefix="run-", dir=workdir)
    config = {"input": {"paths": warcs}, "output": {"path": out}, "stages": stage_config,
              "execution": {"progress": False}}
    config_path = Path(out + ".yaml")
    config_path.write_text(json.dumps(config))
    started = time.perf_counter()
    done = subprocess.run([THRESHER, "run", str(config_path)], capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"thresher run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    manifest = json.loads((Path(out) / "manifest.json").read_text())
    kept = set(pq.read_table(Path(out) / "documents", columns=["id"]).column("id").to_pylist())
    return {"seconds": seconds, "read": manifest["counts"]["read"], "kept": kept,
            "stages": {name: {"in": s["in"], "out": s["out"]} for name, s in manifest["stages"].items()}}


def cheap_signals(warcs: list[str], edu_model: str | None) -> dict[str, dict]:
    """Per page id: what the cheap pass judges by, computed by the gate's own methods."""
    from thresher.config import ClassifyConfig, ExtractConfig, LanguageConfig, QualityConfig
    from thresher.pipelines.extract import CascadeGate
    from thresher.pipelines.readers import read_unit
    from thresher.pipelines.readers.common import Unit

    classify = ClassifyConfig(min_score=5, **({"model": edu_model} if edu_model else {}))
    gate = CascadeGate(ExtractConfig(engine="cascade"), LanguageConfig(), QualityConfig(), classify)
    signals, texts = {}, {}
    for row in (row for warc in warcs for row in read_unit(Unit(warc, "warc"), 64 * 2**20)):
        text = gate.cheap_text(row)
        if text is None:  # the gate lets such pages through
            continue
        texts[row["id"]] = text
        signals[row["id"]] = {"en": (gate.identify_language(text) or (None, 0.0, 0.0))[2], "words": len(text.split()),
                              "curly": gate.curly_bracket(text)}
    for i, score in zip(texts, gate.edu.score(list(texts.values()))):
        signals[i]["edu"] = float(score)
    return signals


def passes(signal: dict, setting: dict, min_edu: float | None) -> bool:
    """The gate's rule (pipelines/extract.py CascadeGate) with FineWeb's thresholds: language
    min_score 0.65, Gopher min_doc_words 50, C4's curly-bracket rule."""
    if setting["language_margin"] is not None and signal["en"] < 0.65 - setting["language_margin"]:
        return False
    if setting["min_words_fraction"] is not None and signal["words"] < -(-50 * setting["min_words_fraction"] // 1):
        return False
    if setting["curly_bracket"] and signal["curly"]:
        return False
    return not (min_edu is not None and setting["edu_margin"] is not None and signal["edu"] < min_edu - setting["edu_margin"])


def sweep(signals: dict, references: dict[str, set], min_edu: float, pages: int) -> list[dict]:
    """Per setting and scenario: recall and the share of pages still extracted by trafilatura
    (pages the gate cannot judge, e.g. undecodable ones, go through)."""
    rows = []
    for language_margin, fraction, edu_margin, curly in itertools.product(LANGUAGE_MARGINS, WORDS_FRACTIONS, EDU_MARGINS, CURLY_BRACKET):
        setting = {"language_margin": language_margin, "min_words_fraction": fraction, "edu_margin": edu_margin,
                   "curly_bracket": curly}
        row = {**setting}
        for scenario, kept in references.items():
            scenario_edu = min_edu if scenario == "edu" else None
            dropped = {i for i, s in signals.items() if not passes(s, setting, scenario_edu)}
            row[f"{scenario}_recall"] = 1 - len(kept & dropped) / len(kept)
            row[f"{scenario}_to_trafilatura"] = 1 - len(dropped) / pages
        rows.append(row)
    return rows


def cheapest(rows: list[dict], scenarios: list[str], target: float) -> dict:
    ok = [r for r in rows if all(r[f"{s}_recall"] >= target for s in scenarios)]
    return min(ok, key=lambda r: sum(r[f"{s}_to_trafilatura"] for s in scenarios))


def compare(reference: dict, cascade: dict) -> dict:
    both = len(reference["kept"] & cascade["kept"])
    return {"kept_trafilatura": len(reference["kept"]), "kept_cascade": len(cascade["kept"]),
            "recall": both / len(reference["kept"]), "precision": both / max(1, len(cascade["kept"]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--min-edu", type=float, default=3.0)
    parser.add_argument("--target", type=float, default=0.97)
    parser.add_argument("--edu-model", default=None, help="classify's model directory; default: the shipped one")
    parser.add_argument("--out", default="bench/results/cascade.json")
    args = parser.parse_args()
    warcs = sorted(str(p) for p in mixed_warc(args.pages).glob("*.warc.gz"))
    scenarios = {"plain": None, "edu": args.min_edu}
    from thresher.config import CascadeConfig

    defaults = CascadeConfig().model_dump()
    with tempfile.TemporaryDirectory(prefix="thresher-bench-cascade-", dir=REPO / "bench" / "data") as workdir:
        references = {name: thresher_run(warcs, stages("trafilatura", edu, edu_model=args.edu_model), workdir) for name, edu in scenarios.items()}
        print("reference kept:", {n: len(r["kept"]) for n, r in references.items()}, flush=True)
        signals = cheap_signals(warcs, args.edu_model)
        grid = sweep(signals, {n: r["kept"] for n, r in references.items()}, args.min_edu, args.pages)
        best = cheapest(grid, list(scenarios), args.target)
        chosen = {k: best[k] for k in defaults}
        settings = {"cheapest": chosen} | ({} if chosen == defaults else {"defaults": defaults})
        print("cheapest setting reaching the target:", best, flush=True)
        runs: dict[str, dict[str, list]] = {}
        for repeat in range(args.repeats):
            for name, edu in scenarios.items():
                sides = [("trafilatura", None)] + [(label, s) for label, s in settings.items()]
                for label, setting in sides if repeat % 2 == 0 else sides[::-1]:
                    run = (references[name] if repeat == 0 and label == "trafilatura"
                           else thresher_run(warcs, stages("trafilatura" if setting is None else "cascade", edu, setting, args.edu_model), workdir))
                    runs.setdefault(name, {}).setdefault(label, []).append(run)
                    print(f"{name:5} {label:11} {args.pages / run['seconds']:6.1f} docs/s  kept {len(run['kept'])}", flush=True)
    result = {"pages": args.pages, "warcs": [str(Path(w).relative_to(REPO)) for w in warcs], "min_edu": args.min_edu, "edu_model": args.edu_model,
              "target": args.target, "settings": settings, "repeats": args.repeats, "machine": platform.node(),
              "sweep": grid, "scenarios": {}}
    print(f"\n{'scenario':9} {'engine':12} {'docs/s':>7} {'ratio':>6} {'kept':>5} {'recall':>7} {'precision':>9}")
    for name, sides in runs.items():
        base = statistics.median(args.pages / r["seconds"] for r in sides["trafilatura"])
        result["scenarios"][name] = {"trafilatura_docs_per_s": base, "funnel": sides["trafilatura"][0]["stages"]}
        for label, rs in sides.items():
            speed = statistics.median(args.pages / r["seconds"] for r in rs)
            quality = compare(references[name], rs[0])
            result["scenarios"][name][label] = {"docs_per_s": speed, "ratio": speed / base, **quality,
                                                "funnel": rs[0]["stages"]}
            print(f"{name:9} {label:12} {speed:7.1f} {speed / base:5.2f}x {quality['kept_cascade']:5} "
                  f"{quality['recall']:7.3f} {quality['precision']:9.3f}")
    write_result(result, args.out)


if __name__ == "__main__":
    main()
