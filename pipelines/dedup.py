"""The dedup stage's corpus-wide half: from every kept document's keys to duplicate clusters.

It runs in three steps around the streaming run:

1. While the run streams, the writer sets kept documents aside in pending shards (numbered in
   write order: a document's *ordinal*) and ``DedupIndex.add`` appends their keys to an index of
   (band, key, ordinal) rows, hash-partitioned by key into Parquet files. The exact-text hash is
   one more band. Only three numbers per document stay in memory: text length, id hash, text hash.
2. ``DedupIndex.clusters`` runs one Ray task per partition (in the driver, for an index of a few
   MB): sort by (band, key), and every key
   shared by two or more documents links them to its smallest ordinal. A partition holds
   1/``PARTITIONS`` of the keys, so a task's memory is bounded by the corpus size over that.
   The links (candidate pairs only, not the corpus) come back to the driver, where
   ``components`` (numpy, a few passes over the links) turns them into clusters.
   With ``minhash.verify``, a candidate link is kept only if the two documents' estimated Jaccard
   (signatures memory-mapped from the index, a chunk of links at a time) reaches the threshold.
3. ``Clusters.resolve`` gives, batch by batch as the pending shards stream back, each document's
   cluster, its size and, for all but one member, the id of the document kept in its place.

Against earlier releases (``dedup.against``): an earlier run's output keeps its index (``dedup/``:
the key partitions and ``ids.parquet``). Its kept documents join the link tasks, partition by
partition, with ordinals after this run's, and always win the keep rule: a document duplicating
one already released is dropped, with ``duplicate_of`` naming the released one.

Keep rule (deterministic: the same input keeps the same documents whatever the batching): in each
cluster the document with the longest text is kept; among equally long ones, the one whose id has
the smallest 64-bit xxh3 hash. A dropped copy is an ``exact_duplicate`` when its normalised text
is the kept document's, else a ``near_duplicate``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from thresher.config import DedupConfig

PARTITIONS = 32
NO_KEY = 0  # filters.minhash's band key of a text without shingles
SIGNATURES = "signatures.u32"  # with verify: each document's MinHash signature, by ordinal
_FLUSH_ROWS = 2_000_000  # index rows buffered before they are written out (~36 MB)
# An index this small is linked in the driver, one partition after another (~0.1 s for 1,000
# documents): 32 Ray tasks cost ~1.9 s of worker start-up and scheduling however little they do.
_LOCAL_LINKS_BYTES = 16 * 2**20
IDS_SCHEMA = pa.schema([pa.field("doc", pa.int64()), pa.field("id", pa.string()), pa.field("kept", pa.bool_()),
                        pa.field("text_hash", pa.uint64())])
_RELEASED = np.iinfo(np.int64).max  # the "length" of a released document: it always wins the keep rule
_INDEX_SCHEMA = pa.schema([pa.field("band", pa.int16()), pa.field("key", pa.uint64()), pa.field("doc", pa.int64())])


def index_settings(config: DedupConfig) -> dict:
    """What must be equal for two runs' keys to be comparable."""
    mh = config.minhash
    minhash = None if mh is None else {"num_perm": mh.num_perm, "seed": mh.seed, "ngram": mh.ngram, "lsh": list(mh.lsh())}
    return {"partitions": PARTITIONS, "exact": config.exact, "minhash": minhash}


@dataclass
class Released:
    """An earlier run's kept documents, as this run's link tasks and keep rule need them."""

    directory: str
    first: int  # this release's first ordinal in the current run's numbering
    ids: list[str]
    kept: np.ndarray
    text_hashes: np.ndarray

    @classmethod
    def load(cls, output_dir: str, first: int) -> "Released":
        table = pq.read_table(os.path.join(output_dir, "dedup", "ids.parquet"))
        return cls(os.path.join(output_dir, "dedup"), first, table["id"].to_pylist(),
                   table["kept"].to_numpy(zero_copy_only=False), table["text_hash"].to_numpy())


