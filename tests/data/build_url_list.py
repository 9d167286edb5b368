"""Builds corpus_urls.txt.gz: every URL of ../shared/corpus, one a line, sorted: the WARC-Target-URI
of every record in warc/ (responses, requests, metadata, revisits, dns: entries) and the `url` of
every page in the extraction manifests. tests/test_url.py runs the url stage on them.

    .venv/bin/python tests/data/build_url_list.py ../shared/corpus
"""

import gzip
import json
import sys
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

OUT = Path(__file__).with_name("corpus_urls.txt.gz")


def main(corpus: str) -> None:
    root = Path(corpus).resolve()
    urls = set()
    for path in sorted((root / "warc").iterdir()):
        with open(path, "rb") as f:
            for record in ArchiveIterator(f, arc2warc=True):
                urls.add(record.rec_headers.get_header("WARC-Target-URI"))
    for manifest in sorted((root / "extraction").glob("*/manifest.jsonl")):
        with open(manifest, encoding="utf-8") as f:
            urls.update(json.loads(line).get("url") for line in f)
    urls.discard(None)
    urls.discard("")
    with gzip.open(OUT, "wt", encoding="utf-8", compresslevel=9) as f:
        f.writelines(url + "\n" for url in sorted(urls))
    print(f"{len(urls)} urls -> {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/corpus")
