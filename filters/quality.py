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
sentence counts and FineWeb's words in one pass; spaCy itself sees only substrings it has not seen
before (see EnglishTokenizer), and Gopher's n-gram statistics are compiled loops (ngrams.py).
English word rules apply to every language, as in datatrove with its default ``language="en"``.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
from datatrove.utils.text import PUNCTUATION_SET, TERMINAL_PUNCTUATION

from thresher.config import C4Config, FineWebQualityConfig, GopherQualityConfig, GopherRepetitionConfig, QualityConfig
from thresher.filters.base import FilterStage
from thresher.schema import QUALITY_SIGNALS

# datatrove's filter constants, copied: importing them from its filter modules imports its whole
# filters package (its I/O layer and huggingface_hub with it), 0.23 s of every process's start.
# tests/test_quality.py checks that they are still datatrove's.
CITATION_REGEX = re.compile(r"\[\d*]|\[edit]|\[citation needed]")  # c4_filters
ELLIPSIS = "..."
END_PUNCTUATION = (".", "?", "!", '"', "'")
POLICY_SUBSTRINGS = ["terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies"]
STOP_WORDS = ["the", "be", "to", "of", "and", "that", "have", "with"]  # gopher_quality_filter

_PARAGRAPHS = re.compile(r"\n{2,}")
_LINES = re.compile("\n+")
_STOP_CHARS = tuple(TERMINAL_PUNCTUATION)
_TOP_NS, _DUP_NS = np.arange(2, 5), np.arange(5, 11)  # the n-grams whose signals are written
_SIGNALS = [QUALITY_SIGNALS.field(i).name for i in range(QUALITY_SIGNALS.num_fields)]


_RUNS = re.compile(r"\s+|\S+")
_IRREGULAR_SPACE = re.compile(r"[^\S ]| {2}")  # whitespace other than single spaces
# No prefix, suffix or infix rule of spaCy's English matches inside a run of ASCII letters
# (tests/test_quality.py proves it from the rules' regular expressions), so such a substring is one
# token unless it is a special case ("cannot").
_LETTERS = re.compile(r"[A-Za-z]+")


def _parts(line: str) -> list[str]:
    """The substrings of a line that spaCy's first pass tokenises on their own (tokenizer.pyx,
    _tokenize_affixes): runs of non-space characters and of whitespace, less the first space of a
    run that starts with " " (that space belongs to the previous token)."""
    if not _IRREGULAR_SPACE.search(line):
        return line.split(" ") if line else []
    parts = []
    for run in _RUNS.finditer(line):
        start, end = run.span()
        if start and line[start] == " ":
            start += 1
        if start < end:
            parts.append(line[start:end])
    return parts


def _sentencize(tokens: list[tuple[str, bool, bool]], seen_period: bool) -> tuple[int, bool]:
    """spaCy's Sentencizer.predict over tokens' (word, breaks, period) facts, from the only state
    it keeps between tokens, whether a period was seen: (sentences started, that state after)."""
    started = 0
    for _, breaks, period in tokens:
        if seen_period and breaks:
            started += 1
            seen_period = False
        elif period:
            seen_period = True
    return started, seen_period


class _Switch:
    """An affix rule that matches nothing until switched on. spaCy's Tokenizer puts a special case
    into its cross-token matcher only if an affix rule applies to it when it is added, so one
    built with its rules switched off has the special cases but an empty matcher."""

    def __init__(self, rule, nothing):
        self.rule, self.nothing, self.on = rule, nothing, False

    def __call__(self, string: str):
        return self.rule(string) if self.on else self.nothing


