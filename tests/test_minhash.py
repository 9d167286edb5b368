"""The MinHash core of the dedup stage, with datasketch (signatures, LSH parameters and buckets) and
datatrove (text normalisation) as the oracles, on real text."""

import ctypes
import itertools
import mmap
import tracemalloc
from collections import defaultdict

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH
from datasketch.hashfunc import sha1_hash32 as datasketch_sha1_hash32
from datatrove.utils.text import simplify_text

from conftest import TESTDATA
from thresher.filters.minhash import (MAX_HASH, NO_KEY, MinHasher, band_keys, jaccard, lsh_params, normalize,
                                      sha1_hash32, shingles)

LICENCES = TESTDATA / "dedup" / "cs336" / "documents_with_fuzzy_duplicates"


@pytest.fixture(scope="module")
def texts(corpus):
    return [doc["text"] for doc in corpus]


@pytest.fixture(scope="module")
def signatures(texts):
    return MinHasher().signatures(texts)


def datasketch_signature(shingle_list, num_perm=112, seed=1):
    m = MinHash(num_perm=num_perm, seed=seed)
    m.update_batch(shingle_list)
    return m.hashvalues


def test_normalisation_is_datatrove_simplify_text(texts):
    for text in texts:
        assert normalize(text) == " ".join(simplify_text(text).split())


@pytest.mark.parametrize("n", [5, 2])
def test_shingles_are_word_ngrams_of_the_simplified_text(texts, n):
    for text in texts[::3]:
        words = simplify_text(text).split()
        grams = [words[i : i + n] for i in range(len(words) - n + 1)] or [words]
        assert shingles(text, n) == [" ".join(g).encode("utf-8") for g in grams]


@pytest.mark.parametrize("num_perm,seed,ngram,docs", [(112, 1, 5, None), (128, 42, 5, 150), (64, 7, 3, 150)])
def test_signatures_are_datasketchs_bit_for_bit(texts, num_perm, seed, ngram, docs):
    texts = texts[:docs]
    ours = MinHasher(num_perm=num_perm, seed=seed, ngram=ngram).signatures(texts)
    assert ours.shape == (len(texts), num_perm) and ours.dtype == np.uint32
    for text, signature in zip(texts, ours):
        assert np.array_equal(signature, datasketch_signature(shingles(text, ngram), num_perm, seed))


def test_input_hashes_are_datasketchs_sha1_hash32(texts):
    """Every shingle of the corpus (Chinese and Cyrillic ones run to 7 SHA-1 blocks), then messages
    of every length from 0 to 299 bytes (the padding's boundaries: 55/56, where the bit length no
    longer fits in the block, 63/64, 119/120, ...) and of 2 KB, with bytes of every value, all in one
    call so that lanes mix short and long messages."""
    corpus = [s for t in texts for s in shingles(t)]
    assert max(map(len, corpus)) > 300 and sum(not s.isascii() for s in corpus) > 10_000
    every_byte = bytes(range(256)) * 8
    edges = [every_byte[n : 2 * n] for n in range(300)] + ["é€😀".encode() * k for k in range(40)] + [every_byte]
    messages = corpus + edges + corpus[:500]
    ends = np.cumsum([len(m) for m in messages])
    starts = ends - [len(m) for m in messages]
    ours = sha1_hash32(b"".join(messages), starts, ends)
    assert ours.dtype == np.uint32
    assert ours.tolist() == [datasketch_sha1_hash32(m) for m in messages]
    assert sha1_hash32(b"", np.zeros(0, np.int64), np.zeros(0, np.int64)).size == 0
    for bad in ([0, 3], [5]), ([-1], [2]), ([3], [2]):  # past the end, before the start, reversed
        with pytest.raises(ValueError):
            sha1_hash32(b"abcd", *map(np.array, bad))


