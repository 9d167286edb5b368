"""Builds the near-duplicate benchmark data of the dedup stage from real documents (seeded, so the
same command writes the same bytes).

``quality``: bench/data/dedup_quality.jsonl, one JSON object per document with ``id``, ``text``,
``cluster`` (the ground truth: documents with the same value are duplicates of each other),
``origin`` (the real document it came from) and ``edits`` (what was done to it, null for originals).

  Originals: the distinct texts of tests/data/filter_corpus.jsonl.gz (news, blogs, multilingual
  pages, Common Crawl spam, FineWeb-Edu and CCNet texts, dolma's one-site Common Crawl documents)
  and the cs336 dedup fixtures (tests/data/dedup, from ../shared/corpus/dedup), one extraction per
  page: Readability's reference extraction (``expected.html``) and Common Crawl's WET text are left
  out where thresher's extraction of the same page is in; of the Readability fixtures made of
  "Lorem ipsum" placeholder text only the first is kept (the same placeholder in varying amounts:
  neither label would be right); pages that are nothing but their site's template (archive.org's
  bare chrome and "item cannot be found" page) are left out too (see
  ``Originals._without_template_pages``). Each original is its own cluster except where the fixtures
  say otherwise: cs336's rails and react MIT licences are one cluster (cs336's fuzzy duplicates;
  the pytorch licence is not one of them), and its two identical line-dedup documents are one.
  Real near-neighbours stay negatives: archive.org forum pages of one template (a thread and one of
  its posts: exact Jaccard 0.76), dolma's two advocatesaz.org tag pages (dolma's paragraph dedup
  marks about half of one as paragraphs of the other: shared boilerplate and teasers, different
  pages; 0.37), two Chilean sites with the same wire story (0.4), iana.org's home page crawled in
  two different years.

  Near copies: of a random half of the originals with >= 50 words, 1-4 copies each, every copy with
  1-3 of these edits (what re-crawls and mirrors of one page do), at most one of the first three,
  which change what the page says:
    boilerplate  real header/footer lines added, or a short first/last line changed, within 8% of
                 the document's words: lines that recur on >= 2 corpus pages, cookie/privacy/nav
                 lines, the page chrome of a Common Crawl WET record, dolma's duplicate paragraphs,
                 cs336's duplicate lines;
    words        0.5-1.5% of the words replaced by words drawn from the corpus (texts of >= 100
                 words: one word of a shorter one is already more);
    truncate     the last 5-10% of the text cut at a word boundary;
    dates        the first one or two dates moved by 1-400 days, in the same format;
    swap         two paragraphs (lines of >= 8 words) swapped, in texts of >= 150 words;
    noise        two of: straight/curly quotes, double spaces, dropped commas, blank lines, trailing
                 spaces.
  Label policy: a copy is the same document as its original whatever its exact Jaccard; the edits
  and their strengths are those of one page seen twice, which a 0.8 Jaccard-on-5-gram dedup
  (FineWeb's) is meant to catch; each alone keeps exact Jaccard with the original >= ~0.83.
  Heavier edits are not made, because on 5-gram shingles they fall far below 0.8 while the page is
  arguably the same (5% of the words replaced gives Jaccard ~0.63, a 15% cut plus 2% of the words
  ~0.7, a paragraph swap in a 60-word text ~0.6): labelled either way they would only measure
  the threshold, not the dedup.

  Template siblings (hard negatives): 15 groups of 3-5 documents that share one real boilerplate
  block (header and footer lines, 0.5-4x the body's words) around different bodies (one real
  paragraph of 30-120 words each, from different long originals): one site's template, different
  pages (exact Jaccard between siblings up to ~0.7). Each is its own cluster.

``scale``: N paragraph-length documents (default 1,000,000) for the speed benchmark, streamed to
Parquet shards (``id``, ``text``, ``cluster``) under bench/data/dedup_scale/, never held whole in
memory. A fresh document has the length of a random real paragraph (>= 30 words) of the corpus and
is made of >= 3 random real sentences of the corpus (see ``ScaleSet.MIN_SENTENCES``: fresh
documents are not near-duplicates of each other by accident); with probability ``--dup-fraction``
a document is instead a light copy (one or two of: 1% of the words replaced, the last 3-10% cut,
one boilerplate line, noise; some end up exact copies) of one of the last 50,000 fresh ones, and
shares its cluster.

    .venv/bin/python bench/dedup_data.py quality [--seed 0] [--out bench/data/dedup_quality.jsonl]
    .venv/bin/python bench/dedup_data.py scale [--n 1000000] [--dup-fraction 0.3] [--seed 0]
                                               [--out bench/data/dedup_scale] [--shard-rows 100000]

``quality`` then prints the exact-Jaccard statistics of the set (true pairs, closest negatives).
"""

