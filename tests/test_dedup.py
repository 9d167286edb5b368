"""The dedup stage: keys per batch, clusters across the run, the keep rule, routing and counts."""

import json
import random

import numpy as np
import pyarrow.parquet as pq
import pytest

from thresher.config import DedupConfig, OutputConfig
from thresher.filters.dedup import DedupKeys
from thresher.filters.minhash import MinHasher, jaccard
from thresher.pipelines import dedup as dedup_plan
from thresher.pipelines.dedup import Clusters, components, links_of
from thresher.pipelines.output import OutputWriter
from thresher.schema import empty_row, rows_to_table


def mirrored(corpus, seed):
    """Real documents, some served again by mirrors: an exact copy under another source and URL,
    or the same text with other whitespace and case (which exact dedup must also catch)."""
    rng = random.Random(seed)
    originals = corpus[:120]
    rows = [empty_row(id=f"doc-{i}", source=d["source"], text=d["text"], status="kept") for i, d in enumerate(originals)]
    copies = {}
    for i in rng.sample(range(len(originals)), 30):
        text = originals[i]["text"]
        if i % 2:
            text = "\n\n".join(line.upper() if j == 0 else "  " + line for j, line in enumerate(text.split("\n")))
        rows.append(empty_row(id=f"mirror-{i}", source="mirror", text=text, status="kept"))
        copies[f"mirror-{i}"] = f"doc-{i}"
    rng.shuffle(rows)
    return rows, copies


def run_dedup(rows, tmp_path, config=DedupConfig(minhash=None), batch=16):
    writer = OutputWriter(OutputConfig(path=str(tmp_path), shard_rows=50, row_group_rows=10), config)
    keys = DedupKeys(config)
    for i in range(0, len(rows), batch):
        writer.add(keys(rows_to_table(rows[i : i + batch])))
    manifest = writer.commit(["dedup"], {})
    return manifest, pq.read_table(tmp_path / "documents").to_pylist(), pq.read_table(tmp_path / "rejected").to_pylist()


def test_links_join_every_document_sharing_a_key_to_the_smallest():
    band = np.array([0, 0, 0, 1, 1, 0], np.int16)
    key = np.array([7, 7, 9, 7, 7, 7], np.uint64)
    doc = np.array([5, 2, 3, 5, 4, 8], np.int64)
    u, v = links_of(band, key, doc)
    assert sorted(zip(u.tolist(), v.tolist())) == [(2, 5), (2, 8), (4, 5)]


def test_keep_rule_longest_text_then_smallest_id_hash():
    lengths = np.array([10, 30, 30, 5])
    id_hashes = np.array([1, 9, 4, 0], np.uint64)
    clusters = Clusters.from_links(np.array([0, 0, 1]), np.array([1, 2, 3]), lengths, id_hashes, np.arange(4, dtype=np.uint64))
    keeper, size, _ = clusters.resolve(np.arange(4))
    assert keeper.tolist() == [2, 2, 2, 2] and size.tolist() == [4, 4, 4, 4]


def test_components_group_nodes_as_scipy_does():
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rng = np.random.default_rng(7)
    graphs = [(int(n), rng.integers(0, n, (2, int(rng.integers(0, 3 * n))))) for n in rng.integers(1, 400, 200)]
    path = rng.permutation(5000)  # one long chain, numbered at random: joined over several rounds
    graphs.append((5000, np.stack([path[:-1], path[1:]])))
    for n, (u, v) in graphs:
        smallest = components(n, u, v)
        count, label = connected_components(coo_matrix((np.ones(len(u)), (u, v)), shape=(n, n)), directed=False)
        lowest = np.full(count, n)  # the smallest node of each of scipy's components
        np.minimum.at(lowest, label, np.arange(n))
        assert (smallest == lowest[label]).all()


def test_exact_copies_of_real_documents_are_dropped_and_counted(corpus, tmp_path, ray_local):
    rows, copies = mirrored(corpus, seed=1)
    manifest, documents, rejected = run_dedup(rows, tmp_path)
    assert len(documents) == 120 and len(rejected) == 30
    assert manifest["counts"]["rejected"] == {"exact_duplicate": 30}
    assert manifest["stages"]["dedup"] == {"in": 150, "out": 120, "rejected": {"exact_duplicate": 30},
                                          "rejected_chars": manifest["stages"]["dedup"]["rejected_chars"], "errored": 0}
    kept_ids = {d["id"] for d in documents}
    for r in rejected:  # equal lengths: the smaller id hash wins, so either side may be the copy
        pair = {r["id"], r["duplicate_of"]}
        assert r["stage"] == "dedup" and r["duplicate_of"] in kept_ids
        assert any(pair == {m, o} for m, o in copies.items()), pair
    clustered = [d for d in documents if d["dup_cluster_size"] == 2]
    assert len(clustered) == 30 and all(d["dup_cluster"] == d["id"] for d in documents)
    # The index stays with the output, for later runs to dedup against.
    assert (tmp_path / "dedup" / "ids.parquet").exists()


