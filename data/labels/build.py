"""Build data/labels/labels.jsonl.gz, the educational-value training set (issue #5); CARD.md says how.

    .venv/bin/python data/labels/build.py [--corpus /work/shared/corpus] [--cache DIR]

Five label methods, one row per document: ``llama33`` (the corpus's 75 Llama-3.3-70B scores),
``hand`` (our annotators' files under annotations/), ``weak_debian`` (text from Debian documentation
packages, scored by the rules in ``debian_rule``), ``weak_spam`` (spam and SEO pages, 0) and
``weak_navigation`` (the boilerplate trafilatura strips from real pages, 0). Deterministic: pinned
package versions, sorted inputs, and sampling by a hash of the text.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import hashlib
import html as htmllib
import json
import logging
import os
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

import lxml.etree
import lxml.html
import trafilatura

from thresher.pipelines.extract import decode_html, sniff_binary
from thresher.pipelines.readers import Unit, read_unit
from thresher.schema import KEPT

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "labels.jsonl.gz"
METHODS = ("llama33", "hand", "weak_debian", "weak_spam", "weak_navigation")

# Pinned so that a rerun reads the same bytes; apt-get fails loudly if the mirror drops a version.
PACKAGES = {
    "python3.11-doc": "3.11.2-6+deb12u8",
    "debian-reference-en": "2.100",
    "gnu-standards": "2022.03.23-0.1",
    "abs-guide": "10-4",
    "maint-guide": "1.2.53",
    "debian-faq": "11.1",
    "r-doc-html": "4.2.2.20221110-2",
    "kstars-data": "5:3.6.2-2",
    "kturtle": "4:22.12.3-1",
}
# Read from each package's usr/share/doc/<package>/copyright (the part covering the files we use).
LICENCES = {
    "python3.11-doc": "PSF-2.0 (Python Software Foundation License; Debian copyright file)",
    "debian-reference-en": "GPL-2+",
    "gnu-standards": "GFDL-1.3+ (no invariant sections)",
    "abs-guide": "public-domain",
    "maint-guide": "GPL-2+",
    "debian-faq": "SPI verbatim/modified copying permission (Debian FAQ notice)",
    "r-doc-html": "R manuals: verbatim/modified copying permission notice (R Core Team)",
    "kstars-data": "GFDL-NIV-1.2+ (doc/*.docbook)",
    "kturtle": "GFDL-1.2+ (handbook)",
}
CORPUS_LICENCES = {  # corpus subfolder -> licence of its origin, from corpus/SOURCES.md
    "warc/aut_example.warc.gz": "Apache-2.0 (archivesunleashed/aut test data)",
    "warc/resiliparse_cc2020_warcfile.warc.gz": "Apache-2.0 (chatnoir-resiliparse test data); Common Crawl ToU",
    "warc/dolma_sample-0000.warc.gz": "Apache-2.0 (allenai/dolma test data)",
    "warc/whirlwind.warc.gz": "Apache-2.0 (commoncrawl/whirlwind-python); Common Crawl ToU",
    "warc/pywb_iana.warc.gz": "GPL-3.0 (webrecorder/pywb repository)",
    "warc/": "Apache-2.0 (warcio/jwarc/webarchive-commons test data)",
    "extraction/aeb/": "MIT (scrapinghub/article-extraction-benchmark)",
    "extraction/trafilatura/": "Apache-2.0 (adbar/trafilatura test data)",
    "extraction/readability/": "Apache-2.0 (mozilla/readability test pages)",
    "extraction/misc/": "none stated (stanford-cs336/assignment4-data fixture)",
    "quality/weak/trafilatura_scam.html": "Apache-2.0 (adbar/trafilatura test data)",
    "quality/weak/": "none stated (stanford-cs336/assignment4-data fixture)",
    "quality/fineweb_edu_llama33_scored.jsonl": "texts: ODC-By-1.0 (FineWeb-Edu) + Common Crawl ToU; labels: MIT (Mohamed-Elsafty23/fineweb-edu-scorer)",
}

# Caps keep weak labels from swamping the hand and Llama labels (CARD.md, "How each label was made").
WEAK_CAP_PER_SCORE = 400
MAX_SCORE_SHARE = 0.35
MIN_DOC_WORDS, TARGET_DOC_WORDS, MAX_DOC_WORDS = 150, 700, 1500
MIN_NAVIGATION_WORDS = 50
NAVIGATION_PER_HOST = 5
MAX_NAVIGATION_PROSE = 0.25

TUTORIAL_RULE = "tutorial collection -> 3"
REFERENCE_RULE = "reference manual, standard or FAQ -> 2"
ASTROINFO_RULE = "AstroInfo science article -> 5 if whole and >= 300 words in English, else 4"
APPENDIX_RULE = "appendix, index or developer-only page of a tutorial collection -> 2"
# HOWTOs for CPython's own developers and C-extension authors, and the advanced logging recipes.
PYTHON_ADVANCED_HOWTOS = frozenset({"clinic.html", "cporting.html", "isolating-extensions.html",
                                    "instrumentation.html", "perf_profiling.html", "logging-cookbook.html"})
R_INTRO_APPENDIX_HEADING = '<span id="Invoking-R-1"></span>'
CODE_RULE = "tutorial page that is mostly code listings -> 2"
# Prose in the 75 Llama-labelled texts: 95% of them have under 0.1 of such tokens; a tutorial page
# at 0.2 is mostly a listing, which the validation read scored like reference text.
MAX_TUTORIAL_CODE_SHARE = 0.2


def debian_rule(package: str, path: str, appendices: frozenset[str] = frozenset()) -> tuple[int, str] | None:
    """(score, rule) for one documentation file, or None to leave it out.

    Calibrated on the corpus's Llama-3.3 labels: technical reference (an Emacs Lisp manual page,
    a CentOS font guide) got 2, because the prompt asks for value for school teaching.
    """
    name = os.path.basename(path)
    if package == "python3.11-doc":
        section = path.split("/html/")[1].split("/")[0] if "/html/" in path else ""
        if section == "howto" and name in PYTHON_ADVANCED_HOWTOS:
            return 2, APPENDIX_RULE
        if section in ("tutorial", "howto"):
            return 3, TUTORIAL_RULE
        if section in ("library", "reference", "c-api", "faq", "using", "extending"):
            return 2, REFERENCE_RULE
        return None  # what's new, distutils, indexes: changelogs and stubs, not documents
    if package in ("abs-guide", "maint-guide"):
        return (2, APPENDIX_RULE) if name in appendices else (3, TUTORIAL_RULE)
    if package == "r-doc-html":
        return (3, TUTORIAL_RULE) if name == "R-intro.html" else (2, REFERENCE_RULE)
    if package in ("debian-reference-en", "gnu-standards", "debian-faq"):
        return 2, REFERENCE_RULE
    return None


def abs_appendices(root: Path) -> frozenset[str]:
    """The ABS Guide's appendix pages: what its table of contents lists after the bibliography, except
    the exercises (the prompt's own example of teaching material)."""
    index = (root / "usr/share/doc/abs-guide/html/index.html").read_text(encoding="latin-1")
    pages = list(dict.fromkeys(re.findall(r'HREF="([\w-]+\.html)"', index, re.IGNORECASE)))
    return frozenset(pages[pages.index("biblio.html") + 1:]) - {"exercises.html"}


def split_appendices(path: Path, html: str, rule: tuple[int, str]) -> list[tuple[str, tuple[int, str]]]:
    """R-intro's appendices from "Invoking R" on are command-line reference and indexes: score them 2."""
    at = html.find(R_INTRO_APPENDIX_HEADING) if path.name == "R-intro.html" else -1
    if at < 0:
        return [(html, rule)]
    return [(html[:at], rule), (html[at:], (2, APPENDIX_RULE))]


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def words(text: str) -> int:
    return len(text.split())


# ---------------------------------------------------------------- Debian documentation

def fetch_packages(cache: Path) -> dict[str, Path]:
    """Download (once) and unpack each pinned package; {package: unpacked root}."""
    cache.mkdir(parents=True, exist_ok=True)
    roots = {}
    for package, version in PACKAGES.items():
        root = cache / f"{package}_{version.replace(':', '%3a')}"
        if not (root / ".unpacked").exists():
            subprocess.run(["apt-get", "download", f"{package}={version}"], cwd=cache, check=True,
                           stdout=subprocess.DEVNULL)
            debs = sorted(cache.glob(f"{package}_*{version.split(':')[-1]}_*.deb"))
            if not debs:
                raise SystemExit(f"apt-get download {package}={version} left no .deb in {cache}")
            subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(root)], check=True)
            (root / ".unpacked").touch()
        roots[package] = root
    return roots


