"""The command line: `python -m harness init` (a spec for an ONNX model), `report` (the HTML report of a
results file), and the upgrade gate's `compare`, `ab` and `merge`.

This module parses the command line and hands each command to its module: init.py writes a commented spec
skeleton made from a model (harness/spec/skeleton.py); report.py writes the HTML report of a results file
(harness/results/html.py); compare.py judges two
results (or baseline) files test by test with the gate's statistics and prints one table; ab.py
produces the two files itself, running one selection under two Python environments interleaved and
pooling each side's rounds; merge.py joins the results files of CI shards. The results format and its
renderers live in harness/results/.

Exit status: 0 no regression, 1 a regression, a failing or inconclusive test in NEW that is not a listed known
failure, a test OLD has and NEW lacks (unless --allow-removed), or an
improvement with --fail-on-improvement; 2 the inputs cannot be used (the message names the file or command
and the fix).
"""

from __future__ import annotations

import argparse
import datetime
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli.output import check_output
from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.results.comparison import GateOptions

EXIT_UNUSABLE = 2  # 0 and 1 are the gate's verdict (harness/results/comparison.py's exit_status)


# ---------------------------------------------------------------------------------------------------
# Command line


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (argparse exits 2 itself on a usage error)."""
    own, pytest_args = _split_pytest_args(list(sys.argv[1:] if argv is None else argv))
    parser = _parser()
    args = parser.parse_args(own)
    if args.command not in _TAKES_PYTEST_ARGS and pytest_args is not None:
        parser.error(f"{args.command} takes no pytest arguments after '--'")
    try:
        check_output(args)
        return _COMMANDS[args.command](args, pytest_args or [])
    except HarnessError as error:  # CliError, ResultsFileError, MergeError, and BaselineError from BaselineFile.load
        print(f"harness {args.command}: error: {error}", file=sys.stderr)
        return EXIT_UNUSABLE


def _compare(args: argparse.Namespace, pytest_args: Sequence[str]) -> int:
    from harness.cli.compare import run_compare

    return run_compare(Path(args.old), Path(args.new), _gate_options(args), markdown=args.markdown)


def _ab(args: argparse.Namespace, pytest_args: Sequence[str]) -> int:
    from harness.cli.ab import run_ab

    out = args.out or _default_out()
    return run_ab(args.a, args.b, args.rounds, out, pytest_args, _gate_options(args), markdown=args.markdown)


def _merge(args: argparse.Namespace, pytest_args: Sequence[str]) -> int:
    from harness.cli.merge import run_merge

    return run_merge([Path(path) for path in args.files], args.output, allow_mixed=args.allow_mixed)


def _init(args: argparse.Namespace, pytest_args: Sequence[str]) -> int:
    from harness.cli.init import run_init

    return run_init(Path(args.model), args.output, force=args.force)


def _report(args: argparse.Namespace, pytest_args: Sequence[str]) -> int:
    from harness.cli.report import run_report

    return run_report(Path(args.results), args.output)


# Each subcommand's runner, given the parsed arguments and what follows '--'. Runners import their module
# when called, so that `--version` and `--help` load nothing heavy.
_COMMANDS: dict[str, Callable[[argparse.Namespace, Sequence[str]], int]] = {
    "init": _init,
    "report": _report,
    "compare": _compare,
    "ab": _ab,
    "merge": _merge,
}
_TAKES_PYTEST_ARGS = frozenset({"ab"})


def _gate_options(args: argparse.Namespace) -> GateOptions:
    from harness.backends import BUILTIN_BACKENDS
    from harness.gate import CostPolicy
    from harness.results.comparison import GateOptions

    return GateOptions(
        args.alpha,
        args.cpu_threshold,
        args.gpu_threshold,
        args.accuracy_factor,
        args.fail_on_improvement,
        args.allow_removed,
        Path(args.known_failures) if args.known_failures else None,
        builtin_backends={
            short_id: (descriptor.device_kind.value, descriptor.latency_threshold)
            for short_id, descriptor in BUILTIN_BACKENDS.items()
        },
        costs=CostPolicy(
            args.build_time_threshold, args.plan_size_threshold, args.memory_threshold, args.output_size_threshold
        ),
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("trt-harness")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed: pip install -e .)"


def _split_pytest_args(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """Everything after the first '--' belongs to pytest, untouched by argparse (which would eat '-k' etc.)."""
    if "--" not in argv:
        return argv, None
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1 :]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness", description="trt-harness: spec skeletons, HTML reports, and the upgrade gate"
    )
    parser.add_argument("--version", action="version", version=f"trt-harness {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser(
        "init",
        help="write a spec skeleton for an ONNX model (then: pytest --harness-spec SPEC)",
        description="Write a commented spec made from the model: its inputs, dtypes and dynamic dims as the model "
        "names them, a guessed profile, its outputs. Exit 0: written; 2: unusable model or output (nothing written).",
    )
    init.add_argument("model", metavar="MODEL.onnx", help="the float32 ONNX model")
    init.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="SPEC.toml",
        help="where to write the spec, '-' for stdout (default: MODEL's name with .toml, beside it)",
    )
    init.add_argument("--force", action="store_true", help="overwrite an existing spec file")
    report = commands.add_parser(
        "report",
        help="write the HTML report of a results file",
        description="Write the self-contained HTML report of a results file (what pytest --harness-html writes "
        "after a run). Exit 0: written; 2: not a results file, or the report cannot be written.",
    )
    report.add_argument("results", metavar="RESULTS.json", help="a results file written by pytest --results")
    report.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="REPORT.html",
        help="where to write the report (default: RESULTS's name with .html, beside it)",
    )
    compare = commands.add_parser(
        "compare",
        help="compare two results or baseline files test by test",
        description="Compare OLD with NEW test by test. Exit 0: no regression; 1: a regression; 2: unusable input.",
    )
    compare.add_argument("old", metavar="OLD.json", help="results or baseline file taken as the reference")
    compare.add_argument("new", metavar="NEW.json", help="results or baseline file judged against OLD")
    _add_gate_options(compare)
    merge = commands.add_parser(
        "merge",
        help="merge the results files of CI shards into one",
        description="Merge results files (one per CI shard) into one, for compare and the gate. Refuses a test "
        "id in two files, and a backend whose version or device differs between files unless --allow-mixed. "
        "Exit 0: written; 2: unusable input (nothing written).",
    )
    merge.add_argument("files", nargs="+", metavar="SHARD.json", help="results files written by pytest --results")
    merge.add_argument("-o", "--output", type=Path, required=True, metavar="ALL.json", help="the merged file")
    merge.add_argument(
        "--allow-mixed", action="store_true", help="merge files whose backend versions or devices differ"
    )
    ab = commands.add_parser(
        "ab",
        help="run one selection under two Python environments, interleaved, and compare",
        description="Run `PYTHON -m pytest PYTEST_ARGS` under A and B interleaved (A, B, A, B, ...), pool each "
        "side's rounds and compare pooled A (old) with pooled B (new). Usage: ab --a PY --b PY [options] -- PYTEST_ARGS",
    )
    ab.add_argument(
        "--a", required=True, metavar="PYTHON_A", help="python of the old environment (e.g. venv-a/bin/python)"
    )
    ab.add_argument("--b", required=True, metavar="PYTHON_B", help="python of the new environment")
    ab.add_argument(
        "--rounds",
        type=_positive_int,
        # 7: the gate trims a fifth of the rounds at each end (gate.paired_trimmed_t), so 7 keep 5 (4 degrees of
        # freedom), as sensitive as the 5 untrimmed rounds were; 5 would keep 3, 2 degrees of freedom
        default=7,
        help="runs per side, judged in pairs (default %(default)s; a shared CPU VM needs 30: docs/gating.md)",
    )
    ab.add_argument(
        "--out", type=Path, metavar="DIR", help="where runs and pooled files go (default .harness/ab/<UTC time>)"
    )
    _add_gate_options(ab)
    return parser


def _add_gate_options(parser: argparse.ArgumentParser) -> None:
    from harness.gate import CostPolicy  # its defaults are the options' (one place); imported where --help needs it

    parser.add_argument("--markdown", action="store_true", help="print a GitHub-flavoured Markdown table")
    parser.add_argument("--alpha", type=_fraction, default=0.002, help="significance of the rank test (0.002)")
    parser.add_argument(
        "--cpu-threshold",
        type=_fraction,
        help="slowdown that regresses on CPU backends (default: the backend's own as recorded, e.g. ort 0.10)",
    )
    parser.add_argument(
        "--gpu-threshold",
        type=_fraction,
        help="slowdown that regresses on GPU backends (default: the backend's own as recorded, e.g. trt 0.05)",
    )
    parser.add_argument(
        "--accuracy-factor", type=float, default=2.0, help="growth of mean relative error that regresses (2.0)"
    )
    defaults = CostPolicy()
    parser.add_argument(
        "--build-time-threshold",
        type=_cost_threshold,
        default=defaults.build_time_threshold,
        help=f"growth of an engine's build time that regresses ({defaults.build_time_threshold}; builds under "
        f"{defaults.build_time_floor_s:g} s or found cached are not judged on time)",
    )
    parser.add_argument(
        "--plan-size-threshold",
        type=_cost_threshold,
        default=defaults.plan_size_threshold,
        help=f"growth of a plan's (an engine artifact's) size that regresses ({defaults.plan_size_threshold})",
    )
    parser.add_argument(
        "--memory-threshold",
        type=_cost_threshold,
        default=defaults.memory_threshold,
        help=f"growth of an engine's device memory that regresses ({defaults.memory_threshold}; TensorRT reports it)",
    )
    parser.add_argument(
        "--output-size-threshold",
        type=_cost_threshold,
        default=defaults.output_size_threshold,
        help=f"growth of the bytes an inference hands back that regresses ({defaults.output_size_threshold})",
    )
    parser.add_argument("--fail-on-improvement", action="store_true", help="an improvement fails too (stale baselines)")
    parser.add_argument(
        "--allow-removed",
        action="store_true",
        help="tests that OLD has and NEW lacks do not fail the gate (by default dropped coverage fails it)",
    )
    parser.add_argument(
        "--known-failures",
        metavar="FILE",
        help="the reviewed list of known failures (default: known-failures.toml in OLD's baselines folder where OLD "
        "is a baseline file, else baselines/known-failures.toml)",
    )


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, got {text}")
    return value


def _cost_threshold(text: str) -> float:
    """A cost's threshold: a growth as a fraction (0.5: 50 % more), any positive number (a build may be allowed to
    take twice as long: 1.0)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a fraction greater than 0 (0.2 means 20 % more), got {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _default_out() -> Path:
    return Path(".harness/ab") / datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
