"""Issue 18's faults of files, options and start-up (rows 1, 10-16, 19, 30), each kept as a test: output paths are
checked before any work starts, option errors name the option and the fix, an interrupted run says so, and a
session that selects no harness test imports no backend and leaves no file behind."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import filelock
import pytest

from harness import atomic
from harness.atomic import NotARegularFileError, write_atomically
from harness.cli import main as cli_main
from harness.results import document as results_document
from tests.spec_support import linear_model
from tests.test_plugin import FAST, make_project

REPOSITORY = Path(__file__).resolve().parents[2]
RESULTS = ("--precision", "fp32", "--results", "results.json")


def fifo(folder: Path) -> Path:
    """A FIFO where a file is expected (a character device needs root to make; a FIFO is refused alike)."""
    path = folder / "pipe.json"
    os.mkfifo(path)
    return path


def subprocess_env() -> dict[str, str]:
    """This checkout's harness in a child pytest (the venv's editable install may point at another checkout)."""
    return {**os.environ, "PYTHONPATH": str(REPOSITORY)}


def dead_pid() -> int:
    process = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    return int(process.stdout)


def test_row_01_a_device_is_never_replaced_by_a_write() -> None:
    """--results, --harness-html, merge -o pointing at a device node: the device is replaced by a regular file."""
    assert atomic.unwritable(Path("/dev/null")) == "/dev/null is a character device, not a regular file"


def test_row_01_write_atomically_refuses_a_fifo_and_a_folder(tmp_path: Path) -> None:
    """--results, --harness-html, merge -o pointing at a device node: the device is replaced by a regular file."""
    pipe = fifo(tmp_path)
    with pytest.raises(NotARegularFileError, match="pipe.json is a FIFO, not a regular file"):
        write_atomically(pipe, b"{}")
    assert stat.S_ISFIFO(pipe.stat().st_mode)
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(NotARegularFileError, match="folder.json is a directory"):
        write_atomically(tmp_path / "folder.json", b"{}")


@pytest.mark.parametrize(
    ("option", "fix"),
    [
        ("--results", "pass --results a writable file path"),
        ("--harness-html", "pass --harness-html a writable file path, or --harness-html=off"),
    ],
)
def test_row_01_an_output_option_at_a_fifo_is_refused_before_any_test(
    pytester: pytest.Pytester, option: str, fix: str
) -> None:
    """--results, --harness-html, merge -o pointing at a device node: the device is replaced by a regular file."""
    make_project(pytester, "CASES = [IDENTITY]")
    pipe = fifo(pytester.path)
    result = pytester.runpytest(*FAST, *RESULTS, option, str(pipe))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "passed" not in result.stdout.str()
    result.stderr.fnmatch_lines([f"*trt-harness: {option} / harness_*: cannot write *pipe.json: *is a FIFO*; {fix}*"])
    assert stat.S_ISFIFO(pipe.stat().st_mode)


def test_row_01_cli_outputs_at_a_fifo_are_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--results, --harness-html, merge -o pointing at a device node: the device is replaced by a regular file."""
    pipe = fifo(tmp_path)
    missing = tmp_path / "missing.json"  # the inputs are never read: the output is refused first
    assert cli_main(["merge", str(missing), "-o", str(pipe)]) == 2
    assert cli_main(["report", str(missing), "-o", str(pipe)]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert errors == [
        f"harness {command}: error: cannot write {pipe}: {pipe} is a FIFO, not a regular file; pass -o a writable "
        "file path"
        for command in ("merge", "report")
    ]
    assert stat.S_ISFIFO(pipe.stat().st_mode)


def read_only_folder(tmp_path: Path) -> Path:
    """A folder where no file can be created: a mode-0555 folder, or for root (whom modes do not stop) /sys."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir(mode=0o555)
        return folder
    if atomic.unwritable(Path("/sys/results.json")) is None:
        pytest.skip("running as root, and /sys takes new files here: no read-only folder to test with")
    return Path("/sys")


def test_row_10_results_in_a_read_only_folder_are_refused_at_start_up(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """`--results` in a read-only folder: the whole run executes, then every result is discarded."""
    make_project(pytester, "CASES = [IDENTITY]")
    target = read_only_folder(tmp_path) / "results.json"
    result = pytester.runpytest(*FAST, "--precision", "fp32", "--results", str(target))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "passed" not in result.stdout.str()  # refused before the run, not discarded after it
    why = f"cannot write {target}: cannot create a file in {target.parent} (*)"
    result.stderr.fnmatch_lines([f"*--results / harness_results: {why}; pass --results a writable file path*"])


def test_row_11_results_in_proc_say_the_real_cause(pytester: pytest.Pytester) -> None:
    """`--results /proc/x.json`: "being written by another live session": the wrong cause."""
    make_project(pytester, "CASES = [IDENTITY]")
    result = pytester.runpytest(*FAST, "--precision", "fp32", "--results", "/proc/x.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "another live session" not in result.stderr.str()
    result.stderr.fnmatch_lines(["*cannot write /proc/x.json: cannot create a file in /proc (*)*--results a writable*"])


def test_row_12_fuzz_examples_zero_says_what_it_must_be(pytester: pytest.Pytester) -> None:
    """`--fuzz-examples 0`: "must be a valid number, got '0'"."""
    make_project(pytester, "CASES = [IDENTITY]")
    result = pytester.runpytest(*FAST, "--fuzz-examples", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--fuzz-examples / harness_fuzz_examples must be at least 1, got '0'*"])
    assert "valid number" not in result.stderr.str()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--latency-budget", "-1", "--latency-budget / harness_latency_budget must be a finite number > 0, got '-1'"),
        ("--latency-ci", "0", "--latency-ci / harness_latency_ci must be a number in (0, 1), got '0'"),
        # ±500 %: no CI a measurement could aim for
        ("--latency-ci", "5", "--latency-ci / harness_latency_ci must be a number in (0, 1), got '5'"),
        ("--fuzz-examples", "1.5", "--fuzz-examples / harness_fuzz_examples must be a whole number >= 1, got '1.5'"),
        (
            "--engine-cache-size",
            "0",
            "--engine-cache-size / harness_engine_cache_size must be a size above 0 such as 500M or 4G, or off, got '0'",
        ),
    ],
)
def test_row_13_latency_options_are_named_not_their_field(
    pytester: pytest.Pytester, option: str, value: str, message: str
) -> None:
    """`--latency-budget -1`, `--latency-ci 0`: the message names the internal field `MeasurePolicy.budget_s`."""
    make_project(pytester, "CASES = [IDENTITY]")
    result = pytester.runpytest("-p", "no:cacheprovider", option, value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*trt-harness: {message}*"])
    assert "MeasurePolicy" not in result.stderr.str()


def test_row_14_sigint_mid_run_is_recorded_as_an_interruption(pytester: pytest.Pytester) -> None:
    """SIGINT mid-run: the interrupted test is recorded as `error` with `message: null`; nothing says so."""
    make_project(pytester, "CASES = [IDENTITY]")
    conftest = pytester.path / "conftest.py"
    conftest.write_text(
        conftest.read_text() + "\nimport pathlib, time\n"
        "def pytest_runtest_call(item):\n"
        "    if 'test_latency' in item.name:\n"
        "        pathlib.Path('started').write_text(item.nodeid)\n"
        "        time.sleep(60)\n"
    )
    command = [sys.executable, "-m", "pytest", *FAST, *RESULTS, "-p", "no:xdist", "--harness-html=off"]
    child = subprocess.Popen(
        command, cwd=pytester.path, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while not (pytester.path / "started").exists():
            assert child.poll() is None and time.monotonic() < deadline, "the session never reached test_latency"
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        output, _ = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == pytest.ExitCode.INTERRUPTED, output.decode()
    document = json.loads((pytester.path / "results.json").read_text())
    running = (pytester.path / "started").read_text()  # the test the session was interrupted in
    assert document["interrupted"] is True and document["interrupted_test"] == running
    records = {test["nodeid"]: test for test in document["tests"]}
    assert records[running]["verdict"] == "error"
    assert records[running]["message"] == "interrupted by KeyboardInterrupt (SIGINT) while running"
    assert {test["verdict"] for nodeid, test in records.items() if nodeid != running} == {"pass"}


def test_row_14_an_uninterrupted_run_says_so(pytester: pytest.Pytester) -> None:
    """SIGINT mid-run: the interrupted test is recorded as `error` with `message: null`; nothing says so."""
    make_project(pytester, "CASES = [IDENTITY]")
    pytester.runpytest(*FAST, *RESULTS, "-k", "accuracy").assert_outcomes(passed=3)
    document = json.loads((pytester.path / "results.json").read_text())
    assert document["interrupted"] is False and document["interrupted_test"] is None  # docs/results-format.md: null


def test_row_14_a_merged_file_of_an_interrupted_shard_says_so() -> None:
    """SIGINT mid-run: the interrupted test is recorded as `error` with `message: null`; nothing says so."""
    whole, cut = results_document.assemble([], {}, {}), results_document.assemble([], {}, {})
    results_document.mark_interrupted(cut, "test_matrix.py::test_latency[identity-fp32-min-ort]")
    assert results_document.merge([("a.json", whole)])["interrupted"] is False
    merged = results_document.merge([("a.json", whole), ("b.json", cut)])
    assert merged["interrupted"] is True
    assert merged["interrupted_test"] == "test_matrix.py::test_latency[identity-fp32-min-ort]"


def test_row_15_what_a_killed_build_left_is_swept_at_the_next_start(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 during a build: `/tmp/harness-ort-*` and `harness-quantize-*` left forever; `.lock` files pile up."""
    make_project(pytester, "CASES = [IDENTITY]")
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))  # the in-process session's temporary directory
    host = atomic._host()
    left = [temporary / f"harness-{kind}-{dead_pid()}@{host}-abc123" for kind in ("ort", "quantize")]
    live = temporary / f"harness-ort-{os.getpid()}@{host}-abc123"  # this process is alive: its folder stays
    for folder in (*left, live):
        (folder / "sub").mkdir(parents=True)
    cache = pytester.path / ".harness" / "engines" / "onnxruntime"
    cache.mkdir(parents=True)
    stale = cache / "engine.onnx.lock"
    stale.touch()
    held_path = cache / "held.onnx.lock"
    with filelock.FileLock(held_path):
        pytester.runpytest(*FAST, *RESULTS, "-k", "accuracy").assert_outcomes(passed=3)
        assert held_path.exists()  # a lock some process holds is never taken away
    assert not stale.exists()
    assert not any(folder.exists() for folder in left)
    assert live.exists()