def extract_main(html: str, url: str | None = None, precision: bool = True) -> str:
    """Main text with the pipeline's trafilatura settings (pipelines/extract.py)."""
    doc = trafilatura.bare_extraction(html, url=url, with_metadata=False, favor_precision=precision,
                                      favor_recall=not precision, include_comments=False,
                                      include_tables=True, deduplicate=False)
    return (doc.text or "") if doc is not None else ""


_HEADING_END = re.compile(r"[.:;,!?)\]]$")


def cut_documents(text: str) -> list[str]:
    """Cut long text into web-page-sized documents at heading-like lines; drop short ones.

    A cut waits for a heading (a short line without closing punctuation) once TARGET_DOC_WORDS
    are collected, so most documents are whole sections; MAX_DOC_WORDS forces a cut.
    """
    docs, current, count = [], [], 0
    for line in text.split("\n"):
        n = words(line)
        heading = 0 < n <= 10 and not _HEADING_END.search(line.strip())
        if current and (count + n > MAX_DOC_WORDS or (count >= TARGET_DOC_WORDS and heading)):
            docs.append("\n".join(current))
            current, count = [], 0
        current.append(line)
        count += n
    if current:
        docs.append("\n".join(current))
    return [d.strip() for d in docs if words(d) >= MIN_DOC_WORDS]


