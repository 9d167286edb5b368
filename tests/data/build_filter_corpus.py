"""Builds filter_corpus.jsonl.gz: the text thresher extracts from every page and text document of
../shared/corpus (news, blogs, multilingual pages, Common Crawl spam, FineWeb-Edu and CCNet texts).

Filter tests run on this text so that they need neither the shared corpus nor extraction time.
Rebuild it (from the repository root) when extraction changes:

    .venv/bin/python tests/data/build_filter_corpus.py ../shared/corpus
"""

import gzip
import json
import sys
from pathlib import Path

from thresher.config import ExtractConfig
from thresher.pipelines.extract import Extractor
from thresher.pipelines.readers import discover, read_unit
from thresher.schema import KEPT, rows_to_table

OUT = Path(__file__).with_name("filter_corpus.jsonl.gz")


def main(corpus: str) -> None:
    root = Path(corpus).resolve()
    paths = [str(root / p) for p in ("extraction", "warc", "quality", "dedup")]
    extractor = Extractor(ExtractConfig())
    seen, docs = set(), []
    for unit in discover(paths, "auto"):
        rows = [r for r in read_unit(unit, 64 * 2**20) if r["status"] == KEPT]
        for i in range(0, len(rows), 64):
            for row in extractor(rows_to_table(rows[i : i + 64])).to_pylist():
                text = row["text"]
                if row["status"] == KEPT and text not in seen:
                    seen.add(text)
                    source = str(Path(row["source"]).relative_to(root))
                    docs.append({"source": source, "record": row["record"], "url": row["url"], "text": text})
    with gzip.open(OUT, "wt", encoding="utf-8", compresslevel=9) as f:
        for doc in docs:
            f.write(json.dumps(doc, ensure_ascii=False) + "\n")
    print(f"{len(docs)} documents -> {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/corpus")
