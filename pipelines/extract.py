"""The extract stage: HTML and PDF payloads become text; and the metadata stage, after every
filter: the title and date of the pages they all kept.

Plain Python over Arrow batches (no Ray here). Each failure mode of real crawls has a named
outcome: a page over the size cap, binary bytes served as HTML, a page that makes trafilatura
spin past the time limit, an encrypted or corrupt PDF all land in errors/ with a message; a page
or PDF with no extractable text is rejected with reason ``empty_text``.

Three engines (``extract.engine``): ``trafilatura`` (FineWeb's extractor), ``resiliparse`` (its
main-content text: about 15x faster, less precise), and ``cascade``: a cheap pass
(:class:`CascadeGate`, its own stage ``cascade``) drops the documents that cannot survive the
later stages, judging resiliparse's text with those stages' own models and a margin of safety,
and trafilatura extracts only the rest. Most of a crawl is dropped by language, quality and
educational score, and trafilatura is ~90% of the pipeline's time, so the cascade pays for
trafilatura only on the documents that may be kept; the stored text and the final decisions are
still trafilatura's and the later stages'.
"""

from __future__ import annotations

import codecs
import ctypes
import functools
import itertools
import logging
import re
import math
import threading
import time
from contextlib import contextmanager

import pyarrow as pa

from thresher.config import ClassifyConfig, ExtractConfig, LanguageConfig, QualityConfig
from thresher.schema import ERRORED, KEPT, REJECTED, ROW_SCHEMA

STAGE = "extract"

# WHATWG encoding rules: browsers decode these labels as the superset, and so must we.
_ENCODING_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "iso-8859-1": "cp1252", "latin-1": "cp1252",
                       "ascii": "cp1252", "us-ascii": "cp1252", "iso-8859-9": "cp1254", "tis-620": "cp874",
                       "ks_c_5601-1987": "cp949", "euc-kr": "cp949", "shift_jis": "cp932", "x-sjis": "cp932"}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_MAGIC = {b"\x89PNG": "PNG image", b"GIF8": "GIF image", b"\xff\xd8\xff": "JPEG image", b"%PDF": "PDF",
          b"PK\x03\x04": "ZIP archive", b"\x1f\x8b": "gzip data", b"RIFF": "RIFF media", b"\x00\x00\x01\x00": "icon",
          b"wOF": "web font", b"\x7fELF": "executable"}


_CONTROL_BYTES = bytes([*range(9), *range(14, 32)])
# The cheap pass identifies the language of a text's beginning: fastText's time grows with the
# length (measured 3.6 ms per page on whole Debian manual pages, most of the pass's time), and a few
# thousand characters settle the language as well as the whole text does.
_LANGUAGE_CHARS = 2000


class ExtractionTimeout(BaseException):
    """A BaseException, so that libraries' own ``except Exception`` blocks cannot swallow it."""


@contextmanager
def time_limit(seconds: float):
    """Raise ExtractionTimeout in this thread after ``seconds`` of wall time.

    trafilatura is pure Python over lxml and can spin for minutes on pathological pages. A
    watchdog thread raises the exception in this thread, which Python delivers between bytecodes
    (a long call into C finishes first; the size caps bound those). SIGALRM cannot do this: Ray
    Data's actors run batches off the main thread, where signals never arrive.
    """
    token = _WATCHDOG.arm(seconds)
    try:
        yield
    finally:
        _WATCHDOG.disarm(token)


