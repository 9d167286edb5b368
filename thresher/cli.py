"""The ``thresher`` command. Exit codes: 0 done, 1 the job failed, 2 bad usage or invalid config."""

from __future__ import annotations

import argparse
import gc
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
    submit = commands.add_parser(
        "submit", help="run a pipeline config as a Ray job on a cluster, shipping the project with it",
        description="Builds a wheel of this checkout and submits `thresher run` through the Ray Jobs API. Inputs, "
        "output and dedup.against must be paths every node sees (shared storage) or URIs; relative ones are "
        "made absolute here. A token-protected cluster (RAY_AUTH_MODE=token) takes its token from RAY_AUTH_TOKEN.")
    submit.add_argument("config", help="pipeline YAML, validated here before anything is submitted")
    submit.add_argument("--address", required=True, metavar="http://HOST:8265", help="the cluster's dashboard address")
    submit.add_argument("--wait", action="store_true", help="stream the job's logs; exit 0 if it succeeded, 1 if not")
    submit.add_argument("--input", action="append", metavar="PATH", help="replaces input.paths (repeatable)")
    submit.add_argument("--output", metavar="DIR", help="replaces output.path")
    submit.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config key")
    submit.add_argument("--restart", action="store_true", help="as for run: discard an unfinished run in the output folder")
    submit.add_argument("--pip", action="store_true",
                        help="install the project's requirements on the nodes (default: the cluster's Python has them)")
    report = commands.add_parser("report", help="print a run's funnel and write OUT_DIR/report.md with samples")
    report.add_argument("out_dir", metavar="OUT_DIR", help="the output folder of a finished run")
    report.add_argument("--samples", type=_non_negative, default=3, metavar="N",
                        help="rejected documents shown per reason, errors per stage (default 3)")
    train = commands.add_parser("train", help="train an educational-value model on labelled documents, with a held-out report")
    train.add_argument("--data", action="append", required=True, metavar="LABELS",
                       help="JSONL (.gz, .zst) or Parquet with `text` and `score` 0-5 (repeatable)")
    train.add_argument("--out", required=True, metavar="MODEL_DIR", help="model directory to write (replaced if it is one)")
    train.add_argument("--kind", choices=["fasttext", "sklearn"], default="fasttext")
    train.add_argument("--param", action="append", type=_param, default=[], metavar="KEY=VALUE",
                       help="a model parameter, e.g. epoch=50 (fasttext) or model=ridge (sklearn)")
    train.add_argument("--test-size", type=float, default=0.2, help="held-out share, stratified by score (default 0.2)")
    train.add_argument("--seed", type=int, default=0, help="split and model seed (default 0)")
    evaluate = commands.add_parser("evaluate", help="score labelled documents with a model directory")
    evaluate.add_argument("--model", required=True, metavar="MODEL_DIR")
    evaluate.add_argument("--data", action="append", required=True, metavar="LABELS", help="as for train (repeatable)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    blend = commands.add_parser("blend", help="mix Thresher outputs and other datasets by token budget into shuffled shards")
    blend.add_argument("mix", metavar="MIX.yaml", help="sources with shares or token budgets, max epochs, filters")
    blend.add_argument("--output", metavar="DIR", help="replaces output.path")
    blend.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any mix key")
    return parser


def _guarded(work, what: str, usage_errors: tuple[type[Exception], ...], usage: str = "") -> tuple[int, object]:
    """(exit code, ``work()``'s result): 2 and one line for a usage error (nothing done), 1 and the
    traceback for anything else."""
    try:
        return 0, work()
    except usage_errors as e:
        print(f"thresher: {usage}{e}", file=sys.stderr)
        return 2, None
    except KeyboardInterrupt:
        print("thresher: interrupted", file=sys.stderr)
        return 1, None
    except Exception as e:
        traceback.print_exc()
        print(f"thresher: {what} failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1, None


def _blend(args) -> int:
    from thresher.pipelines.blend import BlendError, blend, load_mix, summary

    code, manifest = _guarded(lambda: blend(load_mix(args.mix, output=args.output, overrides=args.set)),
                              "the blend", (ConfigError, BlendError), usage="mix error: ")
    if code == 0:
        print(summary(manifest))
    return code


def _non_negative(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"not a whole number >= 0: {value!r}")
    return number


def _param(item: str) -> tuple[str, object]:
    import yaml

    key, equals, raw = item.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {item!r}")
    try:
        return key, yaml.safe_load(raw)
    except yaml.YAMLError:
        raise argparse.ArgumentTypeError(f"cannot parse the value of {item!r}") from None


def _report(args) -> int:
    from thresher.pipelines.report import FunnelTable, ManifestError, write_report

    code, done = _guarded(lambda: write_report(args.out_dir, args.samples), "the report", (ManifestError,))
    if code == 0:
        built, path = done
        print(FunnelTable(built.manifest).render())
        print(f"thresher: wrote {path}", file=sys.stderr)
    return code


def _model_command(args, argv: list[str]) -> int:
    import json
    import shlex

    from thresher.classifiers.labels import LabelsError
    from thresher.classifiers.model_dir import ModelDirError
    from thresher.classifiers.training import TrainingError, evaluate_model, train

    def work() -> dict:
        if args.command == "evaluate":
            return evaluate_model(args.model, args.data)
        if not 0 < args.test_size < 1:
            raise TrainingError(f"--test-size {args.test_size}: must be between 0 and 1")
        return train(args.data, args.out, args.kind, dict(args.param), args.test_size, args.seed,
                     command=shlex.join(["thresher", *argv]))["metrics"]

    code, metrics = _guarded(work, args.command, (LabelsError, ModelDirError, TrainingError))
    if code:
        return code
    if args.command == "evaluate" and args.json:
        print(json.dumps(metrics))
    else:
        print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items() if k != "confusion"))
    if args.command == "train":
        print(f"thresher: wrote {args.out} (card.json, report.md)", file=sys.stderr)
    return 0


def _submit(config, args) -> int:
    from thresher.pipelines.submit import SubmitError, submit

    try:
        return submit(config, args.address, wait=args.wait, pip=args.pip, restart=args.restart)
    except SubmitError as e:
        print(f"thresher: {e}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    if args.command == "report":
        return _report(args)
    if args.command == "blend":
        return _blend(args)
    if args.command in ("train", "evaluate"):
        return _model_command(args, argv)
    try:
        # submit's --address is the Jobs API's, not the address the job's driver joins.
        address = args.address if args.command == "run" else None
        config = load_config(args.config, inputs=args.input, output=args.output, overrides=args.set, address=address)
    except ConfigError as e:
        print(f"thresher: config error: {e}", file=sys.stderr)
        return 2
    if args.command == "submit":
        return _submit(config, args)
    from thresher.pipelines.journal import ResumeRefused
    from thresher.pipelines.run import run

    return _guarded(lambda: run(config, restart=args.restart), "the job", (ResumeRefused,))[0]


def console() -> None:
    """The installed ``thresher`` command and ``python -m thresher.cli``: main, then exit."""
    code = main()
    # The interpreter's last collection at exit walks every object of the ~2,300 modules Ray, Ray
    # Data and pyarrow load (0.4-0.7 s of each run's wall time) only to free memory that the
    # process's end returns anyway: the objects are frozen out of it.
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    console()
