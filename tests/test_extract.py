import gzip
import json
import re
import subprocess
import sys
import threading
import time
import unicodedata
from copy import deepcopy

import pytest

import bad_inputs
from conftest import SAMPLES, TESTDATA
from thresher.config import ExtractConfig
from thresher.pipelines.extract import ExtractionTimeout, Extractor, Metadata, decode_html, time_limit
from thresher.pipelines.readers import Unit, detect_format, read_unit
from thresher.schema import rows_to_table

LIMIT = 64 * 2**20


def extract(path, **config):
    path = str(path)
    rows = list(read_unit(Unit(path, detect_format(path)), LIMIT))
    return Extractor(ExtractConfig(**config))(rows_to_table(rows)).to_pylist()


def words(text):
    return re.sub(r"\s+", " ", text).strip()


def test_known_article_pages_contain_their_ground_truth():
    # favor_precision (FineWeb's setting) drops a few true paragraphs: measured 79 of 82 here.
    truth = [json.loads(line) for line in open(SAMPLES / "extraction_ground_truth.jsonl", encoding="utf-8")]
    found = total = 0
    for page in truth:
        [doc] = extract(SAMPLES / "html" / page["file"])
        assert doc["status"] == "kept", page["file"]
        text = words(doc["text"])
        if "expected_text" in page:
            paragraphs = [words(p) for p in page["expected_text"].split("\n") if len(p) > 80]
            hits = sum(p in text for p in paragraphs)
            assert hits >= 0.7 * len(paragraphs), (page["file"], hits, len(paragraphs))
            found, total = found + hits, total + len(paragraphs)
        for snippet in page.get("expected_with", []):
            assert words(snippet) in text, (page["file"], snippet)
    assert total > 50 and found >= 0.9 * total


def test_text_is_what_trafilatura_extract_returns_as_fineweb_calls_it():
    """The stored text is trafilatura.extract()'s (FineWeb's and datatrove's call), with and
    without metadata, and the title and date are those of trafilatura's metadata search.
    bare_extraction's own .text differed on 15 of these 72 pages (leading whitespace, no NFC),
    enough for Gopher's duplicate-line rule to drop pages extract() keeps."""
    import glob

    import trafilatura

    from thresher.pipelines.extract import checked_html
    from thresher.pipelines.trafilatura_xpaths import install, trafilatura_s_own

    assert install()  # the pinned trafilatura's expressions are the ones re-implemented
    pages = titles = dates = 0
    for path in sorted(glob.glob(str(SAMPLES / "html" / "*")) + glob.glob(str(SAMPLES / "warc" / "*"))):
        rows = [r for r in read_unit(Unit(path, detect_format(path)), LIMIT) if r["content_type"] == "html"]
        with_metadata = Metadata(ExtractConfig())(Extractor(ExtractConfig())(rows_to_table(rows))).to_pylist()
        without = Extractor(ExtractConfig(with_metadata=False))(rows_to_table(rows)).to_pylist()
        for row, doc, plain in zip(rows, with_metadata, without):
            if doc["status"] != "kept":
                continue
            html = checked_html(row["raw"], row["charset"], ExtractConfig())
            with trafilatura_s_own():  # the reference runs trafilatura's own discard XPaths
                expected = trafilatura.extract(html, url=row["url"], favor_precision=True, include_comments=False,
                                               deduplicate=False)
            assert doc["text"] == plain["text"] == expected, row["url"]
            # Title and date by Thresher's slimmer metadata search, as trafilatura's whole one finds them.
            metadata = trafilatura.bare_extraction(html, url=row["url"], favor_precision=True, include_comments=False,
                                                   with_metadata=True)
            assert (doc["title"], doc["date"]) == (metadata.title, metadata.date), row["url"]
            titles += doc["title"] is not None
            dates += doc["date"] is not None
            pages += 1
    assert pages >= 60 and titles >= 50 and dates >= 10