_DOCBOOK_DROP = re.compile(r"<!--.*?-->|<(indexterm|sect1info|sectinfo|chapterinfo|screenshot|mediaobject|"
                           r"authorgroup|author)\b.*?</\1>", re.S)
_DOCBOOK_BLOCK = re.compile(r"</?(para|title|listitem|entry|term|simpara|row|sect\d|chapter|note|tip|"
                            r"itemizedlist|orderedlist|variablelist|varlistentry|programlisting|screen)\b[^>]*>")
ASTROINFO_LANGUAGES = ("en", "ca", "es", "fr", "nl", "pt_BR", "sv", "uk")  # every language the package has
_DOCBOOK_ENTITIES = {"kstars": "KStars", "kde": "KDE", "kturtle": "KTurtle", "logo": "Logo", "kmplot": "KmPlot",
                     "i18n-kmplot": "KmPlot", "ie": "i.e.", "eg": "e.g.", "etc": "etc."}


def docbook_text(source: str) -> str:
    """Plain text of a KDE DocBook chapter: one line per paragraph, title or list item."""
    source = _DOCBOOK_DROP.sub(" ", source)
    source = re.sub(r"&([\w.-]+);", _docbook_entity, source)
    source = re.sub(r"\s+", " ", source)
    source = _DOCBOOK_BLOCK.sub("\n", source)
    source = htmllib.unescape(re.sub(r"<[^>]+>", "", source))
    lines = (re.sub(r" +", " ", line).strip() for line in source.split("\n"))
    return "\n".join(line for line in lines if line)


def _docbook_entity(match: re.Match) -> str:
    """KDE's DocBook entities mostly name a product (&kstars;, &Linux;); HTML's own stay for unescape."""
    name = match.group(1)
    if name in _DOCBOOK_ENTITIES:
        return _DOCBOOK_ENTITIES[name]
    return match.group(0) if htmllib.unescape(match.group(0)) != match.group(0) else name


def astroinfo_files(root: Path, language: str) -> list[Path]:
    """The AstroInfo articles (expository astronomy), in the order of their table of contents."""
    doc = root / "usr/share/doc/HTML" / language / "kstars"
    contents = (doc / "ai-contents.docbook").read_text(encoding="utf-8")
    ids = re.findall(r'linkend="(ai-[\w-]+)"', contents)
    by_id = {}
    for path in sorted(doc.glob("*.docbook")):
        found = re.search(r'<sect1 id="(ai-[\w-]+)"', path.read_text(encoding="utf-8"))
        if found:
            by_id[found.group(1)] = path
    return [by_id[i] for i in dict.fromkeys(ids) if i in by_id]


