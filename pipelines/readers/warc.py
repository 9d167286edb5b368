"""WARC, ARC and WET files, gzipped or not, streamed a record at a time with warcio.

warcio decodes HTTP chunked transfer encoding and Content-Encoding, and converts ARC records to
WARC ones. It does not complain about a truncated gzip member or a short record: it simply ends.
We check after each record that its bytes were all there, so truncation is reported, not lost.
"""

from __future__ import annotations

from collections.abc import Iterator

from warcio.archiveiterator import ArchiveIterator
from warcio.limitreader import LimitReader

from thresher.pipelines.readers.common import document_row, error_row, skipped_row, too_large

HTML_TYPES = {"text/html", "application/xhtml+xml", "application/xml+html", "text/xml+html"}
PDF_TYPES = {"application/pdf", "application/x-pdf"}
NOT_DOCUMENTS = {"request", "metadata", "revisit", "warcinfo", "continuation"}


def _content_type(value: str | None) -> tuple[str, str | None]:
    """('text/html', 'gb2312') from 'text/html; charset="gb2312"'."""
    if not value:
        return "", None
    main, *params = value.split(";")
    charset = None
    for param in params:
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset":
            charset = val.strip().strip("'\"") or None
    return main.strip().lower(), charset


def _classify(record) -> tuple[str | None, str | None, str | None]:
    """(content kind for extract, declared charset, skip reason) for one record."""
    if record.rec_type in NOT_DOCUMENTS:
        return None, None, f"warc_{record.rec_type}"
    if record.rec_type == "conversion":  # WET: the text is already extracted
        return "text", "utf-8", None
    if record.http_headers is not None:
        status = record.http_headers.get_statuscode() or ""
        if not status.startswith("2"):
            return None, None, f"http_status_{status[:1] or '?'}xx"
        mime, charset = _content_type(record.http_headers.get_header("Content-Type"))
    else:  # resource records carry the payload's type in the WARC header
        mime, charset = _content_type(record.rec_headers.get_header("Content-Type"))
    if mime in HTML_TYPES:
        return "html", charset, None
    if mime in PDF_TYPES:
        return "pdf", None, None
    return None, None, f"unsupported_content_type:{mime or 'none'}"


def _truncated(iterator: ArchiveIterator, record) -> bool:
    decompressor = iterator.reader.decompressor
    if decompressor is not None and not decompressor.eof:
        return True
    return isinstance(record.raw_stream, LimitReader) and record.raw_stream.limit > 0


def read(unit, size: int, max_record_bytes: int) -> Iterator[dict]:
    try:
        stream = open(unit.source, "rb")
    except OSError as e:
        yield error_row(unit, 0, f"cannot open: {e.strerror or e}")
        return
    with stream:
        iterator = ArchiveIterator(stream, arc2warc=True)
        offset = 0
        try:
            for record in iterator:
                offset = iterator.offset
                kind, charset, skip = _classify(record)
                url = record.rec_headers.get_header("WARC-Target-URI")
                payload = None
                if kind is not None:
                    payload = record.content_stream().read(max_record_bytes + 1)
                iterator.read_to_end()
                if _truncated(iterator, record):
                    yield error_row(unit, offset, "truncated record: the file ends inside it (cut-off gzip or short file)", url=url)
                    return
                if skip is not None:
                    yield skipped_row(unit, offset, skip)
                elif len(payload) > max_record_bytes:
                    yield too_large(unit, offset, max_record_bytes, url=url)
                else:
                    row = document_row(unit, offset, url=url, content_type=kind, charset=charset)
                    if kind == "text":
                        row["text"] = payload.decode("utf-8", errors="replace")
                    else:
                        row["raw"] = payload
                    yield row
        except Exception as e:
            # warcio cannot resynchronise after a malformed header (a wrong Content-Length lands the
            # parser mid-record), so the rest of this file is one error at the offset where it broke.
            position = iterator.offset if iterator.offset is not None else offset
            yield error_row(unit, position, f"malformed WARC after offset {offset}: {type(e).__name__}: {e}".strip())
