"""The Ray Data plan: input units -> records -> per-document stages -> rows for the writer.

This is the only module that knows Ray. Readers and stages are plain Python over Arrow batches.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pyarrow as pa
import ray

from thresher.config import ExecutionConfig, RunConfig
from thresher.pipelines.extract import Extractor
from thresher.pipelines.readers import Unit, file_size, read_unit
from thresher.schema import KEPT, rows_to_table

# Reading is I/O and decompression, ~100x cheaper per record than extraction, and a streaming
# read task lives as long as its files. Reserving any CPU for it kept an extract task off that
# core for the whole run (measured: 1.3 of 2 cores busy). So read tasks reserve none and are
# capped in number instead.
_READ_CPUS = 0
_READ_BATCH_BYTES = 8 * 2**20
_READ_BATCH_MAX_ROWS = 4096  # skipped records (requests, images) are small but not free
_MAX_BLOCK_BYTES = 8 * 2**20
_GROUP_BYTES = 16 * 2**20
_GROUP_FILES = 256


def connect(execution: ExecutionConfig) -> None:
    """Embedded local Ray sized to the machine, or the cluster at ``address`` / RAY_ADDRESS."""
    address = execution.address or os.environ.get("RAY_ADDRESS")
    common = dict(logging_level=logging.WARNING, configure_logging=True, log_to_driver=True)
    if ray.is_initialized():
        pass  # a caller (a test, a notebook) already chose the cluster
    elif address:
        ray.init(address=address, **common)
    else:
        # An embedded Ray serves no one else: keep every one of its gRPC servers on loopback.
        # On Linux Ray binds them to all interfaces unless this (misleadingly named) switch is 0.
        # Its child processes read the variable; this process read it when ray was imported.
        from ray._private import ray_constants

        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        ray_constants.ENABLE_RAY_CLUSTER = False
        ray.init(num_cpus=execution.num_cpus or embedded_cpus(), include_dashboard=False, **common)
    context = ray.data.DataContext.get_current()
    # A reader may run a few blocks ahead of extraction; Ray's default block of up to 128 MB
    # (sized for tensors) made that hundreds of MB of raw HTML per reader, growing with the input.
    context.target_max_block_size = _MAX_BLOCK_BYTES
    context.enable_progress_bars = execution.progress
    context.print_on_execution_start = False


def embedded_cpus() -> int:
    """Task slots for an embedded Ray: the cores this process may use, plus the one slot that
    ``build`` keeps for the split tasks (a container's os.cpu_count() can report the host's)."""
    return len(os.sched_getaffinity(0)) + 1


def stage_functions(config: RunConfig) -> list[tuple[str, object]]:
    """(name, batch -> batch) for each configured stage, in the contract's fixed order."""
    stages = config.stages
    chain: list[tuple[str, object]] = []
    if stages.url:  # before extraction: a blocked URL costs nothing to extract
        from thresher.filters.url import UrlFilter

        chain.append(("url", UrlFilter(stages.url)))
    # Extract always runs: switched off, it still turns HTML/PDF records into clear errors.
    chain.append(("extract", Extractor(stages.extract)))
    if stages.language:
        from thresher.filters.language import LanguageFilter

        chain.append(("language", LanguageFilter(stages.language)))
    if stages.quality:
        from thresher.filters.quality import QualityFilter

        chain.append(("quality", QualityFilter(stages.quality)))
    if stages.pii:
        from thresher.filters.pii import PiiRedactor

        chain.append(("pii", PiiRedactor(stages.pii)))
    if stages.dedup:  # its keys here; the corpus-wide grouping runs when the writer commits
        from thresher.filters.dedup import DedupKeys

        chain.append(("dedup", DedupKeys(stages.dedup)))
    return chain


class _ReadUnits:
    """Records of a group of units, in batches of at most ``batch_rows`` documents (and bounded
    bytes), so a read task never buffers more than one batch."""

    def __init__(self, max_record_bytes: int, batch_rows: int):
        self.max_record_bytes, self.batch_rows = max_record_bytes, batch_rows

    def __call__(self, groups: pa.Table) -> Iterator[pa.Table]:
        rows, documents, size = [], 0, 0
        units = [Unit(s, f) for group in groups.to_pylist() for s, f in zip(group["sources"], group["formats"])]
        for unit in units:
            for row in read_unit(unit, self.max_record_bytes):
                rows.append(row)
                documents += row["status"] == KEPT
                size += len(row["raw"] or b"") + len(row["text"] or "")
                if documents >= self.batch_rows or size >= _READ_BATCH_BYTES or len(rows) >= _READ_BATCH_MAX_ROWS:
                    yield rows_to_table(rows)
                    rows, documents, size = [], 0, 0
        if rows:
            yield rows_to_table(rows)


def read_groups(units: list[Unit]) -> list[list[Unit]]:
    """Input files packed into read tasks of about ``_GROUP_BYTES`` (a big WARC stays alone).

    A Ray task costs milliseconds to schedule; one per small HTML file would cost more than
    reading it. Grouping keeps the task count near input-bytes / 16 MB.
    """
    groups, current, current_bytes = [], [], 0
    for unit in units:
        size = file_size(unit.source)
        if current and (current_bytes + size > _GROUP_BYTES or len(current) >= _GROUP_FILES):
            groups.append(current)
            current, current_bytes = [], 0
        current.append(unit)
        current_bytes += size
    if current:
        groups.append(current)
    return groups


def cluster_cpus() -> int:
    return int(ray.cluster_resources().get("CPU", 1))


def _read_concurrency() -> int:
    return max(1, cluster_cpus() // 2)


def build(config: RunConfig, units: list[Unit], stages: list[tuple[str, object]]) -> ray.data.Dataset:
    """The lazy Dataset of processed rows; nothing runs until it is iterated."""
    items = [{"sources": [u.source for u in g], "formats": [u.format for u in g]} for g in read_groups(units)]
    ds = ray.data.from_items(items, override_num_blocks=max(1, len(items)))
    ds = ds.map_batches(
        _ReadUnits(config.input.max_record_bytes, config.execution.batch_rows),
        batch_size=1, batch_format="pyarrow", num_cpus=_READ_CPUS,
        compute=ray.data.TaskPoolStrategy(size=_read_concurrency()),
    )
    # Ray Data merges what a read task yields into blocks of up to _MAX_BLOCK_BYTES (~100 pages),
    # and a block goes to one task: this streaming split lets every core extract one large WARC.
    ds = ds.repartition(target_num_rows_per_block=config.execution.batch_rows)
    # The stages run in one pool of actors rather than as tasks: an actor has its next batches
    # queued while it works, where a task waited ~0.5 s to be dispatched (measured: 1.64 of 2
    # cores busy with tasks, 1.89 with actors). The pool takes every slot but one: the split's
    # tasks need a slot of their own, or the run deadlocks with every slot held by an actor. One
    # pool runs the whole chain, so a second stage cannot claim those slots a second time.
    return ds.map_batches(
        _Stages, fn_constructor_args=([fn for _, fn in stages],),
        compute=ray.data.ActorPoolStrategy(size=max(1, cluster_cpus() - 1)), num_cpus=1,
        batch_size=config.execution.batch_rows, batch_format="pyarrow",
    )


class _Stages:
    """The per-document stages, in order, inside one pool actor; a stateful stage (a loaded
    model) is built once per actor."""

    def __init__(self, fns):
        self.fns = fns

    def __call__(self, batch: pa.Table) -> pa.Table:
        for fn in self.fns:
            batch = fn(batch)
        return batch
