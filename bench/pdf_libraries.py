#!/usr/bin/env python
"""Benchmark PDF text-extraction libraries on the shared PDF corpus.

Candidates (no AGPL, so no PyMuPDF): pypdf, pdfminer.six, pypdfium2.

For every library x PDF it reports pages, extracted chars, time (median of N
runs, open + extract all pages), pages/s, and quality signals:
  * glued%   - whitespace tokens longer than 25 chars (words glued together)
  * single%  - tokens that are a single letter (words split apart)
  * bad%     - non-printable / U+FFFD / private-use chars, plus "(cid:N)" tokens
  * error    - exception raised, if any
For pypdf_crazyones.pdf it also compares with the ground truth
pypdf_crazyones.txt (difflib ratio on whitespace-normalised text, also after
NFKC, and the fraction of ground-truth words recovered).

Robustness: an encrypted PDF (user password; and owner-only with an empty user
password) and a truncated PDF (first half of the bytes) are made in a temp dir
at run time; each library runs on them in a child process with a timeout so a
hang is detected instead of blocking.

Usage: python bench/pdf_libraries.py [--corpus DIR] [--runs 3] [--timeout 20]
"""

from __future__ import annotations

import argparse
import collections
import difflib
import io
import logging
import multiprocessing as mp
import re
import statistics
import sys
import tempfile
import time
import traceback
import unicodedata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = (REPO_ROOT / ".." / "shared" / "corpus" / "pdf").resolve()
GROUND_TRUTH = {"pypdf_crazyones.pdf": "pypdf_crazyones.txt"}


# --------------------------------------------------------------------------
# Extractors: path -> (page_count, [text per page]). Each opens the file itself
# so that timing covers parsing too.
# --------------------------------------------------------------------------

def extract_pypdf(path: str, password: str | None = None) -> list[str]:
    from pypdf import PdfReader

    reader = PdfReader(path)
    if reader.is_encrypted:
        # decrypt("") succeeds for owner-only encrypted files (empty user pw).
        reader.decrypt(password or "")
    return [page.extract_text() or "" for page in reader.pages]


def extract_pdfminer(path: str, password: str | None = None) -> list[str]:
    from pdfminer.converter import TextConverter
    from pdfminer.layout import LAParams
    from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
    from pdfminer.pdfpage import PDFPage

    rsrc = PDFResourceManager(caching=True)
    buf = io.StringIO()
    device = TextConverter(rsrc, buf, laparams=LAParams())
    interp = PDFPageInterpreter(rsrc, device)
    pages: list[str] = []
    with open(path, "rb") as fh:
        for page in PDFPage.get_pages(fh, password=password or "", check_extractable=False):
            buf.seek(0)
            buf.truncate(0)
            interp.process_page(page)
            pages.append(buf.getvalue().rstrip("\x0c"))
    device.close()
    return pages


def extract_pypdfium2(path: str, password: str | None = None) -> list[str]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(path, password=password)
    try:
        out = []
        for i in range(len(pdf)):
            page = pdf[i]
            textpage = page.get_textpage()
            out.append(textpage.get_text_range().replace("\r\n", "\n"))
            textpage.close()
            page.close()
        return out
    finally:
        pdf.close()


LIBS = {
    "pypdf": extract_pypdf,
    "pdfminer": extract_pdfminer,
    "pypdfium2": extract_pypdfium2,
}


def lib_versions() -> dict[str, str]:
    import pdfminer
    import pypdf
    import pypdfium2.version as pv

    return {
        "pypdf": pypdf.__version__,
        "pdfminer": pdfminer.__version__,
        "pypdfium2": f"{pv.PYPDFIUM_INFO} (pdfium {pv.PDFIUM_INFO})",
    }


# --------------------------------------------------------------------------
# Quality signals
# --------------------------------------------------------------------------

CID_RE = re.compile(r"\(cid:\d+\)")
WORD_RE = re.compile(r"\w+")


def ws_norm(text: str) -> str:
    return " ".join(text.split())


