"""The url stage against datatrove's own URLFilter, used as the oracle, on real URLs: every URL of
the shared corpus, and URLs made from entries of datatrove's shipped block lists."""

import gzip
import json
import os
import pickle
import subprocess
import sys
from collections import Counter
from itertools import islice

import pytest
from datatrove.data import Document
from datatrove.pipeline.filters import url_filter
from datatrove.pipeline.filters.url_filter import URLFilter, parse_list
from datatrove.utils._import_utils import ASSETS_PATH
from tldextract import TLDExtract

from conftest import TESTDATA
from thresher.config import UrlConfig
from thresher.filters.url import StringSet, shipped_lists
from thresher.filters.url import UrlFilter
from thresher.schema import KEPT, REJECTED, empty_row, rows_to_table

# datatrove reads tldextract's deprecated `registered_domain`; not ours to change.
pytestmark = pytest.mark.filterwarnings("ignore:The 'registered_domain' property:DeprecationWarning")

REASONS = {f"url_{r}" for r in ("domain", "subdomain", "url", "hard_blacklisted", "soft_blacklisted",
                                "blacklisted_subword")}


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    """datatrove's URLFilter as FineWeb runs it, made offline: the suffix list from tldextract's
    snapshot instead of the network, its lists extracted into a temporary folder instead of $HOME.
    Returns the filter and that folder."""
    folder = tmp_path_factory.mktemp("datatrove_url_lists")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(url_filter, "cached_assets_path", lambda **_: str(folder))
        f = URLFilter()
        f.tldextractor = TLDExtract(cache_dir=None, suffix_list_urls=())
        f.download_data()
    return f, folder


def decide(f: URLFilter, url: str) -> str | None:
    verdict = f.filter(Document(text="", id="0", metadata={"url": url}))
    return None if verdict is True else f"url_{verdict[1]}"


def run_stage(stage: UrlFilter, urls: list[str | None]) -> list[dict]:
    rows = [empty_row(id=str(i), url=u, status=KEPT) for i, u in enumerate(urls)]
    return stage(rows_to_table(rows)).to_pylist()


@pytest.fixture(scope="module")
def corpus_urls(corpus) -> list[str]:
    with gzip.open(TESTDATA / "corpus_urls.txt.gz", "rt", encoding="utf-8") as f:
        urls = {line.removesuffix("\n") for line in f}
    urls.update(d["url"] for d in corpus if d["url"])
    return sorted(urls)


def shipped_words(name: str) -> list[str]:
    with open(os.path.join(ASSETS_PATH, f"{name}.txt"), encoding="utf-8") as f:
        return sorted(parse_list(f))