def test_no_byte_past_a_message_is_read():
    """The compiled SHA-1 reads whole 64-byte blocks through masked loads: messages ending where an
    unreadable page begins would crash it if one byte past their end were read."""
    page = mmap.PAGESIZE
    memory = mmap.mmap(-1, 2 * page)
    assert ctypes.CDLL(None).mprotect(ctypes.c_void_p(ctypes.addressof(ctypes.c_char.from_buffer(memory)) + page),
                                      ctypes.c_size_t(page), 0) == 0
    memory[:page] = bytes(range(256)) * (page // 256)
    first = memoryview(memory)[:page]
    lengths = np.array([*range(200), 1000, page])
    ours = sha1_hash32(first, page - lengths, np.full(lengths.size, page))
    assert ours.tolist() == [datasketch_sha1_hash32(first[page - n :]) for n in lengths]


def test_batch_composition_changes_nothing(texts, signatures):
    """A text's signature is the same alone, in any batch, next to an empty text."""
    batch = texts[:60] + [""] + texts[60:120]
    mixed = MinHasher().signatures(batch)
    assert np.array_equal(mixed[:60], signatures[:60])
    assert np.array_equal(mixed[61:], signatures[60:120])
    assert (mixed[60] == MAX_HASH).all()
    for i in (0, 7, 300):
        assert np.array_equal(MinHasher().signatures([texts[i]])[0], signatures[i])


def test_signing_given_shingles_equals_signing_texts(texts, signatures):
    shingle_lists = [shingles(t) for t in texts[:200]]
    assert np.array_equal(MinHasher().sign(shingle_lists), signatures[:200])


def test_short_and_empty_texts(corpus):
    one_word = next(d["text"] for d in corpus if len(d["text"].split()) == 1)  # readability's "Test" page
    short = next(d["text"] for d in corpus if len(d["text"].split()) == 2)  # a Chinese 404 page, 4 words
    assert shingles(one_word) == [normalize(one_word).encode()] == [b"test"]
    assert shingles(short) == [normalize(short).encode()] and shingles(short)[0].count(b" ") == 3
    empty = ["", one_word.replace("Test", "")]  # nothing, and the page's own whitespace
    assert all(shingles(t) == [] for t in empty)

    batch = [one_word, empty[0], short, empty[1]]
    sigs = MinHasher().signatures(batch)
    assert np.array_equal(sigs[0], datasketch_signature(shingles(one_word)))
    assert np.array_equal(sigs[2], datasketch_signature(shingles(short)))
    assert np.array_equal(sigs[1], MinHash(num_perm=112).hashvalues)  # datasketch's empty MinHash
    assert (sigs[[1, 3]] == MAX_HASH).all()
    assert (MinHasher().sign([[], []]) == MAX_HASH).all() and MinHasher().sign([]).shape == (0, 112)
    keys = band_keys(sigs, 14, 8)
    assert (keys[[1, 3]] == NO_KEY).all() and (keys[[0, 2]] != NO_KEY).all()
    assert jaccard(sigs[1], sigs[3]) == 0.0 and jaccard(sigs[0], sigs[1]) == 0.0


@pytest.mark.parametrize("num_perm", [112, 128])
def test_lsh_params_are_datasketchs(num_perm):
    for threshold in (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9):
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        assert lsh_params(threshold, num_perm) == (lsh.b, lsh.r)
    assert lsh_params(0.8, 112) == (9, 12)  # not FineWeb's 14 x 8, which is given explicitly
    for threshold, num_perm in ((1.0, 112), (0.95, 8)):  # one band: refused by both
        with pytest.raises(ValueError):
            MinHashLSH(threshold=threshold, num_perm=num_perm)
        with pytest.raises(ValueError):
            lsh_params(threshold, num_perm)


def candidate_pairs(keys: np.ndarray) -> set[tuple[int, int]]:
    buckets = defaultdict(list)
    for doc, key in zip(np.repeat(np.arange(len(keys)), keys.shape[1]), keys.ravel()):
        buckets[key].append(doc)
    return {pair for docs in buckets.values() for pair in itertools.combinations(docs, 2)}


@pytest.mark.parametrize("bands,rows", [(14, 8), lsh_params(0.8, 112)])
def test_shared_band_keys_are_datasketch_lsh_candidates(signatures, bands, rows):
    keys = band_keys(signatures, bands, rows)
    assert keys.shape == (len(signatures), bands) and keys.dtype == np.uint64
    lsh = MinHashLSH(num_perm=112, params=(bands, rows))
    minhashes = [MinHash(hashvalues=s, scheme="affine32") for s in signatures]
    for doc, m in enumerate(minhashes):
        lsh.insert(doc, m)
    theirs = {(min(doc, c), max(doc, c)) for doc, m in enumerate(minhashes) for c in lsh.query(m) if c != doc}
    assert len(theirs) >= 30  # the corpus has near-duplicates (dolma's one-site pages, mirrored pages)
    assert candidate_pairs(keys) == theirs


def test_jaccard_is_datasketchs(signatures):
    pairs = sorted(candidate_pairs(band_keys(signatures, 14, 8))) + [(i, i + 1) for i in range(0, 600, 7)]
    a, b = signatures[[i for i, _ in pairs]], signatures[[j for _, j in pairs]]
    expected = [MinHash(hashvalues=x, scheme="affine32").jaccard(MinHash(hashvalues=y, scheme="affine32"))
                for x, y in zip(a, b)]
    assert len({round(e, 2) for e in expected}) > 10
    assert np.array_equal(jaccard(a, b), expected)


def test_near_duplicate_licences_share_a_band():
    """cs336's fixture: the Rails and React MIT licences differ by their copyright lines (exact
    Jaccard of their shingle sets 0.919); the PyTorch licence shares 0.007 with either."""
    names = ["rails_mit_license", "react_mit_license", "pytorch_license"]
    texts = [(LICENCES / f"{name}.txt").read_text(encoding="utf-8") for name in names]
    sets = [set(shingles(t)) for t in texts]
    exact = {(i, j): len(sets[i] & sets[j]) / len(sets[i] | sets[j]) for i, j in itertools.combinations(range(3), 2)}
    assert exact[0, 1] > 0.9 and exact[0, 2] < 0.01 and exact[1, 2] < 0.01

    sigs = MinHasher().signatures(texts)
    assert abs(jaccard(sigs[0], sigs[1]) - exact[0, 1]) < 0.05
    for bands, rows in ((14, 8), lsh_params(0.8, 112)):
        keys = band_keys(sigs, bands, rows)
        assert (keys[0] == keys[1]).any()
        assert not (keys[2] == keys[0]).any() and not (keys[2] == keys[1]).any()


def test_five_megabyte_text_is_signed_in_bounded_memory(texts, signatures):
    """The corpus joined into one 5 MB text (~770,000 shingles): its whole (shingles x 112) matrix
    would take 340 MB (datasketch's update_batch peaks at ~720 MB on it). Past the shingles' offsets,
    the MinHash part takes 4 bytes a shingle (its compiled loops allocate ~50 KB of their own, which
    tracemalloc does not see); the ~80 MB peak is the normalisation's copies of the text (4 bytes a
    character: it has characters outside the BMP) and its list of words."""
    text = "\n\n".join(texts)
    text = (text * (5_000_000 // len(text.encode()) + 1)).encode()[:5_000_000].decode("utf-8", "ignore")
    hasher = MinHasher()
    tracemalloc.start()
    try:
        signature = hasher.signatures([text])[0]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 120e6
    # The shingles of every text of 5 words or more are among the big text's: its minima are lower.
    whole = [i for i, t in enumerate(texts) if len(normalize(t).split()) >= 5]
    assert (signature <= signatures[whole].min(axis=0)).all()
