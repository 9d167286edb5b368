"""``thresher blend MIX.yaml``: a token-budgeted mixture of Thresher outputs and other datasets,
written as shuffled Parquet shards with a mixture manifest.

```yaml
total_tokens: 1000000000        # needed when sources give shares
seed: 0
tokens: {encoding: cl100k_base}
output: {path: out/mix, shard_bytes: 268435456}   # thresher's output settings
sources:
  - {name: web, paths: [out/cc], filter: "edu_score >= 3", share: 0.6, max_epochs: 1}
  - {name: synthetic, paths: [data/textbooks/*.jsonl.gz], share: 0.4, max_epochs: 4}
```

A source is a Thresher output folder (its ``documents/``), or Parquet / JSONL files, folders and
globs with a ``text`` column. Each source gets its budget (``share`` x ``total_tokens``, or
``tokens``); it is repeated whole for as many full epochs as the budget needs, up to
``max_epochs``, and the rest is a prefix of the source in a seeded random order. A source that
runs out (its budget is over ``max_epochs`` times what it has) is reported with its shortfall;
the others are not scaled up to make up for it.

Three streaming passes, none holding a source:

1. **count**: each document that passes the source's filter gets a selection key, a 64-bit
   hash of (seed, source, file, row); its tokens (the ``n_tokens`` column of a Thresher output
   counted with the same encoding, else the tokenizer) are added to a 65,536-bucket histogram by
   the key's top 16 bits, and kept in a temporary file, 4 bytes a document, for pass 2.
2. **select and spill**: the histogram gives the bucket where the partial epoch's budget is
   passed; documents in the buckets below are taken, those of the boundary bucket (1/65,536 of
   the source) are held, sorted by key and taken while the budget allows. Every copy gets a
   shuffle key, a hash of its selection key and epoch, and is spilled to the bucket file of its
   key range (buckets of about ``shuffle_bytes``).
3. **shuffle and write**: bucket by bucket, in key order, rows are sorted by shuffle key and
   written to shards.

The guarantee: the output is the selected copies in ascending order of their shuffle keys, a
pseudo-random permutation that depends only on the seed, the config and the input files, not on
``shuffle_bytes`` or batch sizes; a source's selection is the shortest prefix, in selection key
order, whose tokens do not exceed its budget (it falls short by less than one document, so
``max_epochs`` is never exceeded). Memory holds
one spill bucket, one boundary bucket and the spill buffers, never a source.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from thresher.config import ConfigError, OutputConfig, TokensConfig, _Strict, apply_overrides, format_error, read_yaml
from thresher.filters.tokens import count_tokens
from thresher.pipelines import storage
from thresher.pipelines.output import MANIFEST, ShardWriter
from thresher.pipelines.readers import SUFFIXES
from thresher.pipelines.readers.jsonl import MalformedLine, json_objects
from thresher.schema import document_id

BLEND_SCHEMA = pa.schema([
    pa.field("id", pa.string()),  # the document's id in its source
    pa.field("text", pa.large_string()),
    pa.field("n_tokens", pa.int64()),
    pa.field("source", pa.string()),  # the mixture source's name
    pa.field("epoch", pa.int64()),  # 0 for a document's first copy
])
_BUCKET_BITS = 16
_BATCH_ROWS = 1024
_SPILL_BUFFER_BYTES = 64 * 2**20
_OPS = {">=": pc.greater_equal, ">": pc.greater, "<=": pc.less_equal, "<": pc.less, "==": pc.equal, "!=": pc.not_equal}
_CONDITION = re.compile(r"^\s*(\w+)\s*(>=|<=|==|!=|>|<)\s*(.+?)\s*$")
_FORMATS = SUFFIXES["parquet"] + SUFFIXES["jsonl"]


class BlendError(ValueError):
    """Bad input found before anything is written: exit 2."""


@dataclass(frozen=True)
class Condition:
    column: str
    op: str
    value: object

    @classmethod
    def parse(cls, text: str) -> Condition:
        match = _CONDITION.match(text)
        if not match:
            raise ValueError(f"{text!r}: expected COLUMN OP VALUE with OP one of {' '.join(_OPS)}")
        column, op, raw = match.groups()
        return cls(column, op, yaml.safe_load(raw))

    def mask(self, table: pa.Table) -> pa.Array:
        return pc.fill_null(_OPS[self.op](table[self.column], self.value), False)


class SourceConfig(_Strict):
    name: str = Field(min_length=1)
    paths: list[str] = Field(min_length=1, description="Thresher output folders, Parquet / JSONL files, folders, globs")
    filter: list[str] = Field([], description="conditions COLUMN OP VALUE, all of which a document must meet")
    share: float | None = Field(None, gt=0, le=1, description="of total_tokens")
    tokens: int | None = Field(None, gt=0, description="a budget in tokens, instead of a share")
    max_epochs: float = Field(1.0, gt=0, description="how many times the source may be repeated (1.5: once and a half)")

    @field_validator("filter", mode="before")
    @classmethod
    def _one_condition(cls, value):
        return [value] if isinstance(value, str) else value

    @field_validator("filter")
    @classmethod
    def _parses(cls, value: list[str]) -> list[str]:
        for condition in value:
            Condition.parse(condition)
        return value

    @model_validator(mode="after")
    def _one_budget(self):
        if (self.share is None) == (self.tokens is None):
            raise ValueError("give the source a share or a token budget (tokens), not both or neither")
        return self

    @property
    def conditions(self) -> list[Condition]:
        return [Condition.parse(c) for c in self.filter]


class MixConfig(_Strict):
    sources: list[SourceConfig] = Field(min_length=1)
    total_tokens: int | None = Field(None, gt=0, validate_default=True, description="the mixture's size; needed with shares")
    seed: int = 0
    tokens: TokensConfig = TokensConfig()
    output: OutputConfig
    shuffle_bytes: int = Field(256 * 2**20, gt=0, description="text bytes per shuffle bucket: bounds memory in pass 3")

    @field_validator("sources")
    @classmethod
    def _budgets_add_up(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        names = [s.name for s in sources]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"two sources are named {twice[0]!r}")
        shares = [s.share for s in sources if s.share is not None]
        if shares and len(shares) != len(sources):
            raise ValueError("give every source a share, or every source a token budget (tokens)")
        if shares and not math.isclose(sum(shares), 1.0, abs_tol=1e-6):
            raise ValueError(f"the shares add up to {sum(shares):.6g}, not 1")
        return sources

    @field_validator("total_tokens")
    @classmethod
    def _needed_with_shares(cls, value: int | None, info) -> int | None:
        if value is None and any(s.share is not None for s in info.data.get("sources", [])):
            raise ValueError("needed when the sources give shares")
        return value

    def budget(self, source: SourceConfig) -> int:
        return source.tokens if source.tokens is not None else round(source.share * self.total_tokens)


def load_mix(path: str, *, output: str | None = None, overrides: list[str] = ()) -> MixConfig:
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the mix must be a mapping")
    if output:
        data.setdefault("output", {})["path"] = output
    apply_overrides(data, overrides)
    try:
        return MixConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_error(e)) from None


@dataclass
class SourceFiles:
    """A source's files, and whether its ``n_tokens`` can be trusted."""

    config: SourceConfig
    files: list[str]
    trusted_tokens: bool  # a Thresher output whose n_tokens were counted with the mix's encoding


