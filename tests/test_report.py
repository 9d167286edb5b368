"""``thresher report`` on real output folders: the WARC samples and the damaged inputs, read and
extracted for real, then the real quality stage in filter mode (and once more in tag mode),
written by the real OutputWriter into small shards so that sampling streams many row groups."""

import json
import os
import re

import pyarrow.parquet as pq
import pytest
from markdown_it import MarkdownIt

from conftest import ROOT, SAMPLES
from thresher.cli import main
from thresher.config import ExtractConfig, OutputConfig, QualityConfig
from thresher.filters.quality import QualityFilter
from thresher.pipelines.extract import Extractor
from thresher.pipelines.output import OutputWriter
from thresher.pipelines.readers import discover, read_unit
from thresher.pipelines.report import (EXCERPT_CHARS, REPORT, ManifestError, error_kind, load_manifest, md_block,
                                       md_code, md_escape, report, row_key)
from thresher.schema import rows_to_table


@pytest.fixture(scope="module")
def extracted(bad_folder):
    extractor = Extractor(ExtractConfig())
    units = discover([str(SAMPLES / "warc"), str(bad_folder)])
    return [extractor(rows_to_table(list(read_unit(unit, 2**26)))) for unit in units]


def write(path, batches, mode="filter", **layout):
    quality = QualityFilter(QualityConfig(mode=mode))
    writer = OutputWriter(OutputConfig(path=str(path), **layout))
    for batch in batches:
        writer.add(quality(batch))
    writer.commit(["extract", "quality"], {})
    return path


@pytest.fixture(scope="module")
def filtered(extracted, tmp_path_factory):
    return write(tmp_path_factory.mktemp("filtered"), extracted, shard_rows=16, row_group_rows=4)


@pytest.fixture(scope="module")
def tagged(extracted, tmp_path_factory):
    return write(tmp_path_factory.mktemp("tagged"), extracted, mode="tag", shard_rows=16, row_group_rows=4)


def table_rows(markdown, title):
    """The cells of the first table after the heading ``title``."""
    section = markdown.split(f"## {title}\n\n", 1)[1]
    lines = section.split("\n\n", 1)[0].splitlines()
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[2:]]


def sections(markdown):
    """Per "### stage / reason" heading: the parsed samples beneath it, as (fields line, fenced text)."""
    tokens = MarkdownIt("commonmark").parse(markdown)
    found, current, fields = {}, None, None
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.tag == "h3":
            current = tokens[i + 1].content
            found[current] = []
        elif token.type == "inline" and token.content.startswith("id ") and current:
            fields = token
            found[current].append((fields, None))
        elif token.type == "fence" and current:
            found[current][-1] = (fields, token.content[:-1])  # the parser keeps the final newline
    return found


def code_spans(inline):
    return [child.content for child in inline.children if child.type == "code_inline"]


def test_funnel_shows_every_stage_and_reason_with_its_counts(filtered):
    manifest = load_manifest(filtered)
    assert set(manifest["stages"]["quality"]["rejected"]) >= {"gopher_short_doc", "gopher_below_alpha_threshold"}
    markdown = report(filtered, samples=1)
    rows = table_rows(markdown, "Funnel")
    errors = manifest["errors_by_stage"]
    read = manifest["counts"]["read"]
    assert rows[0][:6] == ["read", "", f"{read:,}", f"{read - errors['read']:,}",
                           f"{100 * (read - errors['read']) / read:.1f}%", str(errors["read"])]
    by_stage = {}
    for row in rows[1:]:
        stage = row[0] or stage
        by_stage.setdefault(stage, {})[row[1]] = row
    assert list(by_stage) == list(manifest["stages"])
    for stage, funnel in manifest["stages"].items():
        head = by_stage[stage][""]
        assert head[2:4] == [f"{funnel['in']:,}", f"{funnel['out']:,}"]
        assert head[5:8] == [str(funnel["errored"]), str(sum(funnel["rejected"].values())),
                             f"{sum(funnel['rejected_chars'].values()):,}"]
        assert set(by_stage[stage]) - {""} == set(funnel["rejected"])
        for reason, n in funnel["rejected"].items():
            row = by_stage[stage][reason]
            assert row[6] == f"{n} ({100 * n / funnel['in']:.1f}%)"
            assert row[7] == f"{funnel['rejected_chars'][reason]:,}"
        # a stage's drops and errors are exactly what it did not pass on
        assert funnel["in"] - funnel["out"] == sum(funnel["rejected"].values()) + funnel["errored"]


