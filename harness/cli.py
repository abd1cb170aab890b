"""The upgrade gate on the command line: `python -m harness compare` and `python -m harness ab`.

`compare OLD NEW` judges two results (or baseline) files test by test with the gate's statistics
(harness/gate.py) and prints one table. `ab --a PY --b PY -- PYTEST_ARGS` produces the two files
itself: it runs the same selection under two Python environments interleaved on this machine
(A, B, A, B, ...), so that drift of the machine during the runs hits both sides alike, pools each
side's rounds and compares the pools.

Exit status: 0 no regression, 1 a regression, a test OLD has and NEW lacks (unless --allow-removed), or an
improvement with --fail-on-improvement; 2 the inputs cannot be used (the message names the file or command
and the fix).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.atomic import write_atomically
from harness.baselines import is_number
from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.gate import AccuracyComparison, GatePolicy, LatencyComparison

Record = dict[str, object]

EXIT_PASS, EXIT_REGRESSION, EXIT_UNUSABLE = 0, 1, 2
_PYTEST_USABLE = (0, 1)  # 1: some test failed; the run still measured everything else
_LOG_TAIL_LINES = 20
_SAMPLE_KEYS = ("latency", "host_latency")
_DASH = "—"


class CliError(HarnessError):
    """A command cannot do its job; the message names the file or command and the fix (exit status 2)."""


@dataclass(frozen=True)
class GateOptions:
    """The comparison settings shared by `compare` and `ab`."""

    alpha: float
    cpu_threshold: float | None  # None: each backend's own default, as its descriptor says
    gpu_threshold: float | None
    accuracy_factor: float
    fail_on_improvement: bool
    markdown: bool
    allow_removed: bool = False  # a test only OLD has is dropped coverage: it fails the gate unless allowed

    def policy(self, threshold: float) -> GatePolicy:
        from harness.gate import GatePolicy

        return GatePolicy(
            threshold, self.alpha, accuracy_factor=self.accuracy_factor, fail_on_improvement=self.fail_on_improvement
        )


@dataclass(frozen=True)
class Loaded:
    """One side of a comparison: its file, the file's JSON and its records by test id, in file order."""

    path: Path
    document: dict[str, object]
    records: dict[str, Record]


@dataclass(frozen=True)
class Row:
    """One test id of the comparison table."""

    test_id: str
    case: str
    precision: str
    shape: str
    backend: str
    kind: str  # build, accuracy, latency, agreement or fuzz_…, from the id's prefix
    latency: LatencyComparison | None
    old_error: float | None  # max mean_rel over the outputs
    new_error: float | None
    verdict: str  # pass, regression, improvement, new, removed or skip
    reasons: tuple[str, ...]


