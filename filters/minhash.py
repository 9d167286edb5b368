"""MinHash signatures and LSH band keys for the dedup stage, computed over whole batches.

Signatures are datasketch's (2.x, default ``affine32`` scheme), bit for bit: for the same shingles,
``MinHasher(num_perm, seed).sign([shingles])[0]`` equals
``datasketch.MinHash(num_perm, seed).update_batch(shingles).hashvalues``. That is, per shingle
``h = fmix32(first 4 bytes of SHA-1, little-endian)``, per permutation ``a * h + b mod 2**32``
with ``(a, b)`` drawn from ``np.random.RandomState(seed)`` as datasketch draws them, and the
minimum over the document's shingles. datasketch does that document by document; here one batch
is one Python loop of SHA-1 calls (the only per-shingle Python work, unavoidable for bit-identity)
and a few numpy passes over a (permutations x shingles) block of bounded size.

Shingles (``shingles()``) are FineWeb's (datatrove ``MinhashDedupSignature``): the text simplified
by datatrove's ``simplify_text`` with its default ``TextNormConfig`` (lowercase, every number
written ``0``, punctuation to spaces, whitespace collapsed, diacritics removed after NFD), then
word 5-grams joined by one space, UTF-8. Two deliberate differences from datatrove:

- words are split on whitespace, not by spaCy's English tokenizer: after simplification the two
  differ only on spaCy's exceptions and affixes ("id" -> "i d", "0mm" -> "0 mm", "£0" -> "£ 0";
  at least one token differs in 329 of the 685 texts of tests/data/filter_corpus.jsonl.gz), and
  spaCy's tokenizer alone takes ~10x as long as this whole signature;
- a text of 1 to n-1 words is one shingle of all its words, where datatrove gives it no shingle
  (and no signature: it never meets another text). text-dedup, the datasketch-based pipeline of
  BigCode, does the same as here for texts of ``min_length`` to n-1 words, and gives none below
  ``min_length`` (default 5, so with 5-grams none at all). Here identical short texts (error pages,
  stubs that got past the quality filters) do meet.

A text with no word at all after simplification (empty, only punctuation or spaces) has no shingle;
its signature is all ``MAX_HASH`` (datasketch's empty MinHash) and ``band_keys`` gives it
``NO_KEY`` in every band, so empty texts are never candidates, not even of each other.
"""

from __future__ import annotations

import hashlib
import re
import sys
import unicodedata
from collections.abc import Callable
from functools import cache
from itertools import chain, cycle

import numpy as np
import xxhash

from datatrove.utils.text import NUMBERS_PATTERN, PUNCTUATION_TRANS

MAX_HASH = np.uint32(0xFFFFFFFF)
NO_KEY = np.uint64(0)

