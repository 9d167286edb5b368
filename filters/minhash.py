"""MinHash signatures and LSH band keys for the dedup stage, computed over whole batches.

Signatures are datasketch's (2.x, default ``affine32`` scheme), bit for bit: for the same shingles,
``MinHasher(num_perm, seed).sign([shingles])[0]`` equals
``datasketch.MinHash(num_perm, seed).update_batch(shingles).hashvalues``. That is, per shingle
``h = fmix32(first 4 bytes of SHA-1, little-endian)``, per permutation ``a * h + b mod 2**32``
with ``(a, b)`` drawn from ``np.random.RandomState(seed)`` as datasketch draws them, and the
minimum over the document's shingles. datasketch does that document by document, with a
``hashlib`` call per shingle; here a batch's shingles are slices of one buffer and two compiled
(numba) loops do the rest, without per-shingle Python work: SHA-1 of 64 shingles side by side in
SIMD lanes (``sha1_hash32``), then fmix, permutations and minima. Their machine code is cached on
disk (``cache=True``: next to this file, or in numba's user cache where that is read-only), so that
a fresh worker process loads it in ~0.2 s instead of compiling for ~2.5 s.

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

import re
import sys
import unicodedata
from functools import cache
from itertools import chain, cycle

import numpy as np
import xxhash
from numba import njit

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


def shingles(text: str, n: int = 5) -> list[bytes]:
    """The shingles of one text, as ``MinHasher.signatures`` sees them (see the module doc)."""
    return list(ShingleSpans([text], n))


def sha1_hash32(buffer: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """uint32 array: ``datasketch.hashfunc.sha1_hash32(buffer[s:e])`` (the first 4 bytes of the
    SHA-1 digest, little-endian) of each slice ``(s, e)`` of ``zip(starts, ends)``. ``buffer``:
    bytes or any other contiguous buffer."""
    starts, ends = np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)
    if starts.shape != ends.shape or starts.ndim != 1:
        raise ValueError(f"starts and ends must be 1-D and of one length, got {starts.shape} and {ends.shape}")
    if starts.size and (starts.min() < 0 or ends.max() > len(buffer) or (ends < starts).any()):
        raise ValueError("a slice is outside the buffer")  # the compiled loop does not check its reads
    out = np.empty(starts.size, dtype=np.uint32)
    _sha1_32(np.frombuffer(buffer, dtype=np.uint8), starts, ends, out)
    return out


# SHA-1 (FIPS 180-4) of many messages at once, lane by lane: every step of the compression is a
# loop over _LANES messages, which LLVM turns into SIMD instructions. 64 lanes are several vector
# registers a step, which hides the latency of the step-to-step dependency: on a Zen 5 core, 16
# lanes ran at a third of the speed, 128 no faster than 64, and code compiled for AVX2 or plain
# SSE2 (NUMBA_CPU_NAME=haswell, x86-64) about as fast as for AVX-512. A lane whose message ends
# takes the next one, so messages of different lengths waste no work.
_LANES = 64
_SHA1_INIT = np.array([0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0], dtype=np.uint32)
_U = np.uint64  # numba skips the negative-index check on unsigned indices, which blocks vectorising


@njit(inline="always")
def _rotl(x, n):
    return np.uint32((x << np.uint32(n)) | (x >> np.uint32(32 - n)))


@njit(inline="always")
def _bswap(x):
    return np.uint32(((x & np.uint32(0xFF)) << np.uint32(24)) | ((x & np.uint32(0xFF00)) << np.uint32(8))
                     | ((x >> np.uint32(8)) & np.uint32(0xFF00)) | (x >> np.uint32(24)))


@njit(inline="always")
def _load_blocks(buffer, starts, ends, message, block, blocks, scratch, scratch32, words):
    """Into ``words``, as big-endian words, block ``block[j]`` of each busy lane j's padded message
    (the message, 0x80, zeros, its bit length as a big-endian uint64 ending the last block). A
    fixed 64-byte copy with a mask vectorises (as masked loads: no byte past the message is read);
    a copy of the message's own length would not."""
    for j in range(_LANES):
        m = message[j]
        if m < 0:
            continue
        length = ends[m] - starts[m]
        rest = length - block[j] * 64
        src, dst = _U(starts[m] + block[j] * 64), _U(j * 64)
        for i in range(64):
            scratch[dst + _U(i)] = buffer[src + _U(i)] if i < rest else np.uint8(0)
        if 0 <= rest < 64:
            scratch[dst + _U(rest)] = np.uint8(0x80)
        if block[j] == blocks[j] - 1:
            bits = _U(length) * _U(8)
            scratch32[_U(j * 16 + 14)] = _bswap(np.uint32(bits >> _U(32)))
            scratch32[_U(j * 16 + 15)] = _bswap(np.uint32(bits & _U(0xFFFFFFFF)))
        for w in range(16):
            words[_U(w * _LANES + j)] = _bswap(scratch32[_U(j * 16 + w)])


