"""`thresher blend` on real data: a Thresher output of 685 real texts (language, edu score and
tokens by the real stages and writer), the 1,777 labelled texts (JSONL) and the Dolma sample."""

import gzip
import json
import re
import subprocess
import sys
from collections import Counter

import pyarrow.parquet as pq
import pytest
import yaml

from conftest import ROOT, TESTDATA
from thresher.config import ClassifyConfig, LanguageConfig, OutputConfig, RunConfig
from thresher.filters.tokens import count_tokens
from thresher.cli import main
from thresher.pipelines.blend import BlendError, blend, load_mix, resolve_sources

LABELS = str(ROOT / "data" / "labels" / "labels.jsonl.gz")
DOLMA = str(ROOT / "data" / "samples" / "jsonl")


@pytest.fixture(scope="module")
def web(tmp_path_factory, corpus):
    """A Thresher output, made by the real stages and writer (no Ray: the same code the actors run)."""
    from thresher.classifiers.stage import EduClassifier
    from thresher.filters.language import LanguageFilter
    from thresher.filters.tokens import TokenCounter
    from thresher.pipelines.output import OutputWriter
    from thresher.schema import KEPT, empty_row, rows_to_table

    out = tmp_path_factory.mktemp("web")
    stages = [LanguageFilter(LanguageConfig(keep=None)), EduClassifier(ClassifyConfig()), TokenCounter("cl100k_base")]
    writer = OutputWriter(OutputConfig(path=str(out)))
    for start in range(0, len(corpus), 100):
        batch = rows_to_table([empty_row(id=f"doc{i}", source=d["source"], text=d["text"], status=KEPT)
                               for i, d in enumerate(corpus[start:start + 100], start)])
        for stage in stages:
            batch = stage(batch)
        writer.add(batch)
    config = RunConfig.model_validate({"input": {"paths": [str(TESTDATA)]}, "output": {"path": str(out)},
                                       "stages": {"language": {"keep": None}, "classify": {}}})
    writer.commit(["language", "classify", "tokens"], {"config": config.model_dump(mode="json")})
    return out


def mix(web, out, **changes):
    data = {
        "total_tokens": 400_000, "seed": 7, "output": {"path": str(out), "shard_rows": 100},
        "sources": [
            {"name": "web", "paths": [str(web)], "filter": "edu_score >= 2", "share": 0.5},
            {"name": "labels", "paths": [LABELS], "filter": ["score >= 3", "language == 'en'"], "share": 0.3},
            {"name": "dolma", "paths": [DOLMA], "share": 0.2, "max_epochs": 2.5},
        ],
    }
    data.update(changes)
    return data


def run_mix(data, tmp_path):
    return blend(load_mix(write_mix(data, tmp_path)))