def test_totals_add_up_and_match_the_files(filtered):
    counts = load_manifest(filtered)["counts"]
    rejected = sum(counts["rejected"].values())
    assert counts["errored"] > 0 and rejected > 0
    markdown = report(filtered, samples=0)
    assert (f"- read {counts['read']} = kept {counts['kept']} + rejected {rejected} "
            f"+ errored {counts['errored']}: holds") in markdown
    assert counts["read"] == counts["kept"] + rejected + counts["errored"]
    assert f"the last stage's out {counts['kept']} matches kept {counts['kept']}" in markdown
    assert (f"documents/ {counts['kept']} rows, rejected/ {rejected} rows, errors/ {counts['errored']} rows: "
            "match the manifest") in markdown
    skipped = {row[0]: int(row[1].replace(",", "")) for row in table_rows(markdown, "Skipped records (not documents)")}
    assert skipped.pop("total") == sum(counts["skipped"].values())
    assert skipped == counts["skipped"]
    assert "the pii stage did not run" in markdown


def test_samples_are_at_most_n_per_reason_and_come_from_rejected(filtered):
    samples = 2
    manifest = load_manifest(filtered)
    found = sections(report(filtered, samples=samples))
    rejected = pq.read_table(filtered / "rejected").to_pylist()  # small here; the report itself streams
    by_id = {row["id"]: row for row in rejected}
    for stage, funnel in manifest["stages"].items():
        for reason, n in funnel["rejected"].items():
            heading = next(h for h in found if h.startswith(f"{stage} / {reason}:"))
            shown = found[heading]
            assert len(shown) == min(n, samples), heading
            members = [r for r in rejected if (r["stage"], r["reason"]) == (stage, reason)]
            expected = sorted(members, key=row_key)[:samples]  # the N smallest hashes, computed in memory
            assert [code_spans(fields)[0] for fields, _ in shown] == [r["id"] for r in expected]
            for fields, text in shown:
                row = by_id[code_spans(fields)[0]]
                assert (row["stage"], row["reason"]) == (stage, reason)
                assert code_spans(fields)[1:] == [c for c in (row["url"], row["source"]) if c is not None]
                # the excerpt survives markdown exactly: no table, list or heading in it escaped the block
                assert text == (row["text"][:EXCERPT_CHARS] if row["text"] else None)
    assert sum(len(v) for v in found.values()) < len(rejected)


def test_errors_are_counted_by_kind_with_examples_per_stage(filtered):
    manifest = load_manifest(filtered)
    markdown = report(filtered, samples=1)
    rows = table_rows(markdown, "Errors")
    per_stage = {}
    for stage, _, n in rows:
        per_stage[stage] = per_stage.get(stage, 0) + int(n)
    assert per_stage == manifest["errors_by_stage"]
    kinds = {(stage, kind): int(n) for stage, kind, n in rows}
    assert kinds[("read", "empty file")] == 2  # empty.html and empty.warc.gz
    assert kinds[("read", "malformed WARC after offset N: ArchiveLoadFailed")] == 1
    assert kinds[("extract", "encrypted PDF")] == 1
    examples = {stage: markdown.count(f"### Errors at {stage}: 1 example\n") for stage in per_stage}
    assert examples == dict.fromkeys(per_stage, 1)
    # with room for all, every error is shown, each field a code span that markdown leaves literal
    # (one URL, cut by the truncated record, starts with "<", which markdown would take for a tag)
    tokens = MarkdownIt("commonmark").parse(report(filtered, samples=20))
    shown = [code_spans(t) for t in tokens if t.type == "inline" and t.content.startswith("source ")]
    errors = pq.read_table(filtered / "errors").to_pylist()
    assert any((e["url"] or "").startswith("<") for e in errors)
    assert sorted(shown) == sorted([e["source"], e["id"], *([e["url"]] if e["url"] else []), e["error"]]
                                   for e in errors)


def test_an_inconsistent_manifest_is_called_out(filtered, tmp_path):
    for name in ("documents", "rejected", "errors"):
        os.symlink(filtered / name, tmp_path / name)
    manifest = json.loads((filtered / "manifest.json").read_text())
    manifest["counts"]["kept"] += 1  # as if a row had been lost on the way to documents/
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    markdown = report(tmp_path, samples=0)
    assert ": DOES NOT HOLD: the parts sum to" in markdown and "DOES NOT MATCH kept" in markdown
    assert "DO NOT MATCH the manifest" in markdown


