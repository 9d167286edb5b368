"""The Ray plan: work items -> records -> per-document stages -> rows for the writer.

This is the only module that knows Ray. Readers and stages are plain Python over Arrow batches.
"""

from __future__ import annotations

import logging
import os
from collections import deque
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
_ITEMS_PER_ACTOR = 2  # in flight: the next item is queued while the actor works (one: 1-2 s slower)
# An actor killed mid-item (a lost node, the OOM killer) is restarted and the item run again, from
# its beginning (the journal drops the rows of the failed attempt). An item that kills its actor
# every time then fails the run, naming it, rather than looping forever.
_ITEM_RETRIES = 3


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


def process(config: RunConfig, work: list[tuple[int, list[Unit]]], stages: list[tuple[str, object]]) -> Iterator[pa.Table]:
    """The processed rows of the numbered work items, batch by batch, as the stage actors make them.

    One stage actor per CPU of the cluster, each holding the stages (and the models they load) for
    the whole run; each reads its work items itself (a few MB of input each, see ``plan_work``), a
    batch at a time, and streams every batch back as soon as the stages have run on it. A separate
    read task ran ahead of extraction (reading is ~100x cheaper per record) and parked the rest of
    the file in the object store, so peak memory grew with the input (measured: +650 MB of queued
    blocks at 10x). Reading where the batches are consumed bounds memory by construction: at most
    ``_ITEMS_PER_ACTOR`` items per actor are under way.

    Plain Ray actors, not Ray Data's ``map_batches``: that ran the same actors, but cost a run
    ~4 s more (bench/peers.py's 5,000 pages, edu cascade: 22.2 against 18.1 s, medians of 7
    alternating runs against a prototype of this): three helper actors, each a process importing
    Ray Data (with pandas), its import in every stage actor and in the driver, and its executor's
    polling, all for a plan with no shuffle, no dataset-level operation and its reading already
    inside the actors.
    """
    items = deque({"item": number, "sources": [u.source for u in units], "formats": [u.format for u in units],
                   "starts": [u.start for u in units], "ends": [u.end for u in units]} for number, units in work)
    stage_actor = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=_ITEM_RETRIES)(_ReadAndProcess)
    actors = [stage_actor.remote(config.input.max_record_bytes, config.execution.batch_rows)
              for _ in range(min(cluster_cpus(), len(items)))]
    # The stages (with their models' bytes) go to the object store once. Not as constructor
    # arguments: a restart needs them again, and Ray warns that it fails if they have gone out of
    # scope by then. This reference lives as long as the run; inside a list, Ray passes it on
    # unresolved.
    chain = [ray.put([fn for _, fn in stages])]
    total, running = len(items), {}  # running: an item's stream of batches -> (the actor making it, the item)

    def give(actor) -> None:
        if items:
            item = items.popleft()
            running[actor.run.remote(item, chain)] = actor, item

    try:
        for _ in range(_ITEMS_PER_ACTOR):
            for actor in actors:
                give(actor)
        with _progress(total, config.execution.progress) as bar:
            while running:
                (stream,), _ = ray.wait(list(running))
                try:
                    batch = ray.get(next(stream))
                except StopIteration:  # the item is done: its actor takes the next one
                    give(running.pop(stream)[0])
                    bar.update()
                    continue
                except Exception as e:  # a stage's bug, or an actor that died on every try
                    raise RuntimeError(f"{_describe(running[stream][1])} failed: {e}") from e
                yield batch
    finally:  # also when the caller stops early: the actors hold the cluster's CPUs
        for actor in actors:
            ray.kill(actor)


def _describe(item: dict) -> str:
    """Which input a work item is, for an error message."""
    first = item["sources"][0]
    if item["ends"][0] is not None:  # a byte range of a large WARC
        first += f" bytes {item['starts'][0]}-{item['ends'][0]}"
    more = len(item["sources"]) - 1
    return f"work item {item['item']} ({first}{f' and {more} more files' if more else ''})"


def _progress(total: int, show: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="work items", unit="item", disable=not show, dynamic_ncols=True)


class _ReadAndProcess:
    """A stage actor. Reads the records of a work item in batches of at most ``batch_rows``
    documents (and bounded bytes) and runs every stage on each batch before reading the next. The
    item's rows come between a begin and an end marker, for the journal that commits items one by one."""

    def __init__(self, max_record_bytes: int, batch_rows: int):
        self.max_record_bytes, self.batch_rows, self.fns = max_record_bytes, batch_rows, None

    def run(self, item: dict, chain: list) -> Iterator[pa.Table]:
        if self.fns is None:  # once per actor: the stages keep their state (models, caches) across items
            self.fns = ray.get(chain[0])
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
