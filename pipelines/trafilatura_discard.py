"""Seven of trafilatura's discard XPaths as Python predicates that select the same elements, in
the same order, sooner: the boilerplate ones (``OVERALL_DISCARD_XPATH``), the comment sections
(``REMOVE_COMMENTS_XPATH``, ``REMOVE_COMMENTS_AND_LISTS_XPATH``) and, with ``favor_precision``, the
bottom/link, teaser and caption ones.

Their EXSLT ``re:test`` and ``translate`` calls go from libxml2 back into Python once per
candidate element and attribute, whether the attribute exists or not, and trafilatura evaluates
them on every page, the boilerplate ones twice (``prune_unwanted_sections`` and
``compare_extraction``): 28% of trafilatura's time on the pages the edu cascade sends it (py-spy).
A Python loop reads each candidate's attributes once. On the 673 pages the edu cascade sends to
trafilatura (bench/peers.py's 5,000): the two boilerplate expressions took 1.39 and 1.78 ms per
cleaned tree against 0.42 and 0.65 ms for their loops (1.14x for the whole extraction); the
other five, 1.03 s in all against ~0.4 s as loops, so extraction of those pages took a median
7.3 against 7.7 CPU s (3 runs each, alternating). A prefilter XPath without ``re:test`` made the
loops slower. ``RAW_TREE_PRUNE_XPATH``'s ad-box expression stays an XPath: no page of the shared
corpus has what it matches, so a loop could not be tested on a match.

``install()`` puts a predicate in place of an XPath object inside trafilatura's own list (its
modules import the lists, not the objects) only where the expression is, character for
character, the one re-implemented (its SHA-256 below); otherwise it leaves that one as it is.
XPath semantics kept: ``@id|@class`` is the first of the two attributes in the element's source
order; a missing attribute is the empty string; ``.//*`` is descendant elements only; Python's
``re`` is what lxml's ``re:test`` runs. ``tests/test_extract.py`` checks every selection against
the XPath on each sample page (as loaded and as cleaned) and the extracted text against
``trafilatura.extract`` without the predicates.
"""

from __future__ import annotations

import hashlib
import logging
import re
from contextlib import contextmanager
from functools import cache

from lxml import etree

_LOG = logging.getLogger(__name__)
_CONTAINERS = ("div", "item", "list", "p", "section", "span")


def _first(attrib, names: tuple[str, str]) -> str:
    """The XPath string value of ``@a|@b``: the first of the two in source order, or ''."""
    for name, value in attrib.items():
        if name in names:
            return value
    return ""


class _Boilerplate:
    """OVERALL_DISCARD_XPATH[0]: containers named like navigation, ads, sharing, footers..."""

    def __init__(self, consent: str, ids: str, classes: str):
        self.consent, self.ids, self.classes = re.compile(consent), re.compile(ids), re.compile(classes)

    def __call__(self, tree) -> list:
        found = []
        for element in tree.iterdescendants(_CONTAINERS):
            attrib = element.attrib
            if attrib and (
                "data-lp-replacement-content" in attrib
                or "nav" in attrib.get("role", "").replace("N", "n")
                or "MostPopularStories" in attrib.get("data-component", "")
                or self.consent.search(_first(attrib, ("id", "class")))
                or self.ids.search(attrib.get("id", ""))
                or self.classes.search(attrib.get("class", ""))
            ):
                found.append(element)
        return found


class _Hidden:
    """OVERALL_DISCARD_XPATH[1]: any element hidden, or named like comments and replies."""

    _IDS = re.compile("reader-comments|akismet")
    _CLASSES = re.compile("^hide-|comments-title|nocomments|-reply-|message|akismet|suggest-links|-hide-|hide-print"
                          "| hidden| hide|noprint|notloaded")

    def __call__(self, tree) -> list:
        found = []
        for element in tree.iterdescendants(etree.Element):
            attrib = element.attrib
            if not attrib:
                continue
            style = attrib.get("style", "")
            if (
                attrib.get("class") == "comments-title"
                or _first(attrib, ("id", "class")).startswith("reply-")
                or "hidden" in _first(attrib, ("id", "style"))
                or "display:none" in style or "display: none" in style
                or self._IDS.search(attrib.get("id", ""))
                or self._CLASSES.search(attrib.get("class", ""))
                or attrib.get("aria-hidden") == "true"
            ):
                found.append(element)
        return found


class _Where:
    """``.//*[self::t1 or self::t2 ...][test]``: the elements with these tags, in document order,
    that have attributes and pass ``test(element, attrib)`` (each expression below needs one)."""

    def __init__(self, tags: tuple[str, ...], test):
        self.tags, self.test = tags, test

    def __call__(self, tree) -> list:
        return [element for element in tree.iterdescendants(self.tags)
                if element.attrib and self.test(element, element.attrib)]


