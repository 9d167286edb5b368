import gzip
import json
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

import bad_inputs
from conftest import SAMPLES
from thresher.pipelines.readers import Unit, detect_format, discover, plan_work, read_unit
from thresher.pipelines.readers.warc import gzipped_per_record

LIMIT = 64 * 2**20


def rows_of(path, fmt=None):
    return list(read_unit(Unit(str(path), fmt or detect_format(str(path))), LIMIT))


def test_common_crawl_warc_counts_documents_and_skips_the_rest():
    rows = rows_of(SAMPLES / "warc" / "resiliparse_cc2020_warcfile.warc.gz")
    statuses = Counter(r["status"] for r in rows)
    assert statuses == {"kept": 16, "skipped": 34}
    assert Counter(r["reason"] for r in rows if r["status"] == "skipped") == {
        "warc_request": 17, "warc_metadata": 16, "warc_warcinfo": 1}
    charsets = {r["charset"] for r in rows if r["status"] == "kept"}
    assert {"gb2312", "windows-1251"} <= {c.lower() for c in charsets if c}


def test_revisit_records_are_skipped_never_errors():
    rows = rows_of(SAMPLES / "warc" / "pywb_iana.warc.gz")
    reasons = Counter(r["reason"] for r in rows if r["status"] == "skipped")
    assert reasons["warc_revisit"] == 123
    assert not [r for r in rows if r["status"] == "errored"]


def test_chunked_transfer_encoding_is_decoded():
    [doc] = [r for r in rows_of(SAMPLES / "warc" / "warcio_example-iana.org-chunked.warc") if r["status"] == "kept"]
    html = doc["raw"]
    assert html.lstrip().lower().startswith(b"<!doctype html")
    assert html.rstrip().endswith(b"</html>")  # no chunk-size lines around or inside it


def test_arc_and_wet_files():
    [arc] = [r for r in rows_of(SAMPLES / "warc" / "warcio_example.arc.gz") if r["status"] == "kept"]
    assert arc["url"] == "http://example.com/" and b"Example Domain" in arc["raw"]
    [wet] = [r for r in rows_of(SAMPLES / "warc" / "whirlwind.warc.wet.gz") if r["status"] == "kept"]
    assert wet["raw"] is None and "Escopete" in wet["text"]


def test_ids_are_stable_and_unique():
    first = [r["id"] for r in rows_of(SAMPLES / "warc" / "dolma_sample-0000.warc.gz") if r["id"]]
    second = [r["id"] for r in rows_of(SAMPLES / "warc" / "dolma_sample-0000.warc.gz") if r["id"]]
    assert first == second and len(set(first)) == len(first) == 22


def test_truncated_gzip_keeps_complete_records_and_reports_the_cut(tmp_path):
    path = tmp_path / "truncated.warc.gz"
    complete = bad_inputs.truncated_warc(path)
    rows = rows_of(path)
    assert len(rows) == complete + 1
    assert sum(r["status"] == "kept" for r in rows) == 13
    assert rows[-1]["status"] == "errored" and "truncated record" in rows[-1]["reason"]
    assert rows[-1]["record"] == 99869  # the offset of the cut record


def test_wrong_content_length_is_an_error_not_a_crash(tmp_path):
    path = tmp_path / "bad.warc"
    bad_inputs.wrong_content_length_warc(path)
    rows = rows_of(path)
    assert rows[-1]["status"] == "errored" and "malformed WARC" in rows[-1]["reason"]


def rows_in_ranges(path, unit_bytes):
    [unit] = discover([str(path)])
    work = plan_work([unit], unit_bytes)
    return work, [row for item in work for u in item for row in read_unit(u, LIMIT)]


