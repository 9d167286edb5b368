"""The pii stage against datatrove's PIIFormatter, used as the oracle, on real text: the filter
corpus holds real e-mail addresses (press contacts, archive.org scanners, Mastodon handles, a
qq.com address in Chinese spam) and IP addresses (IANA's multicast registry, the DNS root
servers, 127.0.0.1 and 192.168.0.2 in an rsync tutorial)."""

import re
import string
import time

import pytest
from datatrove.pipeline.formatters.pii import PIIFormatter, public_ip_validator

from thresher.config import PiiConfig
from thresher.filters.pii import PiiRedactor
from thresher.schema import KEPT, REJECTED, empty_row, rows_to_table


def doc(corpus, source_end: str, record: int = 0) -> str:
    return next(d["text"] for d in corpus if d["source"].endswith(source_end) and d["record"] == record)


def oracle(config: PiiConfig) -> PIIFormatter:
    return PIIFormatter(remove_emails=config.emails, remove_ips=config.ips,
                        only_remove_public_ips=config.only_public_ips,
                        email_replacement=config.email_replacement, ip_replacement=config.ip_replacement)


def independent_counts(f: PIIFormatter, text: str) -> dict[str, int]:
    """What datatrove replaces, counted from its regexes and validator, in its own order."""
    emails = len(f.emails_replacer.regex.findall(text)) if f.remove_emails else 0
    after = f.emails_replacer.replace(text) if f.remove_emails else text
    ips = sum(map(f.ip_replacer.validator, f.ip_replacer.regex.findall(after))) if f.remove_ips else 0
    return {"email": emails, "ip": ips}


CONFIGS = [
    PiiConfig(),
    PiiConfig(only_public_ips=False),
    PiiConfig(emails=False, ip_replacement="0.0.0.0"),
    PiiConfig(ips=False, email_replacement="<EMAIL>"),
]


@pytest.mark.parametrize("config", CONFIGS, ids=["default", "all_ips", "ips_only", "emails_only"])
def test_same_text_as_datatrove_and_counts_of_what_it_replaced(corpus, config):
    stage, theirs = PiiRedactor(config), oracle(config)
    totals = {"email": 0, "ip": 0}
    mismatches = []
    for d in corpus:
        text, counts = stage.redact(d["text"])
        if text != theirs.format(d["text"]) or counts != independent_counts(theirs, d["text"]):
            mismatches.append((d["source"], d["record"], counts))
        totals = {k: totals[k] + counts[k] for k in totals}
    assert not mismatches, mismatches[:5]
    # The corpus has real addresses of both kinds (a test that replaces nothing proves nothing).
    assert totals["email"] >= (30 if config.emails else 0) and totals["ip"] >= (40 if config.ips else 0), totals
    assert (totals["email"] > 0) == config.emails and (totals["ip"] > 0) == config.ips


def test_real_emails_are_replaced_and_counted(corpus):
    text = doc(corpus, "malteser.de-Bev_lkerungsschutz.html.gz")
    contacts = ["poea@asb.de", "presse@dlrg.de", "medien@johanniter.de", "presse@malteser.org"]
    assert all(c in text for c in contacts)
    redacted, counts = PiiRedactor(PiiConfig()).redact(text)
    assert counts == {"email": 4, "ip": 0}
    assert not any(c in redacted for c in contacts) and redacted.count("email@example.com") == 4


def test_public_ips_are_replaced_private_and_loopback_ones_kept(corpus):
    roots = doc(corpus, "pywb_iana.warc.gz", 733840)  # the root servers' addresses
    redacted, counts = PiiRedactor(PiiConfig()).redact(roots)
    assert "198.41.0.4" in roots and "198.41.0.4" not in redacted
    assert counts == {"email": 0, "ip": 13}

    tutorial = doc(corpus, "netbits.us.stunnel_rsync.html.gz")  # 127.0.0.1 and 192.168.0.2, twice each
    redacted, counts = PiiRedactor(PiiConfig()).redact(tutorial)
    assert redacted == tutorial and counts == {"email": 0, "ip": 0}
    assert not public_ip_validator("192.168.0.2") and not public_ip_validator("127.0.0.1")
    redacted, counts = PiiRedactor(PiiConfig(only_public_ips=False)).redact(tutorial)
    assert counts == {"email": 0, "ip": 4} and "127.0.0.1" not in redacted and "192.168.0.2" not in redacted


