"""`python -m harness ab --a PY --b PY -- PYTEST_ARGS`: one selection run under two Python environments
interleaved on this machine (A, B, A, B, ...), so that drift of the machine during the runs hits both
sides alike; each side's rounds are pooled into one results file that keeps where each round's samples end, and
the gate compares B's round i with A's round i (gate.compare_rounds), A as old."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.atomic import write_atomically
from harness.cli.compare import gate, side_of
from harness.cli.output import CliError
from harness.measure import LatencyStats
from harness.recorded import is_number
from harness.results import document as results_document
from harness.results.comparison import GateOptions

_PYTEST_USABLE = (0, 1)  # 1: some test failed; the run still measured everything else
_LOG_TAIL_LINES = 20


def run_ab(
    python_a: str,
    python_b: str,
    rounds: int,
    out: Path,
    pytest_args: Sequence[str],
    options: GateOptions,
    *,
    markdown: bool,
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
    return gate(side_of(pooled["a"]), side_of(pooled["b"]), options, markdown=markdown)


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


def pool(path: Path, rounds: Sequence[Path]) -> results_document.ResultsDocument:
    """The side's rounds pooled into one results file at `path` (pooled_contents)."""
    pooled = pooled_contents([results_document.load(round_path) for round_path in rounds])  # validates each round
    results_document.write(path, pooled)
    return results_document.from_json(pooled, str(path))


# Fields of the latency stats that hold raw samples: pooled over rounds, the statistics recomputed.
_SAMPLE_KEYS = ("latency", "host_latency")


def pooled_contents(rounds: Sequence[results_document.ResultsDocument]) -> dict[str, object]:
    """One document from several runs of one selection (`python -m harness ab`'s rounds of a side): the
    last round's document, each test's raw samples of every round concatenated in round order with the
    statistics recomputed over them (a median that disagrees with its samples would mislead a reader) and each
    round's count (round_sizes); every other field of a test comes from the last round that ran it."""
    if not rounds:
        raise ValueError("pool needs at least one round")
    pooled: dict[str, dict[str, object]] = {}
    for document in rounds:
        pooled.update({test.id: dict(test.raw) for test in document.tests})
    by_round = [document.records() for document in rounds]
    for test_id, record in pooled.items():
        for key in _SAMPLE_KEYS:
            measured = [records[test_id] for records in by_round if _samples(records.get(test_id, {}), key)]
            if measured:
                template = results_document.mapping_of(measured[-1][key])
                each_round = [_samples(round_record, key) for round_record in measured]
                pooled_stats = _pooled_stats(template, [sample for samples in each_round for sample in samples])
                # where each round's samples end, so that compare pairs round i of A with round i of B (gate.py)
                record[key] = {**pooled_stats, results_document.ROUND_SIZES: [len(samples) for samples in each_round]}
    return {**rounds[-1].raw, "tests": list(pooled.values())}


def _samples(record: Mapping[str, object], key: str) -> list[float]:
    samples = results_document.mapping_of(record.get(key)).get("samples_us")
    return [float(sample) for sample in samples] if isinstance(samples, list) else []


def _pooled_stats(template: Mapping[str, object], samples_us: list[float]) -> dict[str, object]:
    confidence = template.get("confidence")
    stats = LatencyStats.from_samples(
        [sample / 1e6 for sample in samples_us], float(confidence) if is_number(confidence) else 0.95
    )
    return {**template, **stats.to_json(), "samples_us": samples_us}