@njit(inline="always")
def _rounds(x, words, first, k, f):
    """Rounds first..first+19 (logical function f: 0 choose, 1 parity, 2 majority). x holds the
    successive values of the working variable a: round t reads x[t..t+4] (b, c, d, e are earlier
    a's, c, d and e rotated) and writes x[t+5], so that a round moves no data."""
    L = _LANES
    for t in range(first, first + 20):
        for j in range(L):
            b = x[(t + 3) * L + j]
            c = _rotl(x[(t + 2) * L + j], 30)
            d = _rotl(x[(t + 1) * L + j], 30)
            if f == 0:
                mix = d ^ (b & (c ^ d))
            elif f == 1:
                mix = b ^ c ^ d
            else:
                mix = (b & c) | (d & (b | c))
            x[(t + 5) * L + j] = np.uint32(_rotl(x[(t + 4) * L + j], 5) + mix + _rotl(x[t * L + j], 30)
                                           + np.uint32(k) + words[t * L + j])


@njit(inline="always")
def _compress(state, words, x):
    """One SHA-1 block per lane: ``words`` holds the lanes' 16 message words, ``state`` their
    (a, b, c, d, e), each as a row of _LANES."""
    L = _LANES
    for t in range(16, 80):
        for j in range(L):
            words[t * L + j] = _rotl(words[(t - 3) * L + j] ^ words[(t - 8) * L + j]
                                     ^ words[(t - 14) * L + j] ^ words[(t - 16) * L + j], 1)
    for j in range(L):
        x[4 * L + j] = state[j]
        x[3 * L + j] = state[L + j]
        x[2 * L + j] = _rotl(state[2 * L + j], 2)
        x[1 * L + j] = _rotl(state[3 * L + j], 2)
        x[j] = _rotl(state[4 * L + j], 2)
    _rounds(x, words, 0, 0x5A827999, 0)
    _rounds(x, words, 20, 0x6ED9EBA1, 1)
    _rounds(x, words, 40, 0x8F1BBCDC, 2)
    _rounds(x, words, 60, 0xCA62C1D6, 1)
    for j in range(L):
        state[j] = np.uint32(state[j] + x[84 * L + j])
        state[L + j] = np.uint32(state[L + j] + x[83 * L + j])
        state[2 * L + j] = np.uint32(state[2 * L + j] + _rotl(x[82 * L + j], 30))
        state[3 * L + j] = np.uint32(state[3 * L + j] + _rotl(x[81 * L + j], 30))
        state[4 * L + j] = np.uint32(state[4 * L + j] + _rotl(x[80 * L + j], 30))


