"""The extraction cascade on the real sample files: what it keeps is what the trafilatura-only
pipeline keeps, with trafilatura's text, and what its cheap pass drops says why."""

import re

import pytest

from conftest import SAMPLES
from thresher.config import ClassifyConfig, ExtractConfig, LanguageConfig, QualityConfig, RunConfig
from thresher.filters.language import LanguageFilter
from thresher.filters.quality import QualityFilter
from thresher.pipelines.extract import CascadeGate, Extractor, Metadata
from thresher.pipelines.plan import stage_functions
from thresher.pipelines.readers import Unit, detect_format, read_unit
from thresher.pipelines.storage import expand
from thresher.schema import KEPT, REJECTED, rows_to_table

LIMIT = 64 * 2**20
CHEAP_REASONS = re.compile(r"language_([a-z]{2,3}|low_score)|too_short|curly_bracket|edu_prescore")


@pytest.fixture(scope="module")
def sample_batches():
    rows = [row for path in expand(str(SAMPLES)) if detect_format(path)
            for row in read_unit(Unit(path, detect_format(path)), LIMIT) if row["status"] == KEPT]
    return [rows_to_table(rows[i:i + 64]) for i in range(0, len(rows), 64)]


def through(batches, chain):
    out = []
    for batch in batches:
        for stage in chain:
            batch = stage(batch)
        out.append(batch)
    return out


def by_id(batches):
    return {row["id"]: row for batch in batches for row in batch.drop_columns(["raw"]).to_pylist()}


def run(batches, chain):
    return by_id(through(batches, chain))


@pytest.fixture(scope="module")
def filters():
    return [LanguageFilter(LanguageConfig()), QualityFilter(QualityConfig())]


@pytest.fixture(scope="module")
def trafilatura_batches(sample_batches, filters):
    return through(sample_batches, [Extractor(ExtractConfig()), *filters, Metadata(ExtractConfig())])


@pytest.fixture(scope="module")
def trafilatura_rows(trafilatura_batches):
    return by_id(trafilatura_batches)


def kept(rows):
    return {i for i, row in rows.items() if row["status"] == KEPT}


def test_cascade_keeps_what_trafilatura_keeps_with_its_text(sample_batches, filters, trafilatura_rows):
    config = ExtractConfig(engine="cascade")
    cascade = run(sample_batches, [CascadeGate(config, LanguageConfig(), QualityConfig()), Extractor(config), *filters,
                                   Metadata(config)])
    assert len(kept(trafilatura_rows)) >= 30
    assert kept(cascade) == kept(trafilatura_rows)  # measured recall on the sample: 1.0
    for i in kept(cascade):
        assert cascade[i]["text"] == trafilatura_rows[i]["text"]
        assert cascade[i]["title"] == trafilatura_rows[i]["title"]
    assert sum(trafilatura_rows[i]["title"] is not None for i in kept(cascade)) >= 20
    cheap = {i: row for i, row in cascade.items() if row["stage"] == "cascade"}
    assert len(cheap) >= 15  # measured 20 of the 86 documents never reach trafilatura
    for row in cheap.values():
        assert row["status"] == REJECTED and CHEAP_REASONS.fullmatch(row["reason"]), row["reason"]
        assert row["text"] is not None  # the text the pass judged, for the audit
    assert sum(row["reason"] == "language_zh" for row in cheap.values()) >= 5  # Common Crawl spam pages
    assert {row["reason"] for row in cheap.values()} >= {"too_short", "curly_bracket"}


def test_edu_prescore_keeps_what_the_classify_stage_keeps(sample_batches, filters, trafilatura_batches, trafilatura_rows):
    from thresher.classifiers.stage import EduClassifier

    classify = ClassifyConfig(min_score=2.5)
    config = ExtractConfig(engine="cascade")
    reference = run(trafilatura_batches, [EduClassifier(classify)])
    cascade = run(sample_batches, [CascadeGate(config, LanguageConfig(), QualityConfig(), classify), Extractor(config),
                                   *filters, EduClassifier(classify)])
    assert 5 <= len(kept(reference)) < len(kept(trafilatura_rows))  # measured: 5 of 39
    assert kept(cascade) == kept(reference)  # measured recall on the sample: 1.0
    prescored = [row for row in cascade.values() if row["reason"] == "edu_prescore"]
    assert len(prescored) >= 20 and all(row["stage"] == "cascade" for row in prescored)  # measured 38