from __future__ import annotations

import argparse
import bisect
import calendar
import datetime as dt
import gzip
import json
import random
import re
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests/data/filter_corpus.jsonl.gz"
DEDUP_FIXTURES = ROOT / "tests/data/dedup"  # copied from ../shared/corpus/dedup (tests/data/SOURCES.md)
WORD = re.compile(r"\w+")
LOREM = re.compile(r"\blorem\b", re.I)  # Readability's placeholder-text fixtures


@dataclass
class Doc:
    id: str
    text: str
    cluster: str
    origin: str
    edits: str | None = None


def _words(text: str) -> int:
    return len(text.split())


class Originals:
    """The real documents, one extraction per page, with the clusters their fixtures define."""

    def __init__(self, corpus: Path = CORPUS, fixtures: Path = DEDUP_FIXTURES):
        with gzip.open(corpus, "rt", encoding="utf-8") as f:
            self.rows = [json.loads(line) for line in f]
        self.docs: list[Doc] = []
        records = Counter(r["source"] for r in self.rows)  # a file of several documents: its ids say which
        lorem_seen = False
        for r in self.rows:
            src = r["source"]
            if src.endswith("/expected.html") or src.endswith(".warc.wet.gz"):
                continue  # a second extraction of a page whose thresher extraction is kept
            if LOREM.search(r["text"]):
                if lorem_seen:
                    continue
                lorem_seen = True
            doc_id = f"{src}#{r['record']}" if records[src] > 1 else src
            self.docs.append(Doc(doc_id, r["text"], doc_id, doc_id))
        fuzzy = fixtures / "cs336/documents_with_fuzzy_duplicates"
        mit = "dedup/cs336/documents_with_fuzzy_duplicates/rails_mit_license.txt"
        for p in sorted(fuzzy.glob("*.txt")):
            doc_id = f"dedup/cs336/{fuzzy.name}/{p.name}"
            self.docs.append(Doc(doc_id, p.read_text(encoding="utf-8"), mit if "mit_license" in p.name else doc_id, doc_id))
        by_text: dict[str, str] = {}
        for p in sorted((fixtures / "cs336/documents_with_line_duplicates").glob("*.txt")):
            doc_id = f"dedup/cs336/documents_with_line_duplicates/{p.name}"
            text = p.read_text(encoding="utf-8")
            self.docs.append(Doc(doc_id, text, by_text.setdefault(text, doc_id), doc_id))
        self.docs = self._without_template_pages(self.docs)
        assert len({d.id for d in self.docs}) == len(self.docs)

    @staticmethod
    def _without_template_pages(docs: list[Doc]) -> list[Doc]:
        """Drops pages that are their site's template and nothing else (archive.org's bare chrome,
        its "item cannot be found" page): all but <= 10 of their words are in lines that recur on
        other pages. They have no document of their own, so neither label is right for them and
        they chain every page of the template together."""
        recurring = Counter(line for d in docs for line in {x.strip() for x in d.text.split("\n")})
        kept = []
        for d in docs:
            template = sum(_words(line) for line in d.text.split("\n") if recurring[line.strip()] >= 2)
            if not (_words(d.text) - template <= 10 and template >= 20):
                kept.append(d)
        return kept