def test_row_15_scratch_folders_of_dead_owners_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    """kill -9 during a build: `/tmp/harness-ort-*` and `harness-quantize-*` left forever; `.lock` files pile up."""
    host = atomic._host()
    dead = [tmp_path / f"harness-{kind}-{dead_pid()}@{host}-x1" for kind in ("ort", "quantize")]
    mine = tmp_path / f"harness-ort-{os.getpid()}@{host}-x1"
    elsewhere = tmp_path / f"harness-ort-{dead_pid()}@another-host-x1"  # another machine's: not ours to judge
    unnamed = tmp_path / "harness-ort-k2j3h4"  # no owner in its name
    for folder in (*dead, mine, elsewhere, unnamed):
        (folder / "model").mkdir(parents=True)
    atomic._sweep_scratch(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(p.name for p in (mine, elsewhere, unnamed))


def test_row_15_a_scratch_folder_names_its_owner() -> None:
    """kill -9 during a build: `/tmp/harness-ort-*` and `harness-quantize-*` left forever; `.lock` files pile up."""
    with atomic.scratch_folder("ort") as scratch:
        assert Path(scratch).name.startswith(f"harness-ort-{os.getpid()}@{atomic._host()}-")


def test_row_15_lock_files_are_removed_when_released(tmp_path: Path) -> None:
    """kill -9 during a build: `/tmp/harness-ort-*` and `harness-quantize-*` left forever; `.lock` files pile up."""
    path = tmp_path / "engine.onnx.lock"
    with atomic.lock_removed(path):
        assert path.exists()
    assert not path.exists()


def test_row_15_a_results_session_leaves_no_lock_file(pytester: pytest.Pytester) -> None:
    """kill -9 during a build: `/tmp/harness-ort-*` and `harness-quantize-*` left forever; `.lock` files pile up."""
    make_project(pytester, "CASES = [IDENTITY]")
    pytester.runpytest(*FAST, *RESULTS, "-k", "accuracy").assert_outcomes(passed=3)
    assert (pytester.path / "results.json").exists()
    assert not list(pytester.path.rglob("*.lock"))


def test_row_16_a_spec_of_only_bad_entries_says_only_what_is_wrong_with_them(pytester: pytest.Pytester) -> None:
    """A spec whose every entry is bad: an extra error claims the spec "lies outside what pytest collects"."""
    linear_model(pytester.path / "classifier.onnx")
    (pytester.path / "models.toml").write_text('[[case]]\nname = "bad"\nmodel = "missing.onnx"\n')
    result = pytester.runpytest("--harness-spec", "models.toml", *FAST, *RESULTS)
    result.assert_outcomes(failed=1, skipped=6)  # the entry's error; the matrix tests skip: no case to run
    result.stdout.fnmatch_lines(["*harness-spec-error-0*case[[]0[]].model: no model file at*missing.onnx*"])
    assert "outside what pytest" not in result.stdout.str()


def test_row_19_an_unrelated_session_imports_no_backend_and_leaves_no_file(tmp_path: Path) -> None:
    """A `pytest` session in an unrelated project: imports onnxruntime and leaves an empty results `.lock` file."""
    (tmp_path / "conftest.py").write_text(
        "import sys\n"
        "def pytest_unconfigure(config):\n"
        "    backends = ('onnxruntime', 'tensorrt', 'tensorrt_rtx')\n"
        "    print('BACKENDS', sorted(name for name in sys.modules if name.split('.')[0] in backends))\n"
    )
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    pass\n")
    before = {path.relative_to(tmp_path) for path in tmp_path.rglob("*")}
    for arguments in (["--co"], []):
        command = [sys.executable, "-m", "pytest", "-s", "-p", "harness.plugin", "-p", "no:cacheprovider"]
        command += ["-p", "no:benchmark", *arguments]
        run = subprocess.run(command, cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, check=False)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "BACKENDS []" in run.stdout, run.stdout
        assert "trt-harness" in run.stdout  # the plugin was loaded
    after = {path.relative_to(tmp_path) for path in tmp_path.rglob("*") if "__pycache__" not in path.parts}
    assert after == before


def test_row_19_collecting_harness_tests_writes_no_results_file(pytester: pytest.Pytester) -> None:
    """A `pytest` session in an unrelated project: imports onnxruntime and leaves an empty results `.lock` file."""
    make_project(pytester, "CASES = [IDENTITY]")
    result = pytester.runpytest("--co", *FAST, *RESULTS, "--backend", "ort,unknown")
    assert "test_accuracy[identity-fp32-opt-ort]" in result.stdout.str()
    assert not (pytester.path / "results.json").exists() and not (pytester.path / "results.html").exists()
    assert not (pytester.path / ".harness").exists()


def test_row_30_a_switch_that_swallowed_a_folder_says_how_to_write_both(pytester: pytest.Pytester) -> None:
    """`--build-only cases` says only "must be yes or no, got 'cases'" with no fix."""
    make_project(pytester, "CASES = [IDENTITY]")
    result = pytester.runpytest("-p", "no:cacheprovider", "--build-only", "cases")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    refused = "--build-only / harness_build_only takes yes or no (alone it means yes), got 'cases'"
    fix = "if 'cases' is what pytest should collect, write `--build-only yes cases` or put --build-only after the paths"
    result.stderr.fnmatch_lines([f"*{refused}; {fix}*"])
