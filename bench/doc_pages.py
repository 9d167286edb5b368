"""Build the peer and cascade benchmarks' WARC: real pages, most of which a FineWeb-style
pipeline drops, as in a crawl.

Pages: every HTML page of ../shared/corpus (``build_warc.corpus_pages``: news and articles, German
and multilingual pages, Chinese and Russian spam) and the HTML documentation of a few Debian
packages (the Debian handbook in 26 languages, the installation guide in 19, the Debian reference
in 7, the Python, PostgreSQL and Git manuals), fetched once with ``apt-get download`` and unpacked
with ``dpkg-deb -x`` under bench/data/debian/ (git-ignored). ``--pages N`` keeps every corpus page
and a fixed sample of the Debian pages (ordered by a hash of their path), so the same N gives the
same pages on every machine with the same Debian release; they are dealt in turn into
``--shards`` gzipped WARCs in bench/data/pages-docs-N/.

    .venv/bin/python bench/doc_pages.py [--pages 5000] [--shards 2]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_warc import corpus_pages  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
DEBIAN = DATA / "debian"
PACKAGES = ["debian-handbook", "installation-guide-amd64", "python3.11-doc", "postgresql-doc-15", "git-doc",
            *(f"debian-reference-{lang}" for lang in ("en", "de", "fr", "es", "it", "ja", "zh-cn"))]


def debian_root() -> Path:
    """The unpacked packages, downloaded and unpacked on first use."""
    root = DEBIAN / "root"
    if (DEBIAN / "done").exists():
        return root
    debs = DEBIAN / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=debs, check=True)
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    (DEBIAN / "done").write_text("\n".join(PACKAGES) + "\n")
    return root


def debian_pages() -> list[tuple[str, bytes]]:
    """(url, html) for every regular HTML file of the packages (symlinks are other packages' files)."""
    docs = debian_root() / "usr" / "share" / "doc"
    pages = []
    for path in sorted(docs.rglob("*.htm*")):
        if path.is_symlink() or not path.is_file() or path.suffix not in (".html", ".htm"):
            continue
        relative = path.relative_to(docs)
        pages.append((f"https://{relative.parts[0]}.docs.debian.example/{'/'.join(relative.parts[1:])}", path.read_bytes()))
    return pages


def mixed_pages(n: int) -> list[tuple[str, bytes]]:
    corpus = corpus_pages()
    debian = sorted(debian_pages(), key=lambda page: hashlib.sha1(page[0].encode()).digest())
    if n - len(corpus) > len(debian):
        raise SystemExit(f"--pages {n}: only {len(corpus) + len(debian)} pages available")
    return corpus + debian[:max(0, n - len(corpus))]


def write_warc(path: Path, pages: list[tuple[str, bytes]]) -> None:
    """One gzipped response record per page, with the payload type Common Crawl's WARCs declare
    (datatrove's reader sniffs the bytes with libmagic without it, and takes XHTML for XML)."""
    with open(f"{path}.tmp", "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for url, html in pages:
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(html)))],
                                       protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(
                url.strip(), "response", payload=io.BytesIO(html), http_headers=headers,
                warc_headers_dict={"WARC-Identified-Payload-Type": "text/html"}))
    os.replace(f"{path}.tmp", path)


def mixed_warc(n: int, shards: int = 2, sample: int | None = None) -> Path:
    """A folder of ``shards`` WARCs holding the ``n`` pages dealt in turn, built if missing.
    Several files, because datatrove's readers share work between tasks by file. With ``sample``:
    only that many of the ``n`` pages, evenly spaced (the same mix, smaller)."""
    folder = DATA / (f"pages-docs-{n}" if sample is None else f"pages-docs-{n}-sample-{sample}")
    if not (folder / "done").exists():
        folder.mkdir(parents=True, exist_ok=True)
        pages = mixed_pages(n)
        if sample is not None:
            pages = pages[::max(1, n // sample)][:sample]
        for shard in range(shards):
            write_warc(folder / f"part-{shard}.warc.gz", pages[shard::shards])
        (folder / "done").write_text(f"{n} pages in {shards} files\n")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=5000)
    parser.add_argument("--shards", type=int, default=2)
    args = parser.parse_args()
    print(f"{mixed_warc(args.pages, args.shards)}: {args.pages} response records in {args.shards} files")


if __name__ == "__main__":
    main()