def test_tag_mode_stages_and_switched_off_checks_drop_nothing_early(sample_batches):
    tagged = ExtractConfig(engine="cascade")
    gate = CascadeGate(tagged, LanguageConfig(mode="tag"), QualityConfig(mode="tag"), ClassifyConfig(min_score=3, mode="tag"))
    off = ExtractConfig(engine="cascade", cascade={"language_margin": None, "min_words_fraction": None, "edu_margin": None,
                                                   "curly_bracket": False})
    for gate in (gate, CascadeGate(off, LanguageConfig(), QualityConfig(), ClassifyConfig(min_score=3))):
        rows = [row for batch in sample_batches for row in gate(batch).select(["status"]).to_pylist()]
        assert all(row["status"] == KEPT for row in rows)


def test_plan_puts_the_gate_before_extract_only_for_the_cascade():
    def names(engine):
        config = RunConfig.model_validate({"input": {"paths": [str(SAMPLES)]}, "output": {"path": "out/x"},
                                           "stages": {"extract": {"engine": engine}, "language": {}}})
        return [name for name, _ in stage_functions(config)]

    assert names("cascade") == ["cascade", "extract", "language", "metadata", "tokens"]
    assert names("trafilatura") == ["extract", "language", "metadata", "tokens"]
    assert names("resiliparse") == ["extract", "language", "tokens"]  # its title comes with its text, and it finds no date


def test_resiliparse_engine_extracts_main_text_and_title():
    import json

    truth = [json.loads(line) for line in open(SAMPLES / "extraction_ground_truth.jsonl", encoding="utf-8")]
    found = total = 0
    for page in truth:
        path = str(SAMPLES / "html" / page["file"])
        [doc] = Extractor(ExtractConfig(engine="resiliparse"))(rows_to_table(list(read_unit(Unit(path, "html"), LIMIT)))).to_pylist()
        assert doc["status"] == KEPT and doc["title"], page["file"]
        text = " ".join(doc["text"].split())
        paragraphs = [" ".join(p.split()) for p in page.get("expected_text", "").split("\n") if len(p) > 80]
        found += sum(p in text for p in paragraphs)
        total += len(paragraphs)
    assert total > 50 and found >= 0.6 * total


def test_extraction_without_metadata_gives_the_same_text_without_title_and_date():
    path = str(SAMPLES / "html")
    rows = [row for file in expand(path) for row in read_unit(Unit(file, "html"), LIMIT)]
    with_metadata = Metadata(ExtractConfig())(Extractor(ExtractConfig())(rows_to_table(rows))).to_pylist()
    without = Extractor(ExtractConfig(with_metadata=False))(rows_to_table(rows)).to_pylist()
    assert [d["text"] for d in without] == [d["text"] for d in with_metadata]
    assert sum(d["title"] is not None for d in with_metadata) >= 10
    assert all(d["title"] is None and d["date"] is None for d in without)
    assert all(d["raw"] is None for d in with_metadata + without)  # no page travels further


def test_metadata_is_searched_only_for_documents_the_filters_kept(sample_batches, filters):
    """A page a filter drops keeps no HTML and gets no title; a kept page gets the title and date
    that a search at extraction time finds."""
    from thresher.pipelines.extract import checked_html, title_and_date
    from trafilatura.settings import Extractor as TrafilaturaOptions
    from trafilatura.utils import load_html

    config = ExtractConfig()
    extracted = through(sample_batches, [Extractor(config), *filters])
    raws = {row["id"]: row for batch in extracted for row in batch.to_pylist()}
    searched_batches = through(extracted, [Metadata(config)])
    assert all(raw is None for batch in searched_batches for raw in batch.column("raw").to_pylist())
    rows = by_id(searched_batches)
    dropped = [i for i, row in rows.items() if row["status"] == REJECTED and row["stage"] in ("language", "quality")]
    assert len(dropped) >= 20 and all(rows[i]["title"] is None and rows[i]["date"] is None for i in dropped)
    searched = [i for i, row in rows.items() if row["status"] == KEPT and raws[i]["content_type"] == "html"]
    assert len(searched) >= 20
    options = TrafilaturaOptions()
    for i in searched:
        tree = load_html(checked_html(raws[i]["raw"], raws[i]["charset"], config))
        assert (rows[i]["title"], rows[i]["date"]) == title_and_date(tree, rows[i]["url"], options.date_params), i
    assert sum(rows[i]["title"] is not None for i in searched) >= 20
    assert sum(rows[i]["date"] is not None for i in searched) >= 5
