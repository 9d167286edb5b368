"""The quality stage: FineWeb's heuristic filters (Gopher repetition, Gopher quality, C4 with
FineWeb's settings, FineWeb quality), in FineWeb's order, with every signal written.

datatrove's filters are the reference: ``tests/test_quality.py`` runs them as an oracle and checks
that this stage makes the same decision, for the same reason, and leaves the same text, on every
document of a real corpus. This module exists because those filters cannot be used as they are:

- they stop at the first failing rule, so they cannot write the signals a team needs to
  re-threshold a tagged run without re-running it;
- each tokenises the whole text again with spaCy (three times per document), and C4 calls spaCy
  once per line to count sentences: together they cost over half of extraction's time.

Here a document is tokenised once, line by line, which gives the Gopher filters' words, C4's
sentence counts and FineWeb's words in one pass. English word rules apply to every language, as in
datatrove with its default ``language="en"``.
"""

from __future__ import annotations

import re
from collections import Counter
from itertools import accumulate

from thresher.config import C4Config, FineWebQualityConfig, GopherQualityConfig, GopherRepetitionConfig, QualityConfig
from thresher.filters.base import FilterStage
from thresher.schema import QUALITY_SIGNALS

# The constants below are datatrove's (datatrove/utils/text.py, filters/*.py), imported where it
# exposes them so that a change there shows up here.
from datatrove.pipeline.filters.c4_filters import CITATION_REGEX, ELLIPSIS, END_PUNCTUATION, POLICY_SUBSTRINGS
from datatrove.pipeline.filters.gopher_quality_filter import STOP_WORDS
from datatrove.utils.text import PUNCTUATION_SET, TERMINAL_PUNCTUATION

_PARAGRAPHS = re.compile(r"\n{2,}")
_LINES = re.compile("\n+")
_STOP_CHARS = tuple(TERMINAL_PUNCTUATION)
_SIGNALS = [QUALITY_SIGNALS.field(i).name for i in range(QUALITY_SIGNALS.num_fields)]


class EnglishTokenizer:
    """datatrove's SpaCyTokenizer("en"): spaCy's blank English tokenizer (shipped inside spaCy)
    and its sentencizer rule.

    datatrove tokenises inside a spaCy memory zone, where spaCy caches nothing. Here the cache is
    kept (measured: 1.5x faster on the filter corpus): it is sound, because spaCy never caches a
    chunk that involves a special case (tokenizer.pyx, _save_cached), so a cached chunk is one
    whose tokens do not depend on its neighbours. The cache and vocabulary grow with the corpus,
    so the tokenizer is rebuilt when they hold too much.
    """

    MAX_STRINGS = 500_000

    def __init__(self):
        self._nlp = None
        self._tokens: dict[int, tuple[str, bool, bool]] = {}  # token hash -> (word, breaks, period)

    @property
    def nlp(self):
        if self._nlp is None or len(self._nlp.vocab.strings) > self.MAX_STRINGS:
            import spacy
            from spacy.pipeline import Sentencizer

            self._nlp = spacy.blank("en")
            self.punct_chars = frozenset(Sentencizer.default_punct_chars)
        return self._nlp

    def __getstate__(self):
        return {"_nlp": None, "_tokens": {}}  # rebuilt where it is used (a Ray actor), never shipped

    def lines(self, lines: list[str]) -> list[tuple[list[str], int]]:
        """For each of a document's (stripped) lines: its words, and how many sentences spaCy's
        sentencizer finds in it (C4 counts per line). spaCy never joins characters across a line
        break, so the lines' words are the document's words (``tests/test_quality.py`` checks them
        against datatrove's on the whole filter corpus).

        Tokenising only the chunks that are not plain ASCII words would be 1.5x faster, but spaCy
        matches its special cases (emoticons such as ":-(") across spaces, so leaving chunks out
        changed the tokens of their neighbours (measured: 1 document of 685)."""
        from spacy.attrs import ORTH

        nlp = self.nlp  # one tokenizer per document: a rebuild takes effect with the next one
        tokenizer, known = nlp.tokenizer, self._tokens
        out = []
        for line in lines:
            words, sentences, seen_period = [], 1, False  # no tokens: datatrove counts one sentence
            for orth in tokenizer(line).to_array(ORTH).tolist():
                word, breaks, period = known.get(orth) or self._learn(nlp.vocab, orth)
                if word:
                    words.append(word)
                if seen_period and breaks:  # spaCy's Sentencizer.predict, token by token
                    sentences += 1
                    seen_period = False
                elif period:
                    seen_period = True
            out.append((words, sentences))
        return out

    def _learn(self, vocab, orth: int) -> tuple[str, bool, bool]:
        """What the word list and the sentence rule need of a token, kept by its string's hash:
        making spaCy's Token objects cost a fifth of the stage's time."""
        if len(self._tokens) > 1_000_000:
            self._tokens.clear()
        text = vocab.strings[orth]
        period = text in self.punct_chars
        info = self._tokens[orth] = (text.strip(), not vocab[orth].is_punct and not period, period)
        return info


