"""The quality stage against datatrove's own filters, used as the oracle, on real text."""

import time

from datatrove.data import Document
from datatrove.pipeline.filters import C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter

from thresher.config import QualityConfig
from thresher.filters.quality import QualityFilter
from thresher.schema import rows_to_table, empty_row


def datatrove_chain(**overrides):
    """FineWeb's filter chain as datatrove builds it (examples/fineweb.py), reason prefixes as ours."""
    return [
        ("gopher_rep_", GopherRepetitionFilter(**overrides.get("gopher_repetition", {}))),
        ("", GopherQualityFilter(**overrides.get("gopher_quality", {}))),
        ("c4_", C4QualityFilter(filter_no_terminal_punct=False, **overrides.get("c4", {}))),
        ("fineweb_", FineWebQualityFilter(**overrides.get("fineweb", {}))),
    ]


def oracle(chain, text: str) -> tuple[str | None, str]:
    doc = Document(text=text, id="0")
    for prefix, step in chain:
        result = step.filter(doc)
        keep, reason = result if isinstance(result, tuple) else (result, None)
        if not keep:
            return prefix + reason, doc.text
    return None, doc.text


def test_same_decisions_reasons_and_text_as_datatrove(corpus):
    ours = QualityFilter(QualityConfig())
    chain = datatrove_chain()
    mismatches = []
    reasons = {}
    for doc in corpus:
        expected_reason, expected_text = oracle(chain, doc["text"])
        signals, reason = ours.evaluate(doc["text"])
        reasons[reason] = reasons.get(reason, 0) + 1
        if reason != expected_reason or (reason is None and signals["_text"] != expected_text):
            mismatches.append((doc["source"], doc["record"], expected_reason, reason))
    assert not mismatches, mismatches[:10]
    # The corpus exercises most rules, not just "keep" (a test that cannot fail proves nothing).
    assert len(corpus) > 500 and reasons[None] > 100
    assert len([r for r in reasons if r]) >= 10, reasons


def test_overridden_thresholds_match_datatrove_with_the_same_settings(corpus):
    overrides = {
        "gopher_repetition": {"dup_line_frac": 0.1, "top_n_grams": {2: 0.1, 3: 0.1, 4: 0.1}},
        "gopher_quality": {"min_doc_words": 200, "min_stop_words": 4, "max_avg_word_length": 6},
        "c4": {"min_num_sentences": 10, "min_words_per_line": 5, "filter_curly_bracket": False},
        "fineweb": {"line_punct_thr": 0.3, "short_line_length": 60, "char_duplicates_ratio": 0.05},
    }
    config = QualityConfig.model_validate(overrides)
    dt_overrides = {k: dict(v) for k, v in overrides.items()}
    dt_overrides["gopher_repetition"]["top_n_grams"] = tuple(overrides["gopher_repetition"]["top_n_grams"].items())
    ours, chain = QualityFilter(config), datatrove_chain(**dt_overrides)
    mismatches = [
        (doc["source"], expected, got)
        for doc in corpus[::3]
        for (expected, _), (_, got) in [(oracle(chain, doc["text"]), ours.evaluate(doc["text"]))]
        if expected != got
    ]
    assert not mismatches, mismatches[:10]


def test_tag_mode_drops_nothing_and_writes_signals_and_flags(corpus):
    rows = [empty_row(id=str(i), text=d["text"], status="kept") for i, d in enumerate(corpus[:80])]
    tagged = QualityFilter(QualityConfig(mode="tag"))(rows_to_table(rows)).to_pylist()
    filtered = QualityFilter(QualityConfig())(rows_to_table(rows)).to_pylist()
    assert all(r["status"] == "kept" and r["quality"]["gopher_words"] is not None for r in tagged)
    for t, f in zip(tagged, filtered):
        assert t["quality"] == f["quality"]  # the same signals in both modes
        if f["status"] == "rejected":
            assert t["flags"] == [f"quality:{f['reason']}"] and f["stage"] == "quality"
        else:
            assert t["flags"] is None
        assert t["text"] == next(r["text"] for r in rows if r["id"] == t["id"])  # tag mode changes no text
    assert any(f["status"] == "rejected" for f in filtered)


def _decide(text):
    row = empty_row(id="x", text=text, status="kept")
    [out] = QualityFilter(QualityConfig())(rows_to_table([row])).to_pylist()
    return out


def test_edge_cases_never_crash_and_their_decisions_are_known(corpus):
    article = max((d["text"] for d in corpus if d["source"].startswith("extraction/aeb")), key=len)
    japanese = next(d["text"] for d in corpus if "ja" in d["source"] or any("\u3040" <= c <= "\u30ff" for c in d["text"][:200]))
    chinese = next(d["text"] for d in corpus if "resiliparse_cc2020" in d["source"] and any("\u4e00" <= c <= "\u9fff" for c in d["text"][:200]))
    # Short: one real sentence is far under Gopher's 50 words.
    assert _decide(article.split("\n")[0][:200])["reason"] == "gopher_short_doc"
    # Empty text never reaches a filter in a run (extract rejects it), but must not crash here.
    assert _decide("")["status"] == "rejected"
    # Spaceless scripts: spaCy's English rules see a few very long "words".
    for text in (japanese, chinese):
        out = _decide(text)
        assert out["status"] == "rejected" and out["reason"].startswith(("gopher_", "c4_", "fineweb_")), out["reason"]
    # 5 MB on one line: a real article repeated. Gopher repetition sees the repeats.
    line = " ".join(article.split())
    huge = (line + " ") * (5_000_000 // len(line) + 1)
    started = time.perf_counter()
    out = _decide(huge[:5_000_000])
    assert out["reason"].startswith("gopher_rep_"), out["reason"]
    assert time.perf_counter() - started < 60


def test_words_are_datatrove_words(corpus):
    # The per-line tokenisation rests on spaCy never joining characters across a line break.
    from datatrove.utils.text import split_into_words

    # The fast path (chunks of ASCII letters or digits never reach spaCy) rests on spaCy's
    # tokenising each space-separated chunk on its own.
    tokenizer = QualityFilter(QualityConfig()).tokenizer
    tokenizer.MAX_STRINGS = 5_000  # rebuilt every few documents here, as every ~500,000 strings in a run
    for doc in corpus[::2]:
        lines = tokenizer.lines([line.strip() for line in doc["text"].splitlines()])
        assert [w for words, _ in lines for w in words] == split_into_words(doc["text"], "en"), doc["source"]