class Boilerplate:
    """Real boilerplate lines, each labelled boilerplate by the corpus itself (see the module doc)."""

    CONSENT = re.compile(r"cookie|datenschutz|privacy|newsletter|subscribe|abonnieren|all rights reserved|©|"
                         r"copyright|terms of (use|service)|sign in|log in|anmelden|\bmen[uü]\b", re.I)

    def __init__(self, originals: Originals, fixtures: Path = DEDUP_FIXTURES):
        lines: set[str] = set()
        counts: Counter = Counter()
        for d in originals.docs:
            if not LOREM.search(d.text):
                counts.update({line.strip() for line in d.text.split("\n")})
        for r in originals.rows:
            page = {line.strip() for line in r["text"].split("\n")}
            if r["source"].endswith(".warc.wet.gz"):  # WET lines thresher's extraction left out: page chrome
                main = next(x["text"] for x in originals.rows if x["url"] == r["url"] and x is not r)
                lines |= page - {line.strip() for line in main.split("\n")}
            lines |= {line for line in page if self.CONSENT.search(line) and _words(line) <= 40}
        lines |= {line for line, n in counts.items() if n >= 2}
        with gzip.open(fixtures / "dolma_paragraph/documents.jsonl.gz", "rt") as f:
            dolma = {d["id"]: d["text"] for d in map(json.loads, f)}
        with gzip.open(fixtures / "dolma_paragraph/expected_dedupe_paragraphs.jsonl.gz", "rt") as f:
            for d in map(json.loads, f):
                for start, end, _ in d["attributes"]["bff_duplicate_paragraph_spans"]:
                    lines.add(dolma[d["id"]][start:end].strip())
        cs336 = fixtures / "cs336"
        for p in sorted((cs336 / "documents_with_line_duplicates").glob("*.txt")):
            kept = set((cs336 / "documents_line_deduplicated" / p.name).read_text().split("\n"))
            lines |= {line.strip() for line in p.read_text().split("\n") if line not in kept}
        # Shortest first, so that the lines within a word budget are a prefix.
        self.lines = sorted((line for line in lines if WORD.search(line) and _words(line) <= 40), key=lambda x: (_words(x), x))
        self._sizes = [_words(line) for line in self.lines]

    def fitting(self, max_words: int) -> list[str]:
        return self.lines[: bisect.bisect_right(self._sizes, max_words)]


class Dates:
    """Moves dates written in a few common formats, keeping each one's format."""

    MONTHS = "Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?"
    PATTERN = re.compile(
        rf"\b(?P<iso>(?P<iy>\d{{4}})-(?P<im>\d{{2}})-(?P<id>\d{{2}}))\b"
        rf"|\b(?P<mdy>(?P<am>{MONTHS})(?P<adot>\.?) (?P<ad>\d{{1,2}}), (?P<ay>\d{{4}}))\b"
        rf"|\b(?P<dmy>(?P<bd>\d{{1,2}}) (?P<bm>{MONTHS}) (?P<by>\d{{4}}))\b"
        rf"|\b(?P<dot>(?P<cd>\d{{1,2}})\.(?P<cm>\d{{1,2}})\.(?P<cy>\d{{4}}))\b"
    )
    _NUM = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}

    def _month(self, name: str) -> int:
        return self._NUM[name[:3].lower()]

    def _name(self, month: int, like: str) -> str:
        return calendar.month_name[month] if len(like) > 3 else calendar.month_abbr[month]

    def shift(self, m: re.Match, days: int) -> str | None:
        g = m.groupdict()
        try:
            if g["iso"]:
                return (dt.date(int(g["iy"]), int(g["im"]), int(g["id"])) + dt.timedelta(days)).isoformat()
            if g["mdy"]:
                d = dt.date(int(g["ay"]), self._month(g["am"]), int(g["ad"])) + dt.timedelta(days)
                return f"{self._name(d.month, g['am'])}{g['adot']} {d.day}, {d.year}"
            if g["dmy"]:
                d = dt.date(int(g["by"]), self._month(g["bm"]), int(g["bd"])) + dt.timedelta(days)
                return f"{d.day} {self._name(d.month, g['bm'])} {d.year}"
            d = dt.date(int(g["cy"]), int(g["cm"]), int(g["cd"])) + dt.timedelta(days)
            return f"{d.day:0{len(g['cd'])}d}.{d.month:0{len(g['cm'])}d}.{d.year}"
        except (ValueError, OverflowError):  # not a real date (e.g. 95.15.9047)
            return None


