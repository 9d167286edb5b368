"""Crash and resume: a run killed mid-way (its driver, or one of its workers) and run again ends
with exactly the output of an uninterrupted run; nothing missing, nothing twice."""

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from thresher.pipelines.journal import ResumeRefused, WorkJournal
from thresher.schema import ITEM_BEGIN, ITEM_END, empty_row, rows_to_table

from conftest import SMALL_ITEMS

SAMPLE = "pipelines/configs/sample.yaml"


def rows(item, *records, begin=False, end=False):
    marks = [empty_row(status=ITEM_BEGIN, item=item)] if begin else []
    docs = [empty_row(id=f"{item}-{r}", source="s", record=r, text="x", status="kept", item=item) for r in records]
    return rows_to_table(marks + docs + ([empty_row(status=ITEM_END, item=item)] if end else []))


def replayed_ids(journal):
    return [i for t in journal.replay(100) for i in t["id"].to_pylist()]


def test_only_items_that_ended_count_as_done(tmp_path):
    journal = WorkJournal(str(tmp_path), "f1")
    journal.add(pa.concat_tables([rows(0, 1, 2, begin=True), rows(1, 7, begin=True)]))
    journal.add(rows(0, 3, end=True))
    journal.add(rows(1, 8))  # item 1 never ends: the driver dies here
    assert journal.done == {0}

    again = WorkJournal(str(tmp_path), "f1")
    assert again.done == {0} and sorted(os.listdir(again.items_dir)) == ["000000.arrow"]
    assert replayed_ids(again) == ["0-1", "0-2", "0-3"]


def test_a_retried_item_keeps_only_its_last_attempt(tmp_path):
    journal = WorkJournal(str(tmp_path), "f1")
    journal.add(rows(4, 1, 2, begin=True))
    journal.add(rows(4, 1, 2, 3, begin=True, end=True))  # the worker died; Ray ran the item again
    assert replayed_ids(journal) == ["4-1", "4-2", "4-3"]


def test_another_configuration_is_refused_unless_restarted(tmp_path):
    WorkJournal(str(tmp_path), "f1").add(rows(0, 1, begin=True, end=True))
    with pytest.raises(ResumeRefused, match="--restart"):
        WorkJournal(str(tmp_path), "f2")
    assert WorkJournal(str(tmp_path), "f2", restart=True).done == set()


def thresher(out, *extra):
    return [sys.executable, "-m", "thresher.cli", "run", SAMPLE, "--output", str(out),
            *(arg for item in SMALL_ITEMS for arg in ("--set", item)), *extra]


def committed(out) -> int:
    path = out / ".work" / "journal.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def run_until(out, condition, timeout=120):
    """Starts a run and returns it once ``condition(process)`` holds (the run still going)."""
    process = subprocess.Popen(thresher(out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while not condition(process):
        assert process.poll() is None, f"the run ended before the kill: {process.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return process


def outputs(out) -> dict:
    tables = {}
    for stream in ("documents", "rejected", "errors"):
        table = pa.concat_tables(pq.read_table(out / stream / f.name) for f in sorted((out / stream).iterdir()))
        tables[stream] = table.sort_by([("id", "ascending")])
    return tables


def assert_same_output(out, reference):
    got, want = outputs(out), outputs(reference)
    for stream in want:
        ids = got[stream]["id"].to_pylist()
        assert len(ids) == len(set(ids)), f"duplicated ids in {stream}"
        assert got[stream].equals(want[stream]), stream
    manifest, expected = (json.loads((d / "manifest.json").read_text()) for d in (out, reference))
    assert manifest["counts"] == expected["counts"] and manifest["stages"] == expected["stages"]
    assert not (out / ".work").exists()


@pytest.fixture
def reference(small_items_sample):
    return small_items_sample


def test_driver_killed_mid_run_then_another_config_is_refused_and_a_rerun_gives_the_uninterrupted_output(tmp_path, reference):
    process = run_until(tmp_path, lambda p: committed(tmp_path) >= 3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    # Ray's own processes outlive a SIGKILLed driver for a moment; the rerun starts a fresh Ray.
    assert not (tmp_path / "manifest.json").exists()
    done = committed(tmp_path)
    # Another configuration over the unfinished run is refused before anything is touched.
    changed = subprocess.run(thresher(tmp_path, "--set", "stages.language.min_score=0.5"), capture_output=True, text=True)
    assert changed.returncode == 2 and "--restart" in changed.stderr
    assert committed(tmp_path) == done and not (tmp_path / "manifest.json").exists()
    rerun = subprocess.run(thresher(tmp_path), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert json.loads((tmp_path / "manifest.json").read_text())["inputs"]["work_items_resumed"] >= done >= 3
    assert_same_output(tmp_path, reference)


def stage_workers(process) -> list[psutil.Process]:
    try:
        family = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in family:
        try:
            if "ReadAndProcess" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def test_a_worker_killed_mid_run_is_restarted_and_the_run_gives_the_uninterrupted_output(tmp_path, reference):
    process = run_until(tmp_path, lambda p: committed(tmp_path) >= 2 and stage_workers(p))
    stage_workers(process)[0].kill()
    _, log = process.communicate(timeout=300)
    assert process.returncode == 0, log[-3000:]  # Ray restarted the actor and ran its items again
    assert_same_output(tmp_path, reference)