def _columns_and_rows(path: str) -> tuple[list[str], int | None, dict[str, pa.DataType]]:
    """(columns, rows or None if unknown, Parquet types) from the file's metadata or first line."""
    if path.lower().endswith(SUFFIXES["parquet"]):
        metadata = pq.ParquetFile(path).metadata
        schema = metadata.schema.to_arrow_schema()
        return schema.names, metadata.num_rows, {f.name: f.type for f in schema}
    first = next(json_objects(path), None)
    return ([], 0, {}) if first is None else (list(first[1]), None, {})


def _recorded_encoding(folder: str) -> str | None:
    """The encoding a Thresher output's n_tokens were counted with (None: not counted)."""
    with open(os.path.join(folder, MANIFEST), encoding="utf-8") as f:
        manifest = json.load(f)
    tokens = (manifest.get("config", {}).get("stages") or {}).get("tokens") or manifest.get("mixture", {})
    return tokens.get("encoding")


def resolve_sources(mix: MixConfig) -> list[SourceFiles]:
    """Each source's files, checked before anything is read in full: raises BlendError."""
    resolved = []
    for i, source in enumerate(mix.sources):
        key = f"sources[{i}] ({source.name})"
        files, encodings = [], set()
        for path in source.paths:
            if os.path.isdir(path) and os.path.isfile(os.path.join(path, MANIFEST)):
                encodings.add(_recorded_encoding(path))
                path = os.path.join(path, "documents")
            else:
                encodings.add(None)
            found = [f for f in storage.expand(path) if f.lower().endswith(_FORMATS) and os.path.isfile(f)]
            if not found:
                raise BlendError(f"{key}: no Parquet or JSONL file at {path}")
            files.extend(found)
        wanted = ["text", *dict.fromkeys(c.column for c in source.conditions)]
        rows = 0
        for path in files:
            try:
                columns, n, types = _columns_and_rows(path)
            except (OSError, ValueError, pa.ArrowException) as e:
                raise BlendError(f"{key}: cannot read {path}: {e}") from None
            rows += 1 if n is None and columns else (n or 0)
            if n == 0 or not columns:
                continue
            missing = [c for c in wanted if c not in columns]
            if missing:
                raise BlendError(f"{key}: {path} has no column {missing[0]!r}"
                                 + (" (named by the filter)" if missing[0] != "text" else ""))
            for condition in source.conditions:
                if condition.column in types:
                    try:
                        condition.mask(pa.table({condition.column: pa.array([], types[condition.column])}))
                    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
                        raise BlendError(f"{key}: filter {condition.column} {condition.op} {condition.value!r}: "
                                         f"cannot compare a {types[condition.column]} column with that") from None
        if rows == 0:
            raise BlendError(f"{key}: the source is empty (no document in {', '.join(source.paths)})")
        trusted = encodings == {mix.tokens.encoding}
        resolved.append(SourceFiles(source, files, trusted))
    return resolved