class _Watchdog:
    """One thread per process for every ``time_limit``. A thread per document (``threading.Timer``)
    took ~0.14 ms to start and stop, and the page's extraction ran slower beside it: the 674 pages
    the edu cascade sends to trafilatura (bench/peers.py's 5,000) took 6.9 s in one process with a
    timer each, 6.2 s with this thread (medians of 4 alternating rounds); 3 us per limit now.

    It sleeps until the earliest deadline it holds. Arming a limit wakes it only when that deadline
    is sooner (all of a run's limits have the same length: only when it had none); a limit
    disarmed before its deadline is simply gone when the thread wakes.
    """

    def __init__(self):
        self._wake = threading.Condition(threading.Lock())
        self._limits: dict[int, tuple[float, int]] = {}  # token -> (deadline, thread ident)
        self._tokens = itertools.count()
        self._waits_until = math.inf
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> int:
        token, deadline = next(self._tokens), time.monotonic() + seconds
        with self._wake:
            self._limits[token] = (deadline, threading.get_ident())
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._watch, name="thresher-time-limit", daemon=True)
                self._thread.start()
            elif deadline < self._waits_until:
                self._wake.notify()
        return token

    def disarm(self, token: int) -> None:
        with self._wake:
            fired = self._limits.pop(token, None) is None
        # Only when the limit fired, just as the block ended: take back the exception not yet raised.
        # Clearing flags the interpreter's eval breaker (CPython 3.11) and no raise unflags it: every
        # call then took the slow path, and under sys.settrace or cProfile the next call hung.
        if fired:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(threading.get_ident()), None)

    def _watch(self) -> None:
        with self._wake:
            while True:
                now = time.monotonic()
                for token, (deadline, target) in list(self._limits.items()):
                    if deadline <= now:
                        del self._limits[token]
                        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target),
                                                                   ctypes.py_object(ExtractionTimeout))
                self._waits_until = min((deadline for deadline, _ in self._limits.values()), default=math.inf)
                self._wake.wait(None if self._waits_until == math.inf else self._waits_until - now)


_WATCHDOG = _Watchdog()


def _codec(label: str | bytes | None) -> str | None:
    if not label:
        return None
    if isinstance(label, bytes):
        label = label.decode("ascii", "ignore")
    label = label.strip().lower()
    label = _ENCODING_SUPERSETS.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def sniff_binary(raw: bytes) -> str | None:
    """Name what a payload declared as HTML really is, or None if it looks like text."""
    head = raw[:4096]
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            return what
    if b"\x00" in head and not (head.startswith((b"\xff\xfe", b"\xfe\xff"))):  # UTF-16 BOMs are text
        return "binary data (NUL bytes)"
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    if head and controls / len(head) > 0.1:
        return "binary data (control bytes)"
    return None


def decode_html(raw: bytes, declared: str | None) -> tuple[str, str]:
    """(text, codec used): HTTP charset, then <meta> charset, then UTF-8, then detection."""
    if raw.startswith(codecs.BOM_UTF8):
        return raw[3:].decode("utf-8", errors="replace"), "utf-8"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16", errors="replace"), "utf-16"
    meta = _META_CHARSET.search(raw[:8192])
    for label in (declared, meta.group(1) if meta else None):
        codec = _codec(label)
        if codec:
            text = raw.decode(codec, errors="replace")
            # A page in its declared charset but for a stray bad byte (a cut multi-byte sequence)
            # keeps it, as a browser does: detection would garble every character of it.
            if text.count("\ufffd") <= raw.count(b"\xef\xbf\xbd") + len(raw) // 10_000:
                return text, codec
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(raw[:200_000]).best()
    codec = _codec(best.encoding) if best is not None else None
    codec = codec or "utf-8"
    return raw.decode(codec, errors="replace"), codec


