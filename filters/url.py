"""The url stage: datatrove's URLFilter (FineWeb's block lists of adult and spam domains, URLs and
words) plus the user's own lists. It runs before extraction and reads only ``row["url"]``, so a
blocked page costs no extraction.

The decisions are made by datatrove's own ``URLFilter.filter``; ``tests/test_url.py`` checks them
against an unmodified URLFilter on real URLs. Two things are changed around it, both offline rules:

- datatrove's ``TLDExtract()`` fetches the public suffix list from the network on first use; here
  it reads tldextract's bundled snapshot and caches nothing on disk;
- datatrove extracts its 124 MB domain list from the package's tar.gz into the Hugging Face cache
  under $HOME, then holds it as a Python set. Here the lists are read from the package straight
  into memory, once per process on first use, and the 4.6 million domains are packed into sorted
  byte runs searched by bisection (exact). Measured in one process: datatrove's lists add 625 MB
  of RSS (744 MB at the peak of loading), these 190 MB (212 MB at the peak), loaded in about 2 s.
"""

from __future__ import annotations

import io
import logging
import os
import tarfile
import time
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from itertools import groupby, islice

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.filters.url_filter import URLFilter, parse_list
from datatrove.utils._import_utils import ASSETS_PATH
from tldextract import TLDExtract

from thresher.config import UrlConfig
from thresher.filters.base import FilterStage

log = logging.getLogger(__name__)

# datatrove 0.10.1 ships these in datatrove/assets; download_data names the same files.
_TARBALL = os.path.join(ASSETS_PATH, "url_filterblacklistsv0_3_0.tar.gz")
_WORD_FILES = {"banned_words": "banned_words.txt", "banned_subwords": "banned_subwords.txt",
               "soft_banned_words": "soft_banned_words.txt"}
# UrlConfig.list_files' names -> the UrlConfig fields, named as URLFilter's keyword arguments.
_LISTS = {"domains": "extra_domains", "urls": "extra_urls", "banned_words": "banned_words",
          "banned_subwords": "banned_subwords", "soft_banned_words": "soft_banned_words"}


class SortedRun:
    """Strings stored as one sorted UTF-8 blob plus the entries' offsets: the characters and 8 bytes
    each, where a Python set costs an object and a hash slot each. Membership is a binary search
    (UTF-8 byte order is code point order, so the blob sorts as the strings do)."""

    def __init__(self, strings: Iterable[str]):
        unique = [s for s, _ in groupby(sorted(strings))]
        self._size = len(unique)
        self._blob = "\n".join(unique).encode()
        newlines = np.flatnonzero(np.frombuffer(self._blob, np.uint8) == ord("\n"))
        if len(newlines) != max(self._size - 1, 0):
            raise ValueError("an entry contains a newline")
        starts = np.concatenate(([0], newlines + 1, [len(self._blob) + 1])).astype(np.int64)
        self._starts = array("q", starts.tobytes())

    def __len__(self) -> int:
        return self._size

    def _entry(self, i: int) -> bytes:
        return self._blob[self._starts[i] : self._starts[i + 1] - 1]

    def __contains__(self, item: str) -> bool:
        key = item.encode()
        if not self._size or key < self._entry(0) or key > self._entry(self._size - 1):
            return False
        i = bisect_left(range(self._size), key, key=self._entry)
        return self._entry(i) == key

    def __iter__(self):
        return (self._entry(i).decode() for i in range(self._size))

    @property
    def nbytes(self) -> int:
        return len(self._blob) + self._starts.itemsize * len(self._starts)


class StringSet:
    """An exact, read-only set of millions of strings in a fraction of a Python set's memory.

    The strings are packed in runs of ``run_size``, so that building it holds only one run's string
    objects at a time (the whole domain list as Python strings costs about 500 MB). A lookup
    searches only the runs whose range holds the key: one run for a sorted input, like datatrove's
    list; an unsorted input is as exact, only slower. Iterating may repeat a string held by two runs."""

    def __init__(self, strings: Iterable[str], run_size: int = 1 << 19):
        strings = iter(strings)
        self.runs = []
        while run := SortedRun(islice(strings, run_size)):  # an empty run ends it
            self.runs.append(run)

    def __contains__(self, item: str) -> bool:
        return any(item in run for run in self.runs)

    def __iter__(self):
        return (s for run in self.runs for s in run)

    @property
    def nbytes(self) -> int:
        return sum(run.nbytes for run in self.runs)