def bad_char_count(text: str) -> int:
    n = len(CID_RE.findall(text))
    for ch in CID_RE.sub("", text):
        if ch in "\n\r\t\x0c ":
            continue
        if ch == "\ufffd" or not ch.isprintable() or unicodedata.category(ch) == "Co":
            n += 1
    return n


def quality(text: str) -> dict[str, float]:
    toks = text.split()
    n = len(toks) or 1
    return {
        "glued": sum(len(t) > 25 for t in toks) / n,
        "single": sum(len(t) == 1 and t.isalpha() for t in toks) / n,
        "bad": bad_char_count(text) / (len(text) or 1),
    }


def truth_scores(text: str, truth: str) -> dict[str, float]:
    a, b = ws_norm(text), ws_norm(truth)
    an, bn = (unicodedata.normalize("NFKC", s) for s in (a, b))
    got = collections.Counter(w.casefold() for w in WORD_RE.findall(an))
    want = collections.Counter(w.casefold() for w in WORD_RE.findall(bn))
    recovered = sum(min(c, got[w]) for w, c in want.items())
    return {
        "sim": difflib.SequenceMatcher(None, a, b, autojunk=False).ratio(),
        "sim_nfkc": difflib.SequenceMatcher(None, an, bn, autojunk=False).ratio(),
        "words": recovered / (sum(want.values()) or 1),
    }


def short_exc(e: BaseException, limit: int = 70) -> str:
    msg = " ".join(str(e).split())
    if len(msg) > limit:
        msg = msg[: limit - 3] + "..."
    code = getattr(e, "err_code", None)  # pypdfium2.PdfiumError carries PDFium's error code
    extra = f" [err_code={code}]" if code is not None else ""
    return f"{type(e).__module__}.{type(e).__qualname__}{extra}: {msg}"


# --------------------------------------------------------------------------
# Benchmark on the corpus (in process)
# --------------------------------------------------------------------------

def bench_one(fn, path: Path, runs: int) -> dict:
    times, pages, err = [], None, None
    for _ in range(runs):
        t0 = time.perf_counter()
        try:
            pages = fn(str(path))
        except Exception as e:  # noqa: BLE001 - we report whatever it raises
            err = short_exc(e)
            times.append(time.perf_counter() - t0)
            break
        times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    text = "\n".join(pages or [])
    row = {
        "pages": len(pages) if pages is not None else None,
        "chars": sum(len(p) for p in pages or []),
        "time": t,
        "pps": (len(pages) / t) if pages and t > 0 else 0.0,
        "error": err,
        "text": text,
    }
    row.update(quality(text))
    return row


# --------------------------------------------------------------------------
# Robustness (child process + timeout)
# --------------------------------------------------------------------------

def _child(lib: str, path: str, password, conn) -> None:
    try:
        pages = LIBS[lib](path, password)
        conn.send(("ok", f"{len(pages)} pages, {sum(len(p) for p in pages)} chars"))
    except BaseException as e:  # noqa: BLE001
        conn.send(("raised", short_exc(e, 90)))
    conn.close()


def run_isolated(lib: str, path: str, password, timeout: float) -> tuple[str, str, float]:
    ctx = mp.get_context("fork") if sys.platform != "win32" else mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(lib, path, password, send), daemon=True)
    t0 = time.perf_counter()
    proc.start()
    send.close()
    if recv.poll(timeout):
        try:
            status, msg = recv.recv()
        except EOFError:
            status, msg = "crashed", "child exited without a result"
    else:
        status, msg = "HANG", f"no result after {timeout:.0f}s (killed)"
    dt = time.perf_counter() - t0
    proc.join(1)
    if proc.is_alive():
        proc.kill()
        proc.join()
    if status == "crashed" or (status != "HANG" and proc.exitcode not in (0, None)):
        msg += f" (exit code {proc.exitcode})"
    return status, msg, dt