def _duplicates(items: list[str]) -> tuple[int, int]:
    """datatrove's find_duplicates: (repeated items, characters in the repeats)."""
    seen: set[str] = set()
    count = chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars


def _top_ngram_chars(words: list[str], n: int, spaced: str, starts: list[int]) -> int:
    """Characters of the most frequent n-gram (datatrove's find_top_duplicate over " "-joined
    n-grams); each n-gram is a slice of the joined text rather than a new join."""
    if len(words) < n:
        return 0
    grams = [spaced[starts[i] : starts[i + n] - 1] for i in range(len(words) - n + 1)]
    if len(set(grams)) == len(grams):
        return len(grams[0])  # all counts 1: most_common returns the first
    gram, count = Counter(grams).most_common(1)[0]
    return len(gram) * count


def _repeated_ngram_chars(n: int, joined: str, starts: list[int]) -> int:
    """datatrove's find_all_duplicate: characters of n-grams seen before, skipping past each
    repeat. Its n-gram key is the words joined with no separator; here a slice of that join.

    An n-gram that occurs once can never be "seen before", so the scan visits only the positions
    of n-grams that occur more than once, in order, with datatrove's skip rule between them."""
    grams = [joined[starts[i] : starts[i + n]] for i in range(len(starts) - n)]
    counts = Counter(grams)
    if len(counts) == len(grams):
        return 0  # no n-gram occurs twice (most documents)
    repeated = [i for i, gram in enumerate(grams) if counts[gram] > 1]
    seen: set[str] = set()
    chars = at = 0  # at: the first position the scan may visit next
    for i in repeated:
        if i < at:
            continue
        gram = grams[i]
        if gram in seen:
            chars += len(gram)
            at = i + n
        else:
            seen.add(gram)
            at = i + 1
    return chars


def _offsets(words: list[str], sep: int) -> list[int]:
    return list(accumulate((len(w) + sep for w in words), initial=0))


def gopher_repetition(text: str, words: list[str], cfg: GopherRepetitionConfig, s: dict) -> str | None:
    """Signals into ``s``; the first failing rule's reason in datatrove's order, or None."""
    reasons = []
    paragraphs = _PARAGRAPHS.split(text.strip())
    dup, chars = _duplicates(paragraphs)
    s["gopher_rep_dup_para_frac"], s["gopher_rep_dup_para_char_frac"] = dup / len(paragraphs), chars / len(text)
    lines = _LINES.split(text)
    dup, chars = _duplicates(lines)
    s["gopher_rep_dup_line_frac"], s["gopher_rep_dup_line_char_frac"] = dup / len(lines), chars / len(text)
    for key in ("dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac"):
        limit = getattr(cfg, key)
        if limit and s[f"gopher_rep_{key}"] > limit:
            reasons.append(key)
    spaced, spaced_starts = " ".join(words) + " ", _offsets(words, 1)
    joined, joined_starts = "".join(words), _offsets(words, 0)
    for n in (2, 3, 4):
        s[f"gopher_rep_top_{n}_gram_char_frac"] = _top_ngram_chars(words, n, spaced, spaced_starts) / len(text)
    for n in range(5, 11):
        s[f"gopher_rep_dup_{n}_gram_char_frac"] = _repeated_ngram_chars(n, joined, joined_starts) / len(text)
    for n, limit in cfg.top_n_grams.items():
        if len(words) >= n and s[f"gopher_rep_top_{n}_gram_char_frac"] > limit:
            reasons.append(f"top_{n}_gram")
    for n, limit in cfg.dup_n_grams.items():
        if s[f"gopher_rep_dup_{n}_gram_char_frac"] > limit:
            reasons.append(f"duplicated_{n}_n_grams")
    return f"gopher_rep_{reasons[0]}" if reasons else None