@pytest.mark.parametrize("name", ["pywb_iana.warc.gz", "dolma_sample-0000.warc.gz", "resiliparse_cc2020_warcfile.warc.gz"])
@pytest.mark.parametrize("unit_bytes", [1_000, 30_000, 200_000])
def test_byte_ranges_read_every_record_once_with_the_same_ids(name, unit_bytes):
    path = SAMPLES / "warc" / name
    work, rows = rows_in_ranges(path, unit_bytes)
    assert len(work) == -(-path.stat().st_size // unit_bytes)
    whole = rows_of(path)
    assert [(r["id"], r["status"], r["reason"], r["raw"]) for r in rows] == \
        [(r["id"], r["status"], r["reason"], r["raw"]) for r in whole]


def test_byte_ranges_of_a_truncated_warc_report_the_cut_once(tmp_path):
    path = tmp_path / "truncated.warc.gz"
    bad_inputs.truncated_warc(path)
    _, rows = rows_in_ranges(path, 7_000)
    assert [(r["id"], r["status"]) for r in rows] == [(r["id"], r["status"]) for r in rows_of(path)]
    assert [r["record"] for r in rows if r["status"] == "errored"] == [99869]


def test_only_warcs_gzipped_per_record_are_split(tmp_path):
    whole_stream = tmp_path / "one-stream.warc.gz"
    whole_stream.write_bytes(gzip.compress(gzip.decompress((SAMPLES / "warc" / "pywb_iana.warc.gz").read_bytes())))
    assert gzipped_per_record(str(SAMPLES / "warc" / "pywb_iana.warc.gz"))
    assert not gzipped_per_record(str(whole_stream))
    assert not gzipped_per_record(str(SAMPLES / "warc" / "warcio_example.arc.gz"))  # ARC: not split
    work, rows = rows_in_ranges(whole_stream, 1_000)
    assert len(work) == 1  # and warcio reads no further than its first record: a clear error, not a cut
    assert rows[-1]["status"] == "errored" and "non-chunked gzip" in rows[-1]["reason"]


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst"])
def test_jsonl_plain_gzip_zstd(tmp_path, suffix):
    data = (SAMPLES / "jsonl" / "dolma_cc_en_head-0091.jsonl").read_bytes()
    path = tmp_path / f"docs{suffix}"
    path.write_bytes({".jsonl": data, ".jsonl.gz": gzip.compress(data),
                      ".jsonl.zst": zstandard.ZstdCompressor().compress(data)}[suffix])
    rows = rows_of(path)
    expected = [json.loads(line) for line in data.decode().splitlines()]
    assert [r["id"] for r in rows] == [e["id"] for e in expected]  # a given id is kept
    assert [r["text"] for r in rows] == [e["text"] for e in expected]


def test_malformed_jsonl_line_is_one_error(tmp_path):
    path = tmp_path / "m.jsonl"
    bad_inputs.malformed_jsonl(path)
    rows = rows_of(path)
    assert Counter(r["status"] for r in rows) == {"kept": 10, "errored": 1}
    [error] = [r for r in rows if r["status"] == "errored"]
    assert error["record"] == 2 and "malformed JSON" in error["reason"]


def test_parquet_with_text_and_with_html(tmp_path):
    lines = (SAMPLES / "jsonl" / "dolma_cc_en_head-0091.jsonl").read_text().splitlines()
    texts = [json.loads(line)["text"] for line in lines]
    pq.write_table(pa.table({"text": texts}), tmp_path / "t.parquet")
    rows = rows_of(tmp_path / "t.parquet")
    assert [r["text"] for r in rows] == texts and len({r["id"] for r in rows}) == len(texts)
    html = gzip.decompress(next((SAMPLES / "html").glob("aeb-*")).read_bytes()).decode("utf-8")
    pq.write_table(pa.table({"html": [html], "url": ["https://example.org/a"]}), tmp_path / "h.parquet")
    [row] = rows_of(tmp_path / "h.parquet")
    assert row["content_type"] == "html" and row["raw"] == html.encode() and row["url"] == "https://example.org/a"


def test_discover_recurses_in_order_and_skips_unknown_files():
    units = discover([str(SAMPLES)])
    assert [u.source for u in units] == sorted(u.source for u in units)
    assert {u.format for u in units} == {"warc", "html", "pdf", "jsonl", None}
    unknown = [u for u in units if u.format is None]
    assert all(list(read_unit(u, LIMIT))[0]["status"] == "skipped" for u in unknown)


def test_oversized_record_is_refused_without_loading_it(tmp_path):
    rows = list(read_unit(Unit(str(SAMPLES / "pdf" / "pdfminer_dmca.pdf"), "pdf"), 1000))
    assert rows[0]["status"] == "errored" and "max_record_bytes" in rows[0]["reason"]