def test_xpath_predicates_select_what_trafilatura_s_xpaths_select():
    """pipelines/trafilatura_xpaths.py against the expressions it stands in for, on every sample
    page's tree as loaded (ol and ul still there) and as cleaned and converted for extraction
    (bench/peers.py's 5,000 pages: the same elements)."""
    import glob
    from collections import Counter

    from trafilatura import xpaths
    from trafilatura.htmlprocessing import convert_tags, tree_cleaning
    from trafilatura.settings import Extractor as TrafilaturaOptions
    from trafilatura.utils import load_html

    from thresher.pipelines.extract import checked_html
    from thresher.pipelines.trafilatura_xpaths import install, trafilatura_s_own

    assert install() == 10  # every expression re-implemented is the pinned trafilatura's
    with trafilatura_s_own() as originals:
        pass
    options = TrafilaturaOptions(output_format="txt", precision=True)
    pages, selected = 0, Counter()
    for path in sorted(glob.glob(str(SAMPLES / "html" / "*")) + glob.glob(str(SAMPLES / "warc" / "*"))):
        for row in read_unit(Unit(path, detect_format(path)), LIMIT):
            if row["content_type"] != "html" or row["raw"] is None:
                continue
            loaded = load_html(checked_html(row["raw"], row["charset"], ExtractConfig()))
            if loaded is None:
                continue
            cleaned = convert_tags(tree_cleaning(deepcopy(loaded), options), options)
            for tree in (loaded, cleaned):
                for (name, position), theirs in originals.items():
                    found = getattr(xpaths, name)[position](tree)
                    assert found == theirs(tree), (row["url"], name, position)
                    selected[name, position] += len(found)
            pages += 1
    # Each expression selects something on these pages, so each predicate is tested on matches.
    assert pages >= 70 and len(selected) == 10 and min(selected.values()) > 0, (pages, selected)


def test_common_crawl_gb2312_and_windows_1251_pages_decode():
    docs = [d for d in extract(SAMPLES / "warc" / "resiliparse_cc2020_warcfile.warc.gz") if d["status"] == "kept"]
    text = "".join(d["text"] for d in docs)
    assert re.search(r"[\u4e00-\u9fff]{20}", text)  # Chinese
    assert re.search(r"[\u0400-\u04ff]{5}", text)  # Cyrillic
    assert text.count("\ufffd") < 0.001 * len(text)


def test_non_utf8_page_without_declared_charset_is_detected():
    raw = gzip.decompress((TESTDATA / "mix1.de-clio.html.gz").read_bytes())
    stripped = re.sub(rb"charset\s*=\s*[\"']?[A-Za-z0-9_-]+", b"", raw)
    assert b"charset" not in stripped.lower()
    html, _ = decode_html(stripped, None)
    assert "Zuvor hatte die Sängerin und Songschreiberin" in html


def test_page_in_declared_utf8_with_one_cut_sequence_stays_utf8():
    # Detection once took this page for mac-latin2 because of one bad byte, garbling all its Polish.
    raw = gzip.decompress((TESTDATA / "radiomaryja_utf8_one_cut_sequence.html.gz").read_bytes())
    html, codec = decode_html(raw, "utf-8")
    assert codec == "utf-8" and html.count("\ufffd") == 1 and "Świętego" in html


def test_page_declaring_utf8_that_is_not_falls_back_to_detection():
    raw = gzip.decompress((TESTDATA / "mix1.de-clio.html.gz").read_bytes())
    html, codec = decode_html(raw, "utf-8")
    assert codec != "utf-8" and "Zuvor hatte die Sängerin und Songschreiberin" in html


def test_time_limit_interrupts_python_code():
    started = time.monotonic()
    with pytest.raises(ExtractionTimeout):
        with time_limit(0.2):
            while True:
                pass
    assert time.monotonic() - started < 1.0


def test_time_limit_interrupts_a_thread_that_is_not_main():
    # Ray may run an actor's calls off the main thread, where a signal-based limit never fires.
    outcome = []

    def spin():
        try:
            with time_limit(0.2):
                while True:
                    pass
        except ExtractionTimeout:
            outcome.append("interrupted")

    worker = threading.Thread(target=spin)
    worker.start()
    worker.join(timeout=5)
    assert outcome == ["interrupted"]


