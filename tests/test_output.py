import json
import os

import pyarrow.parquet as pq

from conftest import SAMPLES
from thresher.config import ExtractConfig, OutputConfig
from thresher.pipelines.extract import Extractor
from thresher.pipelines.output import OutputWriter
from thresher.pipelines.readers import discover, read_unit
from thresher.schema import DOCUMENT_SCHEMA, rows_to_table


def processed_sample_batches():
    extractor = Extractor(ExtractConfig())
    for unit in discover([str(SAMPLES / "warc"), str(SAMPLES / "pdf")]):
        yield extractor(rows_to_table(list(read_unit(unit, 2**26))))


def write(path, **config):
    writer = OutputWriter(OutputConfig(path=str(path), **config))
    for batch in processed_sample_batches():
        writer.add(batch)
    return writer.commit(["extract"], {})


def test_shards_rotate_with_bounded_row_groups_and_no_temporary_files(tmp_path):
    manifest = write(tmp_path, shard_rows=20, row_group_rows=8)
    shards = manifest["outputs"]["documents"]
    assert len(shards) >= 3 and all(s["rows"] == 20 for s in shards[:-1]) and shards[-1]["rows"] <= 20
    for shard in shards:
        meta = pq.ParquetFile(tmp_path / "documents" / shard["file"]).metadata
        assert meta.num_rows == shard["rows"]
        assert all(meta.row_group(i).num_rows <= 8 for i in range(meta.num_row_groups))
    assert pq.read_schema(tmp_path / "documents" / shards[0]["file"]).equals(DOCUMENT_SCHEMA)
    leftovers = [f for _, _, files in os.walk(tmp_path) for f in files if f.endswith(".tmp")]
    assert leftovers == [] and not [d for d in os.listdir(tmp_path) if d.startswith(".staging")]


def test_counts_add_up_and_match_what_was_written(tmp_path):
    manifest = write(tmp_path)
    counts = manifest["counts"]
    assert counts["read"] == counts["kept"] + sum(counts["rejected"].values()) + counts["errored"]
    assert pq.read_table(tmp_path / "documents").num_rows == counts["kept"]
    assert pq.read_table(tmp_path / "rejected").num_rows == sum(counts["rejected"].values())
    assert pq.read_table(tmp_path / "errors").num_rows == counts["errored"]
    assert counts["skipped"]["warc_revisit"] == 123 + 1  # pywb_iana and warcio_example
    funnel = manifest["stages"]["extract"]
    assert funnel["in"] - funnel["out"] == sum(funnel["rejected"].values()) + funnel["errored"]
    assert json.loads((tmp_path / "manifest.json").read_text())["counts"] == counts


def test_a_rerun_replaces_the_output_and_clears_a_crashed_run(tmp_path):
    write(tmp_path, shard_rows=10)
    crashed = tmp_path / ".staging-deadbeef" / "documents"
    crashed.mkdir(parents=True)
    (crashed / "part-00000.parquet.tmp").write_bytes(b"half a shard")
    manifest = write(tmp_path)  # default shard size: fewer, larger shards
    assert sorted(os.listdir(tmp_path / "documents")) == [s["file"] for s in manifest["outputs"]["documents"]]
    assert not (tmp_path / ".staging-deadbeef").exists()
    assert pq.read_table(tmp_path / "documents").num_rows == manifest["counts"]["kept"]
