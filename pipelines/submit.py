"""``thresher submit``: a config run as a Ray job on a cluster, with the project shipped along.

The job is ``thresher run`` started by the cluster's Jobs API on the head node. What it needs
beyond Ray and Python travels in the job's runtime environment:

- the project as a wheel of this checkout installs it (``py_modules``): the code, and the
  shipped models whose SHA-256 sums are checked again where each model is loaded;
- a working directory holding the config and the files it names that belong to the run (URL
  list files; decontamination benchmarks; a classify model directory, whose card carries its
  checksums);
- with ``pip``, the project's third-party requirements, installed on every node by Ray.

Inputs, the output folder and earlier releases to dedup against are data, not shipped: they
must be paths that every node sees (shared storage) or URIs. Relative ones are resolved here,
against the directory ``submit`` runs in.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from email.parser import Parser
from pathlib import Path

import yaml

import thresher
from thresher.config import RunConfig

JOB_CONFIG = "thresher-job.yaml"


class SubmitError(RuntimeError):
    """The job could not be submitted or followed, phrased as one line."""


def submit(config: RunConfig, address: str, *, wait: bool, pip: bool, restart: bool = False,
           out=sys.stdout, err=sys.stderr) -> int:
    """Submit ``config`` to the cluster whose dashboard is at ``address``; with ``wait``, stream the
    job's logs to ``out`` and return 0 if it succeeded, 1 if not. Raises SubmitError."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    try:
        client = JobSubmissionClient(address, headers=auth_headers())  # asks the cluster its version
    except Exception as e:
        raise SubmitError(f"cannot submit to {address}: {_one_line(e)}") from None
    with tempfile.TemporaryDirectory(prefix="thresher-submit-") as scratch:
        package = project_package(Path(scratch))
        job_dir = Path(scratch) / "job"
        job_dir.mkdir()
        (job_dir / JOB_CONFIG).write_text(yaml.safe_dump(job_config(config, job_dir), sort_keys=False), encoding="utf-8")
        runtime_env = {"py_modules": [str(package)], "working_dir": str(job_dir)}
        if pip:
            runtime_env["pip"] = requirements(package)
        entrypoint = f"python -m thresher.cli run {JOB_CONFIG}" + (" --restart" if restart else "")
        try:
            # The packages are uploaded before submit_job returns: the scratch folder can go.
            job_id = client.submit_job(entrypoint=entrypoint, runtime_env=runtime_env)
        except Exception as e:
            raise SubmitError(f"cannot submit to {address}: {_one_line(e)}") from None
    print(f"thresher: submitted job {job_id} to {address}", file=err)
    if not wait:
        print(job_id, file=out)
        return 0
    try:
        status = asyncio.run(_follow(client, job_id, out))
    except KeyboardInterrupt:
        print(f"thresher: stopped following; the job goes on (`ray job stop {job_id} --address {address}` stops it)",
              file=err)
        return 1
    if status != JobStatus.SUCCEEDED:
        message = client.get_job_info(job_id).message or "no message"
        print(f"thresher: job {job_id} {status.value.lower()}: {_one_line(message)}", file=err)
        return 1
    return 0


async def _follow(client, job_id: str, out):
    """Stream the job's logs until it ends; its final JobStatus."""
    try:
        async for lines in client.tail_job_logs(job_id):
            print(lines, end="", file=out, flush=True)
    except Exception as e:
        raise SubmitError(f"lost the log stream of job {job_id}: {_one_line(e)}") from None
    status = client.get_job_status(job_id)
    while not status.is_terminal():  # the stream can close a moment before the status is final
        await asyncio.sleep(0.5)
        status = client.get_job_status(job_id)
    return status


