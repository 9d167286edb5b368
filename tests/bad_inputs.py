"""Realistically damaged inputs, made at test time from real files, with the outcome each must get.

Each entry: file name -> (status, stage, text the error/rejection reason must contain).
"""

from __future__ import annotations

import gzip
import io
import os
import re
import shutil
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from conftest import SAMPLES, TESTDATA

EXPECTED = {
    "truncated.warc.gz": ("errored", "read", "truncated record"),
    "wrong_content_length.warc": ("errored", "read", "malformed WARC"),
    "binary_as_html.warc.gz": ("errored", "extract", "not HTML: the payload is PNG image"),
    "huge_page.html": ("errored", "extract", "HTML too large"),
    "encrypted.pdf": ("errored", "extract", "encrypted PDF"),
    "corrupt.pdf": ("errored", "extract", "corrupt PDF"),
    "no_text_layer.pdf": ("rejected", "extract", "empty_text"),
    "empty.warc.gz": ("errored", "read", "empty file"),
    "empty.html": ("errored", "read", "empty file"),
    "unreadable.html": ("errored", "read", "cannot open"),
    "malformed.jsonl": ("errored", "read", "malformed JSON"),
}


def truncated_warc(path: Path) -> int:
    """The dolma WARC cut mid-record; returns how many complete records precede the cut."""
    data = (SAMPLES / "warc" / "dolma_sample-0000.warc.gz").read_bytes()
    path.write_bytes(data[:100_000])
    return 27  # record offsets up to 96317 are complete (checked against the whole file)


def wrong_content_length_warc(path: Path) -> None:
    """The chunked iana.org WARC with its response's Content-Length understated by 1000 bytes."""
    data = (SAMPLES / "warc" / "warcio_example-iana.org-chunked.warc").read_bytes()
    start = data.index(b"WARC-Type: response")
    match = re.compile(rb"Content-Length: (\d+)").search(data, start)
    wrong = str(int(match.group(1)) - 1000).encode()
    path.write_bytes(data[: match.start(1)] + wrong + data[match.end(1):])


def binary_as_html_warc(path: Path) -> None:
    """A real PNG from the pywb iana.org crawl, served with Content-Type text/html."""
    with open(SAMPLES / "warc" / "pywb_iana.warc.gz", "rb") as f:
        for record in ArchiveIterator(f):
            if record.rec_type == "response" and "image/png" in (record.http_headers.get_header("Content-Type") or ""):
                payload, url = record.content_stream().read(), record.rec_headers.get_header("WARC-Target-URI")
                break
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(payload), http_headers=headers))


def huge_page(path: Path) -> None:
    """A real article page whose body is repeated to 20 MB."""
    html = next((SAMPLES / "html").glob("aeb-*.html.gz")).read_bytes()
    html = gzip.decompress(html)
    head, _, body = html.partition(b"<body")
    body = b"<body" + body
    path.write_bytes(head + body * (20 * 2**20 // len(body) + 1))


def encrypted_pdf(path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(SAMPLES / "pdf" / "pypdf_crazyones.pdf"))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")  # AES would need the cryptography package
    with open(path, "wb") as f:
        writer.write(f)


def corrupt_pdf(path: Path) -> None:
    data = (SAMPLES / "pdf" / "pdfminer_dmca.pdf").read_bytes()
    path.write_bytes(data[: len(data) // 2])


def malformed_jsonl(path: Path) -> None:
    lines = (SAMPLES / "jsonl" / "dolma_cc_en_head-0091.jsonl").read_text(encoding="utf-8").splitlines()
    lines.insert(2, lines[2][: len(lines[2]) // 2])  # a line cut in half, as a crashed writer leaves it
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def make_all(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    truncated_warc(folder / "truncated.warc.gz")
    wrong_content_length_warc(folder / "wrong_content_length.warc")
    binary_as_html_warc(folder / "binary_as_html.warc.gz")
    huge_page(folder / "huge_page.html")
    encrypted_pdf(folder / "encrypted.pdf")
    corrupt_pdf(folder / "corrupt.pdf")
    shutil.copy(TESTDATA / "pdfminer_175.pdf", folder / "no_text_layer.pdf")
    (folder / "empty.warc.gz").write_bytes(b"")
    (folder / "empty.html").write_bytes(b"")
    os.symlink(folder / "does-not-exist.html", folder / "unreadable.html")
    malformed_jsonl(folder / "malformed.jsonl")
    return folder
