import gzip
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"
TESTDATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True, scope="session")
def _run_from_repo_root():
    # Sample paths in configs are relative to the repository root, as in the README.
    previous = os.getcwd()
    os.chdir(ROOT)
    yield
    os.chdir(previous)


@pytest.fixture(scope="session")
def corpus() -> list[dict]:
    """The text of every page and text document of ../shared/corpus (see tests/data/SOURCES.md)."""
    with gzip.open(TESTDATA / "filter_corpus.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="session")
def ray_local():
    """One real embedded Ray for the in-process end-to-end tests (start-up costs seconds)."""
    from thresher.config import ExecutionConfig
    from thresher.pipelines.plan import connect, disconnect

    connect(ExecutionConfig(num_cpus=2, progress=False))
    yield
    disconnect()


# The sample cut into small work items (dozens of them, so a kill lands between commits), with the
# stages that load big lists or models off: what the crash tests and the id check need is the
# plan, the journal, the writer and dedup, not the filters' verdicts.
SMALL_ITEMS = ["input.unit_bytes=65536", "execution.progress=false",
               *(f"stages.{stage}=false" for stage in ("url", "quality", "decontaminate", "classify"))]


@pytest.fixture(scope="session")
def small_items_sample(tmp_path_factory, ray_local):
    """The sample run uninterrupted in this process with SMALL_ITEMS: the crash tests' reference."""
    from thresher.config import load_config
    from thresher.pipelines.run import run

    out = tmp_path_factory.mktemp("small_items_sample")
    manifest = run(load_config("pipelines/configs/sample.yaml", output=str(out), overrides=SMALL_ITEMS))
    assert manifest["inputs"]["work_items"] >= 20
    return out


@pytest.fixture(scope="session")
def bad_folder(tmp_path_factory):
    """A folder of realistically damaged inputs (see bad_inputs.py), made once per session."""
    import bad_inputs

    return bad_inputs.make_all(tmp_path_factory.mktemp("bad_inputs"))