def debian_documents(roots: dict[str, Path]) -> list[dict]:
    rows = []
    for package, root in roots.items():
        version = PACKAGES[package]
        if package == "kstars-data":
            # Science explained for a general reader: 5 when a full article, 4 when a short note. The
            # package's translations take the English article's score, so that a high score is not
            # an English-only property (the hand labels hold many low-scoring German pages).
            english = {}
            for path in astroinfo_files(root, "en"):
                english[path.name] = 5 if words(docbook_text(path.read_text(encoding="utf-8"))) >= 300 else 4
            for language in ASTROINFO_LANGUAGES:
                for path in astroinfo_files(root, language):
                    if path.name not in english:
                        continue
                    parts = cut_documents(docbook_text(path.read_text(encoding="utf-8")))
                    for part, doc_text in enumerate(parts):
                        # A section cut from a long article lacks the whole's reasoning: 4.
                        score = english[path.name] if len(parts) == 1 else 4
                        row = _debian_row(doc_text, package, version, root, path, score, ASTROINFO_RULE, part)
                        row["language"] = language.split("_")[0]
                        rows.append(row)
            continue
        if package == "kturtle":
            path = root / "usr/share/doc/HTML/en/kturtle/getting-started.docbook"
            text = docbook_text(path.read_text(encoding="utf-8"))
            rows.append(_debian_row(text, package, version, root, path, 4,
                                    "programming lesson written for children -> 4"))
            continue
        appendices = abs_appendices(root) if package == "abs-guide" else frozenset()
        for path in sorted(root.rglob("*.html")):
            rule = debian_rule(package, str(path), appendices)
            if rule is None or path.is_symlink():
                continue
            part = 0
            for html, (section_score, section_why) in split_appendices(
                    path, path.read_text(encoding="utf-8", errors="replace"), rule):
                for doc_text in cut_documents(extract_main(html)):
                    score, why = section_score, section_why
                    if score == 3 and code_share(doc_text) >= MAX_TUTORIAL_CODE_SHARE:
                        score, why = 2, CODE_RULE
                    rows.append(_debian_row(doc_text, package, version, root, path, score, why, part))
                    part += 1
    # A page that no heading or line break can cut (the ABS Guide's scripts come out as one line) is
    # not web-page sized.
    return [r for r in rows if MIN_DOC_WORDS <= words(r["text"]) <= MAX_DOC_WORDS]


_CODE_TOKEN = re.compile(r"[=(){}\[\];$#<>|\\]|^\d+$")


def code_share(text: str) -> float:
    """Share of tokens that look like code (operators, brackets, sigils, bare line numbers)."""
    tokens = text.split()
    return sum(1 for t in tokens if _CODE_TOKEN.search(t)) / max(1, len(tokens))


def _debian_row(text, package, version, root, path, score, rule, part=0) -> dict:
    return {"text": text, "score": score, "method": "weak_debian", "licence": LICENCES[package],
            "source": f"debian:{package}={version}:/{path.relative_to(root)}#{part}", "url": None,
            "language": "en", "rule": rule, "group": f"debian:{package}:{path.name}"}


# ---------------------------------------------------------------- real pages of the corpus

def corpus_licence(relative: str) -> str:
    for prefix, licence in sorted(CORPUS_LICENCES.items(), key=lambda kv: -len(kv[0])):
        if relative.startswith(prefix):
            return licence
    raise KeyError(f"no licence known for corpus path {relative}")


def html_pages(corpus: Path):
    """(corpus-relative source, html text, url, ground-truth main text or '') for every real page."""
    for manifest in sorted((corpus / "extraction").glob("*/manifest.jsonl")):
        folder = manifest.parent
        for line in manifest.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            path = folder / (entry.get("html_path") or f"{entry['name']}/source.html.gz")
            raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            truth = entry.get("expected_text") or "\n".join(entry.get("expected_with") or [])
            yield str(path.relative_to(corpus)), decode_html(raw, None)[0], entry.get("url"), truth
    for path in sorted((corpus / "warc").glob("*.warc*")):
        if path.name.endswith((".wet.gz", ".wat.gz")):
            continue
        for row in read_unit(Unit(str(path), "warc"), 64 << 20):
            if row["status"] == KEPT and row["content_type"] == "html" and not sniff_binary(row["raw"]):
                yield (f"{path.relative_to(corpus)}#{row['record']}", decode_html(row["raw"], row["charset"])[0],
                       row["url"], "")


