"""WARC, ARC and WET files, gzipped or not, streamed a record at a time with warcio.

warcio decodes HTTP chunked transfer encoding and Content-Encoding, and converts ARC records to
WARC ones. It does not complain about a truncated gzip member or a short record: it simply ends.
We check after each record that its bytes were all there, so truncation is reported, not lost.

A WARC gzipped one record per member (as Common Crawl writes them) can be read in byte ranges:
a range reads the records whose member starts inside it, finding the first one by looking for a
gzip header that decompresses to a WARC header. Ranges let every core work on one large file
and let a worker read only as fast as its stages consume, so memory does not grow with the file.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from warcio.archiveiterator import ArchiveIterator
from warcio.limitreader import LimitReader

from thresher.pipelines.storage import open_binary
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


def _truncated(iterator: ArchiveIterator, record, stream, size: int) -> bool:
    if isinstance(record.raw_stream, LimitReader) and record.raw_stream.limit > 0:
        return True
    decompressor = iterator.reader.decompressor
    if decompressor is None or decompressor.eof:
        return False
    # An unfinished gzip member is a cut only where the file has nothing left: a WARC compressed
    # as one stream is mid-member after every record but the last.
    return (stream.tell() >= size and iterator.reader.rem_length() == 0
            and not getattr(decompressor, "unconsumed_tail", b""))


SPLITTABLE_SUFFIXES = (".warc.gz", ".wet.gz")
_GZIP_MAGIC = b"\x1f\x8b\x08"
_SCAN_BYTES = 1 << 20
_FIRST_MEMBER_LIMIT = 16 << 20  # a first member bigger than this is a whole-file gzip: not splittable


def _warc_member_at(stream, offset: int) -> bool:
    """Whether a gzip member holding a WARC record starts at ``offset``."""
    stream.seek(offset)
    try:
        head = zlib.decompressobj(31).decompress(stream.read(4096), 16)
    except zlib.error:
        return False
    return head.startswith(b"WARC/")


def gzipped_per_record(path: str) -> bool:
    """Whether ``path`` is a gzipped WARC/WET of many members (one per record), so it can be read
    in byte ranges; a file compressed as one stream can only be read from its start."""
    if not path.lower().endswith(SPLITTABLE_SUFFIXES):
        return False
    try:
        with open_binary(path) as stream:
            if not _warc_member_at(stream, 0):
                return False
            stream.seek(0)
            first, produced = zlib.decompressobj(31), 0
            while not first.eof:
                chunk = stream.read(65536)
                if not chunk:
                    return False
                produced += len(first.decompress(chunk, _FIRST_MEMBER_LIMIT))
                if produced >= _FIRST_MEMBER_LIMIT:
                    return False
            return bool(first.unused_data) or bool(stream.read(1))
    except (OSError, zlib.error):
        return False


def _first_record_from(stream, start: int, end: int | None) -> int | None:
    """Offset of the first record member starting in [start, end), or None."""
    position = start
    while end is None or position < end:
        stream.seek(position)
        window = stream.read(_SCAN_BYTES + len(_GZIP_MAGIC) - 1)
        if not window:
            return None
        found = window.find(_GZIP_MAGIC)
        while found != -1 and found < _SCAN_BYTES:
            candidate = position + found
            if end is not None and candidate >= end:
                return None
            if _warc_member_at(stream, candidate):
                return candidate
            found = window.find(_GZIP_MAGIC, found + 1)
        position += _SCAN_BYTES
    return None


def read(unit, size: int, max_record_bytes: int) -> Iterator[dict]:
    try:
        stream = open_binary(unit.source)
    except OSError as e:
        yield error_row(unit, 0, f"cannot open: {e.strerror or e}")
        return
    with stream:
        offset = unit.start
        if unit.start:
            offset = _first_record_from(stream, unit.start, unit.end)
            if offset is None:  # one record spans the whole range: the range before reads it
                return
        stream.seek(offset)
        iterator = ArchiveIterator(stream, arc2warc=True)
        try:
            for record in iterator:
                offset = iterator.offset
                if unit.end is not None and offset >= unit.end:
                    return
                kind, charset, skip = _classify(record)
                url = record.rec_headers.get_header("WARC-Target-URI")
                payload = None
                if kind is not None:
                    payload = record.content_stream().read(max_record_bytes + 1)
                iterator.read_to_end()
                if _truncated(iterator, record, stream, size):
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
            # parser mid-record), so the rest of this range is one error at the offset where it broke;
            # the next range of the file starts afresh at its first intact record.
            position = iterator.offset if iterator.offset is not None else offset
            yield error_row(unit, position, f"malformed WARC after offset {offset}: {type(e).__name__}: {e}".strip())
