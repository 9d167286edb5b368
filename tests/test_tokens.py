"""Token counts: the shipped vocabularies are OpenAI's, the counts are tiktoken's, the manifest adds them up."""

import gzip
import hashlib
import importlib.resources
import os
import tempfile
from pathlib import Path
from unittest import mock

import pyarrow.parquet as pq
import pytest

from thresher.config import ConfigError, OutputConfig, load_config
from thresher.filters.tokens import TokenCounter, count_tokens
from thresher.pipelines.output import OutputWriter
from thresher.schema import KEPT, REJECTED, empty_row, rows_to_table

ENCODINGS = ["cl100k_base", "o200k_base"]


def tiktoken_from_the_wheel(name):
    """tiktoken's own definition of the encoding (pattern, special tokens), its vocabulary read
    from the file bpe-openai ships instead of downloaded, after tiktoken's pinned SHA-256 check."""
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe
    from tiktoken_ext import openai_public

    shipped = gzip.decompress((importlib.resources.files("bpe_openai.data") / f"{name}.tiktoken.gz").read_bytes())

    def from_the_wheel(url, expected_hash):
        assert url.endswith(f"/{name}.tiktoken") and hashlib.sha256(shipped).hexdigest() == expected_hash
        with tempfile.TemporaryDirectory() as folder:
            local = Path(folder) / f"{name}.tiktoken"
            local.write_bytes(shipped)
            return load_tiktoken_bpe(str(local), expected_hash)

    with mock.patch.object(openai_public, "load_tiktoken_bpe", from_the_wheel), \
            mock.patch.dict(os.environ, {"TIKTOKEN_CACHE_DIR": ""}):  # "": tiktoken caches nothing
        return tiktoken.Encoding(**getattr(openai_public, name)())


@pytest.mark.parametrize("name", ENCODINGS)
def test_counts_are_tiktokens_on_real_texts(name, corpus):
    oracle = tiktoken_from_the_wheel(name)
    texts = [doc["text"] for doc in corpus]
    expected = [len(oracle.encode_ordinary(t)) for t in texts]
    assert count_tokens(texts, name) == expected
    assert sum(expected) > 1_000_000  # 685 real texts in several languages and scripts


def test_special_token_text_is_ordinary_text():
    assert count_tokens(["<|endoftext|>"], "cl100k_base") == [len(tiktoken_from_the_wheel("cl100k_base").encode_ordinary("<|endoftext|>"))]
    assert count_tokens([None, ""], "cl100k_base") == [None, 0]


def batch_of(corpus, n=40):
    rows = [empty_row(id=str(i), text=doc["text"], status=KEPT if i % 4 else REJECTED, stage=None if i % 4 else "quality",
                      reason=None if i % 4 else "gopher_short_doc", language=("en", "de", "zh")[i % 3],
                      edu_int=None if i % 5 == 0 else i % 4)
            for i, doc in enumerate(corpus[:n])]
    return rows_to_table(rows)


def test_counter_sets_kept_rows_only(corpus):
    out = TokenCounter("cl100k_base")(batch_of(corpus))
    for row in out.to_pylist():
        assert row["n_tokens"] == (count_tokens([row["text"]], "cl100k_base")[0] if row["status"] == KEPT else None)


def test_manifest_totals_per_shard_language_and_edu_int(corpus, tmp_path):
    writer = OutputWriter(OutputConfig(path=str(tmp_path), shard_rows=7))
    counter = TokenCounter("o200k_base")
    for start in range(0, 120, 40):
        writer.add(counter(batch_of(corpus[start:], 40)))
    manifest = writer.commit(["quality", "tokens"], {})
    docs = pq.read_table(tmp_path / "documents")
    tokens = manifest["tokens"]
    assert tokens["kept"] == sum(docs["n_tokens"].to_pylist()) > 0
    for shard in manifest["outputs"]["documents"]:
        assert shard["tokens"] == sum(pq.read_table(tmp_path / "documents" / shard["file"])["n_tokens"].to_pylist())
    by_language = {}
    by_edu = {}
    for row in docs.to_pylist():
        by_language[row["language"]] = by_language.get(row["language"], 0) + row["n_tokens"]
        key = "null" if row["edu_int"] is None else str(row["edu_int"])
        by_edu[key] = by_edu.get(key, 0) + row["n_tokens"]
    assert tokens["by_language"] == by_language and tokens["by_edu_int"] == dict(sorted(by_edu.items()))
    assert "tokens" not in manifest["outputs"]["errors"][0]  # errors have no n_tokens


def test_on_by_default_switched_off_and_checked():
    assert load_config("pipelines/configs/sample.yaml").stages.tokens.encoding == "cl100k_base"
    assert load_config("pipelines/configs/sample.yaml", overrides=["stages.tokens=false"]).stages.tokens is None
    assert load_config("pipelines/configs/sample.yaml", overrides=["stages.tokens.encoding=o200k_base"]).stages.tokens.encoding == "o200k_base"
    with pytest.raises(ConfigError, match=r"^stages\.tokens\.encoding: "):
        load_config("pipelines/configs/sample.yaml", overrides=["stages.tokens.encoding=gpt2"])


def test_tokens_is_the_last_stage():
    from thresher.pipelines.plan import stage_functions

    config = load_config("pipelines/configs/sample.yaml")
    names = [name for name, _ in stage_functions(config)]
    assert names[-1] == "tokens"
    assert [n for n, _ in stage_functions(load_config("pipelines/configs/sample.yaml", overrides=["stages.tokens=false"]))] == names[:-1]
