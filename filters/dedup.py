"""The dedup stage's per-batch half: each kept document's keys, computed in the stage actors
beside the other per-document stages. The corpus-wide half (grouping keys across the whole run,
clusters, the keep rule) is pipelines/dedup.py.

- ``dedup_hash``: 64-bit hash of the normalised text (case folded, whitespace collapsed), the key
  of exact duplicates;
- ``dedup_bands``: one 64-bit key per LSH band of the document's MinHash signature; two documents
  sharing any band key are near-duplicate candidates;
- ``dedup_signature``: with ``minhash.verify``, the signature itself, to check candidates.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from thresher.config import DedupConfig
from thresher.schema import KEPT


def normalised_hash(text: str) -> int:
    return xxhash.xxh3_64_intdigest(" ".join(text.casefold().split()))


class DedupKeys:
    def __init__(self, config: DedupConfig):
        self.config = config
        self._hasher = None

    @property
    def hasher(self):
        if self._hasher is None:
            from thresher.filters.minhash import MinHasher

            mh = self.config.minhash
            self._hasher = MinHasher(num_perm=mh.num_perm, seed=mh.seed, ngram=mh.ngram)
        return self._hasher

    def __getstate__(self):
        return {"config": self.config, "_hasher": None}  # permutations are rebuilt where used

    def __call__(self, batch: pa.Table) -> pa.Table:
        kept = np.flatnonzero(pc.equal(batch["status"], KEPT).to_numpy(zero_copy_only=False))
        if len(kept) == 0:
            return batch
        texts = batch["text"].take(kept).to_pylist()
        # The hash is computed even when exact dedup is off: it tells an exact copy from a near one.
        hashes = [None] * batch.num_rows
        for i, text in zip(kept, texts):
            hashes[i] = normalised_hash(text)
        bands = [None] * batch.num_rows
        signatures = [None] * batch.num_rows
        if self.config.minhash:
            from thresher.filters.minhash import band_keys

            b, r = self.config.minhash.lsh()
            sigs = self.hasher.signatures(texts)
            for i, row_keys in zip(kept, band_keys(sigs, b, r).tolist()):
                bands[i] = row_keys
            if self.config.minhash.verify:
                for i, sig in zip(kept, sigs.tolist()):
                    signatures[i] = sig
        for name, values, kind in (("dedup_hash", hashes, pa.uint64()), ("dedup_bands", bands, pa.list_(pa.uint64())),
                                   ("dedup_signature", signatures, pa.list_(pa.uint32()))):
            batch = batch.set_column(batch.schema.get_field_index(name), name, pa.array(values, kind))
        return batch