def make_robustness_cases(corpus: Path, tmp: Path) -> list[tuple[str, str, str | None]]:
    from pypdf import PdfReader, PdfWriter

    src = corpus / "pypdf_crazyones.pdf"
    cases = []

    def encrypted(name: str, user: str, owner: str):
        w = PdfWriter(clone_from=PdfReader(src))
        try:
            w.encrypt(user_password=user, owner_password=owner, algorithm="AES-256")
            algo = "AES-256"
        except Exception:  # cryptography package missing -> RC4 works without it
            w = PdfWriter(clone_from=PdfReader(src))
            w.encrypt(user_password=user, owner_password=owner, algorithm="RC4-128")
            algo = "RC4-128"
        out = tmp / name
        with open(out, "wb") as fh:
            w.write(fh)
        return out, algo

    p, algo = encrypted("encrypted_userpw.pdf", "secret", "owner")
    cases.append((f"encrypted ({algo}, user pw, none given)", str(p), None))
    cases.append((f"encrypted ({algo}, correct pw given)", str(p), "secret"))
    p, algo = encrypted("encrypted_owneronly.pdf", "", "owner")
    cases.append((f"encrypted ({algo}, empty user pw)", str(p), None))

    # Truncation loses the xref table and trailer. GeoBase is unencrypted;
    # dmca is RC4-40 encrypted with an empty user password (a real-world case).
    for big, tag in [(corpus / "pypdf_GeoBase_NHNC1_Data_Model_UML_EN.pdf", "GeoBase"),
                     (corpus / "pdfminer_dmca.pdf", "dmca, encrypted")]:
        if not big.exists():
            continue
        data = big.read_bytes()
        trunc = tmp / f"truncated_{big.name}"
        trunc.write_bytes(data[: len(data) // 2])
        cases.append((f"corrupt: 1st half of {tag}", str(trunc), None))
    empty = tmp / "empty.pdf"
    empty.write_bytes(b"")
    cases.append(("corrupt: 0-byte file", str(empty), None))
    cases.append(("no text layer: pdfminer_175.pdf", str(corpus / "pdfminer_175.pdf"), None))
    return cases


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------

def fmt_table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    def line(vals):
        return "  ".join(
            str(v).rjust(w) if i in right else str(v).ljust(w)
            for i, (v, w) in enumerate(zip(vals, widths))
        ).rstrip()
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep] + [line(r) for r in rows])