def test_error_kind_keeps_the_exception_class_and_drops_numbers():
    assert error_kind("quality failed: ZeroDivisionError: division by zero") == "quality failed: ZeroDivisionError"
    assert error_kind("HTML too large: 21374788 bytes over extract.max_html_bytes=5000000") == "HTML too large"
    assert error_kind(None) == "(no message)"


def test_tag_mode_shows_what_would_be_dropped_with_samples_from_documents(tagged):
    manifest = load_manifest(tagged)
    flagged = manifest["stages"]["quality"]["flagged"]
    assert manifest["stages"]["quality"]["rejected"] == {} and sum(flagged.values()) > 10
    markdown = report(tagged, samples=1)
    rows = [row for row in table_rows(markdown, "Funnel") if row[1] in flagged]
    n_in = manifest["stages"]["quality"]["in"]
    assert {row[1]: row[8] for row in rows} == {r: f"{n} ({100 * n / n_in:.1f}%)" for r, n in flagged.items()}
    assert all(row[6] == "" for row in rows)
    documents = {row["id"]: row for row in pq.read_table(tagged / "documents").to_pylist()}
    would_drop = markdown.split("## Would-drop samples", 1)[1]
    found = sections(would_drop)
    assert len(found) == len(flagged)
    for heading, shown in found.items():
        stage, reason = heading.split(":")[0].split(" / ")
        assert len(shown) == 1
        row = documents[code_spans(shown[0][0])[0]]
        assert f"{stage}:{reason}" in row["flags"] and shown[0][1] == row["text"][:EXCERPT_CHARS]


def test_same_folder_same_report_and_shard_layout_does_not_matter(filtered, extracted, tmp_path):
    recut = write(tmp_path / "recut", extracted)  # default shards: one file, one row group
    assert len(pq.ParquetFile(next((recut / "rejected").glob("*.parquet"))).metadata.to_dict()["row_groups"]) == 1
    assert len(list((filtered / "rejected").glob("*.parquet"))) > 1
    first = report(filtered, samples=3)
    assert report(filtered, samples=3) == first
    assert report(recut, samples=3).replace(str(recut), str(filtered)) == first


def test_cli_prints_the_funnel_and_writes_report_md(filtered, capsys):
    assert main(["report", str(filtered), "--samples", "2"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("## Funnel\n") and "## Rejected samples" not in out
    assert err.strip() == f"thresher: wrote {filtered / REPORT}"
    assert (filtered / REPORT).read_text(encoding="utf-8") == report(filtered, samples=2)
    assert [n for n in os.listdir(filtered) if n.endswith(".tmp")] == []


def test_cli_exits_2_without_a_readable_manifest(filtered, tmp_path, capsys):
    crashed = tmp_path / "crashed"  # what a crashed run leaves: streams, no manifest
    crashed.mkdir()
    os.symlink(filtered / "documents", crashed / "documents")
    assert main(["report", str(crashed)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no manifest.json" in err
    assert not (crashed / REPORT).exists()

    cut = tmp_path / "cut"
    cut.mkdir()
    text = (filtered / "manifest.json").read_text()
    (cut / "manifest.json").write_text(text[: len(text) // 2])
    assert main(["report", str(cut)]) == 2
    assert "cannot parse" in capsys.readouterr().err
    with pytest.raises(ManifestError):
        load_manifest(cut)


def inline_text(markdown):
    """What a reader sees of one line of markdown; raw HTML, links or emphasis would change it."""
    (paragraph,) = [t for t in MarkdownIt("commonmark").parse(markdown) if t.type == "inline"]
    return "".join(c.content if c.type in ("text", "code_inline") else f"<{c.type}>" for c in paragraph.children)


def test_error_messages_and_texts_with_backticks_stay_literal(filtered, corpus):
    messages = pq.read_table(filtered / "errors")["error"].to_pylist()
    assert any("<" in m for m in messages)  # "first line: ['</body>']" from the damaged WARC
    ticked = [line[:200] for o in corpus if "`" in o["text"] for line in o["text"].splitlines() if "`" in line]
    assert any("``" in t for t in ticked) and len(ticked) >= 5
    for text in messages + ticked:
        plain = " ".join(text.split())
        assert inline_text(md_escape(text)) == plain
        assert inline_text(md_code(text)) == plain


def test_a_text_with_code_fences_stays_verbatim():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "```" in readme  # a real document that would close a naive fence
    tokens = MarkdownIt("commonmark").parse(md_block(readme))
    assert [t.type for t in tokens] == ["fence"] and tokens[0].content == readme + "\n"
    assert re.match(r"`{4,}text\n", md_block(readme))