_BLOCK_TAGS = {"p", "div", "li", "ul", "ol", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "br", "nav",
               "header", "footer", "section", "article", "aside", "form", "option", "dt", "dd", "table",
               "blockquote", "pre", "title", "select"}


def visible_lines(html: str) -> list[str]:
    """What a browser shows as text, one line per block element."""
    try:
        tree = lxml.html.document_fromstring(html)
    except Exception:  # lxml rejects some real pages outright (empty or XML-declared documents)
        return []
    for bad in tree.xpath("//script|//style|//noscript|//template|//svg|//head/*[not(self::title)]"):
        bad.drop_tree()
    parts = []
    for event, element in lxml.etree.iterwalk(tree, events=("start", "end")):
        tag = element.tag if isinstance(element.tag, str) else None  # comments and processing instructions
        if event == "start":
            if tag in _BLOCK_TAGS:
                parts.append("\n")
            if tag is not None and element.text:
                parts.append(element.text)
        else:
            if tag in _BLOCK_TAGS:
                parts.append("\n")
            if element.tail and element is not tree:
                parts.append(element.tail)
    lines = (" ".join(line.split()) for line in "".join(parts).split("\n"))
    return [line for line in lines if line]


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())


def boilerplate(html: str, url: str | None, truth: str) -> str:
    """The visible text minus everything any main-text extraction (or the ground truth) keeps."""
    main = " \n ".join(_norm(t) for t in (extract_main(html, url, True), extract_main(html, url, False), truth))
    main_lines = set(main.split(" \n "))
    kept = []
    for line in visible_lines(html):
        norm = _norm(line)
        if not norm or norm in main_lines or (words(norm) >= 4 and norm in main):
            continue
        if kept and kept[-1] == line:
            continue
        kept.append(line)
    return "\n".join(kept)


def navigation_documents(corpus: Path) -> list[dict]:
    """One boilerplate document per page, cut to MAX_DOC_WORDS; at most NAVIGATION_PER_HOST per host,
    because one site's menu repeats on all its pages (78 archive.org pages in one WARC)."""
    by_host = collections.defaultdict(list)
    for source, html, url, truth in html_pages(corpus):
        if source.startswith("warc/resiliparse_cc2020"):
            continue  # spam pages: their whole text is a weak_spam document already
        text = _head(boilerplate(html, url, truth), MAX_DOC_WORDS)
        if words(text) >= MIN_NAVIGATION_WORDS and _prose_share(text) <= MAX_NAVIGATION_PROSE:
            host = urllib.parse.urlsplit(url or "").hostname or source
            by_host[host].append({
                "text": text, "score": 0, "method": "weak_navigation", "source": source, "url": url,
                "licence": corpus_licence(source), "language": None,
                "rule": "page text that no main-text extraction keeps (menus, footers, link lists)"})
    rows = []
    for host in sorted(by_host):
        rows += sorted(by_host[host], key=lambda r: text_key(r["text"]))[:NAVIGATION_PER_HOST]
    return rows


def _prose_share(text: str) -> float:
    """Share of words on sentence-length lines (>= 15 words): high when article text, comments or
    teasers escaped every extraction, which would make a navigation page no longer score 0."""
    lines = [words(line) for line in text.split("\n")]
    return sum(n for n in lines if n >= 15) / max(1, sum(lines))


def _head(text: str, limit: int) -> str:
    """The first lines of text holding at most ``limit`` words."""
    kept, count = [], 0
    for line in text.split("\n"):
        count += words(line)
        if count > limit:
            break
        kept.append(line)
    return "\n".join(kept)