def _read_batches(path: str, columns: list[str]):
    """Tables of up to _BATCH_ROWS rows with the given columns (those the file has)."""
    if path.lower().endswith(SUFFIXES["parquet"]):
        parquet = pq.ParquetFile(path, pre_buffer=False)  # pre-buffering is for remote stores: 68 MB more peak RSS here
        present = [c for c in columns if c in parquet.schema_arrow.names]
        for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, columns=present):
            yield pa.Table.from_batches([batch])
        return
    rows = []
    try:
        for _, row in json_objects(path):
            rows.append({c: row[c] for c in columns if c in row})
            if len(rows) == _BATCH_ROWS:
                yield pa.Table.from_pylist(rows)
                rows = []
    except MalformedLine as e:  # found in the counting pass, before anything is written
        raise BlendError(str(e)) from None
    if rows:
        yield pa.Table.from_pylist(rows)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of uint64 whose output bits all depend on every input bit."""
    with np.errstate(over="ignore"):  # multiplication modulo 2**64 is the point
        x = x ^ (x >> np.uint64(30))
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> np.uint64(27))
        x = x * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _source_salt(seed: int, name: str) -> np.uint64:
    from xxhash import xxh3_64_intdigest

    return np.uint64(xxh3_64_intdigest(f"{seed}\x00{name}"))


def selection_keys(salt: np.uint64, file_index: int, rows: np.ndarray) -> np.ndarray:
    return _mix64(_mix64(salt ^ np.uint64(file_index)) ^ rows.astype(np.uint64))


def shuffle_keys(selection: np.ndarray, epoch: int) -> np.ndarray:
    return _mix64(selection ^ _mix64(np.full(len(selection), epoch + 1, np.uint64)))


@dataclass
class _Scan:
    """One batch of a source's passing documents, with their keys and tokens."""

    table: pa.Table
    ids: list[str]
    keys: np.ndarray
    tokens: np.ndarray

    def subset(self, index: np.ndarray) -> _Scan:
        return _Scan(self.table.take(pa.array(index)), [self.ids[i] for i in index], self.keys[index], self.tokens[index])


