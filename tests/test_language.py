"""The language stage on real text, against datatrove's LanguageFilter as the oracle."""

import csv
import shutil
import time
import unicodedata
from collections import Counter

import pytest
from datatrove.data import Document
from datatrove.pipeline.filters import LanguageFilter as DatatroveLanguageFilter
from datatrove.utils import lid as datatrove_lid

from conftest import TESTDATA
from thresher.config import LanguageConfig
from thresher.filters.fasttext_lid import LanguageIdentifier
from thresher.filters.language import LID176, MODELS, LanguageFilter, ModelChecksumError, ModelFile
from thresher.schema import ERRORED, KEPT, REJECTED, empty_row, rows_to_table

# The article-extraction-benchmark pages that are not English, each read by a person.
AEB_NOT_ENGLISH = {
    "11ea381ad92b5448": "pt",  # NASCAR standings, Brazilian Portuguese
    "23aaecd14171f96c": "pt",
    "21486419bb109c5a": "id",  # Indonesian religious blog posts
    "7837c9d66c815b9a": "id",
    "57b4dafd18cfd053": "de",
    "ba07d1e64775f409": "de",
    "c4a3637c6696f238": "ru",  # Skyrim console codes, Russian
    "f105de6e63ca91ea": "ja",
}
# Publisher countries (trafilatura's evaluation metadata) with one language.
REGION_LANGUAGE = {"DE": "de", "AT": "de", "ARG": "es", "BOL": "es", "CHL": "es", "PER": "es", "URY": "es"}
MULTILINGUAL = {"echte-demokratie-jetzt.de.blog.html.gz"}  # one letter in German, Spanish, Greek...
CC_SPAM = "warc/resiliparse_cc2020_warcfile.warc.gz"


def run(stage, docs):
    rows = [empty_row(id=str(i), text=d["text"], url=d["url"], status=KEPT) for i, d in enumerate(docs)]
    return stage(rows_to_table(rows)).to_pylist()


@pytest.fixture(scope="module")
def filtered(corpus):
    """FineWeb's setting (keep English above 0.65) on the whole corpus, with timing."""
    started = time.process_time()
    out = run(LanguageFilter(LanguageConfig()), corpus)
    return out, time.process_time() - started


def test_english_news_pages_are_english_and_kept(corpus, filtered):
    out, _ = filtered
    pages = [(doc, row) for doc, row in zip(corpus, out) if doc["source"].startswith("extraction/aeb/")]
    assert len(pages) == 91
    for doc, row in pages:
        expected = AEB_NOT_ENGLISH.get(doc["source"].rsplit("/", 1)[1][:16], "en")
        assert row["language"] == expected, doc["source"]
        if expected == "en":
            assert row["status"] == KEPT and row["language_score"] > 0.65, doc["source"]
        else:
            assert (row["status"], row["stage"], row["reason"]) == (REJECTED, "language", f"language_{expected}")


def test_pages_are_in_their_publishers_language(corpus, filtered):
    out, _ = filtered
    with open(TESTDATA / "trafilatura_regions.tsv", newline="") as f:
        regions = {r["file"]: r["meta_region"] for r in csv.DictReader(f, delimiter="\t")}
    found = Counter()
    for doc, row in zip(corpus, out):
        name = doc["source"].rsplit("/", 1)[1]
        if doc["source"].startswith("extraction/trafilatura/") and regions.get(name) in REGION_LANGUAGE:
            if name not in MULTILINGUAL:
                assert row["language"] == REGION_LANGUAGE[regions[name]], name
                found[row["language"]] += 1
                assert row["reason"] == f"language_{row['language']}"  # dropped under keep=[en]
    assert found["de"] > 100 and found["es"] >= 9, found


def _script(text: str) -> str:
    """The script most of the text's letters are written in (CJK, CYRILLIC, LATIN...)."""
    names = Counter(unicodedata.name(c, "?").split()[0] for c in text if c.isalpha())
    return names.most_common(1)[0][0]


def test_chinese_and_russian_spam_is_dropped_under_keep_english(corpus, filtered):
    out, _ = filtered
    reasons = Counter()
    for doc, row in zip(corpus, out):
        if doc["source"] == CC_SPAM and _script(doc["text"]) in ("CJK", "CYRILLIC"):
            assert row["status"] == REJECTED and row["stage"] == "language"
            reasons[row["reason"]] += 1
    assert reasons == {"language_zh": 9, "language_ru": 1}, reasons


def test_english_under_the_threshold_is_dropped_as_low_score(corpus, filtered):
    out, _ = filtered
    low = [row for row in out if row["reason"] == "language_low_score"]
    assert len(low) >= 5 and all(row["language"] == "en" and row["language_score"] <= 0.65 for row in low)
    print("language stage, keep=[en]:", Counter(row["reason"] or "kept" for row in out).most_common())


def test_same_decisions_as_datatrove(corpus, monkeypatch):
    """datatrove's own LanguageFilter, fed the shipped model in place of its download."""

    def shipped_model(remote_path, **_):
        assert remote_path == datatrove_lid.FT176LID.MODEL_URL
        return str(LID176.path)

    monkeypatch.setattr(datatrove_lid, "cached_asset_path_or_download", shipped_model)
    # FineWeb's setting, then a low threshold under which a kept language that is not the top one
    # can pass (datatrove keeps a document when any kept language scores above the threshold).
    for keep, threshold in ((["en"], 0.65), (["en", "de"], 0.05)):
        oracle = DatatroveLanguageFilter(languages=keep, language_threshold=threshold)
        out = run(LanguageFilter(LanguageConfig(keep=keep, min_score=threshold)), corpus)
        decisions = Counter()
        for doc, row in zip(corpus, out):
            expected = Document(text=doc["text"], id="0")
            kept = bool(oracle.filter(expected))
            assert (row["status"] == KEPT) == kept, doc["source"]
            assert (row["language"], row["language_score"]) == (expected.metadata["language"], expected.metadata["language_score"])
            decisions[kept, row["language"] in keep] += 1
        assert decisions[True, True] > 300 and decisions[False, False] > 50, decisions
    assert decisions[True, False] > 0  # the second setting did reach that case