_CONTENT, _ALPHA = 1, 2
_word_flags: dict[str, int] = {}  # a word's flags, computed once per process: words repeat a lot


def _flags(word: str) -> int:
    flags = _word_flags.get(word)
    if flags is None:
        if len(_word_flags) > 1_000_000:
            _word_flags.clear()
        flags = _word_flags[word] = (_CONTENT * any(ch not in PUNCTUATION_SET for ch in word)
                                     | _ALPHA * any(c.isalpha() for c in word))
    return flags


def gopher_quality(text: str, words: list[str], cfg: GopherQualityConfig, s: dict) -> str | None:
    flags = [_flags(w) for w in words]
    content = [w for w, f in zip(words, flags) if f & _CONTENT]
    n_words, n_content = len(words), len(content)
    alpha_words = sum(f & _ALPHA for f in flags) // _ALPHA
    alpha_content = sum(f == _CONTENT | _ALPHA for f in flags)
    lines = text.splitlines() or [""]
    s["gopher_words"] = n_content
    s["gopher_avg_word_length"] = sum(map(len, content)) / n_content if n_content else None
    s["gopher_hash_word_ratio"] = text.count("#") / n_words if n_words else None
    s["gopher_ellipsis_word_ratio"] = (text.count("...") + text.count("…")) / n_words if n_words else None
    s["gopher_bullet_lines_ratio"] = sum(l.lstrip().startswith(("•", "-")) for l in lines) / len(lines)
    s["gopher_end_ellipsis_lines_ratio"] = sum(l.rstrip().endswith(("...", "…")) for l in lines) / len(lines)
    s["gopher_alpha_words_ratio"] = alpha_words / n_words if n_words else None
    s["gopher_alpha_content_words_ratio"] = alpha_content / n_content if n_content else None
    alpha = s["gopher_alpha_words_ratio" if cfg.alpha_ratio_of == "tokens" else "gopher_alpha_content_words_ratio"]
    s["gopher_stop_words"] = len(set(STOP_WORDS).intersection(words))

    def above(value, limit):
        return bool(limit) and value is not None and value > limit

    def below(value, limit):
        return bool(limit) and value is not None and value < limit

    checks = [
        (below(n_content, cfg.min_doc_words), "gopher_short_doc"),
        (above(n_content, cfg.max_doc_words), "gopher_long_doc"),
        (below(s["gopher_avg_word_length"], cfg.min_avg_word_length), "gopher_below_avg_threshold"),
        (above(s["gopher_avg_word_length"], cfg.max_avg_word_length), "gopher_above_avg_threshold"),
        (above(s["gopher_hash_word_ratio"], cfg.max_symbol_word_ratio), "gopher_too_many_hashes"),
        (above(s["gopher_ellipsis_word_ratio"], cfg.max_symbol_word_ratio), "gopher_too_many_ellipsis"),
        (above(s["gopher_bullet_lines_ratio"], cfg.max_bullet_lines_ratio), "gopher_too_many_bullets"),
        (above(s["gopher_end_ellipsis_lines_ratio"], cfg.max_ellipsis_lines_ratio), "gopher_too_many_end_ellipsis"),
        (below(alpha, cfg.max_non_alpha_words_ratio), "gopher_below_alpha_threshold"),
        (below(s["gopher_stop_words"], cfg.min_stop_words), "gopher_enough_stop_words"),
    ]
    return next((reason for failed, reason in checks if failed), None)