@dataclass
class SourcePlan:
    files: SourceFiles
    budget: int
    tokens_path: str
    hist_tokens: np.ndarray = field(default_factory=lambda: np.zeros(1 << _BUCKET_BITS, np.int64))
    hist_bytes: np.ndarray = field(default_factory=lambda: np.zeros(1 << _BUCKET_BITS, np.int64))
    documents: int = 0
    full_epochs: int = 0
    partial_tokens: int = 0  # budget of the partial epoch
    boundary: int = -1  # the bucket where the partial epoch's budget is reached

    @property
    def available(self) -> int:
        return int(self.hist_tokens.sum())

    def decide(self) -> None:
        """Full epochs, the partial epoch's budget, and the first bucket that does not fit in it whole."""
        available = self.available
        target = min(self.budget, int(self.files.config.max_epochs * available))
        self.full_epochs, self.partial_tokens = divmod(target, available) if available else (0, 0)
        if self.partial_tokens:
            self.boundary = int(np.searchsorted(np.cumsum(self.hist_tokens), self.partial_tokens, "right"))

    def selected_bytes(self) -> int:
        below = int(self.hist_bytes[:max(self.boundary, 0)].sum())
        edge = int(self.hist_bytes[self.boundary]) if self.boundary >= 0 else 0
        return self.full_epochs * int(self.hist_bytes.sum()) + below + edge


def _scan(mix: MixConfig, source: SourceFiles, counted_tokens=None):
    """The passing documents of a source, batch by batch. Tokens come from ``counted_tokens``
    (a file of pass 1's counts), the trusted n_tokens column, or the tokenizer."""
    salt = _source_salt(mix.seed, source.config.name)
    conditions = source.config.conditions
    columns = ["text", "id", *(["n_tokens"] if source.trusted_tokens else []), *(c.column for c in conditions)]
    for file_index, path in enumerate(source.files):
        start = 0
        for table in _read_batches(path, columns):
            rows = np.arange(start, start + table.num_rows)
            start += table.num_rows
            mask = pc.is_valid(table["text"])
            for condition in conditions:
                mask = pc.and_(mask, condition.mask(table))
            mask = mask.to_numpy(zero_copy_only=False)
            if not mask.any():
                continue
            table, rows = table.filter(pa.array(mask)), rows[mask]
            if "id" in table.column_names:
                ids = [str(i) if i is not None else document_id(path, r) for i, r in zip(table["id"].to_pylist(), rows.tolist())]
            else:
                ids = [document_id(path, r) for r in rows.tolist()]
            if counted_tokens is not None:
                tokens = np.fromfile(counted_tokens, np.uint32, table.num_rows).astype(np.int64)
            elif source.trusted_tokens and "n_tokens" in table.column_names and table["n_tokens"].null_count == 0:
                tokens = table["n_tokens"].to_numpy().astype(np.int64)
            else:
                tokens = np.array(count_tokens(table["text"].to_pylist(), mix.tokens.encoding), np.int64)
            yield _Scan(table.select(["text"]), ids, selection_keys(salt, file_index, rows), tokens)


def count_pass(mix: MixConfig, plan: SourcePlan) -> None:
    shift = np.uint64(64 - _BUCKET_BITS)
    with open(plan.tokens_path, "wb") as counts:
        for scan in _scan(mix, plan.files):
            buckets = (scan.keys >> shift).astype(np.int64)
            np.add.at(plan.hist_tokens, buckets, scan.tokens)
            np.add.at(plan.hist_bytes, buckets, pc.binary_length(scan.table["text"].cast(pa.large_binary())).to_numpy())
            plan.documents += len(scan.ids)
            scan.tokens.astype(np.uint32).tofile(counts)
    if plan.documents == 0:
        raise BlendError(f"source {plan.files.config.name}: no document passes the filter "
                         f"{' and '.join(plan.files.config.filter)}")