@pytest.fixture(scope="module")
def blocked_urls(oracle, corpus_urls) -> list[str]:
    """URLs made from entries of datatrove's own lists so that every rule fires: a sample of its
    domains (some of them subdomains) as they are and under a `www.`, a sample of its URL list with
    and without a scheme, and corpus URLs with its banned words, subwords and soft words added."""
    folder = oracle[1]
    with open(folder / "domains", encoding="utf-8") as f:
        domains = [line.strip() for line in islice(f, 0, None, 5_000)]
    with open(folder / "urls", encoding="utf-8") as f:
        listed = [line.strip() for line in islice(f, 0, None, 500)]
    urls = [f"http://{d}/" for d in domains] + [f"https://www.{d}/index.html" for d in domains]
    urls += listed + [f"https://{u}" for u in listed]
    base = corpus_urls[:: len(corpus_urls) // 100]
    urls += [f"{base[i % len(base)]}/{w}" for i, w in enumerate(shipped_words("banned_words"))]
    urls += [f"{base[i % len(base)]}/x{w}x" for i, w in enumerate(shipped_words("banned_subwords"))]
    soft = shipped_words("soft_banned_words")
    urls += [f"{base[i % len(base)]}?q={a}+{b}" for i, (a, b) in enumerate(zip(soft, soft[1:] + soft[:1]))]
    return urls


def test_same_decisions_as_datatrove_on_real_urls(oracle, corpus_urls, blocked_urls):
    stage = UrlFilter(UrlConfig())
    urls = corpus_urls + blocked_urls
    expected = [decide(oracle[0], u) for u in urls]
    rows = run_stage(stage, urls)
    got = [r["reason"] for r in rows]
    mismatches = [(u, e, g) for u, e, g in zip(urls, expected, got) if e != g]
    assert not mismatches, mismatches[:10]
    assert all(r["status"] == (REJECTED if r["reason"] else KEPT) for r in rows)
    assert all(r["stage"] == "url" for r in rows if r["reason"])
    reasons = Counter(got)
    assert set(reasons) == REASONS | {None}, reasons  # every rule fires at least once
    # The corpus is benign: news, archives, academic pages and Common Crawl SEO spam.
    corpus_reasons = Counter(got[: len(corpus_urls)])
    assert corpus_reasons[None] >= 0.97 * len(corpus_urls), corpus_reasons
    print(f"\n{len(corpus_urls)} corpus urls: {dict(corpus_reasons)}; {len(blocked_urls)} from the lists: "
          f"{dict(Counter(got[len(corpus_urls):]))}")


def test_lists_read_from_the_package_equal_datatrove_extracted_ones(oracle):
    ours, theirs = shipped_lists(), oracle[0]
    assert set(ours.domains) == theirs.block_listed_domains
    assert ours.urls == theirs.block_listed_url
    assert ours.banned_words == theirs.banned_words
    assert ours.banned_subwords == theirs.banned_subwords
    assert ours.soft_banned_words == theirs.soft_banned_words
    assert len(theirs.block_listed_domains) > 4_000_000


def test_string_set_is_exact_on_unsorted_input_in_many_runs(corpus_urls):
    # Runs of 7 from unsorted input overlap in range, so a lookup searches several of them.
    hosts = [u.split("/")[2] for u in corpus_urls if u.count("/") >= 2][::-1]
    inside, outside = hosts[::2], [h for h in hosts[1::2] if h not in hosts[::2]]
    packed = StringSet(inside + ["", "münchen.de"], run_size=7)
    assert all(h in packed for h in inside) and "" in packed and "münchen.de" in packed
    assert not any(h in packed for h in outside) and "muenchen.de" not in packed
    assert set(packed) == set(inside) | {"", "münchen.de"}
    assert "" not in StringSet([]) and "x" not in StringSet([])
    with pytest.raises(ValueError):
        StringSet(["a\nb"])


def test_user_lists_from_config_and_files_decide_as_datatrove(tmp_path, corpus_urls):
    domains = tmp_path / "domains.txt"
    domains.write_text("# sites we do not want\nwsj.com\n\n  an.wikipedia.org  \n", encoding="utf-8")
    words = tmp_path / "words.txt"
    words.write_text("brexit\n# a comment\n", encoding="utf-8")
    stern = next(u for u in corpus_urls if "stern.de" in u)
    config = UrlConfig(use_integrated_lists=False, extra_domains=["archive.org"], extra_urls=[stern],
                       banned_words=["wiki"], banned_subwords=["recaptcha"], soft_banned_words=["news", "2019"],
                       list_files={"domains": [str(domains)], "banned_words": [str(words)]})
    theirs = URLFilter(use_integrated_lists=False, extra_domains=["archive.org", "wsj.com", "an.wikipedia.org"],
                       extra_urls=[stern], banned_words=["wiki", "brexit"], banned_subwords=["recaptcha"],
                       soft_banned_words=["news", "2019"])
    theirs.tldextractor = TLDExtract(cache_dir=None, suffix_list_urls=())
    got = [r["reason"] for r in run_stage(UrlFilter(config), corpus_urls)]
    assert got == [decide(theirs, u) for u in corpus_urls]
    reasons = Counter(got)
    assert {"url_domain", "url_subdomain", "url_url", "url_hard_blacklisted", "url_soft_blacklisted",
            "url_blacklisted_subword"} <= set(reasons), reasons


def test_user_lists_add_to_the_shipped_ones(corpus_urls):
    iana = next(u for u in corpus_urls if u.startswith("http://www.iana.org/"))
    stage = UrlFilter(UrlConfig(extra_domains=["iana.org"]))
    assert [r["reason"] for r in run_stage(stage, [iana, "http://0-1sex.com/"])] == ["url_domain", "url_domain"]


def test_tag_mode_keeps_and_flags(corpus_urls):
    iana = next(u for u in corpus_urls if u.startswith("http://www.iana.org/"))
    rows = run_stage(UrlFilter(UrlConfig(mode="tag", extra_domains=["iana.org"])), [iana, corpus_urls[0]])
    assert [r["status"] for r in rows] == [KEPT, KEPT]
    assert rows[0]["flags"] == ["url:url_domain"] and not rows[1]["flags"]


def test_a_row_without_url_is_kept(oracle):
    rows = run_stage(UrlFilter(UrlConfig()), [None, ""])
    assert [(r["status"], r["reason"]) for r in rows] == [(KEPT, None), (KEPT, None)]
    with pytest.raises(AssertionError):  # where datatrove stops the whole pipeline
        oracle[0].filter(Document(text="", id="0", metadata={}))


def test_stage_stays_small_to_pickle_after_use(corpus_urls):
    stage = UrlFilter(UrlConfig())
    run_stage(stage, corpus_urls[:5])
    assert len(pickle.dumps(stage)) < 2_000


NO_NETWORK = """
import json, os, socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args[:2]))
    raise OSError("network access refused by the test")
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse

from thresher.config import UrlConfig
from thresher.filters.url import UrlFilter
from thresher.schema import empty_row, rows_to_table
urls = json.load(sys.stdin)
rows = UrlFilter(UrlConfig())(rows_to_table([empty_row(id="x", url=u, status="kept") for u in urls])).to_pylist()
result = {"reasons": [r["reason"] for r in rows], "attempts": len(attempts), "home": sorted(os.listdir(os.environ["HOME"]))}
# Control: the guard does catch datatrove's default, a TLDExtract() that fetches the suffix list.
from tldextract import TLDExtract
TLDExtract()("http://example.com/")
result["control_attempts"] = len(attempts)
print(json.dumps(result))
"""


def test_no_network_access_and_nothing_written_outside(tmp_path, oracle, corpus_urls, blocked_urls):
    urls = corpus_urls[::10] + blocked_urls[::5]
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "XDG_", "TLDEXTRACT_"))}
    env["HOME"] = str(home)
    done = subprocess.run([sys.executable, "-c", NO_NETWORK], input=json.dumps(urls), env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["attempts"] == 0 and result["home"] == []
    assert result["control_attempts"] > 0
    assert result["reasons"] == [decide(oracle[0], u) for u in urls]