def c4(lines: list[str], tokenized: list[tuple[list[str], int]], cfg: C4Config, tokenizer: EnglishTokenizer,
       s: dict) -> tuple[str | None, str, list[str]]:
    """(reason, cleaned text, words of the cleaned text). Lines C4 drops are removed; a document
    rule (lorem ipsum, curly bracket) is recorded where datatrove would stop, and the scan goes on
    so that the signals are complete. ``tokenized`` holds each stripped line's (words, sentences)."""
    reason = None
    sentences = removed = 0
    kept: list[str] = []
    words: list[str] = []
    lorem = curly = False
    for raw, line_tokens in zip(lines, tokenized):
        line = raw.strip()
        line_words = line.split()
        if cfg.max_word_length != -1 and any(len(w) > cfg.max_word_length for w in line_words):
            removed += 1
            continue
        if cfg.remove_citations:
            cleaned = CITATION_REGEX.sub("", line)
            if cleaned != line:
                line, line_tokens = cleaned, tokenizer.lines([cleaned])[0]
        if cfg.filter_no_terminal_punct and (not line.endswith(END_PUNCTUATION) or line.endswith(ELLIPSIS)):
            removed += 1
            continue
        if len(line_words) < cfg.min_words_per_line:
            removed += 1
            continue
        lower = line.lower()
        if "lorem ipsum" in lower:
            lorem = True
            if cfg.filter_lorem_ipsum:
                reason = reason or "c4_lorem_ipsum"
        if cfg.filter_javascript and "javascript" in lower:
            removed += 1
            continue
        if "{" in line:
            curly = True
            if cfg.filter_curly_bracket:
                reason = reason or "c4_curly_bracket"
        if cfg.filter_policy and any(p in lower for p in POLICY_SUBSTRINGS):
            removed += 1
            continue
        words += line_tokens[0]
        sentences += line_tokens[1]
        kept.append(line)
    s["c4_sentences"], s["c4_lines_removed"], s["c4_lorem_ipsum"], s["c4_curly_bracket"] = sentences, removed, lorem, curly
    if reason is None and cfg.min_num_sentences != -1 and sentences < cfg.min_num_sentences:
        reason = "c4_too_few_sentences"
    return reason, "\n".join(kept).strip(), words


def fineweb_quality(text: str, words: list[str], cfg: FineWebQualityConfig, s: dict) -> str | None:
    lines = [line for line in text.split("\n") if line.strip() != ""]
    if not lines:
        return "fineweb_empty"
    punct = s["fineweb_line_punct_ratio"] = sum(line.endswith(_STOP_CHARS) for line in lines) / len(lines)
    short = s["fineweb_short_line_ratio"] = sum(len(line) <= cfg.short_line_length for line in lines) / len(lines)
    dup = s["fineweb_char_dup_ratio"] = _duplicates(lines)[1] / len(text.replace("\n", ""))
    lists = s["fineweb_list_ratio"] = text.count("\n") / len(words) if words else None
    if punct < cfg.line_punct_thr and not (punct == 0 and cfg.line_punct_exclude_zero):
        return "fineweb_line_punct_ratio"
    if short > cfg.short_line_thr:
        return "fineweb_short_line_ratio"
    if dup > cfg.char_duplicates_ratio:
        return "fineweb_char_dup_ratio"
    if lists is not None and lists > cfg.new_line_ratio:
        return "fineweb_list_ratio"
    return None


class QualityFilter(FilterStage):
    stage = "quality"

    def __init__(self, config: QualityConfig):
        super().__init__(config.mode)
        self.config = config
        self.tokenizer = EnglishTokenizer()

    def process(self, row: dict) -> str | None:
        signals, reason = self.evaluate(row["text"] or "")
        cleaned = signals.pop("_text")
        row["quality"] = signals
        # C4's line removal is part of filtering: a kept document gets the cleaned text. A rejected
        # one keeps the text the stage judged, and tag mode changes no text (C4 may leave none).
        if reason is None and self.mode == "filter":
            row["text"] = cleaned
        return reason

    def evaluate(self, text: str) -> tuple[dict, str | None]:
        """(signals, the first reason to drop in FineWeb's filter order or None). The signals
        include ``_text``, the text after C4's line removal."""
        cfg = self.config
        s = dict.fromkeys(_SIGNALS)
        if not text:
            s["_text"] = text
            return s, "empty"
        reasons = []
        lines = text.splitlines()
        tokenized = self.tokenizer.lines([line.strip() for line in lines])
        words = [w for line_words, _ in tokenized for w in line_words]
        if cfg.gopher_repetition:
            reasons.append(gopher_repetition(text, words, cfg.gopher_repetition, s))
        if cfg.gopher_quality:
            reasons.append(gopher_quality(text, words, cfg.gopher_quality, s))
        if cfg.c4:
            reason, text, words = c4(lines, tokenized, cfg.c4, self.tokenizer, s)
            reasons.append(reason)
        if cfg.fineweb:
            reasons.append(fineweb_quality(text, words, cfg.fineweb, s))
        s["_text"] = text
        return s, next((r for r in reasons if r), None)