# ---------------------------------------------------------------------------------------------------
# Command line


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (argparse exits 2 itself on a usage error)."""
    own, pytest_args = _split_pytest_args(list(sys.argv[1:] if argv is None else argv))
    parser = _parser()
    args = parser.parse_args(own)
    if args.command in ("compare", "merge") and pytest_args is not None:
        parser.error(f"{args.command} takes no pytest arguments after '--'")
    if args.command == "merge":
        try:
            return run_merge([Path(path) for path in args.files], args.output, allow_mixed=args.allow_mixed)
        except HarnessError as error:  # CliError, MergeError
            print(f"harness merge: error: {error}", file=sys.stderr)
            return EXIT_UNUSABLE
    options = GateOptions(
        args.alpha,
        args.cpu_threshold,
        args.gpu_threshold,
        args.accuracy_factor,
        args.fail_on_improvement,
        args.markdown,
        args.allow_removed,
    )
    try:
        if args.command == "compare":
            return run_compare(Path(args.old), Path(args.new), options)
        return run_ab(args.a, args.b, args.rounds, args.out or _default_out(), pytest_args or [], options)
    except HarnessError as error:  # CliError, and BaselineError from BaselineFile.load
        print(f"harness {args.command}: error: {error}", file=sys.stderr)
        return EXIT_UNUSABLE


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
    parser = argparse.ArgumentParser(prog="python -m harness", description="trt-harness upgrade gate")
    parser.add_argument("--version", action="version", version=f"trt-harness {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
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
    ab.add_argument("--rounds", type=_positive_int, default=3, help="runs per side (default 3)")
    ab.add_argument(
        "--out", type=Path, metavar="DIR", help="where runs and pooled files go (default .harness/ab/<UTC time>)"
    )
    _add_gate_options(ab)
    return parser


def _add_gate_options(parser: argparse.ArgumentParser) -> None:
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
    parser.add_argument("--fail-on-improvement", action="store_true", help="an improvement fails too (stale baselines)")
    parser.add_argument(
        "--allow-removed",
        action="store_true",
        help="tests that OLD has and NEW lacks do not fail the gate (by default dropped coverage fails it)",
    )


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _default_out() -> Path:
    return Path(".harness/ab") / datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


# ---------------------------------------------------------------------------------------------------
# compare


def run_compare(old_path: Path, new_path: Path, options: GateOptions) -> int:
    """Both files are loaded before anything is printed or written: an unusable input leaves no output."""
    return _gate(load(old_path), load(new_path), options)


def _gate(old: Loaded, new: Loaded, options: GateOptions) -> int:
    rows = compare(old, new, options)
    header = describe_sides(old, new)
    print(render_markdown(header, rows) if options.markdown else render_text(header, rows))
    _append_job_summary(header, rows)
    return exit_status(rows, options)


def exit_status(rows: Iterable[Row], options: GateOptions) -> int:
    failing = {"regression", "improvement"} if options.fail_on_improvement else {"regression"}
    if not options.allow_removed:
        failing.add("removed")  # dropped coverage must not pass the upgrade gate unnoticed
    return EXIT_REGRESSION if any(row.verdict in failing for row in rows) else EXIT_PASS


def _append_job_summary(header: Sequence[str], rows: Sequence[Row]) -> None:
    """On GitHub Actions the table also goes to the job's summary page, whatever the printed format."""
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if not summary:
        return
    try:
        with open(summary, "a", encoding="utf-8") as handle:  # appended: earlier steps' summaries stay
            handle.write(render_markdown(header, rows) + "\n")
    except OSError as error:
        raise CliError(f"cannot append the job summary to GITHUB_STEP_SUMMARY={summary} ({error})") from None


# ---------------------------------------------------------------------------------------------------
# Loading files


def run_merge(paths: Sequence[Path], output: Path, *, allow_mixed: bool) -> int:
    """Merge shards' results files; nothing is written unless every file is usable and they fit together."""
    from harness import report

    documents = []
    for path in paths:
        data = _read_json(path)
        if not isinstance(data, dict) or data.get("schema") != report.SCHEMA:
            raise CliError(f"{path} is not a trt-harness results file; merge the files written by pytest --results")
        _results_records(path, data)  # the same checks as compare: schema version, ids, samples
        documents.append((str(path), data))
    merged = report.merge(documents, allow_mixed=allow_mixed)
    try:
        report.write(output, merged)
    except OSError as error:
        raise CliError(f"cannot write {output} ({error}); pass -o a writable path") from None
    print(f"merged {len(merged['tests'])} tests from {len(paths)} files into {output}")  # type: ignore[arg-type]
    return 0


def load(path: Path) -> Loaded:
    """A results file (schema trt-harness/results) or a baseline file (trt-harness/baseline)."""
    from harness.baselines import SCHEMA as BASELINE_SCHEMA
    from harness.baselines import BaselineFile
    from harness.report import SCHEMA as RESULTS_SCHEMA

    data = _read_json(path)
    schema = data.get("schema") if isinstance(data, dict) else None
    if isinstance(data, dict) and schema == RESULTS_SCHEMA:
        return Loaded(path, data, _results_records(path, data))
    if isinstance(data, dict) and schema == BASELINE_SCHEMA:
        baseline = BaselineFile.load(path)  # its own checks and messages (version, duplicate ids)
        records = {test_id: {"id": test_id, **entry} for test_id, entry in baseline.entries.items()}
        _check_samples(path, records)
        return Loaded(path, data, records)
    raise CliError(
        f'{path} is not a trt-harness results or baseline file (its "schema" is {schema!r}, expected '
        f'"{RESULTS_SCHEMA}" or "{BASELINE_SCHEMA}"); pass a file written by pytest --results or a baseline'
    )


def _read_json(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"cannot read {path} ({error})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise CliError(
            f"{path} is not valid JSON ({error.msg}: line {error.lineno} column {error.colno}, character "
            f"{error.pos} of {len(text)}): the file is truncated or corrupted; re-run the tests to write it again, "
            "or restore it from version control"
        ) from None


