"""``thresher report``: what a run kept, dropped and failed on, read back from its output folder.

The numbers come from ``manifest.json`` alone (the writer tallied them from what it wrote). The
samples come from the Parquet files, which can hold tens of GB: they are streamed one row group at
a time, and a sampler keeps at most N rows per reason. Which rows it keeps is decided by a hash of
each row's identity (the N smallest hashes win), so the same folder always gives the same report,
however its shards are cut, and a rerun with other thresholds shows the same documents for a reason
whenever they are still dropped for it. The text of a row group is read only when one of its rows
gets into a sample, which after the first groups is rare.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import re
from collections import Counter
from dataclasses import dataclass

import pyarrow.parquet as pq

from thresher.pipelines.output import MANIFEST

REPORT = "report.md"
EXCERPT_CHARS = 500
_REQUIRED = {"counts": dict, "stages": dict}
_REQUIRED_COUNTS = {"read": int, "kept": int, "rejected": dict, "errored": int}


class ManifestError(Exception):
    """The folder has no readable manifest: the run is incomplete, crashed, or it is not an output."""


def load_manifest(out_dir: str) -> dict:
    path = os.path.join(out_dir, MANIFEST)
    if not os.path.isfile(path):
        raise ManifestError(f"no {MANIFEST} in {out_dir}: not a finished thresher run (it was incomplete or crashed)")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ManifestError(f"cannot parse {path}: {e}") from e
    if not isinstance(manifest, dict):
        raise ManifestError(f"cannot parse {path}: not a JSON object")
    for fields, where in ((_REQUIRED, manifest), (_REQUIRED_COUNTS, manifest.get("counts", {}))):
        for key, kind in fields.items():
            if not isinstance(where.get(key), kind):
                raise ManifestError(f"cannot parse {path}: `{key}` is missing or not a {kind.__name__}")
    return manifest


# Markdown that reads as plain text too: tables are padded, and only characters that markdown would
# act on are escaped (an underscore inside a word, as in reason names, is left alone).
_MD_SPECIAL = re.compile(r"[\\`*<>\[\]|#&~]|(?<!\w)_|_(?!\w)")
_MD_LINE_START = re.compile(r"^(\d*)([-+=.)])")  # a list item or setext underline if it opened a line


def md_escape(text: str) -> str:
    escaped = _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), " ".join(str(text).split()))
    return _MD_LINE_START.sub(r"\1\\\2", escaped)


def md_code(text: str | None, limit: int = 300) -> str:
    """An inline code span that no backtick in ``text`` can close early."""
    if text is None:
        return "-"
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[:limit] + "…"
    fence = "`" * (_longest_run(text, "`") + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_block(text: str) -> str:
    """A fenced block showing ``text`` verbatim: the fence is longer than any backtick run in it."""
    fence = "`" * max(3, _longest_run(text, "`") + 1)
    return f"{fence}text\n{text}\n{fence}"


def _longest_run(text: str, char: str) -> int:
    return max((len(m) for m in re.findall(f"{re.escape(char)}+", text)), default=0)


def md_table(header: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    widths = [max(w, 3) for w in widths]

    def line(cells):
        return "| " + " | ".join(c.rjust(w) if i in right else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" if i in right else "-" * (w + 2) for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def _n(value: int) -> str:
    return f"{value:,}"


def _plural(n: int, noun: str) -> str:
    return f"{_n(n)} {noun}{'' if n == 1 else 's'}"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _by_count(counts: dict) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


class FunnelTable:
    """Per stage: documents in and out, the share kept, errors, drops per reason in documents and
    characters, and (tag mode) what the stage would have dropped; then the totals that must hold."""

    HEADER = ["stage", "reason", "in", "out", "kept %", "errored", "dropped", "dropped chars", "would drop"]

    def __init__(self, manifest: dict):
        self.manifest = manifest

    def render(self) -> str:
        return "\n\n".join([self.table(), self.totals(), self.skipped(), self.pii()])

    def table(self) -> str:
        counts, errors = self.manifest["counts"], self.manifest.get("errors_by_stage", {})
        read_errors = errors.get("read", 0)
        rows = [["read", "", _n(counts["read"]), _n(counts["read"] - read_errors),
                 _pct(counts["read"] - read_errors, counts["read"]), _n(read_errors), "", "", ""]]
        for stage, s in self.manifest["stages"].items():
            dropped, flagged = s.get("rejected", {}), s.get("flagged", {})
            rows.append([md_escape(stage), "", _n(s["in"]), _n(s["out"]), _pct(s["out"], s["in"]), _n(s["errored"]),
                         _n(sum(dropped.values())), _n(sum(s.get("rejected_chars", {}).values())),
                         _n(sum(flagged.values())) if flagged else ""])
            for reason in sorted(dropped.keys() | flagged.keys(),
                                 key=lambda r: (-dropped.get(r, 0) - flagged.get(r, 0), r)):
                n, would = dropped.get(reason, 0), flagged.get(reason)
                rows.append(["", md_escape(reason), "", "", "", "",
                             f"{_n(n)} ({_pct(n, s['in'])})" if reason in dropped else "",
                             _n(s.get("rejected_chars", {}).get(reason, 0)) if reason in dropped else "",
                             f"{_n(would)} ({_pct(would, s['in'])})" if would is not None else ""])
        return "## Funnel\n\n" + md_table(self.HEADER, rows, right=set(range(2, 9)))

    def totals(self) -> str:
        counts = self.manifest["counts"]
        rejected = sum(counts["rejected"].values())
        total = counts["kept"] + rejected + counts["errored"]
        holds = "holds" if total == counts["read"] else f"DOES NOT HOLD: the parts sum to {_n(total)}"
        lines = [f"- read {_n(counts['read'])} = kept {_n(counts['kept'])} + rejected {_n(rejected)} "
                 f"+ errored {_n(counts['errored'])}: {holds}"]
        stages = list(self.manifest["stages"].values())
        if stages:
            last = stages[-1]["out"]
            check = "matches" if last == counts["kept"] else "DOES NOT MATCH"
            lines.append(f"- the last stage's out {_n(last)} {check} kept {_n(counts['kept'])}")
        chars = self.manifest.get("chars")
        if chars:
            lines.append(f"- characters: kept {_n(chars.get('kept', 0))}, "
                         f"rejected {_n(sum(chars.get('rejected', {}).values()))}")
        flagged = self.manifest.get("flagged") or {}
        if flagged:
            lines.append(f"- tag mode: {_n(sum(flagged.values()))} flags on kept documents, nothing dropped for them")
        if counts["rejected"]:
            by_reason = ", ".join(f"{md_escape(r)} {_n(n)}" for r, n in _by_count(counts["rejected"]))
            lines.append(f"- rejected by reason: {by_reason}")
        return "## Totals\n\n" + "\n".join(lines)

    def skipped(self) -> str:
        skipped = self.manifest["counts"].get("skipped") or {}
        if not skipped:
            return "## Skipped records (not documents)\n\nnone"
        rows = [[md_escape(reason), _n(n)] for reason, n in _by_count(skipped)]
        rows.append(["total", _n(sum(skipped.values()))])
        return "## Skipped records (not documents)\n\n" + md_table(["reason", "records"], rows, right={1})

    def pii(self) -> str:
        replacements = self.manifest.get("pii_replacements") or {}
        if "pii" not in self.manifest["stages"]:
            return "## PII replacements\n\nthe pii stage did not run"
        rows = [[md_escape(kind), _n(n)] for kind, n in sorted(replacements.items())] or [["none", "0"]]
        return "## PII replacements\n\n" + md_table(["kind", "replacements"], rows, right={1})


class BottomK:
    """Per group, the k items with the smallest keys seen so far, in bounded memory."""

    def __init__(self, k: int):
        self.k = k
        self._heaps: dict[str, list] = {}
        self._seen = 0  # a tie-break, so items themselves are never compared

    def wants(self, group: str, key: int) -> bool:
        heap = self._heaps.get(group, ())
        return self.k > 0 and (len(heap) < self.k or key < -heap[0][0])

    def add(self, group: str, key: int, item) -> None:
        if not self.wants(group, key):
            return
        heap = self._heaps.setdefault(group, [])
        self._seen += 1
        entry = (-key, -self._seen, item)
        if len(heap) < self.k:
            heapq.heappush(heap, entry)
        else:
            heapq.heapreplace(heap, entry)

    def items(self, group: str) -> list:
        return [item for _, _, item in sorted(self._heaps.get(group, []), reverse=True)]


def row_key(row: dict) -> int:
    """Where a row came from, hashed: ids may repeat across user files, source and record do not."""
    identity = f"{row.get('id')}\x00{row.get('source')}\x00{row.get('record')}"
    return int.from_bytes(hashlib.blake2b(identity.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")


def row_groups(directory: str):
    """Every row group of every shard in ``directory``, shards in name order."""
    if not os.path.isdir(directory):
        return
    for name in sorted(os.listdir(directory)):
        if name.endswith(".parquet"):
            parquet = pq.ParquetFile(os.path.join(directory, name))
            for i in range(parquet.num_row_groups):
                yield parquet, i


def stream_rows(directory: str) -> int:
    return sum(pq.ParquetFile(os.path.join(directory, n)).metadata.num_rows
               for n in sorted(os.listdir(directory)) if n.endswith(".parquet")) if os.path.isdir(directory) else 0


@dataclass(frozen=True)
class Sample:
    id: str | None
    source: str | None
    record: int | None
    url: str | None
    chars: int
    excerpt: str


class DocumentSampler:
    """Samples documents per group from a stream folder. Only the identity columns of every row
    group are read; text and url only for row groups where a row gets into a sample."""

    IDENTITY = ["id", "source", "record"]
    DETAIL = ["url", "text"]
    group_columns: list[str] = []  # what ``groups`` reads

    def __init__(self, k: int, excerpt_chars: int = EXCERPT_CHARS):
        self.sampler = BottomK(k)
        self.excerpt_chars = excerpt_chars

    def groups(self, row: dict) -> list[str]:
        raise NotImplementedError

    def scan(self, directory: str) -> BottomK:
        if self.sampler.k == 0:
            return self.sampler
        for parquet, i in row_groups(directory):
            heads = parquet.read_row_group(i, columns=self.IDENTITY + self.group_columns).to_pylist()
            picks = []
            for j, row in enumerate(heads):
                key = row_key(row)
                picks += [(j, group, key) for group in self.groups(row) if self.sampler.wants(group, key)]
            if not picks:
                continue
            taken = sorted({j for j, _, _ in picks})
            detail = dict(zip(taken, parquet.read_row_group(i, columns=self.DETAIL).take(taken).to_pylist()))
            for j, group, key in picks:
                text = detail[j]["text"] or ""
                sample = Sample(heads[j]["id"], heads[j]["source"], heads[j]["record"], detail[j]["url"],
                                len(text), text[: self.excerpt_chars])
                self.sampler.add(group, key, sample)
        return self.sampler


class RejectedSampler(DocumentSampler):
    """Rejected documents per "stage:reason"."""

    group_columns = ["stage", "reason"]

    def groups(self, row: dict) -> list[str]:
        return [f"{row['stage']}:{row['reason']}"]


class FlaggedSampler(DocumentSampler):
    """Kept documents that a tag-mode stage would have dropped, per "stage:reason" flag."""

    group_columns = ["flags"]

    def groups(self, row: dict) -> list[str]:
        return list(dict.fromkeys(row["flags"] or ()))


_DIGITS = re.compile(r"\d+")
_IDENTIFIER = re.compile(r"[A-Za-z_][\w.]*")


def error_kind(message: str | None) -> str:
    """The first part of an error message, for counting: what precedes the first ": ", with the
    exception class when one follows ("quality failed: ZeroDivisionError"), and numbers as N."""
    parts = (message or "").split(": ")
    head = parts[0] if len(parts) < 2 or not _IDENTIFIER.fullmatch(parts[1]) else f"{parts[0]}: {parts[1]}"
    return _DIGITS.sub("N", head)[:120] or "(no message)"


class ErrorDigest:
    """Errors counted per (stage, kind of error), with a few examples per stage."""

    def __init__(self, k: int):
        self.kinds: Counter = Counter()
        self.examples = BottomK(k)

    def scan(self, directory: str) -> ErrorDigest:
        for parquet, i in row_groups(directory):
            for row in parquet.read_row_group(i).to_pylist():
                self.kinds[(row["stage"], error_kind(row["error"]))] += 1
                self.examples.add(row["stage"], row_key(row), row)
        return self


class Report:
    """The whole report of one output folder, as markdown."""

    def __init__(self, out_dir: str, samples: int = 3, excerpt_chars: int = EXCERPT_CHARS):
        self.out_dir = out_dir
        self.manifest = load_manifest(out_dir)
        self.samples = samples
        self.excerpt_chars = excerpt_chars

    def stage_order(self, found) -> list[str]:
        """Pipeline order, then any stage the files name that the manifest does not, by name."""
        order = ["read", *self.manifest["stages"]]
        return order + sorted(set(found) - set(order))

    def markdown(self) -> str:
        parts = [self.header(), FunnelTable(self.manifest).render(), self.on_disk(),
                 self.errors(), self.document_samples("Rejected samples", "rejected", RejectedSampler,
                                                      self._rejected_counts())]
        flagged = self.manifest.get("flagged") or {}
        if flagged:
            parts.append(self.document_samples("Would-drop samples (tag mode, from documents/)", "documents",
                                               FlaggedSampler, flagged))
        return "\n\n".join(parts) + "\n"

    def header(self) -> str:
        run, inputs = self.manifest.get("run") or {}, self.manifest.get("inputs") or {}
        facts = [f"folder {md_code(self.out_dir)}"]
        if run:
            facts.append(f"thresher {md_escape(run.get('thresher_version', '?'))}, started "
                         f"{md_escape(run.get('started_at', '?'))}, {run.get('wall_seconds', 0):.1f} s")
        if inputs:
            facts.append(f"{_n(inputs.get('files', 0))} input files, {_n(inputs.get('bytes', 0))} bytes")
        return "# Thresher report\n\n" + "; ".join(facts)

    def on_disk(self) -> str:
        counts = self.manifest["counts"]
        expected = {"documents": counts["kept"], "rejected": sum(counts["rejected"].values()),
                    "errors": counts["errored"]}
        found = {name: stream_rows(os.path.join(self.out_dir, name)) for name in expected}
        verdict = ("match the manifest" if found == expected else
                   "DO NOT MATCH the manifest, which says " + ", ".join(f"{k} {_n(v)}" for k, v in expected.items()))
        return "## Files\n\n" + ", ".join(f"{name}/ {_n(n)} rows" for name, n in found.items()) + f": {verdict}"

    def _rejected_counts(self) -> dict:
        return {f"{stage}:{reason}": n for stage, s in self.manifest["stages"].items()
                for reason, n in s.get("rejected", {}).items()}

    def errors(self) -> str:
        digest = ErrorDigest(self.samples).scan(os.path.join(self.out_dir, "errors"))
        if not digest.kinds:
            return "## Errors\n\nnone"
        stages = self.stage_order({stage for stage, _ in digest.kinds})
        rows = [[md_escape(stage), md_escape(kind), _n(n)]
                for stage in stages
                for (s, kind), n in sorted(digest.kinds.items(), key=lambda kv: (-kv[1], kv[0][1])) if s == stage]
        parts = ["## Errors\n\n" + md_table(["stage", "error", "records"], rows, right={2})]
        for stage in stages:
            examples = digest.examples.items(stage)
            if examples:
                parts.append(f"### Errors at {md_escape(stage)}: {_plural(len(examples), 'example')}\n\n" + "\n".join(
                    f"- source {md_code(e['source'])} record {e['record']}, id {md_code(e['id'])}, "
                    f"url {md_code(e['url'])}: {md_code(e['error'], limit=1000)}" for e in examples))
        return "\n\n".join(parts)

    def document_samples(self, title: str, stream: str, sampler_class, counts: dict) -> str:
        if not counts:
            return f"## {title}\n\nnone"
        sampled = sampler_class(self.samples, self.excerpt_chars).scan(os.path.join(self.out_dir, stream))
        parts = [f"## {title}\n\nUp to {self.samples} per reason, chosen by a hash of each document's "
                 f"identity; the first {self.excerpt_chars} characters of each text."]
        order = {stage: i for i, stage in enumerate(self.stage_order({g.partition(":")[0] for g in counts}))}
        groups = sorted(counts, key=lambda g: (order[g.partition(":")[0]], -counts[g], g))
        for group in groups:
            stage, _, reason = group.partition(":")
            found = sampled.items(group)
            parts.append(f"### {md_escape(stage)} / {md_escape(reason)}: {_plural(counts[group], 'document')}, "
                         f"{len(found)} shown")
            if not found and self.samples:
                parts.append(f"no such document found in {stream}/")
            for s in found:
                cut = f"first {_n(len(s.excerpt))} of {_n(s.chars)} characters" if s.chars > len(s.excerpt) \
                    else f"{_n(s.chars)} characters"
                parts.append(f"- id {md_code(s.id)}, url {md_code(s.url)}, source {md_code(s.source)} "
                             f"record {s.record} ({cut})")
                parts.append(md_block(s.excerpt) if s.excerpt else "(empty text)")
        return "\n\n".join(parts)


def report(out_dir: str, samples: int = 3) -> str:
    return Report(out_dir, samples).markdown()


def write_report(out_dir: str, samples: int = 3) -> tuple[Report, str]:
    """Writes OUT_DIR/report.md under a temporary name, renamed when complete."""
    built = Report(out_dir, samples)
    text = built.markdown()
    path = os.path.join(out_dir, REPORT)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return built, path
