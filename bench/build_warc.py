"""Build a benchmark WARC from the real HTML pages of ../shared/corpus.

Pages: the extraction sets (aeb, trafilatura, readability, cs336) and every HTML response of the
corpus WARCs. ``--copies N`` repeats the whole set N times under distinct URLs, for scaling runs.
Each page is one gzipped WARC response record, as in Common Crawl.

    python bench/build_warc.py --out bench/data/pages.warc.gz --copies 1
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"


def corpus_pages(corpus: Path = CORPUS) -> list[tuple[str, bytes]]:
    """(url, html bytes) for every real HTML page in the corpus, in a stable order."""
    pages = []
    for name in ("aeb", "trafilatura", "readability"):
        folder = corpus / "extraction" / name
        for line in open(folder / "manifest.jsonl", encoding="utf-8"):
            row = json.loads(line)
            with gzip.open(folder / row["html_path"], "rb") as f:
                url = (row.get("url") or "").strip()
                if not url.startswith(("http://", "https://")):  # a few manifest URLs are "hard::..." labels
                    url = f"https://{name}.example/{row['id']}"
                pages.append((url, f.read()))
    pages.append(("https://cs336.example/moby", (corpus / "extraction" / "misc" / "cs336_moby.html").read_bytes()))
    for warc in sorted((corpus / "warc").glob("*.warc*")):
        if "wet" in warc.name or "wat" in warc.name:
            continue
        with open(warc, "rb") as f:
            for record in ArchiveIterator(f):
                if record.rec_type != "response" or record.http_headers is None:
                    continue
                ctype = (record.http_headers.get_header("Content-Type") or "").lower()
                if "html" in ctype and record.http_headers.get_statuscode() == "200":
                    pages.append((record.rec_headers.get_header("WARC-Target-URI"), record.content_stream().read()))
    return pages


def write_warc(path: str, pages: list[tuple[str, bytes]], copies: int) -> int:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    n = 0
    with open(path + ".tmp", "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for copy in range(copies):
            for url, html in pages:
                headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(html)))],
                                           protocol="HTTP/1.1")
                url = url.strip()
                uri = url if copy == 0 else f"{url}{'&' if '?' in url else '?'}copy={copy}"
                writer.write_record(writer.create_warc_record(uri, "response", payload=io.BytesIO(html),
                                                              http_headers=headers))
                n += 1
    os.replace(path + ".tmp", path)
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench/data/pages.warc.gz")
    parser.add_argument("--copies", type=int, default=1)
    args = parser.parse_args()
    pages = corpus_pages()
    n = write_warc(args.out, pages, args.copies)
    print(f"{args.out}: {n} response records ({len(pages)} distinct pages x {args.copies})")


if __name__ == "__main__":
    main()