def _results_records(path: Path, data: Mapping[str, object]) -> dict[str, Record]:
    from harness.report import SCHEMA_VERSION

    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        environment = data.get("environment")
        harness = environment.get("harness") if isinstance(environment, dict) else None
        raise CliError(
            f"{path} was written by trt-harness {harness or 'of an unknown version'} with results schema_version "
            f"{version}; this harness reads {SCHEMA_VERSION}: compare files of one harness version, or re-run"
        )
    tests = data.get("tests")
    if not isinstance(tests, list) or not all(
        isinstance(test, dict) and isinstance(test.get("id"), str) for test in tests
    ):
        raise CliError(
            f'{path}: "tests" must be a list of records with an "id"; the file was not written by the harness'
        )
    records: dict[str, Record] = {}
    for test in tests:
        test_id = str(test["id"])
        if test_id in records:
            raise CliError(
                f"{path} holds test id {test_id!r} twice; results of two sessions were merged into one file? "
                "Keep one record per id, or re-run"
            )
        records[test_id] = test
    _check_samples(path, records)
    return records


def _check_samples(path: Path, records: Mapping[str, Record]) -> None:
    """What the gate reads (raw samples, accuracy numbers) is checked here, so that a damaged record is
    reported as an unusable file naming the test and the field, not as a traceback or a false regression."""
    from harness.baselines import first_record_problem

    if (found := first_record_problem(records)) is not None:
        test_id, problem = found
        raise CliError(
            f"{path}: test {test_id!r}: {problem}; the file is damaged or was not written by the harness: "
            "re-run the tests to write it again, or restore it from version control"
        )


# ---------------------------------------------------------------------------------------------------
# Comparing


def compare(old: Loaded, new: Loaded, options: GateOptions) -> list[Row]:
    """One row per test id of either side: OLD's order first, then the ids only NEW has."""
    rows = []
    for test_id, old_record in old.records.items():
        new_record = new.records.get(test_id)
        if new_record is None:
            rows.append(_row(test_id, old_record, None, None, "removed", (_removed_reason(options),)))
        else:
            rows.append(compare_pair(test_id, old_record, new_record, options))
    for test_id, new_record in new.records.items():
        if test_id not in old.records:
            rows.append(_row(test_id, None, new_record, None, "new", ("only in the new file",)))
    return rows


def _removed_reason(options: GateOptions) -> str:
    if options.allow_removed:
        return "only in the old file (allowed by --allow-removed)"
    return (
        "only in the old file: the new run dropped this test, which fails the gate; run it again (check the "
        "selection: -k, --backend, --precision, cases), or pass --allow-removed if dropping it is intended"
    )


def compare_pair(test_id: str, old: Record, new: Record, options: GateOptions) -> Row:
    """The gate's latency and accuracy verdicts for one test present on both sides."""
    from harness.gate import compare_accuracy, compare_latency

    skipped = tuple(
        f"the {side} run skipped it: {record.get('message')}"
        for side, record in (("old", old), ("new", new))
        if record.get("verdict") == "skip"
    )
    if skipped:
        return _row(test_id, old, new, None, "skip", skipped)
    policy = options.policy(_threshold(old, new, options))
    old_samples, new_samples = _samples(old), _samples(new)
    latency = compare_latency(old_samples, new_samples, policy) if old_samples and new_samples else None
    old_accuracy, new_accuracy = _accuracy(old), _accuracy(new)
    accuracy = compare_accuracy(old_accuracy, new_accuracy, policy) if old_accuracy and new_accuracy else []
    if latency is None and not accuracy:
        return _row(test_id, old, new, None, *_without_measurements(old, new))
    verdict, reasons = _verdict(latency, accuracy)
    return _row(test_id, old, new, latency, verdict, reasons)


def _verdict(latency: LatencyComparison | None, accuracy: Sequence[AccuracyComparison]) -> tuple[str, tuple[str, ...]]:
    regressions = [f"output {item.output}: {item.reason}" for item in accuracy if item.verdict == "regression"]
    if latency is not None and latency.verdict == "regression":
        regressions.insert(0, latency.reason)
    if regressions:
        return "regression", tuple(regressions)
    if latency is not None and latency.verdict == "improvement":
        return "improvement", (latency.reason,)
    return "pass", ()


def _without_measurements(old: Record, new: Record) -> tuple[str, tuple[str, ...]]:
    """A test that now fails or errors before measuring anything is a regression; otherwise there is nothing to judge."""
    from harness.report import is_build_record

    old_verdict, new_verdict = old.get("verdict"), new.get("verdict")
    if new_verdict in ("fail", "error") and old_verdict == "pass":
        return "regression", (f"passed in the old run, {new_verdict} in the new one: {new.get('message')}",)
    if old_verdict == new_verdict == "pass" and is_build_record(old) and is_build_record(new):
        return "pass", ("built on both sides",)  # a build test measures nothing else: building is its verdict
    return "skip", (f"no latency or accuracy on both sides to compare (old {old_verdict}, new {new_verdict})",)