@njit(cache=True)
def _sha1_32(buffer, starts, ends, out):
    """out[i] = sha1_hash32 of message i, ``buffer[starts[i]:ends[i]]``."""
    L, n = _LANES, starts.size
    words = np.empty(80 * L, dtype=np.uint32)
    x = np.empty(85 * L, dtype=np.uint32)
    state = np.empty(5 * L, dtype=np.uint32)
    scratch = np.empty(64 * L, dtype=np.uint8)
    scratch32 = scratch.view(np.uint32)
    message = np.full(L, -1, dtype=np.int64)  # -1: the lane is idle, no message left
    block = np.zeros(L, dtype=np.int64)
    blocks = np.zeros(L, dtype=np.int64)
    following, busy = 0, 0
    for j in range(L):
        for i in range(5):
            state[i * L + j] = _SHA1_INIT[i]
        if following < n:
            message[j], blocks[j] = following, (ends[following] - starts[following] + 8) // 64 + 1
            following += 1
            busy += 1
    while busy:
        _load_blocks(buffer, starts, ends, message, block, blocks, scratch, scratch32, words)
        _compress(state, words, x)
        for j in range(L):
            m = message[j]
            if m < 0:
                continue
            block[j] += 1
            if block[j] < blocks[j]:
                continue
            out[m] = _bswap(state[j])  # the digest's first 4 bytes are a, big-endian
            for i in range(5):
                state[i * L + j] = _SHA1_INIT[i]
            block[j] = 0
            if following < n:
                message[j], blocks[j] = following, (ends[following] - starts[following] + 8) // 64 + 1
                following += 1
            else:
                message[j] = -1
                busy -= 1


@njit(inline="always")
def _fmix32(h):
    """MurmurHash3's 32-bit finalizer, datasketch's pre-mix of every input hash."""
    h ^= h >> np.uint32(16)
    h = np.uint32(h * np.uint32(0x85EBCA6B))
    h ^= h >> np.uint32(13)
    h = np.uint32(h * np.uint32(0xC2B2AE35))
    return np.uint32(h ^ (h >> np.uint32(16)))


@njit(cache=True)
def _min_hash(hashes, counts, a, b, signatures):
    """signatures[d] = min over the input hashes h of document d of ``a * fmix32(h) + b mod 2**32``;
    the documents' hashes are consecutive, ``counts[d]`` of them."""
    i = 0
    for d in range(counts.size):
        row = signatures[d]
        for _ in range(counts[d]):
            h = _fmix32(hashes[i])
            i += 1
            for p in range(a.size):
                row[p] = min(row[p], np.uint32(a[p] * h + b[p]))


class MinHasher:
    """datasketch-compatible MinHash signatures of whole batches (module doc)."""

    def __init__(self, num_perm: int = 112, seed: int = 1, ngram: int = 5):
        if num_perm < 1:
            raise ValueError(f"num_perm must be >= 1, got {num_perm}")
        self.num_perm = num_perm
        self.seed = seed
        self.ngram = ngram
        # datasketch 2.x MinHash._init_permutations for "affine32": odd a, any b, uint32.
        gen = np.random.RandomState(seed)
        self.a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
        self.b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)

    def signatures(self, texts: list[str]) -> np.ndarray:
        """uint32 array (len(texts), num_perm): the MinHash of each text's shingles."""
        spans = ShingleSpans(texts, self.ngram)
        return self._sign(sha1_hash32(spans.buffer, spans.starts, spans.ends), spans.counts)

    def sign(self, shingle_lists: list[list[bytes]]) -> np.ndarray:
        """Signatures of given shingle sets, for shingles made elsewhere."""
        counts = np.fromiter(map(len, shingle_lists), dtype=np.int64, count=len(shingle_lists))
        flat = chain.from_iterable
        lengths = np.fromiter(map(len, flat(shingle_lists)), dtype=np.int64, count=int(counts.sum()))
        ends = np.cumsum(lengths)
        return self._sign(sha1_hash32(b"".join(flat(shingle_lists)), ends - lengths, ends), counts)

    def _sign(self, hashes: np.ndarray, counts: np.ndarray) -> np.ndarray:
        signatures = np.full((counts.size, self.num_perm), MAX_HASH, dtype=np.uint32)
        _min_hash(hashes, counts, self.a, self.b, signatures)
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
