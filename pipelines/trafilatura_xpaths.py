"""Ten of trafilatura's XPath expressions as Python predicates that select the same elements, in
the same order, sooner: the boilerplate ones (``OVERALL_DISCARD_XPATH``), the comment sections
(``REMOVE_COMMENTS_XPATH``, ``REMOVE_COMMENTS_AND_LISTS_XPATH``), with ``favor_precision`` the
bottom/link, teaser and caption ones, and the three of its main-body searches (``BODY_XPATH``)
that test attributes with regular expressions.

Their EXSLT ``re:test`` and ``translate`` calls go from libxml2 back into Python once per
candidate element and attribute, whether the attribute exists or not, and trafilatura evaluates
them on every page, the boilerplate ones twice (``prune_unwanted_sections`` and
``compare_extraction``): 28% of trafilatura's time on the pages the edu cascade sends it
(py-spy), the body searches another 10%. A Python loop reads each candidate's attributes once.
On the 673 pages the edu cascade sends to trafilatura (bench/peers.py's 5,000): the boilerplate
expressions took 1.39 and 1.78 ms per cleaned tree, against 0.42 and 0.65 ms for their loops; with
the other eight as loops too, extraction of those pages took a median 6.8 CPU s against 7.8 with
only those two (4 runs each, alternating; 7.55 with the five discard ones added, before the body
searches). A prefilter XPath without ``re:test`` made the loops slower. ``RAW_TREE_PRUNE_XPATH``'s
ad-box expression stays an XPath: no page of the shared corpus has what it matches, so a loop
could not be tested on a match.

``install()`` puts a predicate in place of an XPath object inside trafilatura's own list (its
modules import the lists, not the objects) only where the expression is, character for
character, the one re-implemented (its SHA-256 below); otherwise it leaves that one as it is.
XPath semantics kept: ``@id|@class`` is the first of the two attributes in the element's source
order; a missing attribute is the empty string; ``.//*`` is descendant elements only;
``(...)[1]`` is the first in document order, ``.//*[...][1]`` the first of each element's
children; Python's ``re`` is what lxml's ``re:test`` runs. ``tests/test_extract.py`` checks every
selection against the XPath on each sample page (as loaded and as cleaned: the same elements on
all 5,000 benchmark pages too) and the extracted text against ``trafilatura.extract`` without the
predicates (the same text on the 673 pages above).
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


def _boilerplate(consent: str, ids: str, classes: str):
    """OVERALL_DISCARD_XPATH[0]'s test: containers named like navigation, ads, sharing, footers..."""
    consent, ids, classes = re.compile(consent).search, re.compile(ids).search, re.compile(classes).search

    def test(element, attrib) -> bool:
        return bool("data-lp-replacement-content" in attrib
                    or "nav" in attrib.get("role", "").replace("N", "n")
                    or "MostPopularStories" in attrib.get("data-component", "")
                    or consent(_first(attrib, ("id", "class")))
                    or ids(attrib.get("id", ""))
                    or classes(attrib.get("class", "")))

    return test


_HIDDEN_IDS = re.compile("reader-comments|akismet").search
_HIDDEN_CLASSES = re.compile("^hide-|comments-title|nocomments|-reply-|message|akismet|suggest-links|-hide-|hide-print"
                             "| hidden| hide|noprint|notloaded").search


def _hidden(element, attrib) -> bool:
    """OVERALL_DISCARD_XPATH[1]'s test: any element hidden, or named like comments and replies."""
    style = attrib.get("style", "")
    return bool(attrib.get("class") == "comments-title"
                or _first(attrib, ("id", "class")).startswith("reply-")
                or "hidden" in _first(attrib, ("id", "style"))
                or "display:none" in style or "display: none" in style
                or _HIDDEN_IDS(attrib.get("id", ""))
                or _HIDDEN_CLASSES(attrib.get("class", ""))
                or attrib.get("aria-hidden") == "true")


class _Where:
    """``.//*[self::t1 or self::t2 ...][test]``: the elements with these tags (``etree.Element``:
    any), in document order, that have attributes and pass ``test(element, attrib)`` (each
    expression here needs one)."""

    def __init__(self, tags, test):
        self.tags, self.test = tags, test

    def __call__(self, tree) -> list:
        test = self.test
        return [element for element in tree.iterdescendants(self.tags)
                if (attrib := element.attrib) and test(element, attrib)]


class _FirstWhere(_Where):
    """``(.//*[self::t1 or ...][test])[1]``: the first such element in document order, as a list.
    (Most pages have none, so stopping at the first would rarely save the scan.)"""

    def __call__(self, tree) -> list:
        return super().__call__(tree)[:1]


class _FirstChildrenWhere(_Where):
    """``.//*[self::t1 or ...][test][1]``, where ``[1]`` binds to the child step: of each element's
    children that pass, the first."""

    def __call__(self, tree) -> list:
        found, parents = [], set()
        for element in super().__call__(tree):
            parent = element.getparent()
            if parent not in parents:
                parents.add(parent)
                found.append(element)
        return found