class SpillWriter:
    """Rows spilled to bucket files by shuffle key range, buffered in memory up to a bound."""

    def __init__(self, directory: str, buckets: int):
        self.directory, self.buckets = directory, buckets
        self.buffers: list[list[pa.Table]] = [[] for _ in range(buckets)]
        self.buffered = 0
        self.chunks = 0
        for b in range(buckets):
            os.makedirs(self._bucket_dir(b))

    def _bucket_dir(self, bucket: int) -> str:
        return os.path.join(self.directory, f"{bucket:05d}")

    def add(self, table: pa.Table, keys: np.ndarray) -> None:
        table = table.append_column("shuffle_key", pa.array(keys, pa.uint64()))
        buckets = ((keys >> np.uint64(32)) * np.uint64(self.buckets)) >> np.uint64(32)
        order = np.argsort(buckets, kind="stable")
        bounds = np.searchsorted(buckets[order], np.arange(self.buckets + 1))
        for b in np.flatnonzero(np.diff(bounds)):
            part = table.take(pa.array(order[bounds[b]:bounds[b + 1]]))
            self.buffers[b].append(part)
            self.buffered += part.nbytes
        if self.buffered >= _SPILL_BUFFER_BYTES:
            self.flush()

    def flush(self) -> None:
        for b, parts in enumerate(self.buffers):
            if parts:
                path = os.path.join(self._bucket_dir(b), f"{self.chunks:06d}.arrow")
                table = pa.concat_tables(parts)
                with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                    writer.write_table(table)
                self.buffers[b] = []
        self.chunks += 1
        self.buffered = 0

    def bucket(self, bucket: int) -> pa.Table | None:
        """A bucket's rows sorted by shuffle key, without it."""
        directory = self._bucket_dir(bucket)
        parts = []
        for name in sorted(os.listdir(directory)):
            with pa.memory_map(os.path.join(directory, name)) as source:
                parts.append(pa.ipc.open_file(source).read_all())
        if not parts:
            return None
        table = pa.concat_tables(parts)
        table = table.take(pc.sort_indices(table["shuffle_key"]))
        shutil.rmtree(directory)
        return table.drop_columns(["shuffle_key"])


def spill_pass(mix: MixConfig, plan: SourcePlan, spill: SpillWriter) -> dict:
    """Spills every selected copy of the source's documents; returns what was taken."""
    name = plan.files.config.name
    shift = np.uint64(64 - _BUCKET_BITS)
    taken = {"documents": 0, "tokens": 0}
    held: list[_Scan] = []

    def emit(scan: _Scan, epoch: int) -> None:
        rows = scan.table.append_column("id", pa.array(scan.ids, pa.string()))
        rows = rows.append_column("n_tokens", pa.array(scan.tokens, pa.int64()))
        rows = rows.append_column("source", pa.array([name] * rows.num_rows, pa.string()))
        rows = rows.append_column("epoch", pa.array(np.full(rows.num_rows, epoch), pa.int64()))
        spill.add(rows.select(BLEND_SCHEMA.names).cast(BLEND_SCHEMA), shuffle_keys(scan.keys, epoch))
        taken["documents"] += rows.num_rows
        taken["tokens"] += int(scan.tokens.sum())

    with open(plan.tokens_path, "rb") as counts:
        for scan in _scan(mix, plan.files, counts):
            for epoch in range(plan.full_epochs):
                emit(scan, epoch)
            if plan.boundary < 0:
                continue
            buckets = (scan.keys >> shift).astype(np.int64)
            if (below := buckets < plan.boundary).any():
                emit(scan.subset(np.flatnonzero(below)), plan.full_epochs)
            if (edge := buckets == plan.boundary).any():
                held.append(scan.subset(np.flatnonzero(edge)))
    if held:  # the boundary bucket: in key order, as long as the partial epoch's budget is not exceeded
        below = int(plan.hist_tokens[:plan.boundary].sum())
        keys = np.concatenate([h.keys for h in held])
        tokens = np.concatenate([h.tokens for h in held])
        order = np.argsort(keys, kind="stable")
        reach = int(np.searchsorted(below + np.cumsum(tokens[order]), plan.partial_tokens, "right"))
        boundary = _Scan(pa.concat_tables([h.table for h in held]), [i for h in held for i in h.ids], keys, tokens)
        emit(boundary.subset(order[:reach]), plan.full_epochs)
    os.remove(plan.tokens_path)
    return taken