class DedupIndex:
    def __init__(self, directory: str, config: DedupConfig):
        self.directory, self.config = directory, config
        os.makedirs(directory, exist_ok=True)
        self.bands = config.minhash.lsh()[0] if config.minhash else 0
        self.verify = bool(config.minhash and config.minhash.verify)
        self._signatures_path = os.path.join(directory, SIGNATURES)
        self.count = 0
        self.released: list[Released] = []
        self._lengths: list[np.ndarray] = []
        self._id_hashes: list[np.ndarray] = []
        self._text_hashes: list[np.ndarray] = []
        self._buffer: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._buffered = 0
        self._writers: dict[int, pq.ParquetWriter] = {}

    def add(self, kept: pa.Table) -> None:
        """Keys of the next ``kept.num_rows`` pending documents, in the order they were written."""
        n = kept.num_rows
        if n == 0:
            return
        docs = np.arange(self.count, self.count + n, dtype=np.int64)
        self.count += n
        self._lengths.append(pc.fill_null(pc.utf8_length(kept["text"]), 0).to_numpy().astype(np.int64))
        self._id_hashes.append(_id_hashes(kept["id"].to_pylist()))
        text_hashes = pc.fill_null(kept["dedup_hash"], 0).to_numpy().astype(np.uint64)
        self._text_hashes.append(text_hashes)
        if self.bands:
            keys = pc.list_flatten(kept["dedup_bands"]).to_numpy().astype(np.uint64)
            band = np.tile(np.arange(self.bands, dtype=np.int16), n)
            real = keys != NO_KEY  # a text without shingles has no band keys to share
            self._append(band[real], keys[real], np.repeat(docs, self.bands)[real])
            if self.verify:
                with open(self._signatures_path, "ab") as f:
                    f.write(pc.list_flatten(kept["dedup_signature"]).to_numpy().astype(np.uint32).tobytes())
        if self.config.exact:
            self._append(np.full(n, self.bands, dtype=np.int16), text_hashes, docs)

    def _append(self, band: np.ndarray, key: np.ndarray, doc: np.ndarray) -> None:
        self._buffer.append((band, key, doc))
        self._buffered += len(key)
        if self._buffered >= _FLUSH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        band, key, doc = (np.concatenate(parts) for parts in zip(*self._buffer))
        self._buffer, self._buffered = [], 0
        part = (key % PARTITIONS).astype(np.int64)
        order = np.argsort(part, kind="stable")
        band, key, doc, part = band[order], key[order], doc[order], part[order]
        bounds = np.searchsorted(part, np.arange(PARTITIONS + 1))
        for p in range(PARTITIONS):
            lo, hi = bounds[p], bounds[p + 1]
            if lo == hi:
                continue
            if p not in self._writers:
                self._writers[p] = pq.ParquetWriter(self._path(p), _INDEX_SCHEMA, compression="zstd")
            table = pa.table({"band": band[lo:hi], "key": key[lo:hi], "doc": doc[lo:hi]}, schema=_INDEX_SCHEMA)
            self._writers[p].write_table(table)

    def _path(self, p: int) -> str:
        return os.path.join(self.directory, f"index-{p:03d}.parquet")

    def clusters(self) -> "Clusters":
        import ray

        started = time.time()
        self._flush()
        for writer in self._writers.values():
            writer.close()
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, np.int64)
        id_hashes = np.concatenate(self._id_hashes) if self._id_hashes else np.zeros(0, np.uint64)
        text_hashes = np.concatenate(self._text_hashes) if self._text_hashes else np.zeros(0, np.uint64)
        self.released, first = [], self.count
        for prior in self.config.against:
            self.released.append(Released.load(prior, first))
            first += len(self.released[-1].ids)
        for r in self.released:
            lengths = np.concatenate([lengths, np.full(len(r.ids), _RELEASED, np.int64)])
            id_hashes = np.concatenate([id_hashes, _id_hashes(r.ids)])
            text_hashes = np.concatenate([text_hashes, r.text_hashes])
        released = [(r.directory, r.first, r.kept) for r in self.released]
        exact_band = self.bands if self.config.exact else -1
        paths = [self._path(p) for p in range(PARTITIONS)]
        # what the link tasks read: this run's partitions and the releases' (see _links_task)
        read = [*paths, *(os.path.join(d, os.path.basename(path)) for d, _, _ in released for path in paths)]
        if sum(os.path.getsize(f) for f in read if os.path.exists(f)) <= _LOCAL_LINKS_BYTES:
            links = [_links_task(path, released, exact_band) for path in paths]
        else:
            task = ray.remote(num_cpus=1)(_links_task)
            shared = ray.put(released)
            links = ray.get([task.remote(path, shared, exact_band) for path in paths])
        u, v, exact = (np.concatenate([link[i] for link in links]) for i in range(3))
        candidates = len(u)
        if self.verify:
            keep = exact | self._similar(u, v)
            u, v = u[keep], v[keep]
        clusters = Clusters.from_links(u, v, lengths, id_hashes, text_hashes)
        clusters.stats.update(candidate_links=int(candidates), seconds=round(time.time() - started, 3))
        return clusters

    def _similar(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Whether each candidate pair's estimated Jaccard reaches the threshold. Signatures are
        read from disk (memory-mapped) for the linked documents only, a chunk of links at a time;
        a pair with a released document whose run kept no signatures is taken as it is."""
        threshold = self.config.minhash.jaccard
        num_perm = self.config.minhash.num_perm
        tables = [(0, self.count, self._signatures_path)] + [
            (r.first, len(r.ids), os.path.join(r.directory, SIGNATURES)) for r in self.released]
        maps = [(first, n, np.memmap(path, np.uint32, "r", shape=(n, num_perm)))
                for first, n, path in tables if n and os.path.exists(path)]

        def rows(docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            out, found = np.zeros((len(docs), num_perm), np.uint32), np.zeros(len(docs), bool)
            for first, n, sigs in maps:
                inside = (docs >= first) & (docs < first + n)
                out[inside], found[inside] = sigs[docs[inside] - first], True
            return out, found

        keep = np.ones(len(u), bool)
        for lo in range(0, len(u), 100_000):
            (a, found_a), (b, found_b) = rows(u[lo : lo + 100_000]), rows(v[lo : lo + 100_000])
            estimate = (a == b).mean(axis=1)
            keep[lo : lo + 100_000] = ~(found_a & found_b) | (estimate >= threshold)
        return keep

    def released_id(self, ordinal: int) -> str:
        for r in self.released:
            if r.first <= ordinal < r.first + len(r.ids):
                return r.ids[ordinal - r.first]
        raise KeyError(ordinal)


def links_of(band: np.ndarray, key: np.ndarray, doc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) pairs linking each document to the smallest ordinal it shares a (band, key) with."""
    if len(key) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.lexsort((doc, key, band))
    band, key, doc = band[order], key[order], doc[order]
    same = (band[1:] == band[:-1]) & (key[1:] == key[:-1])
    starts = np.r_[True, ~same]
    group = np.cumsum(starts) - 1
    first = doc[np.flatnonzero(starts)][group]
    follow = np.r_[False, same]
    u, v = first[follow], doc[follow]
    keep = u != v  # a document repeated in one bucket (one text, two bands equal) links nothing
    pairs = np.unique(np.stack([u[keep], v[keep]], axis=1), axis=0) if keep.any() else np.zeros((0, 2), np.int64)
    return pairs[:, 0], pairs[:, 1]


def _links_task(path: str, released: list, exact_band: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Links within one key partition of this run and of the releases it is checked against:
    (u, v, whether the link comes from the exact-text key)."""
    parts = [pq.read_table(path)] if os.path.exists(path) else []
    for directory, first, kept in released:
        prior = os.path.join(directory, os.path.basename(path))
        if os.path.exists(prior):
            table = pq.read_table(prior)
            doc = table["doc"].to_numpy()
            table = table.filter(pa.array(kept[doc]))  # a copy the release dropped is not released
            parts.append(table.set_column(2, "doc", pa.array(table["doc"].to_numpy() + first)))
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool)
    table = pa.concat_tables(parts)
    band, key, doc = table["band"].to_numpy(), table["key"].to_numpy(), table["doc"].to_numpy()
    exact = band == exact_band
    eu, ev = links_of(band[exact], key[exact], doc[exact])
    nu, nv = links_of(band[~exact], key[~exact], doc[~exact])
    return np.r_[eu, nu], np.r_[ev, nv], np.r_[np.ones(len(eu), bool), np.zeros(len(nu), bool)]


def components(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The connected components of the graph on nodes 0..n-1 with edges (u, v): each node's
    smallest fellow member. Each round hooks every root under the smallest root it has an edge
    to, then points every node at its root, until no edge joins two roots. The links (each
    document to the first of its bucket, per band) are stars, joined in a few rounds: measured
    on 2.2 and 3.0 million such links, 0.18 and 0.64 s against scipy's connected_components'
    0.30 and 0.47 s, whose import (scipy.sparse.csgraph) alone took 0.2 s at the end of every run.
    """
    parent = np.arange(n)
    while True:
        pu, pv = parent[u], parent[v]
        apart = pu != pv
        if not apart.any():
            return parent
        np.minimum.at(parent, np.maximum(pu[apart], pv[apart]), np.minimum(pu[apart], pv[apart]))
        while not np.array_equal(jumped := parent[parent], parent):
            parent = jumped


def _id_hashes(ids: list[str]) -> np.ndarray:
    return np.fromiter((xxhash.xxh3_64_intdigest(i) for i in ids), dtype=np.uint64, count=len(ids))


@dataclass
class Clusters:
    members: np.ndarray  # sorted ordinals of documents in a cluster of two or more
    keeper: np.ndarray  # for each member, the ordinal of its cluster's kept document
    size: np.ndarray  # for each member, its cluster's size
    text_hashes: np.ndarray  # per ordinal
    stats: dict

    @classmethod
    def from_links(cls, u, v, lengths, id_hashes, text_hashes) -> "Clusters":
        nodes = np.unique(np.concatenate([u, v]))
        if len(nodes) == 0:
            empty = np.zeros(0, np.int64)
            return cls(empty, empty, empty, text_hashes, {"links": 0, "clusters": 0, "documents_in_clusters": 0})
        roots, label = np.unique(components(len(nodes), np.searchsorted(nodes, u), np.searchsorted(nodes, v)),
                                 return_inverse=True)
        count = len(roots)
        # Keep rule: longest text first, then smallest id hash; lexsort's last key sorts first.
        order = np.lexsort((id_hashes[nodes], -lengths[nodes], label))
        first = np.r_[True, label[order][1:] != label[order][:-1]]
        keeper_of_label = np.empty(count, np.int64)
        keeper_of_label[label[order][first]] = nodes[order][first]
        sizes = np.bincount(label, minlength=count)
        stats = {"links": int(len(u)), "clusters": int(count), "documents_in_clusters": int(len(nodes))}
        return cls(nodes, keeper_of_label[label], sizes[label], text_hashes, stats)

    def keepers(self) -> np.ndarray:
        return np.unique(self.keeper)

    def resolve(self, ordinals: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For a run of ordinals: (kept document's ordinal, or -1 when alone; cluster size;
        whether the text is an exact copy of the kept document's)."""
        keeper = np.full(len(ordinals), -1, np.int64)
        size = np.ones(len(ordinals), np.int64)
        if len(self.members):
            pos = np.minimum(np.searchsorted(self.members, ordinals), len(self.members) - 1)
            inside = self.members[pos] == ordinals
            keeper[inside], size[inside] = self.keeper[pos[inside]], self.size[pos[inside]]
        exact = (keeper >= 0) & (self.text_hashes[ordinals] == self.text_hashes[np.maximum(keeper, 0)])
        return keeper, size, exact