@pytest.fixture(scope="module")
def blended(web, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("blend")
    manifest = run_mix(mix(web, tmp / "out"), tmp)
    return manifest, pq.read_table(tmp / "out" / "documents")


def labels_by_id():
    with gzip.open(LABELS, "rt") as f:
        return {row["id"]: row for row in map(json.loads, f)}


def test_budgets_shares_epochs_and_shortfall(blended, web):
    manifest, table = blended
    sources = manifest["mixture"]["sources"]
    rows = table.to_pylist()
    longest = max(r["n_tokens"] for r in rows)
    for name, budget, max_epochs in (("web", 200_000, 1), ("labels", 120_000, 1), ("dolma", 80_000, 2.5)):
        got = sources[name]
        mine = [r for r in rows if r["source"] == name]
        assert got["budget_tokens"] == budget and got["documents"] == len(mine)
        assert got["tokens"] == sum(r["n_tokens"] for r in mine)
        reachable = min(budget, int(max_epochs * got["available_tokens"]))
        assert reachable - longest < got["tokens"] <= reachable  # the longest key-order prefix within it
        assert got["shortfall_tokens"] == budget - reachable
        assert got["epochs"] == pytest.approx(got["tokens"] / got["available_tokens"], abs=1e-6)
    assert sources["web"]["shortfall_tokens"] > 0 and sources["web"]["epochs"] == 1.0  # runs out, reported
    assert sources["labels"]["shortfall_tokens"] == 0 and sources["labels"]["epochs"] < 1
    assert 2 <= sources["dolma"]["epochs"] <= 2.5
    assert manifest["mixture"]["tokens"] == sum(r["n_tokens"] for r in rows)
    assert sum(s["tokens"] for s in manifest["outputs"]["documents"]) == manifest["mixture"]["tokens"]
    assert sources["web"]["tokens_from"] == "n_tokens column" and sources["labels"]["tokens_from"] == "tokenizer"


def test_every_copy_is_a_real_document_with_its_tokens(blended, web):
    _, table = blended
    rows = table.to_pylist()
    assert [r["n_tokens"] for r in rows] == count_tokens([r["text"] for r in rows], "cl100k_base")
    web_docs = {r["id"]: r for r in pq.read_table(web / "documents").to_pylist()}
    labels = labels_by_id()
    for r in rows:
        if r["source"] == "web":
            assert web_docs[r["id"]]["edu_score"] >= 2 and web_docs[r["id"]]["text"] == r["text"]
        elif r["source"] == "labels":
            assert labels[r["id"]]["score"] >= 3 and labels[r["id"]]["language"] == "en"
            assert labels[r["id"]]["text"] == r["text"]
    copies = Counter((r["source"], r["id"]) for r in rows)
    assert len({(r["source"], r["id"], r["epoch"]) for r in rows}) == len(rows)
    dolma = Counter(n for (source, _), n in copies.items() if source == "dolma")
    assert set(dolma) == {2, 3}  # 2.5 epochs of 10 documents: every one twice, some a third time
    assert max(n for (source, _), n in copies.items() if source != "dolma") == 1


def test_shuffled_across_sources(blended):
    _, table = blended
    names = table["source"].to_pylist()
    shares = Counter(names)
    expected_changes = 1 - sum((n / len(names)) ** 2 for n in shares.values())  # a random order's rate
    changes = sum(a != b for a, b in zip(names, names[1:])) / (len(names) - 1)
    assert changes > 0.8 * expected_changes
    dolma_epochs = [r["epoch"] for r in table.to_pylist() if r["source"] == "dolma"]
    assert dolma_epochs != sorted(dolma_epochs)  # repeats are spread, not appended


def test_deterministic_for_a_seed_whatever_the_memory_setting(blended, web, tmp_path):
    manifest, table = blended
    small = run_mix(mix(web, tmp_path / "small", shuffle_bytes=40_000), tmp_path)
    assert small["mixture"]["shuffle_buckets"] > 10
    assert pq.read_table(tmp_path / "small" / "documents").equals(table)
    run_mix(mix(web, tmp_path / "seed8", seed=8), tmp_path)
    other = pq.read_table(tmp_path / "seed8" / "documents")
    assert other["id"].to_pylist() != table["id"].to_pylist()
    shards = manifest["outputs"]["documents"]
    assert [s["rows"] for s in shards[:-1]] == [100] * (len(shards) - 1)


def test_token_budgets_instead_of_shares(web, tmp_path):
    data = mix(web, tmp_path / "out")
    del data["total_tokens"]
    for source, tokens in zip(data["sources"], (50_000, 20_000, 5_000)):
        del source["share"]
        source["tokens"] = tokens
    manifest = run_mix(data, tmp_path)
    got = {name: s["tokens"] for name, s in manifest["mixture"]["sources"].items()}
    longest = max(pq.read_table(tmp_path / "out" / "documents")["n_tokens"].to_pylist())
    assert all(budget - longest < got[name] <= budget for name, budget in zip(got, (50_000, 20_000, 5_000)))


def write_mix(data, tmp_path, name="mix.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


def blend_cli(data, tmp_path, capsys):
    code = main(["blend", write_mix(data, tmp_path)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("change, message", [
    (lambda d: d["sources"][2].update(share=0.3), r"sources: .*the shares add up to 1.1, not 1"),
    (lambda d: d["sources"][1].update(filter="stars >= 3"), r"sources\[1\] \(labels\): .*labels.jsonl.gz has no column 'stars' \(named by the filter\)"),
    (lambda d: d["sources"][1].update(filter="score >= 6"), r"source labels: no document passes the filter score >= 6"),
    (lambda d: d["sources"][0].update(tokens=5), r"sources\.0: .*a share or a token budget"),
    (lambda d: d.pop("total_tokens"), r"total_tokens: needed when the sources give shares"),
    (lambda d: d["sources"][0].update(filter="edu_score >= 'high'"), r"filter edu_score >= 'high': cannot compare a double column"),
])
def test_bad_mixes_exit_2_before_writing(change, message, web, tmp_path, capsys):
    data = mix(web, tmp_path / "out")
    change(data)
    code, stderr = blend_cli(data, tmp_path, capsys)
    assert code == 2 and stderr.startswith("thresher: mix error: ") and stderr.count("\n") == 1
    assert re.search(message, stderr), stderr
    assert not (tmp_path / "out").exists()


def test_the_command_line(web, tmp_path):
    result = subprocess.run([sys.executable, "-m", "thresher.cli", "blend", write_mix(mix(web, tmp_path / "out"), tmp_path),
                             "--output", str(tmp_path / "elsewhere"), "--set", "seed=3"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "elsewhere" / "manifest.json").read_text())
    assert manifest["mixture"]["seed"] == 3 and f"{manifest['mixture']['tokens']} tokens" in result.stdout
    assert not (tmp_path / "out").exists()


def test_empty_or_missing_source(web, tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    data = mix(web, tmp_path / "out")
    for paths, message in (([str(tmp_path / "empty.jsonl")], r"sources\[2\] \(dolma\): the source is empty"),
                           ([str(tmp_path / "nothing-here")], r"sources\[2\] \(dolma\): no Parquet or JSONL file")):
        data["sources"][2]["paths"] = paths
        with pytest.raises(BlendError, match=message):
            resolve_sources(load_mix(write_mix(data, tmp_path)))
    assert not (tmp_path / "out").exists()


def test_a_damaged_jsonl_source_is_refused_before_writing(web, tmp_path, capsys):
    with gzip.open(LABELS, "rt") as f:
        lines = f.read().splitlines()
    (tmp_path / "cut.jsonl").write_text("\n".join(lines[:100] + [lines[100][:300]] + lines[101:200]) + "\n")
    data = mix(web, tmp_path / "out")
    data["sources"][1].update(paths=[str(tmp_path / "cut.jsonl")])
    code, stderr = blend_cli(data, tmp_path, capsys)
    assert code == 2 and "cut.jsonl: line 101: malformed JSON" in stderr
    assert not (tmp_path / "out").exists()


def test_a_jsonl_line_that_is_not_an_object_is_refused_before_writing(web, tmp_path, capsys):
    with gzip.open(LABELS, "rt") as f:
        lines = f.read().splitlines()
    (tmp_path / "list.jsonl").write_text("\n".join(lines[:100] + ['["a list", "not a document"]'] + lines[100:200]) + "\n")
    data = mix(web, tmp_path / "out")
    data["sources"][1].update(paths=[str(tmp_path / "list.jsonl")])
    code, stderr = blend_cli(data, tmp_path, capsys)
    assert code == 2 and "list.jsonl: line 101: a list, not an object" in stderr
    assert not (tmp_path / "out").exists()
