"""Inputs and outputs as URIs: file://, memory:// and a real S3-compatible server (moto's, on
loopback, started and stopped here)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter

import fsspec
import pyarrow.parquet as pq
import pytest

from conftest import ROOT, SAMPLES
from thresher.config import load_config
from thresher.pipelines.readers import discover, plan_work, read_unit

SAMPLE = "pipelines/configs/sample.yaml"
# Storage is what is tested: the stages that load big lists or models are off (the URL lists alone
# take seconds per actor).
QUICK = ["execution.progress=false",
         *(f"stages.{stage}=false" for stage in ("url", "quality", "decontaminate", "dedup", "classify"))]


def kept_texts(documents) -> Counter:
    return Counter(documents["text"].to_pylist())


def local_documents(out) -> "pa.Table":
    return pq.read_table(out / "documents")


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, ray_local):
    from thresher.pipelines.run import run

    out = tmp_path_factory.mktemp("local")
    run(load_config(SAMPLE, inputs=[str(SAMPLES / "warc")], output=str(out), overrides=QUICK))
    return out


def test_warc_read_from_memory_filesystem_in_byte_ranges():
    memory = fsspec.filesystem("memory")
    source = SAMPLES / "warc" / "pywb_iana.warc.gz"
    memory.pipe("/inputs/iana.warc.gz", source.read_bytes())
    [unit] = discover(["memory://inputs"])
    assert unit.source == "memory:///inputs/iana.warc.gz"
    rows = [r for item in plan_work([unit], 100_000) for u in item for r in read_unit(u, 2**26)]
    [local] = discover([str(source)])
    expected = list(read_unit(local, 2**26))
    assert [(r["record"], r["status"], r["raw"]) for r in rows] == [(r["record"], r["status"], r["raw"]) for r in expected]


def test_output_to_memory_filesystem_is_uploaded_manifest_last(local_run, ray_local, tmp_path):
    from thresher.pipelines.run import run

    manifest = run(load_config(SAMPLE, inputs=[str(SAMPLES / "warc")], output="memory://bucket/run",
                               overrides=QUICK + [f"output.local_dir={tmp_path / 'staging'}"]))
    memory = fsspec.filesystem("memory")
    assert json.loads(memory.cat("/bucket/run/manifest.json"))["counts"] == manifest["counts"]
    with memory.open("/bucket/run/documents/part-00000.parquet", "rb") as f:
        assert kept_texts(pq.read_table(f)) == kept_texts(local_documents(local_run))
    assert not (tmp_path / "staging").exists()  # uploaded, then the local copy is gone


def test_file_uris_in_and_out(local_run, ray_local, tmp_path):
    from thresher.pipelines.run import run

    manifest = run(load_config(SAMPLE, inputs=[f"file://{SAMPLES / 'warc'}"], output=f"file://{tmp_path}",
                               overrides=QUICK))
    assert manifest["counts"] == json.loads((local_run / "manifest.json").read_text())["counts"]
    documents = local_documents(tmp_path)
    assert all(s.startswith("file://") for s in documents["source"].to_pylist())
    assert kept_texts(documents) == kept_texts(local_documents(local_run))


def test_unknown_protocol_is_a_config_error():
    result = subprocess.run([sys.executable, "-m", "thresher.cli", "run", SAMPLE, "--output", "nosuch://x/y"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "output.path" in result.stderr and "nosuch" in result.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    server = shutil.which("moto_server", path=os.path.dirname(sys.executable))
    if server is None:
        pytest.fail("moto_server is missing: install the test extra (pip install -e '.[test]')")
    port = free_port()
    process = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "thresher-test", "AWS_SECRET_ACCESS_KEY": "thresher-test",
           "AWS_DEFAULT_REGION": "us-east-1", "FSSPEC_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert time.monotonic() < deadline and process.poll() is None, "moto_server did not start"
            time.sleep(0.2)
    yield env
    process.terminate()
    process.wait(timeout=10)


def test_s3_input_and_output_on_a_real_s3_server(s3_server, local_run, tmp_path):
    import s3fs

    s3 = s3fs.S3FileSystem(key="thresher-test", secret="thresher-test",
                           endpoint_url=s3_server["FSSPEC_S3_ENDPOINT_URL"])
    s3.mkdir("corpus")
    for path in sorted((SAMPLES / "warc").iterdir()):
        s3.put_file(str(path), f"corpus/warc/{path.name}")
    # A subprocess: Ray's workers take the S3 endpoint and keys from the environment they start in.
    result = subprocess.run(
        [sys.executable, "-m", "thresher.cli", "run", SAMPLE, "--input", "s3://corpus/warc",
         "--output", "s3://corpus/out", *(f"--set={o}" for o in QUICK + ["input.unit_bytes=65536"]),
         f"--set=output.local_dir={tmp_path / 'staging'}"],
        capture_output=True, text=True, cwd=ROOT, env=s3_server, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads(s3.cat("corpus/out/manifest.json"))
    assert manifest["counts"] == json.loads((local_run / "manifest.json").read_text())["counts"]
    assert manifest["inputs"]["work_items"] > len(list((SAMPLES / "warc").iterdir())) // 2
    with s3.open(s3.find("corpus/out/documents")[0], "rb") as f:
        documents = pq.read_table(f)
    assert all(s.startswith("s3://corpus/warc/") for s in documents["source"].to_pylist())
    assert kept_texts(documents) == kept_texts(local_documents(local_run))