_PUNCTUATION = re.compile("[" + "".join(re.escape(chr(c)) for c in sorted(PUNCTUATION_TRANS)) + "]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


@cache
def _nonspacing_marks() -> tuple[re.Pattern, dict]:
    """Unicode category Mn, as this Python's unicodedata (which datatrove asks) sees it: a regex
    for the Basic Multilingual Plane, where ``re`` tests a class by bitmap, and a translate table
    for the astral planes, which a regex would test range by range (~60x slower)."""
    marks = [c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Mn"]
    bmp = re.compile("[" + "".join(re.escape(chr(c)) for c in marks if c < 0x10000) + "]+")
    return bmp, {c: None for c in marks if c >= 0x10000}


def normalize(text: str) -> str:
    """``" ".join(simplify_text(text).split())`` with datatrove's default TextNormConfig, in the
    same order of steps, ~2x faster (the equality is tested on the filter corpus)."""
    text = _PUNCTUATION.sub(" ", NUMBERS_PATTERN.sub("0", text.lower()))
    if not text.isascii():
        bmp_marks, astral_marks = _nonspacing_marks()
        text = bmp_marks.sub("", unicodedata.normalize("NFD", text))
        if _ASTRAL.search(text):
            text = text.translate(astral_marks)
    return " ".join(text.split())


class ShingleSpans:
    """The shingles of a batch of texts as byte ranges of one buffer: the normalised texts joined
    by newlines (which normalisation never leaves inside a text, and which no UTF-8 multi-byte
    sequence contains), so that word and shingle boundaries are found by numpy, not per word.

    A shingle is a run of consecutive words of one text joined by single spaces, hence a slice of
    the buffer: ``buffer[starts[i]:ends[i]]``. ``counts[d]`` is the number of shingles of text d;
    they are stored text after text.
    """

    def __init__(self, texts: list[str], n: int):
        if n < 1:
            raise ValueError(f"n-gram size must be >= 1, got {n}")
        self.buffer = "\n".join(map(normalize, texts)).encode("utf-8")
        raw = np.frombuffer(self.buffer, dtype=np.uint8)
        breaks = np.flatnonzero((raw == 0x20) | (raw == 0x0A))
        word_starts = np.concatenate(([0], breaks + 1))
        word_ends = np.concatenate((breaks, [raw.size]))
        nonempty = word_ends > word_starts  # an empty text leaves two adjacent newlines
        word_starts, word_ends = word_starts[nonempty], word_ends[nonempty]
        word_text = np.searchsorted(np.flatnonzero(raw == 0x0A), word_starts)
        words_per_text = np.bincount(word_text, minlength=len(texts))
        first_word = np.cumsum(words_per_text) - words_per_text
        position = np.arange(word_starts.size) - first_word[word_text]
        words = words_per_text[word_text]
        width = np.minimum(words, n)  # a text shorter than n words is one shingle of all of them
        first = np.flatnonzero(position <= words - width)
        self.starts = word_starts[first]
        self.ends = word_ends[first + width[first] - 1]
        self.counts = np.bincount(word_text[first], minlength=len(texts))

    def __iter__(self):
        buffer = self.buffer
        return (buffer[s:e] for s, e in zip(self.starts.tolist(), self.ends.tolist()))

    def hasher(self) -> Callable[[int, int], np.ndarray]:
        """``hash32(lo, hi)``: the input hashes of shingles lo..hi, slicing the buffer inline (going
        through ``__iter__`` is ~10% slower). Offsets become Python ints a block at a time: for
        the whole of a 5 MB text they would take ~60 MB."""
        buffer, starts, ends, sha1 = self.buffer, self.starts, self.ends, hashlib.sha1

        def hash32(lo: int, hi: int) -> np.ndarray:
            spans = zip(starts[lo:hi].tolist(), ends[lo:hi].tolist())
            return _hash32(b"".join([sha1(buffer[s:e]).digest() for s, e in spans]))

        return hash32


def shingles(text: str, n: int = 5) -> list[bytes]:
    """The shingles of one text, as ``MinHasher.signatures`` sees them (see the module doc)."""
    return list(ShingleSpans([text], n))


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, datasketch's pre-mix of every input hash (uint32 wraps)."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _hash32(digests: bytes) -> np.ndarray:
    """datasketch's ``sha1_hash32`` (the digest's first 4 bytes, little-endian) of each of the
    joined SHA-1 digests: every fifth uint32, cheaper than slicing and unpacking each digest."""
    return np.frombuffer(digests, dtype="<u4")[::5]


class MinHasher:
    """datasketch-compatible MinHash signatures of whole batches (module doc).

    ``max_cells`` bounds the (permutations x shingles) work block, hence memory: a batch, or one
    huge text, is taken ``max_cells // num_perm`` shingles at a time (8 MiB of uint32 by default,
    which also keeps the block in cache: larger blocks are slower).
    """

    def __init__(self, num_perm: int = 112, seed: int = 1, ngram: int = 5, max_cells: int = 1 << 21):
        if num_perm < 1:
            raise ValueError(f"num_perm must be >= 1, got {num_perm}")
        self.num_perm = num_perm
        self.seed = seed
        self.ngram = ngram
        self.chunk = max(1, max_cells // num_perm)
        # datasketch 2.x MinHash._init_permutations for "affine32": odd a, any b, uint32.
        gen = np.random.RandomState(seed)
        a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
        b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
        self.a = a[:, None]
        self.b = b[:, None]

    def signatures(self, texts: list[str]) -> np.ndarray:
        """uint32 array (len(texts), num_perm): the MinHash of each text's shingles."""
        spans = ShingleSpans(texts, self.ngram)
        return self._sign(spans.hasher(), spans.counts)

    def sign(self, shingle_lists: list[list[bytes]]) -> np.ndarray:
        """Signatures of given shingle sets, for shingles made elsewhere."""
        counts = np.fromiter(map(len, shingle_lists), dtype=np.int64, count=len(shingle_lists))
        flat, sha1 = list(chain.from_iterable(shingle_lists)), hashlib.sha1
        return self._sign(lambda lo, hi: _hash32(b"".join([sha1(s).digest() for s in flat[lo:hi]])), counts)

    def _sign(self, hash32: Callable[[int, int], np.ndarray], counts: np.ndarray) -> np.ndarray:
        """``hash32(lo, hi)`` gives the input hashes of shingles lo..hi, ``counts`` the number of
        shingles of each document, documents in order."""
        signatures = np.full((counts.size, self.num_perm), MAX_HASH, dtype=np.uint32)
        offsets = np.concatenate(([0], np.cumsum(counts)))
        total = int(offsets[-1])
        block = np.empty((self.num_perm, min(self.chunk, total)), dtype=np.uint32)
        for lo in range(0, total, self.chunk):
            hi = min(lo + self.chunk, total)
            hashes = _fmix32(hash32(lo, hi))
            work = block[:, : hi - lo]
            np.multiply(self.a, hashes, out=work)
            np.add(work, self.b, out=work)
            # Each text with shingles in [lo, hi) is one segment; a text may span blocks.
            starts = np.unique(np.clip(offsets, lo, hi))[:-1]
            docs = np.searchsorted(offsets, starts, side="right") - 1
            minima = np.minimum.reduceat(work, starts - lo, axis=1).T
            signatures[docs] = np.minimum(signatures[docs], minima)
        return signatures


@cache
def lsh_params(threshold: float, num_perm: int, weights: tuple[float, float] = (0.5, 0.5)) -> tuple[int, int]:
    """(bands, rows) for a Jaccard threshold, exactly as ``datasketch.MinHashLSH(threshold, num_perm,
    weights)`` picks them: the pair minimising the weighted areas of false positives below the
    threshold and false negatives above it (datasketch's own ``_optimal_param``, called here)."""
    from datasketch.lsh import _optimal_param

    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    bands, rows = _optimal_param(threshold, num_perm, *weights)
    if bands < 2:  # MinHashLSH refuses it too: with one band, LSH is exact signature matching
        raise ValueError(f"threshold {threshold} with {num_perm} permutations gives {bands} band")
    return bands, rows


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """uint64 array (n_docs, bands): a 64-bit key per band, equal for two documents when, and (but
    for 64-bit collisions) only when, datasketch's ``MinHashLSH(params=(bands, rows))`` puts them in
    the same bucket of that band. Its bucket key is the band's hash values as big-endian bytes; the
    key here is their XXH3-64 seeded by the band's index, so that a groupby on the key alone does
    not join different bands.

    Two different band contents get one key with probability 2**-64: over 10**9 documents, ~0.4
    spurious pairs in all when grouping by (band, key), ~5 when grouping by the key alone. A
    document without shingles gets ``NO_KEY`` (0, never a real key) in every band: drop it before
    grouping.
    """
    if bands * rows > signatures.shape[1]:
        raise ValueError(f"{bands} bands x {rows} rows exceed {signatures.shape[1]} permutations")
    empty = (signatures == MAX_HASH).all(axis=1)
    raw = signatures[:, : bands * rows].astype(">u4").tobytes()
    width = rows * 4
    digest = xxhash.xxh3_64_intdigest
    keys = np.fromiter(
        (digest(raw[o : o + width], seed) for o, seed in zip(range(0, len(raw), width), cycle(range(bands)))),
        dtype=np.uint64,
        count=signatures.shape[0] * bands,
    ).reshape(-1, bands)
    keys[keys == NO_KEY] = 1
    keys[empty] = NO_KEY
    return keys


def jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """Estimated Jaccard similarity of signatures (rows of) ``a`` and ``b``: the share of equal hash
    values, as datasketch's ``MinHash.jaccard``; 0.0 where either has no shingle."""
    equal = np.mean(a == b, axis=-1)
    empty = (a == MAX_HASH).all(axis=-1) | (b == MAX_HASH).all(axis=-1)
    return np.where(empty, 0.0, equal)[()]
