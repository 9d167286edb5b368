"""Gopher repetition's n-gram statistics as compiled loops over a document's characters.

datatrove keys an n-gram by its words joined into one string (with " " for the most frequent
n-gram, with nothing for the repeated ones) and counts the keys in Python dicts. Here each n-gram
is a slice ``chars[starts[i] : starts[i + n] - sep]`` of the joined text's code points, and equal
slices are found with a hash table whose hits are confirmed character by character, so the
results are those of comparing the strings. The machine code is cached on disk (``cache=True``),
as in minhash.py.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_BASE = np.uint64(0x100000001B3)


def code_points(text: str) -> np.ndarray:
    """The text's code points, one per character as ``len`` counts them."""
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def word_starts(words: list[str], sep: int) -> np.ndarray:
    """Where each word starts in ``(" " * sep).join(words)``, and one past the end plus ``sep``."""
    starts = np.zeros(len(words) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, words), dtype=np.int64, count=len(words)) + sep, out=starts[1:])
    return starts


@njit(cache=True)
def _prefix_hashes(chars):
    """Polynomial hashes of every prefix of chars, and the powers of the base."""
    prefix = np.zeros(len(chars) + 1, dtype=np.uint64)
    power = np.ones(len(chars) + 1, dtype=np.uint64)
    for k in range(len(chars)):
        prefix[k + 1] = prefix[k] * _BASE + np.uint64(chars[k])
        power[k + 1] = power[k] * _BASE
    return prefix, power


@njit(cache=True)
def _first_occurrences(chars, prefix, power, starts, n, sep):
    """For each n-gram, the index of the first n-gram with the same characters."""
    count = len(starts) - n
    size = 1
    while size < 2 * count:
        size *= 2
    mask = np.uint64(size - 1)
    table = np.full(size, -1, dtype=np.int64)  # open addressing: n-gram index or -1
    hashes = np.empty(count, dtype=np.uint64)
    first = np.empty(count, dtype=np.int64)
    for i in range(count):
        start, length = starts[i], starts[i + n] - sep - starts[i]
        h = prefix[start + length] - prefix[start] * power[length]
        hashes[i] = h
        slot = (h ^ (h >> np.uint64(31))) & mask
        while True:
            j = table[slot]
            if j < 0:
                table[slot] = i
                first[i] = i
                break
            if hashes[j] == h and starts[j + n] - sep - starts[j] == length:
                other = starts[j]
                same = True
                for k in range(length):
                    if chars[other + k] != chars[start + k]:
                        same = False
                        break
                if same:
                    first[i] = j
                    break
            slot = (slot + np.uint64(1)) & mask
    return first


@njit(cache=True)
def top_ngram_chars(chars, starts, ns):
    """For each n of ns, datatrove's find_top_duplicate over " "-joined n-grams: characters of the
    most frequent n-gram times its count; among equally frequent ones the first seen
    (Counter.most_common). 0 where there are fewer than n words."""
    prefix, power = _prefix_hashes(chars)
    out = np.zeros(len(ns), dtype=np.int64)
    for k in range(len(ns)):
        n = ns[k]
        if len(starts) - 1 >= n:
            counts = np.bincount(_first_occurrences(chars, prefix, power, starts, n, 1))
            top = np.argmax(counts)  # the first index of the largest count: the first n-gram seen
            out[k] = (starts[top + n] - 1 - starts[top]) * counts[top]
    return out


@njit(cache=True)
def repeated_ngram_chars(chars, starts, ns):
    """For each n of ns, datatrove's find_all_duplicate over n-grams joined with no separator:
    characters of the n-grams seen before, scanning left to right and skipping past each repeat."""
    prefix, power = _prefix_hashes(chars)
    out = np.zeros(len(ns), dtype=np.int64)
    for k in range(len(ns)):
        n = ns[k]
        if len(starts) - 1 < n:
            continue
        first = _first_occurrences(chars, prefix, power, starts, n, 0)
        seen = np.zeros(len(first), dtype=np.bool_)
        i = 0
        while i < len(first):
            if seen[first[i]]:
                out[k] += starts[i + n] - starts[i]
                i += n
            else:
                seen[first[i]] = True
                i += 1
    return out
