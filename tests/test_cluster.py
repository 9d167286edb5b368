"""``thresher submit`` against a real two-node Ray cluster on loopback, with token auth.

The cluster's Python has Ray and the project's dependencies but not the project itself, so a job
that succeeds ran the code (and the models) that submit shipped.
"""

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import tomllib
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import ROOT
from thresher.config import load_config
from thresher.pipelines.submit import JOB_CONFIG, job_config, project_package

SAMPLE = "pipelines/configs/sample.yaml"
NO_PROGRESS = ["--set", "execution.progress=false"]


@dataclass
class LoopbackCluster:
    dashboard: str
    token: str
    cpus: int

    def stage_actor_nodes(self) -> set[str]:
        """The nodes that ran a pipeline stage actor, live or finished."""
        request = urllib.request.Request(f"{self.dashboard}/api/v0/actors?detail=1&limit=10000",
                                         headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            actors = json.load(response)["data"]["result"]["result"]
        return {a["node_id"] for a in actors if a["class_name"] == "_ReadAndProcess"}

    def jobs(self) -> list:
        from ray.job_submission import JobSubmissionClient

        return JobSubmissionClient(self.dashboard, headers={"Authorization": f"Bearer {self.token}"}).list_jobs()


def python_without_thresher(where: Path) -> Path:
    """A Python that imports this environment's packages but not thresher: a venv whose only
    link to them is a plain path entry, so the editable install's import hook is never loaded."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    site = next(where.glob("lib/python*/site-packages"))
    (site / "project_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    python = where / "bin" / "python"
    probe = subprocess.run([str(python), "-c", "import ray, trafilatura; import thresher"], cwd=where,
                           capture_output=True, text=True)
    assert "No module named 'thresher'" in probe.stderr, probe.stderr
    return python


@pytest.fixture(scope="module")
def cluster():
    # A short folder of its own: Ray's socket paths live under it (at most 107 bytes), and its
    # session files stay out of the /tmp/ray that other Ray instances on the machine use.
    scratch = Path(tempfile.mkdtemp(prefix="thr-"))
    python = python_without_thresher(scratch / "env")
    token = secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token,
               RAY_TMPDIR=str(scratch), PATH=f"{python.parent}{os.pathsep}{env['PATH']}")
    with open(scratch / "cluster.log", "w") as log:
        nodes = subprocess.Popen([str(python), str(ROOT / "tests" / "loopback_cluster.py")], cwd=scratch, env=env,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                                 start_new_session=True)
    try:
        line = nodes.stdout.readline()
        assert line, (scratch / "cluster.log").read_text()[-3000:]
        info = json.loads(line)
        yield LoopbackCluster(info["dashboard"], token, sum(info["node_cpus"]))
    finally:
        nodes.stdin.close()  # the helper stops both nodes
        try:
            nodes.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:  # and whatever outlived it: its own session holds only this cluster's processes
            os.killpg(nodes.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(scratch, ignore_errors=True)


def client_env(token=None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    return {**env, "RAY_AUTH_TOKEN": token} if token else env


def thresher(*args, token=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "thresher.cli", *args], env=client_env(token), capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def local_sample(tmp_path_factory):
    """The sample run locally, in the background while the cluster starts; call it for the output.
    Ids hash each document's source path as given, and submit hands the job absolute paths (the
    job's working directory is not this one): the local run gets the same spelling."""
    out = tmp_path_factory.mktemp("local")
    inputs = [arg for path in load_config(SAMPLE).input.paths for arg in ("--input", os.path.abspath(path))]
    run = subprocess.Popen([sys.executable, "-m", "thresher.cli", "run", SAMPLE, *inputs, "--output", str(out),
                            *NO_PROGRESS], env=client_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def output() -> Path:
        log, _ = run.communicate(timeout=300)
        assert run.returncode == 0, log[-3000:]
        return out

    yield output
    run.kill()
    run.wait()


def outcome(out: Path) -> dict:
    """What a run decided, without timings: ids per output folder, verdicts, the funnel."""
    manifest = json.loads((out / "manifest.json").read_text())
    rejected = pq.read_table(out / "rejected", columns=["id", "stage", "reason"]).to_pylist()
    return {
        "documents": sorted(pq.read_table(out / "documents", columns=["id"])["id"].to_pylist()),
        "rejected": sorted((r["id"], r["stage"], r["reason"]) for r in rejected),
        "errors": sorted(pq.read_table(out / "errors", columns=["id"])["id"].to_pylist()),
        "counts": manifest["counts"],
        "funnel": {stage: {k: row[k] for k in ("in", "out", "rejected", "errored")}
                   for stage, row in manifest["stages"].items()},
    }


@pytest.mark.cluster
def test_submit_runs_the_sample_on_both_nodes_like_a_local_run(local_sample, cluster, tmp_path):
    out = tmp_path / "cluster"
    result = thresher("submit", SAMPLE, "--address", cluster.dashboard, "--output", str(out), "--wait",
                      *NO_PROGRESS, token=cluster.token)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    assert "kept" in result.stdout  # the job's own summary, streamed from its log
    assert outcome(out) == outcome(local_sample())
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["run"]["ray_cpus"] == cluster.cpus == 2
    assert len(cluster.stage_actor_nodes()) == 2  # the stages ran on the head and on the node that joined
    assert manifest["config"]["input"]["paths"][0] == str(ROOT / "data" / "samples" / "warc")


@pytest.mark.cluster
def test_an_invalid_config_is_refused_before_anything_is_submitted(cluster):
    before = len(cluster.jobs())
    result = thresher("submit", SAMPLE, "--address", cluster.dashboard, "--set", "stages.quality.c4.bogus=1",
                      token=cluster.token)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["thresher: config error: stages.quality.c4.bogus: unknown key"]
    assert len(cluster.jobs()) == before


@pytest.mark.cluster
def test_a_failed_job_exits_1_with_its_error(cluster, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    # With --pip: the run only starts (and fails on its output folder) inside the environment Ray
    # built on the head from the project's requirements.
    result = thresher("submit", SAMPLE, "--address", cluster.dashboard, "--output", str(blocker / "out"),
                      "--wait", "--pip", *NO_PROGRESS, token=cluster.token)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "NotADirectoryError" in result.stdout  # the job's traceback, streamed
    assert "failed" in result.stderr.strip().splitlines()[-1]
    job_id = re.search(r"submitted job (\S+)", result.stderr)[1]
    packages = next(job for job in cluster.jobs() if job.submission_id == job_id).runtime_env["pip"]["packages"]
    with open(ROOT / "pyproject.toml", "rb") as f:
        wanted = tomllib.load(f)["project"]["dependencies"]
    assert sorted(map(requirement_name, packages)) == sorted(map(requirement_name, wanted))


def requirement_name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower()


@pytest.mark.cluster
def test_without_wait_it_prints_the_job_id_and_returns(cluster, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")  # a job that ends fast, so it leaves the cluster to the next test
    result = thresher("submit", SAMPLE, "--address", cluster.dashboard, "--output", str(blocker / "out"),
                      *NO_PROGRESS, token=cluster.token)
    assert result.returncode == 0, result.stderr[-3000:]
    job_id = result.stdout.strip()
    job = next(job for job in cluster.jobs() if job.submission_id == job_id)
    assert job.entrypoint == "python -m thresher.cli run thresher-job.yaml"
    deadline = time.monotonic() + 120
    while not job.status.is_terminal() and time.monotonic() < deadline:
        time.sleep(1)
        job = next(job for job in cluster.jobs() if job.submission_id == job_id)
    assert job.status == "FAILED"


@pytest.mark.cluster
def test_a_wrong_token_is_refused(cluster):
    result = thresher("submit", SAMPLE, "--address", cluster.dashboard, token="not-the-token")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("thresher: cannot submit to")


def test_the_shipped_package_holds_the_code_and_every_model_file(tmp_path):
    package = project_package(tmp_path)
    models = ROOT / "data" / "models"
    for path in models.rglob("*"):
        if path.is_file():
            shipped = package / "data" / "models" / path.relative_to(models)
            assert shipped.is_file() and shipped.read_bytes() == path.read_bytes(), path
    assert (package / "cli.py").is_file() and (package / "filters" / "language.py").is_file()


def test_the_job_config_names_shared_data_absolutely_and_ships_the_runs_own_files(tmp_path, monkeypatch):
    blocklist = tmp_path / "blocked.txt"
    blocklist.write_text("example.com\n")
    monkeypatch.chdir(ROOT)
    overrides = [f"stages.url.list_files.domains=[{blocklist}]", "stages.classify.model=data/models/edu"]
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    shipped = job_config(load_config(SAMPLE, output="out/x", overrides=overrides), job_dir)
    assert shipped["input"]["paths"] == [str(ROOT / "data" / "samples" / p) for p in ("warc", "html", "pdf", "jsonl")]
    assert shipped["output"] == {"path": str(ROOT / "out" / "x")}  # only the keys the user set
    listed = shipped["stages"]["url"]["list_files"]["domains"]
    assert not os.path.isabs(listed[0]) and (job_dir / listed[0]).read_text() == "example.com\n"
    assert shipped["stages"]["classify"]["model"] == "model"
    [benchmark] = shipped["stages"]["decontaminate"]["benchmarks"]
    assert benchmark["path"] == "benchmarks/0/HumanEval.jsonl.gz" and (job_dir / benchmark["path"]).is_file()
    monkeypatch.chdir(job_dir)  # where the job reads it: the copied model passes its checksums there
    (job_dir / JOB_CONFIG).write_text(json.dumps(shipped))
    job = load_config(JOB_CONFIG)
    assert job.stages.url.list_files == {"domains": [listed[0]]} and job.stages.classify.model == "model"


def test_the_default_model_is_left_to_the_cluster(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    shipped = job_config(load_config(SAMPLE, overrides=["stages.classify={}"]), tmp_path)
    assert shipped["stages"]["classify"] == {} and not (tmp_path / "model").exists()