def _threshold(old: Record, new: Record, options: GateOptions) -> float:
    """The test's own threshold as recorded (a case may set one), else the command line's for the
    backend's kind of device, else the backend's default: both from its descriptor, as recorded."""
    for record in (new, old):
        own = record.get("latency_threshold")
        if is_number(own):
            return float(own)
    kind, default = _backend_defaults(new)
    given = options.gpu_threshold if kind == "gpu" else options.cpu_threshold
    return given if given is not None else default


# A backend nothing is known about (a plugin's, in a file written before descriptors were recorded)
# gets the lenient CPU default: nothing says its device is as quiet as a GPU.
_UNKNOWN_BACKEND = ("cpu", 0.10)


def _backend_defaults(record: Record) -> tuple[str, float]:
    """(device kind, default latency threshold) of the record's backend: as recorded from its
    descriptor, or for older files the built-in descriptor of that short id."""
    from harness.backends import BUILTIN_BACKENDS

    kind, default = record.get("backend_device_kind"), record.get("backend_default_latency_threshold")
    if isinstance(kind, str) and is_number(default):
        return kind, float(default)
    descriptor = BUILTIN_BACKENDS.get(str(record.get("backend")))
    if descriptor is None:
        return _UNKNOWN_BACKEND
    return descriptor.device_kind.value, descriptor.latency_threshold


def _shape(record: Record) -> str:
    """The summary's label as recorded ("opt", "p1.max", "build"); files before it had only the corner."""
    if isinstance(record.get("shape"), str):
        return str(record["shape"])
    profile, corner = record.get("profile"), str(record.get("shape_point", _DASH))
    return f"p{profile}.{corner}" if isinstance(profile, int) and profile > 0 else corner


def _samples(record: Mapping[str, object], key: str = "latency") -> list[float]:
    stats = record.get(key)
    samples = stats.get("samples_us") if isinstance(stats, dict) else None
    return [float(sample) for sample in samples] if isinstance(samples, list) else []


def _accuracy(record: Record) -> list[dict[str, object]]:
    outputs = record.get("accuracy")
    return [entry for entry in outputs if isinstance(entry, dict)] if isinstance(outputs, list) else []


def _max_error(record: Record | None) -> float | None:
    errors = [entry.get("mean_rel") for entry in _accuracy(record)] if record is not None else []
    numbers = [float(error) for error in errors if is_number(error)]
    return max(numbers) if numbers else None


def _row(
    test_id: str,
    old: Record | None,
    new: Record | None,
    latency: LatencyComparison | None,
    verdict: str,
    reasons: tuple[str, ...],
) -> Row:
    record: Record = new if new is not None else old or {}
    return Row(
        test_id=test_id,
        case=str(record.get("case", _DASH)),
        precision=str(record.get("precision", _DASH)),
        shape=_shape(record),
        backend=str(record.get("backend", _DASH)),
        kind=test_id.split("[", 1)[0].removeprefix("test_"),
        latency=latency,
        old_error=_max_error(old),
        new_error=_max_error(new),
        verdict=verdict,
        reasons=reasons,
    )


# ---------------------------------------------------------------------------------------------------
# What is compared with what


def describe_sides(old: Loaded, new: Loaded) -> list[str]:
    """The first line names both sides' backends and devices; the next ones say plainly what differs."""
    old_backends, new_backends = _backends(old.records.values()), _backends(new.records.values())
    lines = [f"Comparing old {old.path} ({_side(old_backends)}) with new {new.path} ({_side(new_backends)})"]
    old_devices = sorted({device for _, _, device in old_backends})
    new_devices = sorted({device for _, _, device in new_backends})
    if old_devices and new_devices and old_devices != new_devices:
        lines.append(
            f"Note: devices differ: {', '.join(old_devices)} vs {', '.join(new_devices)}; "
            "latency ratios then compare machines as well as software"
        )
    for name in sorted({name for name, _, _ in old_backends} & {name for name, _, _ in new_backends}):
        before = sorted({version for other, version, _ in old_backends if other == name})
        after = sorted({version for other, version, _ in new_backends if other == name})
        if before != after:
            lines.append(f"Note: backend versions differ: {name} {', '.join(before)} vs {', '.join(after)}")
    return lines