class EnglishTokenizer:
    """datatrove's SpaCyTokenizer("en"): spaCy's blank English tokenizer (shipped inside spaCy)
    and its sentencizer rule, without running spaCy on every line.

    spaCy tokenises a text in two passes (tokenizer.pyx). The first splits it on whitespace and
    tokenises each substring on its own (prefixes, suffixes, infixes, special cases such as "It's"
    or ":)"), so its tokens for a substring never depend on the rest of the text. The second runs
    a matcher over those tokens for special cases as the affix rules alone split them (":", ")")
    and puts in the special case's tokens where the text it covers is the special case's string.
    Across substrings that text holds whitespace, which no special case longer than one character
    (" ", a tab) has, so only a match inside one substring changes tokens, and only for a special
    case whose tokens differ from its affix split. Hence: each distinct substring is tokenised
    once, by a tokenizer with spaCy's rules and an empty matcher, and its tokens' facts are kept; a
    line is put together from its substrings' facts, unless one of them holds such a match (rare:
    ":)", "10a.m."), and spaCy then tokenises that line whole. ``tests/test_quality.py`` checks the result against
    datatrove on the filter corpus and on its lines with spaCy's special cases put in, spaced and
    not, and that the special cases with whitespace are single characters.

    Memory is bounded: the kept facts are cleared past MAX_CACHED entries, and spaCy (whose
    vocabulary grows with every new string) is rebuilt past MAX_STRINGS.
    """

    MAX_STRINGS = 500_000
    MAX_CACHED = 200_000

    def __init__(self):
        self._nlp = None
        self._substring_facts: dict[str, tuple] = {}  # substring -> see _substring
        self._token_facts: dict[str, tuple[str, bool, bool]] = {}  # token -> see _token
        self._sentence_steps: dict[tuple, tuple] = {}  # the few distinct _sentencize pairs, shared

    @property
    def nlp(self):
        if self._nlp is None or len(self._nlp.vocab.strings) > self.MAX_STRINGS:
            self._build()
        return self._nlp

    def _build(self) -> None:
        import spacy
        from spacy.attrs import IS_PUNCT, ORTH
        from spacy.pipeline import Sentencizer
        from spacy.tokenizer import Tokenizer

        nlp = spacy.blank("en")
        tokenizer, strings = nlp.tokenizer, nlp.vocab.strings
        self.punct_chars = frozenset(Sentencizer.default_punct_chars)
        self.is_punct = nlp.vocab.lex_attr_getters[IS_PUNCT]
        # spaCy computes some twenty attributes for every new word; only is_punct is used, called
        # directly: a quarter of spaCy's time on new words saved.
        nlp.vocab.lex_attr_getters = {}
        affix_rules = [_Switch(tokenizer.prefix_search, None), _Switch(tokenizer.suffix_search, None),
                       _Switch(tokenizer.infix_finditer, ())]
        self._first_pass = Tokenizer(nlp.vocab, tokenizer.rules, *affix_rules, tokenizer.token_match,
                                     tokenizer.url_match)
        for rule in affix_rules:
            rule.on = True
        # Every special case is taken (spaCy's matcher holds only those an affix rule applies to).
        affixes_only = Tokenizer(nlp.vocab, None, tokenizer.prefix_search, tokenizer.suffix_search,
                                 tokenizer.infix_finditer, tokenizer.token_match, tokenizer.url_match)
        self._changing = set()  # affix splits of the special cases whose own tokens differ
        for case, tokens in tokenizer.rules.items():
            split = tuple(t.text for t in affixes_only(case))
            if split != tuple(strings.as_string(token[ORTH]) for token in tokens):
                self._changing.add(split)
        self._changing_starts = frozenset(split[0] for split in self._changing)
        self._longest_change = max(map(len, self._changing))
        self._special_cases = frozenset(tokenizer.rules)
        self._letters_steps = self._steps([("a", True, False)])  # a run of letters: one word
        self._nlp = nlp

    def __getstate__(self):  # rebuilt where it is used (a Ray actor), never shipped
        return {"_nlp": None, "_substring_facts": {}, "_token_facts": {}, "_sentence_steps": {}}

    def lines(self, lines: list[str]) -> list[tuple[list[str], int]]:
        """For each of a document's (stripped) lines: its words, and how many sentences spaCy's
        sentencizer finds in it (C4 counts per line). spaCy never joins characters across a line
        break, so the lines' words are the document's words (``tests/test_quality.py`` checks them
        against datatrove's on the whole filter corpus)."""
        nlp = self.nlp  # one tokenizer per document: a rebuild takes effect with the next one
        known = self._substring_facts
        if len(known) > self.MAX_CACHED:
            known.clear()
        parts = [_parts(line) for line in lines]
        new = [part for line_parts in parts for part in line_parts if part not in known]
        if new:
            self._learn(new)
        return [self._from_substrings(line_parts) or self._spacy_line(nlp, line)
                for line, line_parts in zip(lines, parts)]

    def _from_substrings(self, parts: list[str]) -> tuple[list[str], int] | None:
        """A line's words and sentences from its substrings' facts; None where spaCy's matcher
        changes its tokens."""
        words: list[str] = []
        sentences, seen_period = 1, False  # no tokens: datatrove counts one sentence
        for part_words, after_clear, after_period, changes in map(self._substring_facts.__getitem__, parts):
            if changes:
                return None
            words += part_words
            started, seen_period = after_period if seen_period else after_clear
            sentences += started
        return words, sentences

    def _learn(self, parts: list[str]) -> None:
        """Tokenise new substrings in one call, joined by single spaces, which the first pass
        splits on; whitespace ones one by one, since joined they would merge."""
        from spacy.attrs import IDX, ORTH

        known, joined = self._substring_facts, []
        for part in dict.fromkeys(parts):
            if part.isspace():
                known[part] = self._substring(part, [t.text for t in self._first_pass(part)])
            elif _LETTERS.fullmatch(part) and part not in self._special_cases:
                known[part] = ((part,), *self._letters_steps, False)
            else:
                joined.append(part)
        if not joined:
            return
        strings = self._nlp.vocab.strings
        tokens = self._first_pass(" ".join(joined)).to_array([ORTH, IDX])
        ends = np.cumsum(np.fromiter(map(len, joined), dtype=np.int64, count=len(joined)) + 1) - 1
        orths, first = tokens[:, 0].tolist(), 0
        for part, last in zip(joined, np.searchsorted(tokens[:, 1], ends).tolist()):  # tokens starting before its end
            # spaCy's tokens cover its text: a substring with one token is that token
            texts = [part] if last - first == 1 else [strings[orth] for orth in orths[first:last]]
            known[part] = self._substring(part, texts)
            first = last

    def _substring(self, part: str, texts: list[str]) -> tuple:
        """(words, _sentencize's step over its tokens when no period was seen before them, the
        same when one was, whether spaCy's matcher changes its tokens)."""
        facts = [self._token_facts.get(text) or self._token(text) for text in texts]
        n = len(texts)
        changes = "".join(texts) != part or not self._changing_starts.isdisjoint(texts) and any(
            tuple(texts[i:j]) in self._changing
            for i in range(n) if texts[i] in self._changing_starts
            for j in range(i + 1, min(n, i + self._longest_change) + 1))
        return tuple(word for word, _, _ in facts if word), *self._steps(facts), changes

    def _steps(self, facts: list[tuple[str, bool, bool]]) -> tuple[tuple[int, bool], tuple[int, bool]]:
        steps = (_sentencize(facts, False), _sentencize(facts, True))
        return self._sentence_steps.setdefault(steps, steps)

    def _token(self, text: str) -> tuple[str, bool, bool]:
        """(word, whether it starts a sentence after a period, whether it is one), kept by token."""
        if len(self._token_facts) > self.MAX_CACHED:
            self._token_facts.clear()
        period = text in self.punct_chars
        facts = self._token_facts[text] = (text.strip(), not self.is_punct(text) and not period, period)
        return facts

    def _spacy_line(self, nlp, line: str) -> tuple[list[str], int]:
        from spacy.attrs import ORTH

        texts = map(nlp.vocab.strings.__getitem__, nlp.tokenizer(line).to_array(ORTH).tolist())
        facts = [self._token_facts.get(text) or self._token(text) for text in texts]
        return [word for word, _, _ in facts if word], 1 + _sentencize(facts, False)[0]


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