_COMMENT_IDS = re.compile(r"^(?:[Cc]omment(?!ary)|comol|disqus_thread|dsq-comments)").search
_COMMENT_LIST_IDS = re.compile(r"^(?:[Cc]omment(?!ary)|comol)").search
_COMMENT_CLASSES = re.compile(r"^[Cc]omment(?!ary)|(?:article|post)-comments").search
_BOTTOM = re.compile(r"(^|\s)bottom|bottom(\s|$)").search
_LINK = re.compile(r"(^|\s)link(\s|$)").search


def _comments(element, attrib) -> bool:
    return bool(_COMMENT_IDS(attrib.get("id", "")) or _COMMENT_CLASSES(attrib.get("class", "")))


def _comments_not_lists(element, attrib) -> bool:
    return _comments(element, attrib) and (
        element.tag not in ("ol", "ul")
        or bool(_COMMENT_LIST_IDS(attrib.get("id", "")) or _COMMENT_CLASSES(attrib.get("class", ""))))


def _bottom_or_link(element, attrib) -> bool:
    name = _first(attrib, ("id", "class"))
    return bool(_BOTTOM(name) or _LINK(name)) or "border" in attrib.get("style", "")


# (list in trafilatura.xpaths, position): (SHA-256 of the expression's source in trafilatura 2.3.1,
# the predicate). Python's re is what lxml's EXSLT re:test runs, so the patterns are the same.
_PREDICATES = {
    ("OVERALL_DISCARD_XPATH", 0): ("a837e58a1b1ea116ce1dada53d856dec093fe9f64b37dc503698e30f96a87dd3", lambda x: _Boilerplate(
        x._alt(x._CONSENT_ID_CLASS_TOKENS), x._alt(x._OVERALL_DISCARD_BOTH_TOKENS + x._OVERALL_DISCARD_ID_TOKENS),
        x._alt(x._OVERALL_DISCARD_BOTH_TOKENS + x._OVERALL_DISCARD_CLASS_TOKENS))),
    ("OVERALL_DISCARD_XPATH", 1): ("c1d5b70b8cd03783545d6b715c69062ae6967c222b2d8f4e2399762362d426c0", lambda x: _Hidden()),
    ("PRECISION_DISCARD_XPATH", 1): ("53d31ea1df47920acee695b26b87b1ce36f16913686e547edc2ae0ba6efab5f7",
                                     lambda x: _Where(_CONTAINERS, _bottom_or_link)),
    ("REMOVE_COMMENTS_AND_LISTS_XPATH", 0): ("9cc18d34e6e2d258172b5df02bc44e578c95ef709b8e06722846c7a410c3a46f",
                                             lambda x: _Where(("div", "list", "section", "details", "ol", "ul"),
                                                              _comments_not_lists)),
    ("REMOVE_COMMENTS_XPATH", 0): ("5d97216ca15d05582de538174e876b27626b7a166810320152081c7e26bb5ca2",
                                   lambda x: _Where(("div", "list", "section", "details"), _comments)),
    ("TEASER_DISCARD_XPATH", 0): ("ebb02f066626551dbb0222a6cb631691f6ccacf0477c1381263f112b0bc9cdfa", lambda x: _Where(
        _CONTAINERS, lambda e, a: "teaser" in a.get("id", "").replace("T", "t")
        or "teaser" in a.get("class", "").replace("T", "t"))),
    ("DISCARD_IMAGE_ELEMENTS", 0): ("cb1ab981e44913f706048bad10e9f027314ffccb36c56ffc66c8ff5e1e340c58", lambda x: _Where(
        _CONTAINERS, lambda e, a: "caption" in a.get("id", "") or "caption" in a.get("class", ""))),
}
_ORIGINALS: dict = {}  # (list, position) -> trafilatura's own expression, once swapped out


def _digest(expression) -> str:
    return hashlib.sha256(getattr(expression, "path", "").encode()).hexdigest()


@cache
def install() -> int:
    """Swap the predicates in, each where trafilatura's expression is, character for character, the
    one it re-implements; the number swapped in."""
    from trafilatura import xpaths

    for (name, position), (digest, predicate) in _PREDICATES.items():
        expressions = getattr(xpaths, name)
        if _digest(expressions[position]) != digest:
            _LOG.info("trafilatura's %s[%d] is not the expression re-implemented here: left as it is", name, position)
            continue
        _ORIGINALS[name, position] = expressions[position]
        expressions[position] = predicate(xpaths)
    return len(_ORIGINALS)


@contextmanager
def trafilatura_s_own():
    """trafilatura's own expressions while the block runs; yields {(list, position): expression}."""
    from trafilatura import xpaths

    swapped = {key: getattr(xpaths, key[0])[key[1]] for key in _ORIGINALS}
    for (name, position), original in _ORIGINALS.items():
        getattr(xpaths, name)[position] = original
    try:
        yield dict(_ORIGINALS)
    finally:
        for (name, position), predicate in swapped.items():
            getattr(xpaths, name)[position] = predicate