def _backends(records: Iterable[Record]) -> list[tuple[str, str, str]]:
    """Distinct (name, version, device) of the records, in order of appearance (skipped tests have none)."""
    seen: dict[tuple[str, str, str], None] = {}
    for record in records:
        if "backend_name" in record:
            key = (str(record["backend_name"]), str(record.get("backend_version")), str(record.get("backend_device")))
            seen.setdefault(key, None)
    return list(seen)


def _side(backends: Sequence[tuple[str, str, str]]) -> str:
    if not backends:
        return "no backend recorded"
    return "; ".join(f"{name} {version} on {device}" for name, version, device in backends)


# ---------------------------------------------------------------------------------------------------
# Rendering

_COLUMNS = (
    "case",
    "precision",
    "shape",
    "backend",
    "test",
    "old µs",
    "new µs",
    "ratio [95 % CI]",
    "errors old / new",
    "verdict",
)
_NUMERIC = {"old µs", "new µs", "ratio [95 % CI]", "errors old / new"}
_VERDICT_LABELS = {"regression": "REGRESSION"}


def _cells(row: Row) -> dict[str, str]:
    latency = row.latency
    return dict(
        zip(
            _COLUMNS,
            (
                row.case,
                row.precision,
                row.shape,
                row.backend,
                row.kind,
                _micros(latency.old_median_us) if latency else _DASH,
                _micros(latency.new_median_us) if latency else _DASH,
                f"{latency.ratio:.3f} [{latency.ratio_ci[0]:.3f}, {latency.ratio_ci[1]:.3f}]" if latency else _DASH,
                _errors(row.old_error, row.new_error),
                _VERDICT_LABELS.get(row.verdict, row.verdict),
            ),
        )
    )


def _micros(value: float) -> str:
    return f"{value:,.2f}" if value < 1000 else f"{value:,.1f}"


def _errors(old: float | None, new: float | None) -> str:
    if old is None and new is None:
        return _DASH
    return " / ".join(f"{error:.1e}" if error is not None else _DASH for error in (old, new))


def _counts(rows: Sequence[Row]) -> str:
    order = ("regression", "improvement", "pass", "new", "removed", "skip")
    counts = {verdict: sum(row.verdict == verdict for row in rows) for verdict in order}
    return ", ".join(
        f"{counts[verdict]} {_VERDICT_LABELS.get(verdict, verdict)}" for verdict in order if counts[verdict]
    )


def _notable(rows: Sequence[Row]) -> list[tuple[Row, str]]:
    """Why each regression or improvement was called: the table alone does not say which rule fired."""
    shown = ("regression", "improvement", "removed")
    return [(row, reason) for row in rows if row.verdict in shown for reason in row.reasons]


def render_text(header: Sequence[str], rows: Sequence[Row]) -> str:
    table = [dict(zip(_COLUMNS, _COLUMNS)), *(_cells(row) for row in rows)]
    widths = {column: max(len(cells[column]) for cells in table) for column in _COLUMNS}

    def line(cells: Mapping[str, str]) -> str:
        return "  ".join(
            cells[c].rjust(widths[c]) if c in _NUMERIC else cells[c].ljust(widths[c]) for c in _COLUMNS
        ).rstrip()

    notes = [
        f"{_VERDICT_LABELS.get(row.verdict, row.verdict)} {row.test_id}: {reason}" for row, reason in _notable(rows)
    ]
    return "\n".join([*header, "", *(line(cells) for cells in table), "", _counts(rows) or "no tests", *notes])