def test_time_limit_wakes_its_watchdog_for_a_sooner_deadline():
    # One watchdog thread serves every limit: asleep until a 30 s deadline, it must still end a
    # 0.2 s limit armed after it, and then go on serving the next one.
    for _ in range(2):
        started = time.monotonic()
        with time_limit(30):
            with pytest.raises(ExtractionTimeout):
                with time_limit(0.2):
                    while True:
                        pass
        assert time.monotonic() - started < 1.0


def test_time_limit_leaves_no_exception_behind():
    with time_limit(0.05):
        pass
    time.sleep(0.2)  # the limit ended before its deadline: nothing is raised here


def test_a_finished_time_limit_leaves_tracers_and_profilers_working():
    # A debugger, coverage (sys.settrace) or cProfile after any extraction: the first traced call
    # hung when every limit's end flagged the interpreter's eval breaker. A fresh interpreter, so
    # that no earlier test's limits or pytest's own tracing decide the outcome.
    script = (
        "import cProfile, sys\n"
        "from thresher.pipelines.extract import time_limit\n"
        "def work():\n    return sum(i for i in range(1000))\n"
        "with time_limit(10):\n    pass\n"
        "sys.settrace(lambda *a: None); work(); sys.settrace(None)\n"
        "cProfile.Profile().runcall(work)\n"
        "print('traced')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "traced\n", done.stderr


def test_extraction_over_the_time_limit_is_an_error_row():
    [doc] = extract(next((SAMPLES / "html").glob("aeb-*")), timeout_s=0.0001)
    assert doc["status"] == "errored" and "took longer than" in doc["reason"]


def test_a_metadata_search_over_the_time_limit_keeps_the_document_without_title_and_date():
    # The sample page with the slowest search (~18 ms): the watchdog needs the GIL to fire, which
    # may take a switch interval (5 ms), so on a ~3 ms search the limit could end unfired.
    path = str(SAMPLES / "html" / "trafilatura-edition.cnn.com-.html.gz")
    extracted = Extractor(ExtractConfig())(rows_to_table(list(read_unit(Unit(path, "html"), LIMIT))))
    [found] = Metadata(ExtractConfig())(extracted).to_pylist()
    [late] = Metadata(ExtractConfig(timeout_s=0.0001))(extracted).to_pylist()
    assert found["status"] == late["status"] == "kept" and found["title"]
    assert late["text"] == found["text"] and late["title"] is None and late["date"] is None and late["raw"] is None


def test_pdf_text_matches_the_known_text():
    [doc] = extract(SAMPLES / "pdf" / "pypdf_crazyones.pdf")
    expected = (TESTDATA / "pypdf_crazyones.txt").read_text()
    # PDFium writes the ligatures "ﬁ" and "ﬀ" as "fi" and "ff"; the reference keeps them.
    assert words(doc["text"]) == words(unicodedata.normalize("NFKC", expected))


@pytest.mark.parametrize("name", sorted(n for n, (_, stage, _) in bad_inputs.EXPECTED.items() if stage == "extract"))
def test_bad_documents(bad_folder, name):
    status, stage, text = bad_inputs.EXPECTED[name]
    [doc] = [d for d in extract(bad_folder / name) if d["status"] != "skipped"]
    assert (doc["status"], doc["stage"]) == (status, stage)
    assert text in doc["reason"]


def test_huge_page_is_refused_before_parsing(tmp_path):
    bad_inputs.huge_page(tmp_path / "huge.html")
    started = time.monotonic()
    [doc] = extract(tmp_path / "huge.html")
    size = int(re.search(r"(\d+) bytes over", doc["reason"]).group(1))
    assert size >= 20 * 2**20 and time.monotonic() - started < 2


def test_with_extract_off_html_is_an_error_and_text_passes():
    off = Extractor(None)
    html_rows = list(read_unit(Unit(str(next((SAMPLES / "html").glob("aeb-*"))), "html"), LIMIT))
    [html] = off(rows_to_table(html_rows)).to_pylist()
    assert html["status"] == "errored" and html["reason"] == "html input needs the extract stage, which is off in this config"
    jsonl = str(SAMPLES / "jsonl" / "dolma_cc_en_head-0091.jsonl")
    docs = off(rows_to_table(list(read_unit(Unit(jsonl, "jsonl"), LIMIT)))).to_pylist()
    assert {d["status"] for d in docs} == {"kept"} and len(docs) == 10