@dataclass(frozen=True)
class ShippedLists:
    domains: StringSet
    urls: frozenset[str]
    banned_words: frozenset[str]
    banned_subwords: frozenset[str]
    soft_banned_words: frozenset[str]


@cache
def shipped_lists() -> ShippedLists:
    """datatrove's integrated lists, parsed as its ``get_list`` parses them, read once per process
    from the installed package; nothing is written anywhere."""
    started = time.perf_counter()
    with tarfile.open(_TARBALL, "r:gz") as tar:

        def lines(name: str) -> io.TextIOWrapper:
            return io.TextIOWrapper(tar.extractfile(name), encoding="utf-8")

        # parse_list's own rule for domains, without the set it would build
        domains = StringSet(x.strip() for x in lines("domains") if x[0] != "#")
        urls = parse_list(lines("urls"), do_normalize=False)
    words = {}
    for name, file in _WORD_FILES.items():
        with open(os.path.join(ASSETS_PATH, file), encoding="utf-8") as f:
            words[name] = frozenset(parse_list(f))
    lists = ShippedLists(domains, frozenset(urls), **words)
    log.info("url block lists: domains packed in %.0f MB, %d urls, loaded in %.1f s",
             domains.nbytes / 2**20, len(urls), time.perf_counter() - started)
    return lists


class _AnyOf:
    """Membership in any of several sets, so the shipped domains are never copied into a union."""

    def __init__(self, *sets):
        self.sets = sets

    def __contains__(self, item) -> bool:
        return any(item in s for s in self.sets)


class OfflineURLFilter(URLFilter):
    """datatrove's URLFilter with the public suffix list from tldextract's bundled snapshot and the
    shipped lists from ``shipped_lists()``. Its ``filter`` is datatrove's, unchanged."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.tldextractor = TLDExtract(cache_dir=None, suffix_list_urls=())

    def download_data(self):
        # datatrove's download_data, with the lists taken from memory instead of $HOME
        if self._downloaded or not self.use_integrated_lists:
            return
        shipped = shipped_lists()
        self.block_listed_domains = _AnyOf(shipped.domains, self.block_listed_domains)
        self.block_listed_url = shipped.urls | self.block_listed_url
        self.banned_words = shipped.banned_words | self.banned_words
        self.banned_subwords = shipped.banned_subwords | self.banned_subwords
        self.soft_banned_words = shipped.soft_banned_words | self.soft_banned_words
        for word in self.banned_subwords:
            self.banned_subwords_automaton.add_word(word, len(self.banned_subwords_automaton))
        self.banned_subwords_automaton.make_automaton()
        self._downloaded = True


@cache
def _offline_filter(use_integrated_lists: bool, soft_word_threshold: int, lists: tuple) -> OfflineURLFilter:
    return OfflineURLFilter(use_integrated_lists=use_integrated_lists, soft_word_threshold=soft_word_threshold,
                            **dict(lists))


def read_list_file(path: str) -> list[str]:
    """One entry per line; blank lines and lines starting with # are skipped."""
    with open(path, encoding="utf-8") as f:
        return [s for s in (line.strip() for line in f) if s and not s.startswith("#")]


class UrlFilter(FilterStage):
    stage = "url"

    def __init__(self, config: UrlConfig):
        super().__init__(config.mode)
        self.use_integrated_lists = config.use_integrated_lists
        self.soft_word_threshold = config.soft_word_threshold
        # List files are read here, on the driver, so the entries travel with the stage to every
        # worker. Blank entries are dropped: datatrove's parse_list fails on an empty string.
        lists = []
        for name, kwarg in _LISTS.items():
            from_files = [e for path in config.list_files.get(name, []) for e in read_list_file(path)]
            lists.append((kwarg, tuple(e for e in [*getattr(config, kwarg), *from_files] if e.strip())))
        self.lists = tuple(lists)

    def process(self, row: dict) -> str | None:
        url = row["url"]
        if not url:
            return None  # datatrove asserts on a missing url; such a document is not blocked by url rules
        verdict = _offline_filter(self.use_integrated_lists, self.soft_word_threshold, self.lists).filter(
            Document(text="", id=row["id"] or "", metadata={"url": url})
        )
        return None if verdict is True else f"url_{verdict[1]}"
