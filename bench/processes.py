"""Where the cores go in one ``thresher run``: CPU seconds of every process of its tree.

An embedded run is more processes than its stage actors: Ray's servers and agents, the driver. On
a short run they decide how far the end-to-end rate falls short of the rate once started
(bench/peers.py), so this prints each one's user + system CPU seconds, read from /proc while the
run goes (a process's last reading before it exits), grouped by role, next to the run's wall
seconds and the cores' capacity in that time (wall x ``--cpus``).

Input and stages: bench/peers.py's (``--pages`` real pages of bench/doc_pages.py, FineWeb's
stages, ``engine: cascade``, classify ``min_score: --min-edu``; 0: no classify). ``--repeats``
runs; medians per role.

    .venv/bin/python bench/processes.py [--pages 5000] [--min-edu 3] [--engine cascade] [--repeats 3]
                                        [--out bench/results/processes.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doc_pages import mixed_warc  # noqa: E402
from extraction import REPO, write_result  # noqa: E402
from peers import THRESHER, thresher_stages  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
# Ray names its workers by what they run; the rest are told apart by their command line.
ROLES = [("ray::_ReadAndProcess", "stage actors"), ("ray::DashboardAgent", "Ray's servers and agents"),
         ("ray::RuntimeEnvAgent", "Ray's servers and agents"), ("ray::", "other Ray workers"),
         ("thresher run", "driver"), ("", "Ray's servers and agents")]


def role(command: str) -> str:
    return next(name for marker, name in ROLES if marker in command)


def tree_cpu(root: int) -> dict[int, tuple[str, float]]:
    """{pid: (command line, CPU seconds)} of ``root`` and its descendants, now."""
    stats = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile
            continue
        # after the command: state, ppid, ..., utime and stime are the 12th and 13th
        stats[int(entry)] = (int(fields[1]), command, (int(fields[11]) + int(fields[12])) / TICKS)
    children = defaultdict(list)
    for pid, (ppid, _, _) in stats.items():
        children[ppid].append(pid)
    found, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            found[pid] = stats[pid][1:]
        todo.extend(children[pid])
    return found


def one_run(warcs: list[str], stages: dict, cpus: int, workdir: str) -> dict:
    out = tempfile.mkdtemp(prefix="run-", dir=workdir)
    config = Path(out + ".yaml")
    config.write_text(json.dumps({"input": {"paths": warcs}, "output": {"path": out}, "stages": stages,
                                  "execution": {"num_cpus": cpus, "progress": False}}))
    with open(out + ".log", "w+") as log:  # not a pipe: unread while the run goes, a full one would stall it
        started = time.perf_counter()
        process = subprocess.Popen([THRESHER, "run", str(config)], stdout=subprocess.DEVNULL, stderr=log, cwd=REPO)
        seen: dict[int, tuple[str, float]] = {}
        while process.poll() is None:
            for pid, (command, seconds) in tree_cpu(process.pid).items():
                # an exiting process's command line reads empty: keep the one seen before
                seen[pid] = (command or seen.get(pid, ("", 0.0))[0], seconds)
            time.sleep(0.1)
        wall = time.perf_counter() - started
        if process.returncode:
            log.seek(0)
            raise SystemExit(f"thresher run failed ({process.returncode}):\n{log.read()[-3000:]}")
    roles: dict[str, float] = defaultdict(float)
    for command, seconds in seen.values():
        roles[role(command)] += seconds
    return {"wall_seconds": wall, "capacity_cpu_seconds": wall * cpus, "roles": dict(roles),
            "processes": len(seen)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=5000)
    parser.add_argument("--min-edu", type=float, default=3.0)
    parser.add_argument("--engine", default="cascade", choices=["trafilatura", "cascade"])
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="bench/results/processes.json")
    args = parser.parse_args()
    warcs = sorted(str(p) for p in mixed_warc(args.pages).glob("*.warc.gz"))
    stages = thresher_stages(args.engine, args.min_edu or None, None)
    with tempfile.TemporaryDirectory(prefix="thresher-bench-processes-", dir=REPO / "bench" / "data") as workdir:
        runs = []
        for repeat in range(args.repeats):
            runs.append(one_run(warcs, stages, args.cpus, workdir))
            print(f"run {repeat + 1}: {runs[-1]['wall_seconds']:.1f} s, {sum(runs[-1]['roles'].values()):.1f} CPU s "
                  f"in {runs[-1]['processes']} processes", flush=True)
    names = sorted({name for r in runs for name in r["roles"]}, key=lambda n: -statistics.median(r["roles"].get(n, 0) for r in runs))
    medians = {name: statistics.median(r["roles"].get(name, 0.0) for r in runs) for name in names}
    wall = statistics.median(r["wall_seconds"] for r in runs)
    total = statistics.median(sum(r["roles"].values()) for r in runs)
    print(f"\n{args.pages} pages, engine {args.engine}, classify min_score {args.min_edu or 'off'}, {args.cpus} CPUs: "
          f"wall {wall:.1f} s, capacity {wall * args.cpus:.1f} CPU s, used {total:.1f} ({total / (wall * args.cpus):.0%})")
    for name, seconds in medians.items():
        print(f"  {name:26} {seconds:6.1f} CPU s  {seconds / total:5.1%}")
    write_result({"pages": args.pages, "engine": args.engine, "min_edu": args.min_edu, "cpus": args.cpus,
                  "repeats": args.repeats, "median_wall_seconds": wall, "median_cpu_seconds": total,
                  "median_cpu_seconds_by_role": medians, "runs": runs}, args.out)


if __name__ == "__main__":
    main()