def blend(mix: MixConfig) -> dict:
    """Runs the mixture; raises BlendError (nothing written) on bad input."""
    sources = resolve_sources(mix)
    out = mix.output.path
    with tempfile.TemporaryDirectory(prefix="thresher-blend-") as scratch:
        plans = [SourcePlan(s, mix.budget(s.config), os.path.join(scratch, f"tokens-{i}.u32"))
                 for i, s in enumerate(sources)]
        for plan in plans:
            count_pass(mix, plan)
            plan.decide()
        os.makedirs(out, exist_ok=True)  # only now: bad input has been refused with nothing written
        for name in os.listdir(out):  # leftovers of a crashed blend
            if name.startswith(".staging-"):
                shutil.rmtree(os.path.join(out, name), ignore_errors=True)
        staging = os.path.join(out, f".staging-{uuid.uuid4().hex[:12]}")
        try:
            buckets = max(1, math.ceil(sum(p.selected_bytes() for p in plans) / mix.shuffle_bytes))
            spill = SpillWriter(os.path.join(staging, "spill"), buckets)
            taken = [spill_pass(mix, plan, spill) for plan in plans]
            spill.flush()
            writer = ShardWriter(os.path.join(staging, "documents"), BLEND_SCHEMA, mix.output)
            for b in range(buckets):
                table = spill.bucket(b)
                if table is not None:
                    writer.write(table)
            shards = writer.close()
            shutil.rmtree(spill.directory)
            manifest = _manifest(mix, plans, taken, shards, buckets)
            _swap_in(staging, out, manifest)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return manifest


def _manifest(mix: MixConfig, plans: list[SourcePlan], taken: list[dict], shards: list[dict], buckets: int) -> dict:
    total = sum(t["tokens"] for t in taken)
    table = {}
    for plan, got in zip(plans, taken):
        config, available = plan.files.config, plan.available
        table[config.name] = {
            "budget_tokens": plan.budget,
            "share_target": config.share,
            "tokens": got["tokens"],
            "documents": got["documents"],
            "share": round(got["tokens"] / total, 6) if total else 0.0,
            "available_tokens": available,
            "available_documents": plan.documents,
            "epochs": round(got["tokens"] / available, 6) if available else 0.0,
            "max_epochs": config.max_epochs,
            "shortfall_tokens": max(0, plan.budget - int(config.max_epochs * available)),
            "tokens_from": "n_tokens column" if plan.files.trusted_tokens else "tokenizer",
            "files": len(plan.files.files),
        }
    return {
        "mixture": {"encoding": mix.tokens.encoding, "seed": mix.seed, "total_tokens_target": mix.total_tokens,
                    "tokens": total, "documents": sum(t["documents"] for t in taken), "shuffle_buckets": buckets,
                    "sources": table},
        "outputs": {"documents": shards},
        "config": mix.model_dump(mode="json"),
    }


def _swap_in(staging: str, out: str, manifest: dict) -> None:
    """documents/ replaces the old one, then manifest.json is written last (as `thresher run` does)."""
    manifest_path = os.path.join(out, MANIFEST)
    if os.path.exists(manifest_path):
        os.remove(manifest_path)
    final = os.path.join(out, "documents")
    if os.path.exists(final):
        shutil.rmtree(final)
    os.replace(os.path.join(staging, "documents"), final)
    os.rmdir(staging)
    with open(manifest_path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
    os.replace(manifest_path + ".tmp", manifest_path)


def summary(manifest: dict) -> str:
    mixture = manifest["mixture"]
    lines = [f"thresher blend: {mixture['documents']} documents, {mixture['tokens']} tokens ({mixture['encoding']}), "
             f"{len(manifest['outputs']['documents'])} shards",
             f"  {'source':<16}{'tokens':>14}{'share':>8}{'epochs':>8}{'shortfall':>12}"]
    for name, row in mixture["sources"].items():
        lines.append(f"  {name:<16}{row['tokens']:>14}{row['share']:>8.3f}{row['epochs']:>8.2f}{row['shortfall_tokens']:>12}")
    return "\n".join(lines)