def test_same_input_keeps_the_same_documents_whatever_the_order_and_batching(corpus, tmp_path, ray_local, monkeypatch):
    kept = []
    for seed, batch in ((1, 16), (2, 7)):
        rows, _ = mirrored(corpus, seed=1)
        random.Random(seed).shuffle(rows)
        if seed == 2:  # and whether the partitions are linked in the driver or in Ray tasks
            monkeypatch.setattr(dedup_plan, "_LOCAL_LINKS_BYTES", -1)
        _, documents, _ = run_dedup(rows, tmp_path / f"run{seed}", batch=batch)
        kept.append(sorted(d["id"] for d in documents))
    assert kept[0] == kept[1]


def test_a_new_crawl_is_deduplicated_against_an_earlier_release(corpus, tmp_path, ray_local):
    release = [empty_row(id=f"doc-{i}", text=d["text"], status="kept") for i, d in enumerate(corpus[:100])]
    run_dedup(release, tmp_path / "release")
    # The next crawl: 20 pages seen again (half with their whitespace changed), 39 new ones.
    again = [empty_row(id=f"recrawl-{i}", text=corpus[i]["text"] + ("\n" if i % 2 else ""), status="kept")
             for i in range(0, 100, 5)]
    new = [empty_row(id=f"new-{i}", text=d["text"], status="kept") for i, d in enumerate(corpus[100:139])]
    # (corpus[139] is a Readability test page with the same lorem ipsum as corpus[100])
    config = DedupConfig(minhash=None, against=[str(tmp_path / "release")])
    manifest, documents, rejected = run_dedup(again + new, tmp_path / "next", config=config)
    assert sorted(d["id"] for d in documents) == sorted(r["id"] for r in new)
    assert {r["id"]: r["duplicate_of"] for r in rejected} == {f"recrawl-{i}": f"doc-{i}" for i in range(0, 100, 5)}
    assert manifest["counts"]["rejected"] == {"exact_duplicate": 20}


def test_against_refuses_an_output_without_a_compatible_index(tmp_path):
    from thresher.config import ConfigError, load_config

    def config(prior, **dedup):
        return load_config("pipelines/configs/sample.yaml", overrides=[
            f"stages.dedup={{against: [{prior}], {', '.join(f'{k}: {v}' for k, v in dedup.items())}}}"])

    with pytest.raises(ConfigError, match=r"stages.dedup.against\[0\]: .* is not a complete thresher output"):
        config(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"counts": {}}))
    with pytest.raises(ConfigError, match="made without the dedup stage"):
        config(tmp_path)


def edited(text: str, rng: random.Random) -> str:
    """A near copy as crawls make them: the last 8% cut and 1% of the words replaced by other words
    of the same text (a re-published page with a changed byline and footer)."""
    words = text.split()
    words = words[: int(len(words) * 0.92)]
    for i in rng.sample(range(len(words)), max(1, len(words) // 100)):
        words[i] = rng.choice(words)
    return " ".join(words)


def test_near_copies_of_real_documents_are_found_and_verify_checks_candidates(corpus, tmp_path, ray_local):
    rng = random.Random(3)
    originals = [d for d in corpus if len(d["text"].split()) > 300][:60]
    rows = [empty_row(id=f"doc-{i}", text=d["text"], status="kept") for i, d in enumerate(originals)]
    rows += [empty_row(id=f"copy-{i}", text=edited(d["text"], rng), status="kept") for i, d in enumerate(originals[:20])]
    manifest, documents, rejected = run_dedup(rows, tmp_path / "plain", config=DedupConfig())
    # Jaccard about 0.83 on 5-gram shingles: 14 x 8 bands catch such a pair with probability ~0.97.
    copies = {f"copy-{i}" for i in range(20)}
    found = {r["id"] for r in rejected}
    assert found <= copies and len(found) >= 18  # no original dropped: the originals are longer
    assert all(r["reason"] == "near_duplicate" and r["duplicate_of"] == r["id"].replace("copy", "doc") for r in rejected)
    assert manifest["dedup"]["index"]["minhash"]["lsh"] == [14, 8]
    # verify: a candidate pair is kept only if its estimated Jaccard reaches 0.8.
    verified, _, rejected_v = run_dedup(rows, tmp_path / "verify", config=DedupConfig(minhash={"verify": True}))
    hasher = MinHasher()
    texts = {r["id"]: r["text"] for r in rows}
    for copy in found:
        a, b = hasher.signatures([texts[copy], texts[copy.replace("copy", "doc")]])
        assert (copy in {r["id"] for r in rejected_v}) == (jaccard(a, b) >= 0.8), copy
    assert verified["dedup"]["candidate_links"] >= verified["dedup"]["links"]
    strict, _, rejected_s = run_dedup(rows, tmp_path / "strict",
                                      config=DedupConfig(minhash={"verify": True, "threshold": 0.99, "bands": 14, "rows": 8}))
    assert rejected_s == [] and strict["dedup"]["candidate_links"] > 0 and strict["dedup"]["links"] == 0
