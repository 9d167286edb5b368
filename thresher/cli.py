"""The ``thresher`` command. Exit codes: 0 done, 1 the job failed, 2 bad usage or invalid config."""

from __future__ import annotations

import argparse
import sys
import traceback

from thresher.config import ConfigError, load_config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="thresher", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a pipeline config on an embedded local Ray or a cluster")
    run.add_argument("config", help="pipeline YAML, e.g. pipelines/configs/sample.yaml")
    run.add_argument("--input", action="append", metavar="PATH", help="replaces input.paths (repeatable)")
    run.add_argument("--output", metavar="DIR", help="replaces output.path")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config key")
    run.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else an embedded local Ray)")
    run.add_argument("--restart", action="store_true",
                     help="discard an unfinished run in the output folder instead of continuing it")
    report = commands.add_parser("report", help="print a run's funnel and write OUT_DIR/report.md with samples")
    report.add_argument("out_dir", metavar="OUT_DIR", help="the output folder of a finished run")
    report.add_argument("--samples", type=_non_negative, default=3, metavar="N",
                        help="rejected documents shown per reason, errors per stage (default 3)")
    return parser


def _non_negative(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"not a whole number >= 0: {value!r}")
    return number


def _report(args) -> int:
    from thresher.pipelines.report import FunnelTable, ManifestError, write_report

    try:
        built, path = write_report(args.out_dir, args.samples)
    except ManifestError as e:
        print(f"thresher: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        traceback.print_exc()
        print(f"thresher: the report failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(FunnelTable(built.manifest).render())
    print(f"thresher: wrote {path}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "report":
        return _report(args)
    try:
        config = load_config(args.config, inputs=args.input, output=args.output, overrides=args.set, address=args.address)
    except ConfigError as e:
        print(f"thresher: config error: {e}", file=sys.stderr)
        return 2
    from thresher.pipelines.journal import ResumeRefused
    from thresher.pipelines.run import run

    try:
        run(config, restart=args.restart)
    except ResumeRefused as e:
        print(f"thresher: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("thresher: interrupted", file=sys.stderr)
        return 1
    except Exception as e:
        traceback.print_exc()
        print(f"thresher: the job failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