def gopher_repetition(text: str, words: list[str], cfg: GopherRepetitionConfig, s: dict) -> str | None:
    """Signals into ``s``; the first failing rule's reason in datatrove's order, or None."""
    # numba's (0.2 s) import here, not at the top: the driver that builds the stage never runs it
    from thresher.filters.ngrams import code_points, repeated_ngram_chars, top_ngram_chars, word_starts

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
    spaced, spaced_starts = code_points(" ".join(words)), word_starts(words, 1)
    joined, joined_starts = code_points("".join(words)), word_starts(words, 0)
    for n, chars in zip(_TOP_NS, top_ngram_chars(spaced, spaced_starts, _TOP_NS).tolist()):
        s[f"gopher_rep_top_{n}_gram_char_frac"] = chars / len(text)
    for n, chars in zip(_DUP_NS, repeated_ngram_chars(joined, joined_starts, _DUP_NS).tolist()):
        s[f"gopher_rep_dup_{n}_gram_char_frac"] = chars / len(text)
    for n, limit in cfg.top_n_grams.items():
        if len(words) >= n and s[f"gopher_rep_top_{n}_gram_char_frac"] > limit:
            reasons.append(f"top_{n}_gram")
    for n, limit in cfg.dup_n_grams.items():
        if s[f"gopher_rep_dup_{n}_gram_char_frac"] > limit:
            reasons.append(f"duplicated_{n}_n_grams")
    return f"gopher_rep_{reasons[0]}" if reasons else None


