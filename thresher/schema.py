"""The one row schema every stage sees, and the three output schemas derived from it.

A document travels as a row of an Arrow batch. ``status`` says where it is headed:
``kept`` rows go on to the next stage, ``rejected`` and ``errored`` rows ride along untouched
until the writer routes them, ``skipped`` rows are input records that are not documents
(WARC requests, images...) and are only counted. Because every row reaches the writer,
``read == kept + rejected + errored`` holds by construction.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa

KEPT, REJECTED, ERRORED, SKIPPED = "kept", "rejected", "errored", "skipped"
# Rows with no document that mark where a work item's rows begin and end (see pipelines/journal.py).
ITEM_BEGIN, ITEM_END = "item_begin", "item_end"

# The quality stage's signals, one per threshold, so that a team can re-threshold a tagged run
# without re-running it. Names follow the filter they come from (datatrove's filters are the oracle).
QUALITY_SIGNALS = pa.struct(
    [pa.field(f"gopher_rep_{name}", pa.float64()) for name in (
        "dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac",
        "top_2_gram_char_frac", "top_3_gram_char_frac", "top_4_gram_char_frac",
        *(f"dup_{n}_gram_char_frac" for n in range(5, 11)))]
    + [pa.field("gopher_words", pa.int64())]
    + [pa.field(f"gopher_{name}", pa.float64()) for name in (
        "avg_word_length", "hash_word_ratio", "ellipsis_word_ratio", "bullet_lines_ratio",
        "end_ellipsis_lines_ratio", "alpha_words_ratio", "alpha_content_words_ratio")]
    + [pa.field("gopher_stop_words", pa.int64()),
       pa.field("c4_sentences", pa.int64()), pa.field("c4_lines_removed", pa.int64()),
       pa.field("c4_lorem_ipsum", pa.bool_()), pa.field("c4_curly_bracket", pa.bool_())]
    + [pa.field(f"fineweb_{name}", pa.float64()) for name in (
        "line_punct_ratio", "short_line_ratio", "char_dup_ratio", "list_ratio")]
)
PII_COUNTS = pa.struct([pa.field("email", pa.int64()), pa.field("ip", pa.int64())])
CONTAMINATION = pa.struct([pa.field("benchmark", pa.string()), pa.field("item", pa.string()),
                           pa.field("ngrams", pa.int64())])  # distinct n-grams shared with that item

DOCUMENT_FIELDS = [
    pa.field("id", pa.string()),
    pa.field("source", pa.string()),
    pa.field("record", pa.int64()),  # byte offset (WARC), line (JSONL), row (Parquet), 0 (one-document files)
    pa.field("format", pa.string()),
    pa.field("url", pa.string()),
    pa.field("title", pa.string()),
    pa.field("date", pa.string()),
    pa.field("text", pa.large_string()),
    pa.field("language", pa.string()),
    pa.field("language_score", pa.float64()),
    pa.field("edu_score", pa.float64()),  # null when the classify stage is off, as edu_int
    pa.field("edu_int", pa.int64()),  # edu_score clipped and rounded: FineWeb-Edu's int_score
    pa.field("dup_cluster", pa.string()),
    pa.field("dup_cluster_size", pa.int64()),
    pa.field("flags", pa.list_(pa.string())),  # tag mode: "stage:reason" for each stage that would drop it
    pa.field("quality", QUALITY_SIGNALS),  # null when the quality stage is off
    pa.field("pii", PII_COUNTS),  # replacements made by the pii stage; null when it is off
    pa.field("contamination", CONTAMINATION),  # the benchmark item it shares n-grams with; null when none
    pa.field("n_tokens", pa.int64()),  # tokens of `text` (stages.tokens.encoding); null when the stage is off
]

# Columns that exist only between stages.
INTERNAL_FIELDS = [
    pa.field("status", pa.string()),
    pa.field("item", pa.int64()),  # the work item the row was read in
    pa.field("stage", pa.string()),
    pa.field("reason", pa.string()),  # rejection reason, error message or skip reason
    pa.field("content_type", pa.string()),  # "html", "pdf" or "text": what extract must do
    pa.field("charset", pa.string()),  # declared by the transport (HTTP header), if any
    pa.field("raw", pa.large_binary()),  # undecoded payload, dropped by extract
    pa.field("duplicate_of", pa.string()),  # dedup: the id of the document kept in this one's place
    pa.field("dedup_hash", pa.uint64()),  # dedup: hash of the normalised text (exact duplicates)
    pa.field("dedup_bands", pa.list_(pa.uint64())),  # dedup: one LSH key per band of the MinHash signature
    pa.field("dedup_signature", pa.list_(pa.uint32())),  # dedup with verify: the MinHash signature
]

ROW_SCHEMA = pa.schema(DOCUMENT_FIELDS + INTERNAL_FIELDS)
DOCUMENT_SCHEMA = pa.schema(DOCUMENT_FIELDS)
REJECTED_SCHEMA = pa.schema(
    DOCUMENT_FIELDS + [pa.field("stage", pa.string()), pa.field("reason", pa.string()), pa.field("duplicate_of", pa.string())]
)
ERROR_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string()),
        pa.field("record", pa.int64()),
        pa.field("stage", pa.string()),
        pa.field("error", pa.string()),
        pa.field("id", pa.string()),
        pa.field("url", pa.string()),
    ]
)


def document_id(source: str, record: int) -> str:
    """Stable id from where the record came from; identical on every run and every machine."""
    return hashlib.blake2b(f"{source}\x00{record}".encode(), digest_size=12).hexdigest()


def empty_row(**values) -> dict:
    row = dict.fromkeys(ROW_SCHEMA.names)
    row.update(values)
    return row


def rows_to_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=ROW_SCHEMA)
