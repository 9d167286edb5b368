"""The Ray Data plan: work items -> records -> per-document stages -> rows for the writer.

This is the only module that knows Ray. Readers and stages are plain Python over Arrow batches.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pyarrow as pa
import ray
from ray._private import ray_constants

from thresher.config import ExecutionConfig, RunConfig
from thresher.pipelines.extract import CascadeGate, Extractor, Metadata
from thresher.pipelines.readers import Unit, read_unit
from thresher.schema import ITEM_BEGIN, ITEM_END, KEPT, empty_row, rows_to_table

_READ_BATCH_BYTES = 8 * 2**20
_READ_BATCH_MAX_ROWS = 4096  # skipped records (requests, images) are small but not free
_MAX_BLOCK_BYTES = 8 * 2**20


def connect(execution: ExecutionConfig) -> bool:
    """Embedded local Ray sized to the machine, or the cluster at ``address`` / RAY_ADDRESS.
    True if this call connected (the caller then shuts Ray down), False if a caller had."""
    address = execution.address or os.environ.get("RAY_ADDRESS")
    common = dict(logging_level=logging.WARNING, configure_logging=True, log_to_driver=True)
    connected = not ray.is_initialized()  # else a caller (a test, a notebook) already chose the cluster
    if connected and address:
        ray.init(address=address, **common)
    elif connected:
        # An embedded Ray serves no one else: keep every one of its gRPC servers on loopback.
        # On Linux Ray binds them to all interfaces unless this (misleadingly named) switch is 0.
        # Its child processes read the variable; this process read it when ray was imported.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        ray_constants.ENABLE_RAY_CLUSTER = False
        ray.init(num_cpus=execution.num_cpus or embedded_cpus(), include_dashboard=False, **common)
    context = ray.data.DataContext.get_current()
    # A reader may run a few blocks ahead of extraction; Ray's default block of up to 128 MB
    # (sized for tensors) made that hundreds of MB of raw HTML per reader, growing with the input.
    context.target_max_block_size = _MAX_BLOCK_BYTES
    context.enable_progress_bars = execution.progress
    context.print_on_execution_start = False
    return connected


def disconnect() -> None:
    """Leaves the Ray that ``connect`` joined; shuts it down if this process started it."""
    node = ray._private.worker._global_node
    if node is not None and node.is_head():
        # Ray's autoscaler monitor answers SIGTERM by reporting its end to the GCS, which
        # ray.shutdown stops first, so it hangs until SIGKILLed 1 s later (1.0 of shutdown's 1.4 s,
        # measured). An embedded Ray has nothing to autoscale: its monitor goes first, unheard.
        for process in node.all_processes.get(ray_constants.PROCESS_TYPE_MONITOR, []):
            process.process.kill()
            process.process.wait()
    ray.shutdown()


def embedded_cpus() -> int:
    """The cores this process may use (a container's os.cpu_count() can report the host's)."""
    return len(os.sched_getaffinity(0))


def stage_functions(config: RunConfig) -> list[tuple[str, object]]:
    """(name, batch -> batch) for each configured stage, in the contract's fixed order."""
    stages = config.stages
    chain: list[tuple[str, object]] = []
    if stages.url:  # before extraction: a blocked URL costs nothing to extract
        from thresher.filters.url import UrlFilter

        chain.append(("url", UrlFilter(stages.url)))
    if stages.extract and stages.extract.engine == "cascade":  # judges with the later stages' rules
        chain.append(("cascade", CascadeGate(stages.extract, stages.language, stages.quality, stages.classify)))
    # Extract always runs: switched off, it still turns HTML/PDF records into clear errors.
    extractor = Extractor(stages.extract)
    chain.append(("extract", extractor))
    if stages.language:
        from thresher.filters.language import LanguageFilter

        chain.append(("language", LanguageFilter(stages.language)))
    if stages.quality:
        from thresher.filters.quality import QualityFilter

        chain.append(("quality", QualityFilter(stages.quality)))
    if stages.pii:
        from thresher.filters.pii import PiiRedactor

        chain.append(("pii", PiiRedactor(stages.pii)))
    if stages.decontaminate:
        from thresher.filters.decontaminate import Decontaminator

        chain.append(("decontaminate", Decontaminator(stages.decontaminate)))
    if stages.dedup:  # its keys here; the corpus-wide grouping runs when the writer commits
        from thresher.filters.dedup import DedupKeys

        chain.append(("dedup", DedupKeys(stages.dedup)))
    if stages.classify:
        from thresher.classifiers.stage import EduClassifier

        chain.append(("classify", EduClassifier(stages.classify)))
    if extractor.defers_metadata:  # after every filter: it searches only the pages they all kept
        chain.append(("metadata", Metadata(stages.extract)))
    if stages.tokens:  # last: after every stage that changes the text
        from thresher.filters.tokens import TokenCounter

        chain.append(("tokens", TokenCounter(stages.tokens.encoding)))
    return chain