def test_real_addresses_next_to_any_character_match_datatrove(corpus):
    # The stage cuts the text at characters that cannot be in an address before running the regex;
    # here every real address from the corpus meets every ASCII character and some word characters
    # that are not ASCII (the regex's \b treats them as letters) on either side.
    theirs = oracle(PiiConfig())
    addresses = sorted({m for d in corpus for m in theirs.emails_replacer.regex.findall(d["text"])})
    assert len(addresses) >= 25
    neighbours = string.printable + "éü中Ж\u00a0\u3000"
    stage = PiiRedactor(PiiConfig())
    texts = [f"{a}{address}{b}" for address in addresses for a in neighbours for b in ("", a, "@" + a)]
    texts += [f"x{address}.{address}@{address}" for address in addresses]
    mismatches = [t for t in texts if stage.redact(t)[0] != theirs.format(t)]
    assert not mismatches, mismatches[:5]


def test_5_mb_texts_take_under_5_s(corpus):
    stage = PiiRedactor(PiiConfig())
    joined = "\n\n".join(d["text"] for d in corpus)
    real = (joined * 2)[:5_000_000]
    # One 5 MB "word" of characters that may start an address and no @: every word boundary in it
    # scans to its end in datatrove's regex, which takes 14 s on 40 kB of it (quadratic).
    token = re.sub(r"[^A-Za-z0-9]+", "-", joined)[:5_000_000]
    for text in (real, token):
        started = time.perf_counter()
        stage.redact(text)
        assert time.perf_counter() - started < 5
    assert stage.redact(token[:5_000])[0] == oracle(PiiConfig()).format(token[:5_000])


def test_stage_never_drops_and_writes_the_counts(corpus):
    text = doc(corpus, "malteser.de-Bev_lkerungsschutz.html.gz")
    rows = [empty_row(id="a", text=text, status=KEPT), empty_row(id="b", text=None, status=KEPT),
            empty_row(id="c", text=text, status=REJECTED, stage="quality", reason="c4_min_sentences")]
    out = PiiRedactor(PiiConfig())(rows_to_table(rows)).to_pylist()
    assert [r["status"] for r in out] == [KEPT, KEPT, REJECTED]
    assert out[0]["pii"] == {"email": 4, "ip": 0} and "presse@dlrg.de" not in out[0]["text"]
    assert out[1]["pii"] == {"email": 0, "ip": 0} and out[1]["text"] is None
    assert out[2]["pii"] is None and out[2]["text"] == text  # a rejected row rides along untouched


def test_pathological_runs_before_an_at_sign_stay_linear(corpus):
    # datatrove's e-mail regex is quadratic in a run of address characters before an "@" with no
    # valid domain after it (40 kB took 3.2 s; 5 MB would take hours). Such runs, between real
    # addresses of the corpus, must neither hang the stage nor hide the real addresses.
    redactor = PiiRedactor(PiiConfig())
    real = re.findall(r"[\w.+-]+@[\w-]+\.[\w.]+", "\n".join(d["text"] for d in corpus))[:20]
    # Runs the regex never needs to see ("@" after a dot, or before a space), and a few it must
    # search, near each "@", for an address that is not there ("a@b" has no dot in its domain).
    text = " ".join(("a." * 400 + "@ ") * 300 + ("a-" * 400 + "a@b ") * 10 + address for address in real)
    started = time.perf_counter()
    redacted, counts = redactor.redact(text)
    assert time.perf_counter() - started < 20 and len(text) > 4_000_000
    assert counts["email"] == len(real) and not any(a in redacted for a in real)
