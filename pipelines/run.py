"""``thresher run``: validate, plan, execute on Ray, write, summarise."""

from __future__ import annotations

import datetime as dt
import platform
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from thresher import __version__
from thresher.config import RunConfig
from thresher.pipelines import plan, storage
from thresher.pipelines.journal import WorkJournal, fingerprint
from thresher.pipelines.output import DEDUP_INDEX, MANIFEST, STREAMS, OutputWriter
from thresher.pipelines.readers import discover, file_size, plan_work, unit_bytes_for


def run(config: RunConfig, *, restart: bool = False, out=sys.stderr) -> dict:
    """Runs ``config``; in an output folder holding an unfinished run of the same configuration
    and input it processes only the work items that run did not commit (``restart`` discards them)."""
    started = time.time()
    units = discover(config.input.paths, config.input.format)
    input_bytes = sum(file_size(u.source) for u in units)
    unit_bytes = config.input.unit_bytes or unit_bytes_for(input_bytes)
    work = plan_work(units, unit_bytes)
    settings = config.model_dump(mode="json", include={"input", "stages"})
    destination = config.output.path
    local_output = config.output.model_copy(update={"path": storage.local_output_dir(destination, config.output.local_dir)})
    journal = WorkJournal(local_output.path, fingerprint(settings, work), restart)
    todo = [(number, item) for number, item in enumerate(work) if number not in journal.done]
    resumed = len(work) - len(todo)
    # Before Ray: the stages read the run's own files (models, benchmarks) here, where the config
    # named them. (A submitted job's working directory is gone once its driver joins the cluster.)
    stages = plan.stage_functions(config)
    connected = plan.connect(config.execution)
    ray_started = time.time()
    try:
        if todo:
            for batch in plan.process(config, todo, stages):
                journal.add(batch)
    finally:
        journal.close()
    facts = {
        "run": {
            "thresher_version": __version__,
            "started_at": dt.datetime.fromtimestamp(started, dt.timezone.utc).isoformat(),
            "ray_start_seconds": round(ray_started - started, 3),
            "python": platform.python_version(),
            "ray_cpus": plan.cluster_cpus(),
        },
        "inputs": {"files": len(units), "bytes": input_bytes, "work_items": len(work), "unit_bytes": unit_bytes,
                   "work_items_resumed": resumed},
        "config": config.model_dump(mode="json"),
    }
    # Ray's part is over. Its shutdown takes ~0.4 s, most of it waiting for its processes to exit,
    # so the output is written meanwhile.
    with ThreadPoolExecutor(1, thread_name_prefix="thresher-output") as pool:
        written = pool.submit(_write_output, config, local_output, stages, journal, started, facts)
        if connected:  # now, not at exit: Ray's exit hook sleeps 0.5 s first, for late error messages
            plan.disconnect()
        manifest = written.result()
    journal.remove()
    if storage.is_remote(destination):
        storage.publish(local_output.path, destination, [*STREAMS, DEDUP_INDEX], MANIFEST)
        shutil.rmtree(local_output.path, ignore_errors=True)
    print(summary_table(manifest), file=out)
    return manifest


def _write_output(config: RunConfig, local_output, stages, journal: WorkJournal, started: float, facts: dict) -> dict:
    """The journal's rows as the output folder, committed with a manifest of ``facts``; the manifest."""
    decontaminate = dict(stages).get("decontaminate")
    benchmarks = {b.name: {"path": b.path, "sha256": b.sha256, "benchmark_items": len(b.ids)}
                  for b in (decontaminate.benchmarks if decontaminate else [])}
    writer = OutputWriter(local_output, config.stages.dedup, benchmarks)
    try:
        for batch in journal.replay(config.output.row_group_rows):
            writer.add(batch)
    except BaseException:
        writer.abort()
        raise
    facts["run"]["wall_seconds"] = round(time.time() - started, 3)
    return writer.commit([name for name, _ in stages], facts)


def summary_table(manifest: dict) -> str:
    counts = manifest["counts"]
    wall = manifest["run"]["wall_seconds"]
    lines = [
        f"thresher: {manifest['inputs']['files']} input files, {counts['read']} documents read "
        f"in {wall:.1f}s ({counts['read'] / wall if wall else 0:.1f} docs/s)",
        f"  {'stage':<12}{'in':>9}{'out':>9}{'errored':>9}  rejected",
    ]
    read_errors = manifest["errors_by_stage"].get("read", 0)
    lines.append(f"  {'read':<12}{counts['read']:>9}{counts['read'] - read_errors:>9}{read_errors:>9}")
    for stage, row in manifest["stages"].items():
        rejected = ", ".join(f"{reason}={n}" for reason, n in row["rejected"].items()) or "-"
        lines.append(f"  {stage:<12}{row['in']:>9}{row['out']:>9}{row['errored']:>9}  {rejected}")
    rejected_total = sum(counts["rejected"].values())
    lines.append(
        f"  kept {counts['kept']}  rejected {rejected_total}  errored {counts['errored']}  "
        f"(skipped non-document records: {sum(counts['skipped'].values())})"
    )
    lines.append(f"  output: {manifest['config']['output']['path']}")
    return "\n".join(lines)
