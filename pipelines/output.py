"""Routing rows to documents/, rejected/ and errors/, shard files, and the manifest.

Every row that leaves the plan comes through ``OutputWriter.add``, so the counts in the manifest
are a tally of what was written, not bookkeeping spread over the stages.

Writes are atomic at two levels: each shard is written under a temporary name and renamed when
complete, and a run writes into a staging folder that replaces the previous output only once
everything is written. ``manifest.json`` is written last and removed first, so an output folder
with a manifest is always complete and consistent; a crashed run leaves only a staging folder,
which the next run removes.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from thresher.config import DedupConfig, OutputConfig
from thresher.pipelines.dedup import IDS_SCHEMA, DedupIndex, index_settings
from thresher.schema import (DOCUMENT_SCHEMA, ERROR_SCHEMA, ERRORED, KEPT, REJECTED, REJECTED_SCHEMA, SKIPPED)

DEDUP_STAGE = "dedup"
DEDUP_INDEX = "dedup"  # the index of a run's keys, kept with its output for later runs to dedup against

STREAMS = ("documents", "rejected", "errors")
MANIFEST = "manifest.json"
_STAGING_PREFIX = ".staging-"
_MAX_PENDING_BYTES = 64 * 2**20  # a row group is cut early rather than hold more than this


class ShardWriter:
    """Parquet shards of bounded size with bounded row groups, each renamed into place when done."""

    def __init__(self, directory: str, schema: pa.Schema, config: OutputConfig):
        self.directory, self.schema, self.config = directory, schema, config
        os.makedirs(directory, exist_ok=True)
        self.shards: list[dict] = []
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = self._pending_bytes = self._shard_rows = self._shard_bytes = 0
        self._shard_tokens = 0  # documents' n_tokens, where the schema has them

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self._pending_bytes += table.nbytes
        while self._pending_rows >= self._next_group_rows() or self._pending_bytes >= _MAX_PENDING_BYTES:
            self._flush_row_group(self._next_group_rows())

    def _next_group_rows(self) -> int:
        """Rows of the next row group: full, or what the current shard has room for."""
        return min(self.config.row_group_rows, self.config.shard_rows - self._shard_rows)

    def _flush_row_group(self, rows: int | None = None) -> None:
        if not self._pending:
            return
        pending = pa.concat_tables(self._pending)
        table, rest = (pending, None) if rows is None else (pending.slice(0, rows), pending.slice(rows))
        self._pending = [rest] if rest is not None and rest.num_rows else []
        self._pending_rows = sum(t.num_rows for t in self._pending)
        self._pending_bytes = sum(t.nbytes for t in self._pending)
        if self._writer is None:  # a new shard
            name = f"part-{len(self.shards):05d}.parquet"
            self._path = os.path.join(self.directory, name)
            compression = None if self.config.compression == "none" else self.config.compression
            self._writer = pq.ParquetWriter(self._path + ".tmp", self.schema, compression=compression)
        self._writer.write_table(table, row_group_size=self.config.row_group_rows)
        self._shard_rows += table.num_rows
        self._shard_bytes += table.nbytes
        if "n_tokens" in table.column_names:
            self._shard_tokens += int(pc.sum(table["n_tokens"]).as_py() or 0)
        if self._shard_rows >= self.config.shard_rows or self._shard_bytes >= self.config.shard_bytes:
            self._close_shard()

    def _close_shard(self) -> None:
        self._writer.close()
        os.replace(self._path + ".tmp", self._path)
        self.shards.append({"file": os.path.basename(self._path), "rows": self._shard_rows,
                            "bytes": os.path.getsize(self._path),
                            **({"tokens": self._shard_tokens} if "n_tokens" in self.schema.names else {})})
        self._writer, self._shard_rows, self._shard_bytes, self._shard_tokens = None, 0, 0, 0

    def close(self) -> list[dict]:
        while self._pending:
            self._flush_row_group(self._next_group_rows())
        if self._writer is None and not self.shards:
            self._pending = [self.schema.empty_table()]  # an empty stream still has a schema to read
            self._flush_row_group()
        if self._writer is not None:
            self._close_shard()
        return self.shards


class OutputWriter:
    """Routes each batch of rows by status and tallies the counts for the manifest."""

    def __init__(self, config: OutputConfig, dedup: DedupConfig | None = None, benchmarks: dict[str, dict] | None = None):
        self.config = config
        self.benchmarks = benchmarks or {}  # the decontaminate stage's: name -> {path, sha256, benchmark_items}
        self.path = config.path
        os.makedirs(self.path, exist_ok=True)
        for name in os.listdir(self.path):  # leftovers of a crashed run
            if name.startswith(_STAGING_PREFIX):
                shutil.rmtree(os.path.join(self.path, name), ignore_errors=True)
        self.staging = os.path.join(self.path, f"{_STAGING_PREFIX}{uuid.uuid4().hex[:12]}")
        self.writers = {
            "documents": ShardWriter(os.path.join(self.staging, "documents"), DOCUMENT_SCHEMA, config),
            "rejected": ShardWriter(os.path.join(self.staging, "rejected"), REJECTED_SCHEMA, config),
            "errors": ShardWriter(os.path.join(self.staging, "errors"), ERROR_SCHEMA, config),
        }
        # With dedup on, kept documents wait in pending shards until the whole run has been seen.
        self.dedup_index = self.pending = None
        if dedup is not None:
            self.pending = ShardWriter(os.path.join(self.staging, "pending"), DOCUMENT_SCHEMA, config)
            self.dedup_index = DedupIndex(os.path.join(self.staging, "dedup"), dedup)
        self.dedup_stats: dict = {}
        self.kept = 0
        self.kept_chars = 0
        self.rejected: Counter = Counter()
        self.rejected_chars: Counter = Counter()
        self.rejected_by_stage: Counter = Counter()
        self.rejected_chars_by_stage: Counter = Counter()
        self.flagged: Counter = Counter()  # tag mode: "stage:reason" -> documents
        self.pii: Counter = Counter()
        self.errored: Counter = Counter()  # by stage
        self.skipped: Counter = Counter()
        self.tokens_by_language: Counter = Counter()  # kept documents' n_tokens
        self.tokens_by_edu_int: Counter = Counter()
        self.contaminated: dict[str, Counter] = {}  # benchmark -> item -> documents (rejected or flagged)

    def add(self, batch: pa.Table) -> None:
        status = batch["status"]
        kept = batch.filter(pc.equal(status, KEPT))
        if kept.num_rows and self.pending is not None:
            self.pending.write(kept.select(DOCUMENT_SCHEMA.names))
            self.dedup_index.add(kept)
        else:
            self._add_kept(kept)
        self._add_rejected(batch.filter(pc.equal(status, REJECTED)))
        errored = batch.filter(pc.equal(status, ERRORED))
        if errored.num_rows:
            for row in _group_count(errored, ["stage"]):
                self.errored[row["stage"]] += row["n"]
            errors = errored.rename_columns(["error" if n == "reason" else n for n in errored.column_names])
            self.writers["errors"].write(errors.select(ERROR_SCHEMA.names).cast(ERROR_SCHEMA))
        skipped = batch.filter(pc.equal(status, SKIPPED))
        for row in _group_count(skipped, ["reason"]) if skipped.num_rows else ():
            self.skipped[row["reason"]] += row["n"]

    def _add_kept(self, kept: pa.Table) -> None:
        if kept.num_rows:
            self.kept += kept.num_rows
            self.kept_chars += _chars(kept)
            self._tally_kept(kept)
            self.writers["documents"].write(kept.select(DOCUMENT_SCHEMA.names))

    def _add_rejected(self, rejected: pa.Table) -> None:
        if rejected.num_rows:
            for row in _group_count(rejected, ["stage", "reason"]):
                self.rejected[row["reason"]] += row["n"]
                self.rejected_chars[row["reason"]] += row["chars"]
                self.rejected_by_stage[(row["stage"], row["reason"])] += row["n"]
                self.rejected_chars_by_stage[(row["stage"], row["reason"])] += row["chars"]
            self._tally_contamination(rejected)
            self.writers["rejected"].write(rejected.select(REJECTED_SCHEMA.names))

    def _tally_kept(self, kept: pa.Table) -> None:
        flags = pc.list_flatten(kept["flags"])
        if len(flags):
            for item in pc.value_counts(flags).to_pylist():
                self.flagged[item["values"]] += item["counts"]
        pii = kept["pii"]
        if pii.null_count < len(pii):
            for field in ("email", "ip"):
                self.pii[field] += int(pc.sum(pc.struct_field(pii, field)).as_py() or 0)
        self._tally_contamination(kept)
        if kept["n_tokens"].null_count < kept.num_rows:
            for key, counter in (("language", self.tokens_by_language), ("edu_int", self.tokens_by_edu_int)):
                for row in kept.group_by(key, use_threads=False).aggregate([("n_tokens", "sum")]).to_pylist():
                    counter[str(row[key]) if row[key] is not None else "null"] += row["n_tokens_sum"] or 0

    def _tally_contamination(self, table: pa.Table) -> None:
        found = table["contamination"]
        if found.null_count == len(found):
            return
        for match in pc.drop_null(found).to_pylist():
            self.contaminated.setdefault(match["benchmark"], Counter())[match["item"]] += 1

    def _token_totals(self) -> dict:
        """Kept documents' tokens: in all, per language, per edu_int (null: classify off)."""
        return {"kept": sum(self.tokens_by_language.values()),
                "by_language": dict(self.tokens_by_language.most_common()),
                "by_edu_int": dict(sorted(self.tokens_by_edu_int.items()))}

    def _contamination_table(self) -> dict:
        """Per benchmark checked: its file, SHA-256 and size; documents matching it, distinct items
        matched, the most matched items."""
        names = sorted({*self.benchmarks, *self.contaminated})
        return {bench: {**self.benchmarks.get(bench, {}), "documents": sum(self.contaminated.get(bench, {}).values()),
                        "items": len(self.contaminated.get(bench, {})),
                        "top_items": dict(self.contaminated.get(bench, Counter()).most_common(10))}
                for bench in names}

    @property
    def counts(self) -> dict:
        read = self.kept + sum(self.rejected.values()) + sum(self.errored.values())
        return {"read": read, "kept": self.kept, "rejected": dict(sorted(self.rejected.items())),
                "errored": sum(self.errored.values()), "skipped": dict(sorted(self.skipped.items()))}

    def _resolve_pending(self) -> None:
        """Dedup's last step: stream the pending documents back in write order (a document's
        ordinal is its position) and route each as kept or as a duplicate of its cluster's keeper."""
        clusters = self.dedup_index.clusters()
        files = [os.path.join(self.pending.directory, s["file"]) for s in self.pending.close() if s["rows"]]
        keepers = clusters.keepers()
        keeper_ids = {k: self.dedup_index.released_id(k) for k in keepers[keepers >= self.dedup_index.count].tolist()}
        ids_writer = pq.ParquetWriter(os.path.join(self.dedup_index.directory, "ids.parquet"), IDS_SCHEMA)
        start = 0
        for path in files:  # first pass, ids only: the kept document of a cluster may come later
            ids = pq.read_table(path, columns=["id"])["id"]
            local = keepers[(keepers >= start) & (keepers < start + len(ids))] - start
            keeper_ids.update(zip((local + start).tolist(), ids.take(local).to_pylist()))
            start += len(ids)
        start = 0
        for path in files:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=self.config.row_group_rows):
                table = pa.Table.from_batches([batch])
                ordinals = np.arange(start, start + table.num_rows)
                start += table.num_rows
                keeper, size, exact = clusters.resolve(ordinals)
                own = table["id"].to_pylist()
                cluster = [keeper_ids[k] if k >= 0 else own[i] for i, k in enumerate(keeper.tolist())]
                table = table.set_column(table.schema.get_field_index("dup_cluster"), "dup_cluster",
                                         pa.array(cluster, pa.string()))
                table = table.set_column(table.schema.get_field_index("dup_cluster_size"), "dup_cluster_size",
                                         pa.array(size, pa.int64()))
                dropped = (keeper >= 0) & (keeper != ordinals)
                ids_writer.write_table(pa.table([ordinals, table["id"], ~dropped, clusters.text_hashes[ordinals]],
                                                schema=IDS_SCHEMA))
                self._add_kept(table.filter(pa.array(~dropped)))
                if dropped.any():
                    copies = table.filter(pa.array(dropped))
                    n = copies.num_rows
                    reasons = np.where(exact[dropped], "exact_duplicate", "near_duplicate")
                    copies = copies.append_column("stage", pa.array([DEDUP_STAGE] * n, pa.string()))
                    copies = copies.append_column("reason", pa.array(reasons.tolist(), pa.string()))
                    copies = copies.append_column(
                        "duplicate_of", pa.array([keeper_ids[k] for k in keeper[dropped].tolist()], pa.string()))
                    self._add_rejected(copies)
            os.remove(path)
        ids_writer.close()
        shutil.rmtree(self.pending.directory)
        self.dedup_stats = {**clusters.stats, "index": index_settings(self.dedup_index.config)}

    def commit(self, stage_order: list[str], extra: dict) -> dict:
        """Close every shard, swap the staging folder into place, then write the manifest."""
        if self.pending is not None:
            self._resolve_pending()
        outputs = {name: writer.close() for name, writer in self.writers.items()}
        manifest = {
            "counts": self.counts,
            "stages": self._stage_funnel(stage_order),
            "chars": {"kept": self.kept_chars, "rejected": dict(sorted(self.rejected_chars.items()))},
            "errors_by_stage": dict(sorted(self.errored.items())),
            "flagged": dict(sorted(self.flagged.items())),
            "pii_replacements": dict(sorted(self.pii.items())),
            "tokens": self._token_totals(),
            "decontamination": self._contamination_table(),
            **({"dedup": self.dedup_stats} if self.pending is not None else {}),
            "outputs": outputs,
            **extra,
        }
        manifest_path = os.path.join(self.path, MANIFEST)
        if os.path.exists(manifest_path):
            os.remove(manifest_path)
        for name in (*STREAMS, DEDUP_INDEX):
            final = os.path.join(self.path, name)
            if os.path.exists(final):
                shutil.rmtree(final)
            if os.path.exists(os.path.join(self.staging, name)):
                os.replace(os.path.join(self.staging, name), final)
        os.rmdir(self.staging)
        tmp = manifest_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, default=str)
        os.replace(tmp, manifest_path)
        return manifest

    def abort(self) -> None:
        for writer in self.writers.values():
            if writer._writer is not None:
                writer._writer.close()
        shutil.rmtree(self.staging, ignore_errors=True)

    def _stage_funnel(self, stage_order: list[str]) -> dict:
        """Per stage: documents in and out, drops per reason (documents and characters), and in tag
        mode what it would have dropped; derived from the rows' stage and flags columns."""
        funnel = {}
        alive = self.counts["read"] - self.errored.get("read", 0)
        for stage in stage_order:
            dropped = {reason: n for (s, reason), n in self.rejected_by_stage.items() if s == stage}
            chars = {reason: n for (s, reason), n in self.rejected_chars_by_stage.items() if s == stage}
            flagged = {f.split(":", 1)[1]: n for f, n in self.flagged.items() if f.split(":", 1)[0] == stage}
            errored = self.errored.get(stage, 0)
            out = alive - sum(dropped.values()) - errored
            funnel[stage] = {"in": alive, "out": out, "rejected": dict(sorted(dropped.items())),
                             "rejected_chars": dict(sorted(chars.items())), "errored": errored}
            if flagged:
                funnel[stage]["flagged"] = dict(sorted(flagged.items()))
            alive = out
        return funnel


def _chars(table: pa.Table) -> int:
    return int(pc.sum(pc.utf8_length(table["text"])).as_py() or 0)


def _group_count(table: pa.Table, keys: list[str]) -> list[dict]:
    lengths = pc.fill_null(pc.utf8_length(table["text"]), 0)
    grouped = table.select(keys).append_column("chars", lengths).group_by(keys, use_threads=False)
    result = grouped.aggregate([("chars", "count"), ("chars", "sum")])
    return [{**{k: r[k] for k in keys}, "n": r["chars_count"], "chars": r["chars_sum"]} for r in result.to_pylist()]