_STOP_WORDS = frozenset(STOP_WORDS)
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
    counts = Counter(words)  # each distinct word's flags once
    n_words = len(words)
    n_content = content_chars = alpha_words = alpha_content = 0
    for word, count in counts.items():
        flags = _flags(word)
        if flags & _ALPHA:
            alpha_words += count
        if flags & _CONTENT:
            n_content += count
            content_chars += len(word) * count
            if flags & _ALPHA:
                alpha_content += count
    lines = text.splitlines() or [""]
    s["gopher_words"] = n_content
    s["gopher_avg_word_length"] = content_chars / n_content if n_content else None
    s["gopher_hash_word_ratio"] = text.count("#") / n_words if n_words else None
    s["gopher_ellipsis_word_ratio"] = (text.count("...") + text.count("…")) / n_words if n_words else None
    s["gopher_bullet_lines_ratio"] = sum(l.lstrip().startswith(("•", "-")) for l in lines) / len(lines)
    s["gopher_end_ellipsis_lines_ratio"] = sum(l.rstrip().endswith(("...", "…")) for l in lines) / len(lines)
    s["gopher_alpha_words_ratio"] = alpha_words / n_words if n_words else None
    s["gopher_alpha_content_words_ratio"] = alpha_content / n_content if n_content else None
    alpha = s["gopher_alpha_words_ratio" if cfg.alpha_ratio_of == "tokens" else "gopher_alpha_content_words_ratio"]
    s["gopher_stop_words"] = len(_STOP_WORDS.intersection(counts))

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


def c4_curly_bracket(text: str, cfg: C4Config) -> bool:
    """Whether a line that C4 keeps holds a curly bracket (the ``c4_curly_bracket`` signal of
    ``c4``), without tokenising: the cascade's gate applies C4's rule to cheap text with it."""
    for raw in text.splitlines():
        if "{" not in raw:
            continue
        line = raw.strip()
        words = line.split()
        if cfg.max_word_length != -1 and any(len(w) > cfg.max_word_length for w in words):
            continue
        if cfg.filter_no_terminal_punct:
            cleaned = CITATION_REGEX.sub("", line) if cfg.remove_citations else line
            if not cleaned.endswith(END_PUNCTUATION) or cleaned.endswith(ELLIPSIS):
                continue
        if len(words) < cfg.min_words_per_line or (cfg.filter_javascript and "javascript" in line.lower()):
            continue
        return True
    return False


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