def job_config(config: RunConfig, job_dir: Path) -> dict:
    """The config as the job reads it, from its working directory ``job_dir``: only the keys the
    user set (a default such as the shipped model's path is the cluster's to resolve, not this
    machine's), data paths made absolute, the run's own files copied into ``job_dir``."""
    data = config.model_dump(mode="json", exclude_unset=True)
    data["input"]["paths"] = [_shared(p) for p in data["input"]["paths"]]
    data["output"]["path"] = _shared(data["output"]["path"])
    data.get("execution", {}).pop("address", None)  # the job joins the cluster it runs on (RAY_ADDRESS)
    stages = data.get("stages", {})
    if "against" in (stages.get("dedup") or {}):
        stages["dedup"]["against"] = [_shared(p) for p in stages["dedup"]["against"]]
    if "list_files" in (stages.get("url") or {}):
        stages["url"]["list_files"] = {
            name: [_ship(p, job_dir, Path("lists", name, str(i))) for i, p in enumerate(paths)]
            for name, paths in stages["url"]["list_files"].items()
        }
    if stages.get("decontaminate"):  # benchmark files are checked by SHA-256 where the index is built
        for i, benchmark in enumerate(stages["decontaminate"]["benchmarks"]):
            benchmark["path"] = _ship(benchmark["path"], job_dir, Path("benchmarks", str(i)))
    if "model" in (stages.get("classify") or {}):
        shutil.copytree(stages["classify"]["model"], job_dir / "model")
        stages["classify"]["model"] = "model"
    return data


def _shared(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


def _ship(path: str, job_dir: Path, folder: Path) -> str:
    """Copy a file into ``job_dir/folder``; its path relative to the job's working directory."""
    (job_dir / folder).mkdir(parents=True)
    shutil.copy(path, job_dir / folder)
    return str(folder / Path(path).name)


def project_root() -> Path:
    """The source checkout this thresher is installed from (``pip install -e``)."""
    root = Path(thresher.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise SubmitError(f"{root}: no pyproject.toml: submit ships the project built from its source checkout "
                          "(install it with `pip install -e`)")
    return root


def project_package(dest: Path) -> Path:
    """The ``thresher`` package folder as a wheel of this checkout installs it (code and package
    data), unpacked under ``dest``. A folder, not the .whl: Ray installs a wheel in py_modules
    with pip and its dependencies, a second Ray included, over the cluster's own (measured)."""
    wheel = project_wheel(dest / "wheel")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(dest / "site")
    return dest / "site" / "thresher"


def project_wheel(dest: Path) -> Path:
    """A wheel of the project, built by pip in ``dest``."""
    scratch = dest / "build"
    scratch.mkdir(parents=True)
    # setuptools builds in the source tree's build/ by default, where files of deleted modules
    # linger and would be shipped; this extra config (read by setuptools' distutils) moves it.
    settings = scratch / "setup.cfg"
    settings.write_text(f"[build]\nbuild_base = {scratch}\n[egg_info]\negg_base = {scratch}\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check",
         "--wheel-dir", str(dest), str(project_root())],
        env=dict(os.environ, DIST_EXTRA_CONFIG=str(settings)), capture_output=True, text=True,
    )
    wheels = list(dest.glob("thresher-*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        lines = (result.stderr or result.stdout).splitlines() or ["no output"]
        reason = next((line for line in lines if line.lower().startswith("error")), lines[-1])
        raise SubmitError(f"building the project's wheel failed: {reason.strip()}")
    return wheels[0]


def requirements(package: Path) -> list[str]:
    """The project's requirements, from the unpacked wheel's metadata (extras left out)."""
    metadata = next(package.parent.glob("thresher-*.dist-info")) / "METADATA"
    parsed = Parser().parsestr(metadata.read_text(encoding="utf-8"))
    return [r for r in parsed.get_all("Requires-Dist", []) if "extra ==" not in r]


def auth_headers() -> dict[str, str]:
    """The bearer token of a cluster started with RAY_AUTH_MODE=token, from RAY_AUTH_TOKEN. Ray's
    client sends one only when this process has RAY_AUTH_MODE=token as well (it then also finds
    RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)."""
    token = os.environ.get("RAY_AUTH_TOKEN", "").strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def _one_line(error) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
