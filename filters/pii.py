"""The pii stage: replaces e-mail addresses and public IP addresses in the text with placeholders,
with datatrove's PIIFormatter (its regexes, validator and replacer), and records how many it
replaced in ``row["pii"]``. It never drops a document.

The text it leaves is PIIFormatter's, character for character (``tests/test_pii.py`` checks it on
the whole filter corpus). One thing differs: how long it takes. datatrove's e-mail regex is
quadratic in the length of a run of characters that may start an address: each word boundary in
the run scans to its end before failing for want of an ``@``. A 40 kB token such as
``abc-abc-abc-...`` takes 14 s, so a 5 MB one would take days. Here the regex only sees the pieces
of the text that contain an ``@``, which gives the same matches (see ``EmailSpans``), and in a
piece longer than a few addresses only near each ``@`` (an address is at most 320 characters), so
the cost stays linear in the text whatever it holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cached_property

from datatrove.pipeline.formatters.pii import PIIFormatter, PIIReplacer

from thresher.config import PiiConfig
from thresher.filters.base import FilterStage

# Characters that no e-mail match can contain and that are not word characters. Cutting the text
# at them changes no match: a match lies inside one piece, and the regex's only look-around, the
# leading \b, sees a non-word character before a piece exactly as it sees the start of a string.
_OUTSIDE_EMAILS = re.compile(r"([^\w!#$%&'*+/=?^`{|}~.@\[\]:-]+)")
# What every match has around its "@": a local-part character before it (the local part cannot end
# with a dot) and the start of a domain label or of an address literal after it. A piece without
# it cannot match, so the regex (quadratic in a run of local-part characters) never sees it.
_POSSIBLE_EMAIL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]@[A-Za-z0-9\[]")
_MAX_ADDRESS = 320  # RFC 5321: a 64-character local part, "@", a 255-character domain
_MAX_WINDOW = 16 * _MAX_ADDRESS


class Counting:
    """A PIIReplacer validator that counts the matches it lets through, i.e. the replacements the
    replacer makes (it replaces a match with itself when its validator says no)."""

    def __init__(self, validator: Callable[[str], bool] | None):
        self.validator = validator
        self.count = 0

    def __call__(self, match: str) -> bool:
        valid = self.validator is None or self.validator(match)
        self.count += valid
        return valid


class EmailSpans:
    """Runs a replacer over only the pieces of a text that hold an ``@`` (see _OUTSIDE_EMAILS)."""

    def __init__(self, replacer: PIIReplacer):
        self.replacer = replacer

    def replace(self, text: str) -> str:
        if "@" not in text:
            return text
        parts = _OUTSIDE_EMAILS.split(text)
        for i in range(0, len(parts), 2):  # even items are pieces, odd ones the separators
            if _POSSIBLE_EMAIL.search(parts[i]):
                parts[i] = self._replace_piece(parts[i])
        return "".join(parts)

    def _replace_piece(self, piece: str) -> str:
        """A long piece (a base64 blob, a run of dashes) is only searched within an address's
        length of each "@", in windows of bounded size, where the regex's cost is bounded too.
        Only an "address" longer than RFC 5321 allows could come out differently."""
        if len(piece) <= _MAX_WINDOW:
            return self.replacer.replace(piece)
        windows: list[list[int]] = []
        for at in (m.start() for m in re.finditer("@", piece)):
            lo, hi = max(0, at - _MAX_ADDRESS), min(len(piece), at + _MAX_ADDRESS + 1)
            if windows and lo <= windows[-1][1] and hi - windows[-1][0] <= _MAX_WINDOW:
                windows[-1][1] = hi
            else:
                windows.append([max(lo, windows[-1][1]) if windows else lo, hi])
        out, done = [], 0
        for lo, hi in windows:
            out += [piece[done:lo], self.replacer.replace(piece[lo:hi])]
            done = hi
        out.append(piece[done:])
        return "".join(out)


class PiiRedactor(FilterStage):
    stage = "pii"

    def __init__(self, config: PiiConfig):
        super().__init__("filter")  # nothing to drop, so the mode never matters
        self.config = config

    @cached_property
    def _formatter(self) -> PIIFormatter:
        c = self.config
        formatter = PIIFormatter(remove_emails=c.emails, remove_ips=c.ips, only_remove_public_ips=c.only_public_ips,
                                 email_replacement=c.email_replacement, ip_replacement=c.ip_replacement)
        for replacer in (formatter.emails_replacer, formatter.ip_replacer):
            replacer.validator = Counting(replacer.validator)
        return formatter

    def redact(self, text: str) -> tuple[str, dict[str, int]]:
        """PIIFormatter.format(text), and the number of e-mail and IP replacements made."""
        f = self._formatter
        emails, ips = f.emails_replacer.validator, f.ip_replacer.validator
        emails.count = ips.count = 0
        if f.remove_emails:
            text = EmailSpans(f.emails_replacer).replace(text)
        if f.remove_ips:
            text = f.ip_replacer.replace(text)
        return text, {"email": emails.count, "ip": ips.count}

    def process(self, row: dict) -> None:
        if row["text"] is None:
            row["pii"] = {"email": 0, "ip": 0}
            return None
        row["text"], row["pii"] = self.redact(row["text"])
        return None