def pct(x: float) -> str:
    return f"{100 * x:.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--runs", type=int, default=3, help="timed runs per (lib, pdf); median reported")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds before a robustness case counts as a hang")
    args = ap.parse_args()
    corpus = args.corpus.resolve()
    pdfs = sorted(corpus.glob("*.pdf"))
    if not pdfs:
        print(f"no PDFs in {corpus}", file=sys.stderr)
        return 2

    t_start = time.perf_counter()
    # pypdf / pdfminer log recoverable-damage warnings; keep the tables readable.
    for name in ("pypdf", "pdfminer"):
        logging.getLogger(name).setLevel(logging.ERROR)
    print(f"corpus: {corpus} ({len(pdfs)} PDFs); python {sys.version.split()[0]}")
    for lib, v in lib_versions().items():
        print(f"  {lib} {v}")
    print()

    # Warm-up (imports, first-call costs) so the first file is not penalised.
    for fn in LIBS.values():
        try:
            fn(str(pdfs[0]))
        except Exception:
            pass

    results: dict[str, dict[str, dict]] = {lib: {} for lib in LIBS}
    rows = []
    for pdf in pdfs:
        for lib, fn in LIBS.items():
            r = bench_one(fn, pdf, args.runs)
            results[lib][pdf.name] = r
            rows.append([
                pdf.name.removesuffix(".pdf")[:40], lib,
                "-" if r["pages"] is None else r["pages"], r["chars"],
                f"{1000 * r['time']:.1f}", f"{r['pps']:.1f}",
                pct(r["glued"]), pct(r["single"]), pct(r["bad"]),
                (r["error"] or "")[:60],
            ])
    print(f"== Extraction (time = median of {args.runs} runs, open + all pages) ==")
    print(fmt_table(
        ["pdf", "lib", "pages", "chars", "ms", "pages/s", "glued%", "single%", "bad%", "error"],
        rows, right={2, 3, 4, 5, 6, 7, 8},
    ))
    print()

    # Ground truth
    print("== Ground truth (sim = difflib ratio on whitespace-normalised text; words = GT words recovered, NFKC+casefold) ==")
    gt_rows = []
    for pdf_name, txt_name in GROUND_TRUTH.items():
        truth_path = corpus / txt_name
        if not truth_path.exists() or pdf_name not in results["pypdf"]:
            continue
        truth = truth_path.read_text(encoding="utf-8")
        for lib in LIBS:
            s = truth_scores(results[lib][pdf_name]["text"], truth)
            results[lib][pdf_name]["truth"] = s
            gt_rows.append([pdf_name, lib, f"{s['sim']:.3f}", f"{s['sim_nfkc']:.3f}", pct(s["words"])])
    print(fmt_table(["pdf", "lib", "sim", "sim_nfkc", "words%"], gt_rows, right={2, 3, 4}))
    print()

    print("== What the bad% characters are (all PDFs; top 5 per library) ==")
    for lib in LIBS:
        c = collections.Counter()
        for r in results[lib].values():
            c.update(f"U+{ord(ch):04X}" for ch in CID_RE.sub("", r["text"])
                     if ch not in "\n\r\t\x0c " and (ch == "\ufffd" or not ch.isprintable()
                                                or unicodedata.category(ch) == "Co"))
            n_cid = len(CID_RE.findall(r["text"]))
            if n_cid:
                c["(cid:N)"] += n_cid
        print(f"  {lib:<10} " + (", ".join(f"{k} x{v}" for k, v in c.most_common(5)) or "none"))
    print("  (U+FFFE from PDFium marks a hyphen at a line break, e.g. 'dan\\ufffegerous';")
    print("   U+F0xxx are private-use code points from fonts without a proper ToUnicode map)")
    print()

    # Medians per library
    print("== Summary per library (medians over PDFs; total = sum over PDFs) ==")
    sum_rows = []
    for lib in LIBS:
        rs = list(results[lib].values())
        ok = [r for r in rs if r["error"] is None]
        text_rs = [r for r in ok if r["chars"] > 0]
        tot_pages = sum(r["pages"] or 0 for r in ok)
        tot_time = sum(r["time"] for r in rs)
        gt = [r["truth"] for r in rs if "truth" in r]
        sum_rows.append([
            lib, f"{len(ok)}/{len(rs)}",
            f"{statistics.median(r['time'] for r in rs) * 1000:.1f}",
            f"{statistics.median(r['pps'] for r in ok):.1f}" if ok else "-",
            f"{tot_pages / tot_time:.1f}" if tot_time else "-",
            f"{tot_time * 1000:.0f}",
            sum(r["chars"] for r in ok),
            pct(statistics.median(r["glued"] for r in text_rs)) if text_rs else "-",
            pct(statistics.median(r["single"] for r in text_rs)) if text_rs else "-",
            pct(statistics.median(r["bad"] for r in text_rs)) if text_rs else "-",
            f"{gt[0]['sim']:.3f}" if gt else "-",
            pct(gt[0]["words"]) if gt else "-",
        ])
    print(fmt_table(
        ["lib", "ok", "med ms", "med pages/s", "total pages/s", "total ms", "total chars",
         "med glued%", "med single%", "med bad%", "GT sim", "GT words%"],
        sum_rows, right=set(range(1, 12)),
    ))
    print()

    # Robustness
    print(f"== Robustness (child process per case, hang timeout {args.timeout:.0f}s) ==")
    rob_rows = []
    with tempfile.TemporaryDirectory(prefix="pdfbench_") as tmp:
        for label, path, password in make_robustness_cases(corpus, Path(tmp)):
            for lib in LIBS:
                status, msg, dt = run_isolated(lib, path, password, args.timeout)
                rob_rows.append([label, lib, status, f"{dt:.2f}", msg])
    print(fmt_table(["case", "lib", "result", "s", "detail"], rob_rows, right={3}))
    print()
    print(f"total runtime {time.perf_counter() - t_start:.1f}s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception:
        traceback.print_exc()
        sys.exit(1)