def spam_documents(corpus: Path) -> list[dict]:
    rows = []
    warc = corpus / "warc/resiliparse_cc2020_warcfile.warc.gz"
    for row in read_unit(Unit(str(warc), "warc"), 64 << 20):
        if row["status"] != KEPT or row["content_type"] != "html":
            continue
        html = decode_html(row["raw"], row["charset"])[0]
        text = "\n".join(visible_lines(html))
        rows.append({"text": text, "score": 0, "method": "weak_spam", "url": row["url"],
                     "source": f"warc/{warc.name}#{row['record']}", "licence": corpus_licence(f"warc/{warc.name}"),
                     "language": None, "rule": "Common Crawl 2020 spam/SEO page, whole visible text -> 0"})
    weak = corpus / "quality/weak"
    rows.append({"text": (weak / "cs336_low_quality_cc.txt").read_text(encoding="utf-8"), "score": 0,
                 "method": "weak_spam", "url": None, "source": "quality/weak/cs336_low_quality_cc.txt",
                 "licence": corpus_licence("quality/weak/cs336_low_quality_cc.txt"), "language": "en",
                 "rule": "Common Crawl junk given as a low-quality example -> 0"})
    scam = (weak / "trafilatura_scam.html").read_bytes()
    rows.append({"text": "\n".join(visible_lines(decode_html(scam, None)[0])), "score": 0, "method": "weak_spam",
                 "url": None, "source": "quality/weak/trafilatura_scam.html",
                 "licence": corpus_licence("quality/weak/trafilatura_scam.html"), "language": "en",
                 "rule": "scam page given as a low-quality example -> 0"})
    return [r for r in rows if words(r["text"]) >= MIN_NAVIGATION_WORDS or len(r["text"]) >= 300]


def llama_rows(corpus: Path) -> list[dict]:
    rows = []
    path = corpus / "quality/fineweb_edu_llama33_scored.jsonl"
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        entry = json.loads(line)
        rows.append({"text": entry["text"], "score": int(entry["score"]), "method": "llama33",
                     "source": f"quality/fineweb_edu_llama33_scored.jsonl#{number}", "url": None,
                     "licence": corpus_licence("quality/fineweb_edu_llama33_scored.jsonl"), "language": "en",
                     "rule": "Llama-3.3-70B, FineWeb-Edu prompt"})
    return rows


def hand_rows() -> list[dict]:
    rows = []
    for path in sorted((HERE / "annotations").glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            if not line.strip():
                continue
            entry = json.loads(line)
            score = int(entry["score"])
            if not 0 <= score <= 5:
                raise SystemExit(f"{path.name} line {number + 1}: score {score} is not 0-5")
            rows.append({"text": entry["text"], "score": score, "method": "hand", "source": entry["source"],
                         "url": entry.get("url"), "licence": corpus_licence(entry["source"]),
                         "language": entry.get("language"), "rule": f"{path.stem}: {entry.get('rationale', '')}"})
    return rows


# ---------------------------------------------------------------- the mix

def cap_weak(rows: list[dict]) -> list[dict]:
    """Keep at most WEAK_CAP_PER_SCORE weak rows per (method, score), then shrink the weak share of any
    score above MAX_SCORE_SHARE of the whole; which rows go is decided by a hash of the text."""
    strong = [r for r in rows if not r["method"].startswith("weak_")]
    cells = collections.defaultdict(list)
    for r in rows:
        if r["method"].startswith("weak_"):
            cells[r["method"], r["score"]].append(r)
    weak = []
    for key in sorted(cells):
        weak += _round_robin(cells[key])[:WEAK_CAP_PER_SCORE]
    while True:
        total = len(strong) + len(weak)
        counts = collections.Counter(r["score"] for r in strong + weak)
        over = [s for s in sorted(counts) if counts[s] > MAX_SCORE_SHARE * total
                and any(r["score"] == s for r in weak)]
        if not over:
            return strong + weak
        # Dropping one row lowers the total too, so solve for how many go: (c - k) <= share * (t - k).
        score = over[0]
        k = int((counts[score] - MAX_SCORE_SHARE * total) / (1 - MAX_SCORE_SHARE)) + 1
        of_score = _round_robin([r for r in weak if r["score"] == score])
        drop = {id(r) for r in of_score[-k:]}
        weak = [r for r in weak if id(r) not in drop]


def _round_robin(rows: list[dict]) -> list[dict]:
    """Rows ordered so that every prefix draws evenly from each origin (package or corpus file), by
    text hash within one: a cap then keeps small packages whole instead of mostly Python's library."""
    groups = collections.defaultdict(list)
    for r in rows:
        groups[r["source"].split(":/")[0].split("#")[0]].append(r)
    queues = [sorted(groups[g], key=lambda r: text_key(r["text"])) for g in sorted(groups)]
    ordered = []
    for depth in range(max((len(q) for q in queues), default=0)):
        ordered += [q[depth] for q in queues if depth < len(q)]
    return ordered


def deduplicate(rows: list[dict]) -> list[dict]:
    """Exact-text duplicates keep the first row in METHODS order (real labels before weak ones)."""
    seen, out = set(), []
    for r in sorted(rows, key=lambda r: (METHODS.index(r["method"]), r["source"])):
        key = text_key(r["text"].strip())
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path(os.environ.get("THRESHER_CORPUS", "/work/shared/corpus")))
    parser.add_argument("--cache", type=Path,
                        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "thresher-labels")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
    logging.getLogger("htmldate").setLevel(logging.CRITICAL)

    rows = llama_rows(args.corpus) + hand_rows() + spam_documents(args.corpus) + navigation_documents(args.corpus)
    rows += debian_documents(fetch_packages(args.cache))
    rows = cap_weak(deduplicate(rows))
    rows.sort(key=lambda r: (METHODS.index(r["method"]), r["source"]))
    for r in rows:
        r["id"] = text_key(r["text"].strip())[:16]
        r.setdefault("group", r["source"])  # one page: its main text (hand) and boilerplate share it
    fields = ("id", "text", "score", "method", "source", "group", "url", "language", "licence", "rule")
    with gzip.GzipFile(args.output, "wb", mtime=0) as out:  # mtime=0: same rows, same bytes
        for r in rows:
            out.write((json.dumps({f: r[f] for f in fields}, ensure_ascii=False) + "\n").encode("utf-8"))

    tables = count_tables(rows)
    print(tables)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB)")
    card = HERE / "CARD.md"
    if card.exists() and args.output == OUTPUT:
        text = card.read_text(encoding="utf-8")
        begin, end = text.index(COUNTS_BEGIN) + len(COUNTS_BEGIN), text.index(COUNTS_END)
        card.write_text(text[:begin] + "\n" + tables + "\n" + text[end:], encoding="utf-8")
        print(f"updated the counts in {card}")
    return 0