def render_markdown(header: Sequence[str], rows: Sequence[Row]) -> str:
    def line(cells: Iterable[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    def verdict(cells: dict[str, str]) -> dict[str, str]:
        if cells["verdict"] == "REGRESSION":
            cells["verdict"] = "**REGRESSION**"
        return cells

    align = ["---:" if column in _NUMERIC else "---" for column in _COLUMNS]
    table = [line(_COLUMNS), line(align), *(line(verdict(_cells(row)).values()) for row in rows)]
    notes = [
        f"- {_VERDICT_LABELS.get(row.verdict, row.verdict)} `{row.test_id}`: {reason.replace('|', chr(92) + '|')}"
        for row, reason in _notable(rows)
    ]
    text = "\n\n".join(header) + "\n\n" + "\n".join(table) + f"\n\n{_counts(rows) or 'no tests'}"
    return text + ("\n\n" + "\n".join(notes) if notes else "") + "\n"


# ---------------------------------------------------------------------------------------------------
# ab


def run_ab(
    python_a: str, python_b: str, rounds: int, out: Path, pytest_args: Sequence[str], options: GateOptions
) -> int:
    """Interleaved rounds (A, B, A, B, ...) then the comparison of the pooled sides, A as old."""
    if "--results" in pytest_args or any(arg.startswith("--results=") for arg in pytest_args):
        raise CliError("drop --results from the pytest arguments: ab writes each run's results file under --out")
    sides = {"a": _executable(python_a, "--a"), "b": _executable(python_b, "--b")}
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[Path]] = {"a": [], "b": []}
    for round_number in range(1, rounds + 1):
        for side, python in sides.items():
            results = out / f"{side}-{round_number}.json"
            run_pytest(python, pytest_args, results, f"round {round_number}/{rounds} {side.upper()}")
            runs[side].append(results)
    pooled = {side: pool(out / f"{side}.json", paths) for side, paths in runs.items()}
    return _gate(pooled["a"], pooled["b"], options)


def _executable(python: str, option: str) -> str:
    found = shutil.which(python)
    if found is None:
        raise CliError(
            f"{option} {python}: no such executable; pass the python of that environment (e.g. venv/bin/python)"
        )
    return found


def pytest_command(python: str, pytest_args: Sequence[str], results: Path) -> list[str]:
    return [python, "-m", "pytest", *pytest_args, "--results", str(results), "-p", "no:cacheprovider"]


def run_pytest(python: str, pytest_args: Sequence[str], results: Path, label: str) -> None:
    """One run, its output kept in a log beside its results; an exit other than 0 or 1 means pytest did not
    measure (usage error, internal error, nothing collected), so the comparison would be meaningless."""
    command = pytest_command(python, pytest_args, results)
    results.unlink(missing_ok=True)  # a stale file from an earlier ab in this folder must not pass for this run
    print(f"ab: {label}: {shlex.join(command)}", file=sys.stderr)
    started = time.monotonic()
    completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    output = completed.stdout.decode("utf-8", errors="replace")
    log = results.with_suffix(".log")
    write_atomically(log, output.encode())
    print(f"ab: {label}: exit {completed.returncode} in {time.monotonic() - started:.1f} s, log {log}", file=sys.stderr)
    if completed.returncode not in _PYTEST_USABLE:
        raise CliError(f"{shlex.join(command)} exited {completed.returncode}; its last lines:\n{_tail(output)}")
    if not results.exists():
        raise CliError(
            f"{shlex.join(command)} exited {completed.returncode} but wrote no {results}: is trt-harness installed "
            f"in that environment? Its last lines:\n{_tail(output)}"
        )


def _tail(output: str) -> str:
    return "\n".join("    " + line for line in output.rstrip().splitlines()[-_LOG_TAIL_LINES:]) or "    (no output)"


def pool(path: Path, rounds: Sequence[Path]) -> Loaded:
    """The side's rounds pooled into one results file at `path`: the last round's file, its tests pooled."""
    loaded = [load(round_path) for round_path in rounds]  # validates each round's file
    records = pool_records([side.records for side in loaded])
    document = {**loaded[-1].document, "tests": list(records.values())}
    from harness.compare import json_safe

    write_atomically(path, json.dumps(json_safe(document), indent=1, allow_nan=False).encode())
    return Loaded(path, document, records)


def pool_records(rounds: Sequence[Mapping[str, Record]]) -> dict[str, Record]:
    """Each test's raw samples of every round, concatenated in round order, with the statistics recomputed
    over them (a median that disagrees with its samples would mislead a reader); every other field comes
    from the last round that ran the test."""
    pooled: dict[str, Record] = {}
    for records in rounds:
        pooled.update({test_id: dict(record) for test_id, record in records.items()})
    for test_id, record in pooled.items():
        for key in _SAMPLE_KEYS:
            measured = [records[test_id] for records in rounds if _samples(records.get(test_id, {}), key)]
            if measured:
                template = measured[-1][key]
                samples = [sample for round_record in measured for sample in _samples(round_record, key)]
                record[key] = _pooled_stats(template if isinstance(template, dict) else {}, samples)
    return pooled


def _pooled_stats(template: Mapping[str, object], samples_us: list[float]) -> dict[str, object]:
    from harness.measure import LatencyStats

    confidence = template.get("confidence")
    stats = LatencyStats.from_samples(
        [sample / 1e6 for sample in samples_us], float(confidence) if is_number(confidence) else 0.95
    )
    return {**template, **stats.to_json(), "samples_us": samples_us}