_BODY_TAGS = ("article", "div", "main", "section")
_BODY_IDS = re.compile(r"(?:entry|article|art)-content|article__content|article(?:-|__)?body|articleBody|body-text").search
_BODY_CLASSES = re.compile(
    r"post[-_]text|post-body|post-?entry|post[-_]?content|postContent|post_inner_wrapper|article-?text|articleText"
    r"|(?:entry|page|text|article|art)-content|article__content|article(?:-|__)?body|articleBody|ArticleContent"
    r"|body-text|article__container").search
_STORY_IDS = re.compile(r"^primary|story-body").search
_FULLTEXT = re.compile(r"fulltext", re.IGNORECASE).search
_STORY_CLASSES = re.compile(
    r"^article |post-bodycopy|story-?content|(?:theme|blog|section|single)-content|single-post|main-column"
    r"|wpb_text_column|story-body|field-body").search
_CONTENT_IDS = re.compile(r"content-main|content-body|contentBody").search
_CONTENT_CLASSES = re.compile(r"content[-_]main|content(?:-|__)body").search
_CM, _CP = str.maketrans("CM", "cm"), str.maketrans("CP", "cp")


def _article_body(element, attrib) -> bool:
    ids, classes = attrib.get("id", ""), attrib.get("class", "")
    return (classes in ("post", "entry") or attrib.get("itemprop") == "articleBody" or ids == "articleContent"
            or bool(_BODY_IDS(ids) or _BODY_CLASSES(classes)))


def _story(element, attrib) -> bool:
    ids, classes = attrib.get("id", ""), attrib.get("class", "")
    return (attrib.get("role") == "article" or ids in ("article", "story")
            or classes in ("postarea", "art-postcontent", "text", "cell", "story")
            or bool(_STORY_IDS(ids) or _FULLTEXT(classes) or _STORY_CLASSES(classes)))


def _content(element, attrib) -> bool:
    ids, classes = attrib.get("id", ""), attrib.get("class", "")
    return (ids == "content" or classes == "content" or bool(_CONTENT_IDS(ids) or _CONTENT_CLASSES(classes))
            or "main-content" in ids.translate(_CM) or "main-content" in classes.translate(_CM)
            or "page-content" in classes.translate(_CP))


_COMMENT_IDS = re.compile(r"^(?:[Cc]omment(?!ary)|comol|disqus_thread|dsq-comments)").search
_COMMENT_LIST_IDS = re.compile(r"^(?:[Cc]omment(?!ary)|comol)").search
_COMMENT_CLASSES = re.compile(r"^[Cc]omment(?!ary)|(?:article|post)-comments").search
_BOTTOM = re.compile(r"(^|\s)bottom|bottom(\s|$)").search
_LINK = re.compile(r"(^|\s)link(\s|$)").search


def _comments(element, attrib) -> bool:
    return bool(_COMMENT_IDS(attrib.get("id", "")) or _COMMENT_CLASSES(attrib.get("class", "")))


def _comments_not_lists(element, attrib) -> bool:
    # (comment id or comment class) and (not a list or list-comment id or comment class)
    ids = attrib.get("id", "")
    return bool(_COMMENT_CLASSES(attrib.get("class", ""))
                or _COMMENT_IDS(ids) and (element.tag not in ("ol", "ul") or _COMMENT_LIST_IDS(ids)))


def _bottom_or_link(element, attrib) -> bool:
    name = _first(attrib, ("id", "class"))
    return bool(_BOTTOM(name) or _LINK(name)) or "border" in attrib.get("style", "")


# (list in trafilatura.xpaths, position): (SHA-256 of the expression's source in trafilatura 2.3.1,
# the predicate). Python's re is what lxml's EXSLT re:test runs, so the patterns are the same.
_PREDICATES = {
    ("OVERALL_DISCARD_XPATH", 0): ("a837e58a1b1ea116ce1dada53d856dec093fe9f64b37dc503698e30f96a87dd3", lambda x: _Where(_CONTAINERS, _boilerplate(
        x._alt(x._CONSENT_ID_CLASS_TOKENS), x._alt(x._OVERALL_DISCARD_BOTH_TOKENS + x._OVERALL_DISCARD_ID_TOKENS),
        x._alt(x._OVERALL_DISCARD_BOTH_TOKENS + x._OVERALL_DISCARD_CLASS_TOKENS)))),
    ("OVERALL_DISCARD_XPATH", 1): ("c1d5b70b8cd03783545d6b715c69062ae6967c222b2d8f4e2399762362d426c0", lambda x: _Where(etree.Element, _hidden)),
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
    ("BODY_XPATH", 0): ("caaa561ceca17064773e97bf7c610f55e6c6a64a2477328c060642912d489b3b",
                        lambda x: _FirstChildrenWhere(_BODY_TAGS, _article_body)),
    ("BODY_XPATH", 2): ("6c9b5e1fdc092943ebdd87206a2e8a8b4c4666497fb00e6661d2a519d00f37f9",
                        lambda x: _FirstWhere(_BODY_TAGS, _story)),
    ("BODY_XPATH", 3): ("10a7ceacc0ff8cdfd8c58a575b5197b5d07ba24000f072101735478c2c585978",
                        lambda x: _FirstWhere(_BODY_TAGS, _content)),
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