def cluster_cpus() -> int:
    return int(ray.cluster_resources().get("CPU", 1))


def build(config: RunConfig, work: list[tuple[int, list[Unit]]], stages: list[tuple[str, object]]) -> ray.data.Dataset:
    """The lazy Dataset of processed rows for the numbered work items; nothing runs until it is
    iterated.

    Each work item (a few MB of input, see ``plan_work``) is read *inside* the actor that runs
    the stages, a batch at a time. A separate read task ran ahead of extraction (reading is ~100x
    cheaper per record) and parked the rest of the file in the object store, so peak memory grew
    with the input (measured: +650 MB of queued blocks at 10x). Reading where the batches are
    consumed bounds memory by construction: no backpressure setting to tune.
    """
    items = [{"item": number, "sources": [u.source for u in units], "formats": [u.format for u in units],
              "starts": [u.start for u in units], "ends": [u.end for u in units]} for number, units in work]
    ds = ray.data.from_items(items, override_num_blocks=max(1, len(items)))
    # An actor pool rather than tasks: an actor has its next work items queued while it works,
    # where a task waited ~0.5 s to be dispatched (measured: 1.64 of 2 cores busy with tasks,
    # 1.89 with actors); and a stateful stage (a loaded model) is built once per actor.
    return ds.map_batches(
        _ReadAndProcess, fn_constructor_args=(config.input.max_record_bytes, config.execution.batch_rows,
                                              [fn for _, fn in stages]),
        compute=ray.data.ActorPoolStrategy(size=cluster_cpus()), num_cpus=1,
        batch_size=1, batch_format="pyarrow",
    )


class _ReadAndProcess:
    """Reads the records of a work item in batches of at most ``batch_rows`` documents (and
    bounded bytes) and runs every stage on each batch before reading the next. The item's rows
    come between a begin and an end marker, for the journal that commits items one by one."""

    def __init__(self, max_record_bytes: int, batch_rows: int, fns):
        self.max_record_bytes, self.batch_rows, self.fns = max_record_bytes, batch_rows, fns

    def __call__(self, items: pa.Table) -> Iterator[pa.Table]:
        for item in items.to_pylist():
            number = item["item"]
            yield rows_to_table([empty_row(status=ITEM_BEGIN, item=number)])
            units = map(Unit, item["sources"], item["formats"], item["starts"], item["ends"])
            for batch in self._batches(units, number):
                for fn in self.fns:
                    batch = fn(batch)
                yield batch
            yield rows_to_table([empty_row(status=ITEM_END, item=number)])

    def _batches(self, units, number: int) -> Iterator[pa.Table]:
        rows, documents, size = [], 0, 0
        for unit in units:
            for row in read_unit(unit, self.max_record_bytes):
                row["item"] = number
                rows.append(row)
                documents += row["status"] == KEPT
                size += len(row["raw"] or b"") + len(row["text"] or "")
                if documents >= self.batch_rows or size >= _READ_BATCH_BYTES or len(rows) >= _READ_BATCH_MAX_ROWS:
                    yield rows_to_table(rows)
                    rows, documents, size = [], 0, 0
        if rows:
            yield rows_to_table(rows)