class Extractor:
    """HTML/PDF -> text for one batch. Holds nothing but settings, so it is cheap to build."""

    def __init__(self, config: ExtractConfig | None):
        self.config = config  # None: the stage is off, and HTML/PDF records cannot become documents
        # trafilatura's title and date wait for the metadata stage (:class:`Metadata`), which
        # searches only the pages every filter kept: each such page keeps its HTML until then.
        self.defers_metadata = bool(config and config.with_metadata and config.engine != "resiliparse")
        logging.getLogger("trafilatura").setLevel(logging.CRITICAL)  # its warnings repeat our error rows

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        for row in rows:
            if row["status"] == KEPT and row["raw"] is not None:
                self._extract(row)
            elif row["status"] == KEPT and not (row["text"] or "").strip():
                _reject(row, "empty_text")
            if not (self.defers_metadata and row["status"] == KEPT and row["content_type"] == "html"):
                row["raw"] = None
        return pa.Table.from_pylist(rows, schema=ROW_SCHEMA)

    def _extract(self, row: dict) -> None:
        kind, raw = row["content_type"], row["raw"]
        if self.config is None:
            _error(row, f"{kind} input needs the extract stage, which is off in this config")
            return
        try:
            with time_limit(self.config.timeout_s):
                if kind == "pdf":
                    text, title = self._pdf(raw), None
                    date = None
                else:
                    text, title, date = self._html(raw, row["charset"], row["url"])
        except ExtractionTimeout:
            _error(row, f"extraction took longer than extract.timeout_s={self.config.timeout_s:g}s")
            return
        except DocumentError as e:
            _error(row, str(e))
            return
        except Exception as e:  # a library failing on one document must not stop the batch
            _error(row, f"{kind} extraction failed: {type(e).__name__}: {e}")
            return
        row["text"], row["title"], row["date"] = text, title, date
        if not (text or "").strip():
            _reject(row, "empty_text")

    def _html(self, raw: bytes, charset: str | None, url: str | None):
        html = checked_html(raw, charset, self.config)
        if self.config.engine == "resiliparse":
            return resiliparse_text(html, self.config)
        import trafilatura
        from trafilatura.core import determine_returnstring
        from trafilatura.settings import Extractor as TrafilaturaOptions
        from trafilatura.utils import load_html

        from thresher.pipelines.trafilatura_xpaths import install

        install()  # ten of its XPaths as Python predicates: the same elements, sooner
        options = TrafilaturaOptions(
            output_format="txt", url=url, precision=self.config.favor_precision,
            comments=self.config.include_comments, tables=self.config.include_tables,
            dedup=False,  # its cache spans documents: output would depend on batch order
        )
        tree = load_html(html, options.max_file_size)
        doc = None if tree is None else trafilatura.bare_extraction(tree, options=options)
        if doc is None:
            return None, None, None
        # The text as trafilatura.extract() (FineWeb's, datatrove's) serialises it. bare_extraction's
        # own .text differs (leading tabs of the first line, no NFC): 85 of 5,000 real pages then
        # failed Gopher's duplicate-line rule that extract()'s text passes (bench/peers.py,
        # tests/test_extract.py).
        return determine_returnstring(doc, options), None, None

    def _pdf(self, raw: bytes) -> str:
        if len(raw) > self.config.max_pdf_bytes:
            raise DocumentError(f"PDF too large: {len(raw)} bytes over extract.max_pdf_bytes={self.config.max_pdf_bytes}")
        import pypdfium2 as pdfium
        import pypdfium2.raw as pdfium_c

        try:
            pdf = pdfium.PdfDocument(raw)
        except pdfium.PdfiumError as e:
            if getattr(e, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
                raise DocumentError("encrypted PDF: a password is needed to read it") from None
            raise DocumentError(f"corrupt PDF: {e}") from None
        pages = []
        try:
            for i in range(len(pdf)):
                page = pdf[i]
                textpage = page.get_textpage()
                try:
                    pages.append(textpage.get_text_range())
                finally:
                    textpage.close()
                    page.close()
        finally:
            pdf.close()
        # PDFium ends lines with CRLF and marks a hyphen it removed at a line break with U+FFFE.
        return "\n\n".join(p.replace("\r\n", "\n").replace("\ufffe", "") for p in pages)


class Metadata:
    """The stage ``metadata``, after every filter: trafilatura's title and date of each HTML
    document they all kept, from the page that :class:`Extractor` left in the row, which it then drops.

    Searched at extraction, they cost each extracted page ~6 ms (trafilatura's text ~10 ms), mostly
    on pages a later stage drops: of bench/peers.py's 5,000 pages the filters keep 1,081 with the
    trafilatura engine, and 70 of the 673 that the edu cascade extracts. Here the page is parsed
    again (~1 ms). A page whose search fails or runs past ``extract.timeout_s`` keeps its text,
    without title and date.
    """

    def __init__(self, config: ExtractConfig):
        self.config = config

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        for row in rows:
            if row["status"] == KEPT and row["raw"] is not None:
                row["title"], row["date"] = self._search(row)
            row["raw"] = None
        return pa.Table.from_pylist(rows, schema=ROW_SCHEMA)

    def _search(self, row: dict) -> tuple[str | None, str | None]:
        from trafilatura.settings import Extractor as TrafilaturaOptions
        from trafilatura.utils import load_html

        options = TrafilaturaOptions(url=row["url"])
        try:
            with time_limit(self.config.timeout_s):
                tree = load_html(checked_html(row["raw"], row["charset"], self.config), options.max_file_size)
                return (None, None) if tree is None else title_and_date(tree, row["url"], options.date_params)
        except (ExtractionTimeout, Exception):  # noqa: BLE001  the text, judged and kept, stays
            return None, None


def title_and_date(tree, url: str | None, date_params: dict) -> tuple[str | None, str | None]:
    """The title and date that trafilatura's ``with_metadata`` finds, by the same functions in the
    same order, without the fields Thresher does not store: its author, site name, categories,
    tags and licence searches were 11 of its 17 ms per page, a fifth of extraction's time
    (tests/test_extract.py checks both values against trafilatura's on every sample page).
    A page whose metadata search fails keeps its text, without title and date."""
    from htmldate import find_date
    from trafilatura import metadata

    found = metadata.examine_meta(tree)
    try:
        found = metadata.extract_meta_json(tree, found)
    except Exception:  # noqa: BLE001  trafilatura guards this call the same way
        pass
    try:
        found.title = found.title or metadata.extract_title(tree)
        found.date = find_date(tree, **{**date_params, "url": found.url or metadata.extract_url(tree, url)})
    except (TypeError, ValueError):
        return None, None
    found.clean_and_trim()  # as trafilatura trims every field
    return found.title, found.date


class DocumentError(Exception):
    """A document-level problem whose message is the error row's text."""


def checked_html(raw: bytes, charset: str | None, config: ExtractConfig) -> str:
    """The page as text, or DocumentError for a page over the size cap or binary bytes."""
    if len(raw) > config.max_html_bytes:
        raise DocumentError(f"HTML too large: {len(raw)} bytes over extract.max_html_bytes={config.max_html_bytes}")
    binary = sniff_binary(raw)
    if binary:
        raise DocumentError(f"not HTML: the payload is {binary}")
    return decode_html(raw, charset)[0]


def resiliparse_text(html: str, config: ExtractConfig) -> tuple[str, str | None, None]:
    """(text, title, date) by resiliparse's main-content heuristics; it finds no date."""
    from resiliparse.parse.html import HTMLTree
    from resiliparse.extract.html2text import extract_plain_text

    tree = HTMLTree.parse(html)
    text = extract_plain_text(tree, preserve_formatting=True, main_content=True, list_bullets=True,
                              alt_texts=False, comments=config.include_comments)
    return text, tree.title or None, None


class CascadeGate:
    """The cheap pass of ``engine: cascade``, the stage before extract: an HTML page whose
    resiliparse text cannot survive a later stage, even with a margin of safety, is rejected here
    (stage ``cascade``) and never reaches trafilatura.

    Each check is a later stage's own rule, loosened, and runs only where that stage drops
    documents (mode ``filter``):

    - language: the language stage's model; rejected as ``language_<top>`` (or
      ``language_low_score``) when every kept language scores below ``min_score - language_margin``;
    - quality: ``too_short`` when the text has fewer whitespace-separated words than
      ``min_words_fraction`` of Gopher's ``min_doc_words``; ``curly_bracket`` when a line C4
      keeps holds "{" (C4's rule, not loosened: resiliparse and trafilatura agree on it);
    - classify: the classify stage's model, batched; ``edu_prescore`` when the score is below
      ``min_score - edu_margin``.

    A rejected row keeps the cheap text (and its language), so the audit shows what was judged.
    Pages the extract stage will refuse (size cap, binary bytes, undecodable) pass untouched:
    their error is extract's to report.
    """

    stage = "cascade"

    def __init__(self, extract: ExtractConfig, language: LanguageConfig | None = None,
                 quality: QualityConfig | None = None, classify: ClassifyConfig | None = None):
        margins = extract.cascade
        self.extract = extract
        self.language = self.language_floor = None
        if language and language.mode == "filter" and language.keep and margins.language_margin is not None:
            from thresher.filters.language import LanguageFilter

            self.language, self.language_floor = LanguageFilter(language), language.min_score - margins.language_margin
        filtering = quality if quality and quality.mode == "filter" else None
        gopher, c4 = (filtering.gopher_quality, filtering.c4) if filtering else (None, None)
        self.min_words = (math.ceil(gopher.min_doc_words * margins.min_words_fraction)
                          if gopher and gopher.min_doc_words and margins.min_words_fraction is not None else None)
        self.curly_bracket = None  # text -> whether C4 drops it for a curly bracket
        if c4 and c4.filter_curly_bracket and margins.curly_bracket:
            from thresher.filters.quality import c4_curly_bracket

            self.curly_bracket = functools.partial(c4_curly_bracket, cfg=c4)
        self.edu = self.edu_floor = None
        if classify and classify.mode == "filter" and classify.min_score is not None and margins.edu_margin is not None:
            from thresher.classifiers.stage import EduClassifier

            self.edu, self.edu_floor = EduClassifier(classify), classify.min_score - margins.edu_margin

    def cheap_text(self, row: dict) -> str | None:
        """resiliparse's text of an HTML row; None for a row the gate leaves to extract."""
        if row["status"] != KEPT or row["content_type"] != "html" or row["raw"] is None:
            return None
        try:
            return resiliparse_text(checked_html(row["raw"], row["charset"], self.extract), self.extract)[0]
        except Exception:  # noqa: BLE001  extract reports this page's problem; the gate only decides
            return None

    def identify_language(self, text: str) -> tuple[str, float, float] | None:
        """The language stage's (top language, its score, best kept language's score) for the
        text's beginning; None for a blank text."""
        return self.language.identify(text[:_LANGUAGE_CHARS]) if text.strip() else None

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        survivors, texts = [], []
        for row in rows:
            text = self.cheap_text(row)
            if text is None:
                continue
            reason = self._reason(row, text)
            if reason:
                _reject_cheaply(row, text, reason)
            else:
                survivors.append(row)
                texts.append(text)
        if self.edu and survivors:
            for row, text, score in zip(survivors, texts, self.edu.score(texts)):
                if score < self.edu_floor:
                    _reject_cheaply(row, text, "edu_prescore")
        return pa.Table.from_pylist(rows, schema=ROW_SCHEMA)

    def _reason(self, row: dict, text: str) -> str | None:
        identified = self.identify_language(text) if self.language else None
        if identified:
            top, score, kept = identified
            row["language"], row["language_score"] = top, score
            if kept < self.language_floor:
                return "language_low_score" if top in self.language.keep else f"language_{top}"
        if self.min_words is not None and len(text.split()) < self.min_words:
            return "too_short"
        if self.curly_bracket and self.curly_bracket(text):
            return "curly_bracket"
        return None


def _reject_cheaply(row: dict, text: str, reason: str) -> None:
    row.update(status=REJECTED, stage=CascadeGate.stage, reason=reason, text=text, raw=None)


def _reject(row: dict, reason: str) -> None:
    row["status"], row["stage"], row["reason"] = REJECTED, STAGE, reason


def _error(row: dict, message: str) -> None:
    row["status"], row["stage"], row["reason"] = ERRORED, STAGE, message