COUNTS_BEGIN, COUNTS_END = "<!-- counts:begin (written by build.py) -->", "<!-- counts:end -->"


def _origin(row: dict) -> str:
    """Package for Debian rows, corpus file or folder for the others."""
    if row["method"] == "weak_debian":
        return row["source"].split(":/")[0].removeprefix("debian:")
    parts = row["source"].split("#")[0].split("/")
    return "/".join(parts) if parts[0] == "quality" else "/".join(parts[:2])


def count_tables(rows: list[dict]) -> str:
    """Markdown tables: score x method, and score x origin (with the origin's licence)."""
    by_method = collections.Counter((r["method"], r["score"]) for r in rows)
    header = "| | " + " | ".join(str(s) for s in range(6)) + " | total |\n|---|" + "---:|" * 7
    lines = ["Documents per score and label method:", "", header]
    for method in METHODS:
        cells = [by_method[method, s] for s in range(6)]
        lines.append(f"| {method} | " + " | ".join(map(str, cells)) + f" | {sum(cells)} |")
    totals = [sum(by_method[m, s] for m in METHODS) for s in range(6)]
    lines.append("| **total** | " + " | ".join(map(str, totals)) + f" | {len(rows)} |")
    lines.append("| share | " + " | ".join(f"{t / len(rows):.0%}" for t in totals) + " | |")
    by_origin = collections.Counter((r["method"], _origin(r), r["score"]) for r in rows)
    licences = {(r["method"], _origin(r)): r["licence"] for r in rows}
    lines += ["", "Documents per origin (method, package or corpus file) and score, with the origin's licence:", "",
              "| method | origin | " + " | ".join(str(s) for s in range(6)) + " | total | licence |",
              "|---|---|" + "---:|" * 7 + "---|"]
    for method, origin in sorted(licences, key=lambda k: (METHODS.index(k[0]), k[1])):
        cells = [by_origin[method, origin, s] for s in range(6)]
        lines.append(f"| {method} | {origin} | " + " | ".join(map(str, cells))
                     + f" | {sum(cells)} | {licences[method, origin]} |")
    lines += ["", f"Split groups: {len({r['group'] for r in rows})} distinct `group` values."]
    languages = collections.Counter(r["language"] or "unknown" for r in rows)
    lines += ["", "Languages (`language` field; weak_spam and weak_navigation rows are not identified): "
              + ", ".join(f"{lang} {n}" for lang, n in languages.most_common()) + "."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