def test_tag_mode_drops_nothing_and_flags_what_filter_mode_drops(corpus, filtered):
    out, _ = filtered
    tagged = run(LanguageFilter(LanguageConfig(mode="tag")), corpus)
    assert all(row["status"] == KEPT for row in tagged)
    for dropped, row in zip(out, tagged):
        assert row["flags"] == ([f"language:{dropped['reason']}"] if dropped["status"] == REJECTED else None)
        assert (row["language"], row["language_score"]) == (dropped["language"], dropped["language_score"])
    assert sum(bool(row["flags"]) for row in tagged) > 100


def test_keep_null_labels_every_document_and_drops_none(corpus):
    out = run(LanguageFilter(LanguageConfig(keep=None)), corpus[::4])
    assert all(row["status"] == KEPT and not row["flags"] for row in out)
    assert all(row["language"] and 0 < row["language_score"] for row in out)
    assert len({row["language"] for row in out}) >= 5


def test_text_with_nothing_to_identify_gets_no_language():
    blank = [" ", "\n\n\t \r\n", ""]
    out = run(LanguageFilter(LanguageConfig()), [{"text": t, "url": None} for t in blank])
    assert [(r["language"], r["language_score"], r["reason"]) for r in out] == [(None, None, "language_no_text")] * 3
    # datatrove drops them too (fastText answers with its prior, English at 0.12).
    labelled = run(LanguageFilter(LanguageConfig(keep=None)), [{"text": t, "url": None} for t in blank])
    assert [(r["status"], r["language"]) for r in labelled] == [(KEPT, None)] * 3


def test_huge_single_line_and_nul_bytes(corpus):
    german = next(d["text"] for d in corpus if d["source"].endswith("mix1.de-clio.html.gz"))
    line = " ".join(d["text"] for d in corpus).replace("\n", " ")
    huge = (line * (5_000_000 // len(line) + 1))[:5_000_000]
    with_nul = german.replace(" ", "\x00 ", 50).replace("\n", "\n\x00")
    stage = LanguageFilter(LanguageConfig(keep=None))
    started = time.perf_counter()
    out = run(stage, [{"text": huge, "url": None}, {"text": with_nul, "url": None}])
    assert time.perf_counter() - started < 30
    assert [row["status"] for row in out] == [KEPT, KEPT]
    assert out[0]["language"] and out[1]["language"] == "de"


def test_a_model_file_that_fails_its_checksum_is_never_loaded(tmp_path):
    tampered = tmp_path / "lid.176.ftz"
    shutil.copyfile(LID176.path, tampered)
    data = bytearray(tampered.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    with pytest.raises(ModelChecksumError, match="refusing to load"):
        ModelFile(tampered, LID176.sha256).load()
    # In the pipeline every document then errors at this stage: none is labelled or kept unchecked.
    out = run(LanguageFilter(LanguageConfig(), model=ModelFile(tampered, LID176.sha256)), [{"text": "Hello there, friend.", "url": None}])
    assert (out[0]["status"], out[0]["stage"], out[0]["language"]) == (ERRORED, "language", None)
    assert "ModelChecksumError" in out[0]["reason"]


def test_speed_on_one_core(corpus, filtered):
    _, cpu_seconds = filtered
    docs_per_s = len(corpus) / cpu_seconds
    print(f"language stage: {len(corpus)} docs in {cpu_seconds:.2f} CPU s = {docs_per_s:.0f} docs/s")
    assert docs_per_s > 50  # fastText itself does ~700-1000/s here; far below means a regression


def test_scores_are_the_fasttext_package_s_bit_for_bit(corpus):
    """fasttext_lid against the fasttext package on the same file: the same labels with the same
    float32 probabilities, on whole texts, on the cascade's 2,000-character beginnings, and on real
    texts changed where fastText's tokeniser does something special."""
    import fasttext

    reference = fasttext.load_model(str(LID176.path))
    ours = LID176.load()
    texts = [d["text"] for d in corpus]
    texts += [text[:2000] for text in texts]
    some = [text for text in texts[::25] if text.count(" ") > 20]
    texts += [text.replace(" ", " </s> ", 1) for text in some]  # "</s>" ends fastText's line there
    texts += [text.replace(" ", " __label__de ", 3) for text in some]  # a label is not a word
    texts += [text.replace(" ", "\t", 9).replace(" ", "\r\x0b\x0c\x00", 9) for text in some]  # its other separators
    texts += ["", "x", "</s>", "__label__en", "\U0001f600 na\u00efve caf\u00e9 \u4e2d\u6587"]
    for text in texts:
        labels, probabilities = reference.predict(text.replace("\n", " "), k=-1)
        expected = {label.removeprefix("__label__"): float(p) for label, p in zip(labels, probabilities)}
        assert ours.predict(text) == expected, text[:200]
    assert len(texts) > 1400


def test_models_it_does_not_implement_are_refused():
    data = LID176.path.read_bytes()
    with pytest.raises(ValueError, match="not a fastText model this module reads"):
        LanguageIdentifier(data[:-100])  # cut short
    with pytest.raises(ValueError, match="no word n-grams"):
        LanguageIdentifier((MODELS / "edu" / "model.ftz").read_bytes())  # the edu classifier: word bigrams, softmax