class Editor:
    """The realistic edits; each returns the edited text and a label, or None where it does not apply."""

    KINDS = ("boilerplate", "dates", "words", "swap", "truncate", "noise")
    CONTENT = {"boilerplate", "words", "truncate"}  # edits that change what the page says: one per copy

    def __init__(self, boilerplate: Boilerplate, vocabulary: list[str]):
        self.boilerplate_lines = boilerplate
        self.vocabulary = vocabulary
        self.date_shifter = Dates()

    def apply(self, kind: str, text: str, rng: random.Random, **strength) -> tuple[str, str] | None:
        return getattr(self, kind)(text, rng, **strength)

    def boilerplate(self, text, rng, share=0.08, max_lines=3):
        budget = int(share * _words(text))
        lines = text.split("\n")
        if rng.random() < 0.5:  # a short first or last line (a date line, a nav line) changed
            at = rng.choice([0, len(lines) - 1])
            fits = self.boilerplate_lines.fitting(budget) if 1 <= _words(lines[at]) <= budget else []
            if fits:
                lines[at] = rng.choice(fits)
                return "\n".join(lines), f"boilerplate:changed {'first' if at == 0 else 'last'} line"
        added = 0
        for _ in range(rng.randint(1, max_lines)):
            fits = self.boilerplate_lines.fitting(budget)
            if not fits:
                break
            line = rng.choice(fits)
            budget -= _words(line)
            lines.insert(0 if rng.random() < 0.5 else len(lines), line)
            added += 1
        return ("\n".join(lines), f"boilerplate:+{added} lines") if added else None

    def dates(self, text, rng):
        matches = list(Dates.PATTERN.finditer(text))[: rng.randint(1, 2)]
        days = rng.choice([-1, 1]) * rng.randint(1, 400)
        out, moved = text, 0
        for m in reversed(matches):
            new = self.date_shifter.shift(m, days)
            if new is not None and new != m.group(0):
                out, moved = out[: m.start()] + new + out[m.end() :], moved + 1
        return (out, f"dates:{moved} moved {days:+d}d") if moved else None

    def words(self, text, rng, low=0.005, high=0.015, min_words=1, min_length=100):
        tokens = re.split(r"(\s+)", text)
        slots = [i for i in range(0, len(tokens), 2) if WORD.search(tokens[i])]
        if len(slots) < min_length:  # one word of a short text is already more than 1%
            return None
        share = rng.uniform(low, high)
        k = max(min_words, round(share * len(slots)))
        if k == 0:
            return None
        for i in rng.sample(slots, k):
            tokens[i] = WORD.sub(lambda _: rng.choice(self.vocabulary), tokens[i], count=1)
        return "".join(tokens), f"words:{k}/{len(slots)}"

    def swap(self, text, rng, min_length=150):
        if _words(text) < min_length:  # the <= 4 broken seams weigh more than 20% of a short text
            return None
        lines = text.split("\n")
        paragraphs = [i for i, line in enumerate(lines) if _words(line) >= 8]  # not nav or table lines
        if len(paragraphs) < 2:
            return None
        a, b = rng.sample(paragraphs, 2)
        lines[a], lines[b] = lines[b], lines[a]
        return "\n".join(lines), "swap"

    def truncate(self, text, rng, low=0.05, high=0.10):
        share = rng.uniform(low, high)
        cut = text.rfind(" ", 0, int(len(text) * (1 - share)))
        cut = max(cut, text.rfind("\n", 0, int(len(text) * (1 - share))))
        if cut <= 0:
            return None
        return text[:cut], f"truncate:{1 - cut / len(text):.0%}"

    def noise(self, text, rng):
        ops = {
            "quotes": lambda t: t.replace("’", "'").replace("“", '"').replace("”", '"') if "’" in t or "“" in t
            else t.replace("'", "’"),
            "double spaces": lambda t: re.sub(r"([.!?]) (?=\S)", lambda m: m.group(1) + ("  " if rng.random() < 0.5 else " "), t),
            "commas": lambda t: self._drop_some(t, ",", rng),
            "blank lines": lambda t: t.replace("\n", "\n\n"),
            "trailing spaces": lambda t: t.replace("\n", " \n"),
        }
        names = rng.sample(sorted(ops), 2)
        out = text
        for name in names:
            out = ops[name](out)
        return (out, f"noise:{'+'.join(names)}") if out != text else None

    @staticmethod
    def _drop_some(text: str, char: str, rng: random.Random) -> str:
        at = [i for i, c in enumerate(text) if c == char]
        drop = set(rng.sample(at, min(len(at), max(1, _words(text) // 100))))
        return "".join(c for i, c in enumerate(text) if i not in drop)


def vocabulary(docs: list[Doc]) -> list[str]:
    """Word tokens of the corpus with their frequencies (a draw is as likely as the word is common)."""
    return [w for d in docs for w in WORD.findall(d.text) if not w.isdigit()]


class QualitySet:
    """Originals, their near copies and the template siblings (module doc), from one seed."""

    def __init__(self, seed: int = 0, copy_share: float = 0.5, template_groups: int = 15):
        self.seed, self.copy_share, self.template_groups = seed, copy_share, template_groups

    def build(self) -> list[Doc]:
        rng = random.Random(self.seed)
        originals = Originals()
        boilerplate = Boilerplate(originals)
        editor = Editor(boilerplate, vocabulary(originals.docs))
        docs = list(originals.docs)
        eligible = [d for d in originals.docs if _words(d.text) >= 50]
        for orig in sorted(rng.sample(eligible, round(self.copy_share * len(eligible))), key=lambda d: d.id):
            for c in range(1, rng.choices([1, 2, 3, 4], [50, 25, 15, 10])[0] + 1):
                text, labels = orig.text, []
                kinds = list(Editor.KINDS)
                rng.shuffle(kinds)
                want = rng.choices([1, 2, 3], [50, 35, 15])[0]
                content = False
                for kind in kinds:
                    if len(labels) == want:
                        break
                    if content and kind in Editor.CONTENT:
                        continue
                    done = editor.apply(kind, text, rng)
                    if done:
                        text, label = done
                        labels.append(label)
                        content = content or kind in Editor.CONTENT
                docs.append(Doc(f"{orig.id}~copy{c}", text, orig.cluster, orig.id, "; ".join(labels)))
        docs += self._template_siblings(rng, originals, boilerplate)
        return docs

    def _template_siblings(self, rng: random.Random, originals: Originals, boilerplate: Boilerplate) -> list[Doc]:
        sources = [d for d in originals.docs if _words(d.text) >= 300
                   and any(30 <= _words(p) <= 120 for p in d.text.split("\n"))]
        out = []
        for g in range(self.template_groups):
            bodies = []
            for src in rng.sample(sources, rng.randint(3, 5)):
                para = rng.choice([p for p in src.text.split("\n") if 30 <= _words(p) <= 120])
                bodies.append((src.id, para))
            target = rng.uniform(0.5, 4.0) * sum(_words(p) for _, p in bodies) / len(bodies)
            head, foot = [], []
            while sum(map(_words, head + foot)) < target:
                (head if rng.random() < 0.5 else foot).append(rng.choice(boilerplate.lines))
            words = sum(map(_words, head + foot))
            for k, (src_id, para) in enumerate(bodies):
                doc_id = f"template-{g:02d}/{k}"
                out.append(Doc(doc_id, "\n".join([*head, para, *foot]), doc_id, src_id, f"template:{words} words"))
        return out


def write_jsonl(docs: list[Doc], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(asdict(d), ensure_ascii=False) + "\n")


class ScaleSet:
    """Paragraph-length documents streamed to Parquet, a known share of them light copies."""

    SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("cluster", pa.string())])
    RECENT = 50_000
    # Fresh documents are near-duplicates of each other only by a rare chance: they have >= 3 of
    # ~44k distinct sentences, none over half the document, so two of them sharing one sentence
    # stay under Jaccard ~0.35, and sharing all three is expected ~0.1 times in a million.
    MIN_SENTENCES = 3

    def __init__(self, n: int, dup_fraction: float = 0.3, seed: int = 0, shard_rows: int = 100_000,
                 row_group_rows: int = 10_000):
        self.n, self.dup_fraction, self.seed = n, dup_fraction, seed
        self.shard_rows, self.row_group_rows = shard_rows, row_group_rows

    def _material(self):
        originals = Originals()
        lines = [line.strip() for d in originals.docs for line in d.text.split("\n")]
        lengths = [min(n, 400) for n in (len(WORD.findall(line)) for line in lines) if n >= 30]
        # Sized in \w+ words, as shingling sees them (a CJK line bracketed char by char is hundreds).
        sentences = sorted({s for line in lines for s in re.split(r"(?<=[.!?])\s+", line)
                            if 3 <= len(WORD.findall(s)) <= 80})
        return originals, lengths, sentences

    def write(self, out: Path) -> dict:
        rng = random.Random(self.seed)
        originals, lengths, sentences = self._material()
        sizes = [len(WORD.findall(s)) for s in sentences]
        editor = Editor(Boilerplate(originals), vocabulary(originals.docs))
        light = {"words": {"low": 0.01, "high": 0.01, "min_words": 0, "min_length": 0},
                 "truncate": {"low": 0.03, "high": 0.10}, "boilerplate": {"share": 0.10, "max_lines": 1}, "noise": {}}
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("part-*.parquet"):
            old.unlink()
        recent: deque = deque(maxlen=self.RECENT)
        batch: list[tuple[str, str, str]] = []
        writer, shard, copies, words = None, 0, 0, 0
        for i in range(self.n):
            doc_id = f"s{i:07d}"
            if recent and rng.random() < self.dup_fraction:
                cluster, text = recent[rng.randrange(len(recent))]
                for kind in rng.sample(sorted(light), rng.randint(1, 2)):
                    done = editor.apply(kind, text, rng, **light[kind])
                    if done:
                        text = done[0]
                copies += 1
            else:
                target, parts, count = rng.choice(lengths), [], 0
                longest = max(target // 2, 10)
                while count < target or len(parts) < self.MIN_SENTENCES:
                    k = rng.randrange(len(sentences))
                    if sizes[k] <= longest:
                        parts.append(sentences[k])
                        count += sizes[k]
                text, cluster = " ".join(parts), doc_id
                recent.append((cluster, text))
            words += _words(text)
            batch.append((doc_id, text, cluster))
            if len(batch) == self.row_group_rows or i == self.n - 1:
                if writer is None:
                    writer = pq.ParquetWriter(out / f"part-{shard:05d}.parquet", self.SCHEMA, compression="zstd")
                writer.write_table(pa.table(list(zip(*batch)), schema=self.SCHEMA))
                batch = []
                if (i + 1) % self.shard_rows == 0 or i == self.n - 1:
                    writer.close()
                    writer, shard = None, shard + 1
        size = sum(f.stat().st_size for f in out.glob("part-*.parquet"))
        return {"documents": self.n, "copies": copies, "copy_share": copies / self.n, "shards": shard,
                "mean_words": words / self.n, "bytes": size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="set", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--out", default=str(ROOT / "bench/data/dedup_quality.jsonl"))
    s = sub.add_parser("scale")
    s.add_argument("--n", type=int, default=1_000_000)
    s.add_argument("--dup-fraction", type=float, default=0.3)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--shard-rows", type=int, default=100_000)
    s.add_argument("--out", default=str(ROOT / "bench/data/dedup_scale"))
    args = ap.parse_args()

    t = time.perf_counter()
    if args.set == "scale":
        stats = ScaleSet(args.n, args.dup_fraction, args.seed, args.shard_rows).write(Path(args.out))
        print(json.dumps({**stats, "seconds": round(time.perf_counter() - t, 1), "out": args.out}))
        return
    docs = QualitySet(args.seed).build()
    write_jsonl(docs, Path(args.out))
    print(f"{len(docs)} documents -> {args.out} ({time.perf_counter() - t:.1f} s)")
    print(json.dumps(describe(docs), indent=1))


def describe(docs: list[Doc]) -> dict:
    """The set's shape and how hard it is, in exact Jaccard of the shingles the references use."""
    from dedup_quality import ExactJaccard, Shingler, jaccard_report

    sizes = Counter(Counter(d.cluster for d in docs).values())
    shingler = Shingler()
    exact = ExactJaccard([shingler(d.text) for d in docs])
    index = {d.id: k for k, d in enumerate(docs)}
    by_edit: dict[str, list[float]] = {}
    for k, d in enumerate(docs):
        if d.edits and "; " not in d.edits and not d.edits.startswith("template"):
            by_edit.setdefault(d.edits.split(":")[0], []).append(exact(k, index[d.origin]))
    return {
        "documents": len(docs),
        "originals": sum(1 for d in docs if d.edits is None),
        "copies": sum(1 for d in docs if d.edits and not d.edits.startswith("template")),
        "template_siblings": sum(1 for d in docs if d.edits and d.edits.startswith("template")),
        "clusters": sum(sizes.values()),
        "cluster_sizes": dict(sorted(sizes.items())),
        "shingles": shingler.name,
        **jaccard_report([asdict(d) for d in docs], exact, 0.8),
        "single_edit_copy_vs_original_median": {k: round(sorted(v)[len(v) // 2], 3) for k, v in sorted(by_edit.items())},
        "single_edit_copy_vs_original_min": {k: round(min(v), 3) for k, v in sorted(by_edit.items())},
    }


if __name__ == "__main__":
    main()
