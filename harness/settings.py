"""Options and ini keys, resolved once per session: command line > ini file > built-in default."""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

from harness.backends import BackendOptionError, BackendOptions, DeviceKind, Registry
from harness.case import Precision
from harness.gate import CostPolicy
from harness.measure import MeasurePolicy, PolicyValueError
from harness.precision.derive import PrecisionOptions
from harness.precision.quantize import CALIBRATORS, Calibrator
from harness.spec import has_pyproject_table
from harness.switch import switch_value

T = TypeVar("T")

RESULTS_DIR = Path(".harness") / "results"
ENGINE_CACHE_DIR = Path(".harness") / "engines"


@dataclass(frozen=True)
class Settings:
    gpu: bool
    build_only: bool  # build (or find in the cache) every selected engine; run nothing
    backends: tuple[str, ...]
    spec_paths: tuple[Path, ...]  # spec files and test-layout folders whose cases join the hook's (harness/spec/)
    precisions: tuple[Precision, ...]
    unknown_selections: tuple[str, ...]  # errors for names on the command line / ini that match nothing
    results_path: Path
    html_path: Path | None  # the HTML report; None: --harness-html=off
    engine_cache: Path | None
    engine_cache_size: int | None  # bytes of engines the cache keeps (least recently used evicted); None: no limit
    measure: MeasurePolicy
    seed: int
    backend_options: BackendOptions
    # Plugin backends' own options, NAME -> VALUE as written (--backend-option, harness_backend_options): each
    # backend takes those its descriptor's options_type declares (BackendDescriptor.options).
    backend_own_options: Mapping[str, str]
    gate: GateSettings
    fuzz_examples: int | None  # overrides the Hypothesis profile's max_examples for the fuzz tests
    precision_options: PrecisionOptions  # what the derived models keep in float32, how int8 is calibrated
    localize: bool  # localize every derived-precision point, not only those that fail accuracy
    profile_layers: bool  # record per-layer times after each latency measurement (harness/profile.py)


@dataclass(frozen=True)
class GateSettings:
    baselines: Path  # the baselines folder
    update: bool  # write this run's passing tests into the baselines
    require: bool  # a test without a baseline fails
    baseline_from: str | None  # BACKEND-VERSION whose baselines to compare with (upgrade gate)
    fail_on_improvement: bool
    latency_threshold: float | None  # None: the case's own, else the backend descriptor's
    alpha: float
    accuracy_factor: float
    costs: CostPolicy = field(default_factory=CostPolicy)  # build time, plan size and device memory thresholds


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "trt-harness: engine accuracy and latency")
    group.addoption("--gpu", action="store_true", help="run tests that need a GPU; without it `gpu` tests are skipped")
    _add(
        parser,
        "--backend",
        "harness_backends",
        "comma-separated backend ids (default: the backends registered as default, ort; with --gpu, trt,trt-net)",
    )
    _add(
        parser,
        "--harness-spec",
        "harness_spec",
        "comma-separated spec files (TOML with [[case]] tables, or a pyproject.toml's [tool.trt-harness]) or folders "
        "in ONNX's test layout: their models join the matrix (default: the root pyproject.toml's [tool.trt-harness])",
    )
    _add(
        parser,
        "--build-only",
        "harness_build_only",
        "build (or find in the engine cache) every selected engine and record it; skip every run test",
        switch=True,
    )
    _add(
        parser,
        "--precision",
        "harness_precisions",
        f"comma-separated precisions: {','.join(p.value for p in Precision)} (default: all)",
    )
    _add(
        parser,
        "--keep-fp32",
        "harness_keep_fp32",
        "comma-separated node names kept float32 inside the fp16/bf16 models and left unquantized in int8 (in every case that has them)",
    )
    _add(
        parser,
        "--harness-calibrator",
        "harness_calibrator",
        "int8 calibration: max or percentile (default: max)",
    )
    _add(
        parser,
        "--localize",
        "harness_localize",
        "report the first layer beyond tolerance for every fp16/bf16/int8 point, not only for failing ones",
        switch=True,
    )
    parser.getgroup("harness").addoption(
        "--no-harness-profile",
        action="store_true",
        help="record no per-layer profile after the latency measurements (ini: harness_profile = no)",
    )
    parser.addini("harness_profile", help="yes or no: record per-layer profiles (default: yes)", default=None)
    _add(
        parser,
        "--results",
        "harness_results",
        f"results JSON path (default: {RESULTS_DIR}/results-<UTC time>-<pid>.json)",
    )
    _add(
        parser,
        "--harness-html",
        "harness_html",
        "HTML report path, or 'off' (default: beside the results file, its name with .html)",
    )
    _add(
        parser,
        "--engine-cache",
        "harness_engine_cache",
        f"engine cache directory, or 'off' (default: {ENGINE_CACHE_DIR})",
    )
    _add(
        parser,
        "--engine-cache-size",
        "harness_engine_cache_size",
        "size limit of the engine cache, e.g. 500M or 4G (binary units), or 'off'; beyond it the least recently "
        "used engines are evicted (default: 2G)",
    )
    _add(parser, "--latency-budget", "harness_latency_budget", "seconds of timed runs per latency test (default: 1.0)")
    _add(
        parser,
        "--latency-budget-max",
        "harness_latency_budget_max",
        "seconds a slow model's latency test may extend its budget to, to reach the samples the gate needs "
        "(default: 10.0; never below --latency-budget)",
    )
    _add(
        parser,
        "--latency-ci",
        "harness_latency_ci",
        "stop timing when the median's 95%% CI is within ±this fraction (default: 0.01)",
    )
    _add(parser, "--harness-seed", "harness_seed", "base seed of the generated inputs (default: 0)")
    _add(parser, "--fuzz-examples", "harness_fuzz_examples", "shapes per fuzz test (default: the Hypothesis profile's)")
    _add(parser, "--cpu-threads", "harness_cpu_threads", "intra-op threads of CPU backends, 0 = all cores (default: 1)")
    _add(
        parser,
        "--timing-copies",
        "harness_timing_copies",
        "time host<->device copies with the work (default: no)",
        switch=True,
    )
    _add(
        parser,
        "--cuda-graph",
        "harness_cuda_graph",
        "replay the work as a captured CUDA graph (default: no)",
        switch=True,
    )
    _add(parser, "--cuda-sync", "harness_cuda_sync", "spin or blocking: how the host waits for the GPU (default: spin)")
    _add(
        parser,
        "--timing-launches",
        "harness_timing_launches",
        "launches per timed sample, >1 for throughput (default: 1)",
    )
    _add(parser, "--baselines", "harness_baselines", "baselines folder (default: baselines)")
    _add(
        parser,
        "--update-baselines",
        "harness_update_baselines",
        "write this run's passing tests into the baselines",
        switch=True,
    )
    _add(parser, "--require-baselines", "harness_require_baselines", "a test without a baseline fails", switch=True)
    _add(
        parser,
        "--baseline-from",
        "harness_baseline_from",
        "compare with the baselines of BACKEND-VERSION, e.g. trt-10.16",
    )
    _add(
        parser,
        "--fail-on-improvement",
        "harness_fail_on_improvement",
        "an improvement beyond the threshold fails (stale baselines)",
        switch=True,
    )
    _add(
        parser,
        "--latency-threshold",
        "harness_latency_threshold",
        "slowdown that is a regression (default: the backend's own, e.g. ort 0.10, trt 0.05)",
    )
    costs = CostPolicy()
    _add(
        parser,
        "--build-time-threshold",
        "harness_build_time_threshold",
        f"growth of a build test's build time that is a regression (default: {costs.build_time_threshold}; builds "
        f"under {costs.build_time_floor_s:g} s or found in the engine cache are not judged on time)",
    )
    _add(
        parser,
        "--plan-size-threshold",
        "harness_plan_size_threshold",
        f"growth of a build test's plan (artifact) size that is a regression (default: {costs.plan_size_threshold})",
    )
    _add(
        parser,
        "--memory-threshold",
        "harness_memory_threshold",
        f"growth of an engine's device memory that is a regression of its latency tests, where the backend reports it "
        f"(TensorRT; default: {costs.memory_threshold})",
    )
    _add(
        parser,
        "--output-size-threshold",
        "harness_output_size_threshold",
        "growth of the bytes an inference hands back (the output stage) that is a regression of its latency tests "
        f"(default: {costs.output_size_threshold})",
    )
    _add(parser, "--gate-alpha", "harness_gate_alpha", "significance of the latency rank test (default: 0.002)")
    _add(
        parser, "--accuracy-factor", "harness_accuracy_factor", "mean relative error may grow this much (default: 2.0)"
    )
    _add(
        parser,
        "--trt-weak-typing",
        "harness_trt_weak_typing",
        "TensorRT builder precision flags, where the version has them, instead of a strongly typed network",
        switch=True,
    )
    own_help = "NAME=VALUE: an option a plugin backend adds to BackendOptions (README, Adding a backend)"
    group = parser.getgroup("harness")
    group.addoption("--backend-option", action="append", default=[], metavar="NAME=VALUE", help=own_help)
    parser.addini("harness_backend_options", type="linelist", default=[], help=own_help)


def _add(parser: pytest.Parser, option: str, ini: str, help_text: str, *, switch: bool = False) -> None:
    # A switch alone means "yes"; `--switch=no` overrides an ini file that says yes.
    extra = {"nargs": "?", "const": "yes"} if switch else {}
    parser.getgroup("harness").addoption(option, default=None, help=help_text, **extra)
    parser.addini(ini, help=help_text, default=None)


def _layered(config: pytest.Config, option: str, ini: str, default: str) -> str:
    """The command line wins over the ini file, which wins over the default."""
    value = config.getoption(option)
    if value is None:
        value = config.getini(ini)
    return default if value in (None, "") else str(value)


def resolve(config: pytest.Config, registry: Registry) -> Settings:
    gpu = bool(config.getoption("gpu"))
    backends, unknown_backends = _select(
        _layered(
            config,
            "backend",
            "harness_backends",
            ",".join(registry.defaults(DeviceKind.GPU if gpu else DeviceKind.CPU)),
        ),
        registry.known(),
        str,
        "backend",
        "--backend",
    )
    precisions, unknown_precisions = _select(
        _layered(config, "precision", "harness_precisions", ",".join(p.value for p in Precision)),
        [p.value for p in Precision],
        Precision,
        "precision",
        "--precision",
    )
    root = config.rootpath
    cache = _layered(config, "engine_cache", "harness_engine_cache", str(ENGINE_CACHE_DIR))
    engine_cache = None if cache == "off" else _folder(root / cache, "--engine-cache", "harness_engine_cache", "or off")
    results_path = root / _layered(config, "results", "harness_results", str(_default_results_name()))
    return Settings(
        gpu=gpu,
        build_only=_yes(config, "--build-only", "harness_build_only"),
        backends=tuple(backends),
        spec_paths=_spec_paths(config),
        precisions=tuple(precisions),
        unknown_selections=(*unknown_backends, *unknown_precisions),
        results_path=results_path,
        html_path=_html_path(config, root, results_path),
        engine_cache=engine_cache,
        engine_cache_size=_size_limit(config),
        measure=_measure_policy(config),
        seed=_number(config, "harness_seed", "--harness-seed", "0", int),
        backend_options=BackendOptions(
            cache_dir=engine_cache,
            include_copies=_yes(config, "--timing-copies", "harness_timing_copies"),
            cuda_graph=_yes(config, "--cuda-graph", "harness_cuda_graph"),
            blocking_sync=_choice(config, "--cuda-sync", "harness_cuda_sync", ("spin", "blocking")) == "blocking",
            launches=_number(config, "harness_timing_launches", "--timing-launches", "1", _at_least(int, 1)),
            weak_typing=_yes(config, "--trt-weak-typing", "harness_trt_weak_typing"),
            cpu_threads=_number(config, "harness_cpu_threads", "--cpu-threads", "1", _at_least(int, 0)),
        ),
        backend_own_options=_backend_own_options(config, registry, backends),
        gate=_gate_settings(config, root),
        fuzz_examples=_number(config, "harness_fuzz_examples", "--fuzz-examples", examples, _at_least(int, 1))
        if (examples := _layered(config, "fuzz_examples", "harness_fuzz_examples", ""))
        else None,
        precision_options=PrecisionOptions(
            keep_fp32=tuple(
                dict.fromkeys(
                    name.strip()
                    for name in _layered(config, "keep_fp32", "harness_keep_fp32", "").split(",")
                    if name.strip()
                )
            ),
            calibrator=_calibrator(config),
            min_opset=max((registry.descriptor(short_id).min_opset for short_id in backends), default=1),
        ),
        localize=_yes(config, "--localize", "harness_localize"),
        profile_layers=_profiles_layers(config),
    )


def _backend_own_options(config: pytest.Config, registry: Registry, backends: Sequence[str]) -> dict[str, str]:
    """--backend-option NAME=VALUE over the ini's harness_backend_options lines (the command line wins, name by
    name), each NAME an option a selected backend declares and each VALUE of its type: a usage error otherwise."""
    own: dict[str, str] = {}
    for line in [*config.getini("harness_backend_options"), *config.getoption("backend_option")]:
        name, equals, value = line.partition("=")
        if not (equals and name.strip()):
            raise pytest.UsageError(
                f"trt-harness: --backend-option / harness_backend_options takes NAME=VALUE, got {line!r}"
            )
        own[name.strip()] = value.strip()
    declared = {name: short_id for short_id in backends for name in registry.descriptor(short_id).own_options()}
    for name in own.keys() - declared.keys():
        offered = ", ".join(sorted(declared)) or "none"
        raise pytest.UsageError(
            f"trt-harness: --backend-option {name}: no selected backend has an option {name!r} (theirs: {offered})"
        )
    for short_id in backends:
        try:
            registry.descriptor(short_id).options(BackendOptions(), own)
        except BackendOptionError as error:
            raise pytest.UsageError(f"trt-harness: backend '{short_id}': {error}") from None
    return own


def _spec_paths(config: pytest.Config) -> tuple[Path, ...]:
    """Command-line paths are relative to where pytest was started, ini paths to the ini file; without either, the
    root's pyproject.toml when it has a [tool.trt-harness] table."""
    raw, base = config.getoption("harness_spec"), config.invocation_params.dir
    if raw is None:
        raw, base = config.getini("harness_spec"), config.inipath.parent if config.inipath else config.rootpath
    if raw:
        return tuple(base / path.strip() for path in str(raw).split(",") if path.strip())
    pyproject = config.rootpath / "pyproject.toml"
    return (pyproject,) if has_pyproject_table(pyproject) else ()


def _html_path(config: pytest.Config, root: Path, results_path: Path) -> Path | None:
    """--harness-html / harness_html, by default beside the results file; None for off."""
    chosen = _layered(config, "harness_html", "harness_html", str(results_path.with_suffix(".html")))
    return None if chosen == "off" else root / chosen


def _gate_settings(config: pytest.Config, root: Path) -> GateSettings:
    threshold = _layered(config, "latency_threshold", "harness_latency_threshold", "")
    return GateSettings(
        baselines=_folder(
            root / _layered(config, "baselines", "harness_baselines", "baselines"),
            "--baselines",
            "harness_baselines",
            "(the folder holding <device class>/<backend>-<version>.json)",
        ),
        update=_yes(config, "--update-baselines", "harness_update_baselines"),
        require=_yes(config, "--require-baselines", "harness_require_baselines"),
        baseline_from=_layered(config, "baseline_from", "harness_baseline_from", "") or None,
        fail_on_improvement=_yes(config, "--fail-on-improvement", "harness_fail_on_improvement"),
        latency_threshold=_number(config, "harness_latency_threshold", "--latency-threshold", threshold, _fraction)
        if threshold
        else None,
        alpha=_number(config, "harness_gate_alpha", "--gate-alpha", "0.002", _fraction),
        accuracy_factor=_number(config, "harness_accuracy_factor", "--accuracy-factor", "2.0", _at_least(float, 1.0)),
        costs=_cost_policy(config),
    )


def _cost_policy(config: pytest.Config) -> CostPolicy:
    """The cost thresholds, each layered (command line, ini, CostPolicy's default) and refused unless > 0."""
    default = CostPolicy()
    return CostPolicy(
        build_time_threshold=_number(
            config,
            "harness_build_time_threshold",
            "--build-time-threshold",
            str(default.build_time_threshold),
            _growth,
        ),
        plan_size_threshold=_number(
            config, "harness_plan_size_threshold", "--plan-size-threshold", str(default.plan_size_threshold), _growth
        ),
        memory_threshold=_number(
            config, "harness_memory_threshold", "--memory-threshold", str(default.memory_threshold), _growth
        ),
        output_size_threshold=_number(
            config,
            "harness_output_size_threshold",
            "--output-size-threshold",
            str(default.output_size_threshold),
            _growth,
        ),
    )


def _folder(path: Path, option: str, ini: str, hint: str) -> Path:
    """A folder the session may create: neither it nor a parent may be something else (a file, a device):
    a usage error now, rather than an error in every test, or a session that silently gates nothing."""
    blocker = _not_a_folder(path, path)
    if blocker is not None:
        raise pytest.UsageError(
            f"trt-harness: {option} / {ini} must be a directory, but {blocker}; pass a directory {hint}"
        )
    return path


def _not_a_folder(folder: Path, given: Path) -> str | None:
    """Why `folder` cannot be (or become) a directory: it or a parent exists but is not one."""
    for part in (folder, *folder.parents):
        if part.exists() and not part.is_dir():
            return f"{given} is not a directory" if part == given else f"{part}, above {given}, is not a directory"
    return None


class _OutOfRange(ValueError):
    """A number that parses but that the option does not take; its text says what it must be."""


def _fraction(raw: str) -> float:
    value = float(raw)
    if not 0 < value < 1:
        raise _OutOfRange("a number between 0 and 1 (exclusive)")
    return value


def _growth(raw: str) -> float:
    """A cost's threshold: any growth > 0 as a fraction (a build may be allowed to take twice as long: 1.0)."""
    value = float(raw)
    if not (math.isfinite(value) and value > 0):
        raise _OutOfRange("a fraction greater than 0 (0.2 means 20 % more)")
    return value


def _at_least(convert: Callable[[str], T], minimum: T) -> Callable[[str], T]:
    """A converter that also refuses values below `minimum`, saying so (not as a malformed number)."""

    def converted(raw: str) -> T:
        try:
            value = convert(raw)
        except ValueError:  # '1.5' for a count: say what it must be, not only that it is not valid
            raise _OutOfRange(f"{'a whole number' if convert is int else 'a number'} >= {minimum}") from None
        if value < minimum:  # type: ignore[operator]
            raise _OutOfRange(f"at least {minimum}")
        return value

    return converted


def _yes(config: pytest.Config, option: str, ini: str) -> bool:
    value = _layered(config, _dest(option), ini, "no")
    meaning = switch_value(value)
    if meaning is not None:
        return meaning
    # `--switch path` takes the path as the switch's value (the switch's value is optional): say how to write both.
    raise pytest.UsageError(
        f"trt-harness: {option} / {ini} takes yes or no (alone it means yes), got {value!r}; if {value!r} is what "
        f"pytest should collect, write `{option} yes {value}` or put {option} after the paths"
    )


def _profiles_layers(config: pytest.Config) -> bool:
    """--no-harness-profile turns per-layer profiles off; else the ini's harness_profile says; else they are on."""
    if config.getoption("no_harness_profile"):
        return False
    value = config.getini("harness_profile") or "yes"
    meaning = switch_value(str(value))
    if meaning is None:
        raise pytest.UsageError(
            f"trt-harness: the ini key harness_profile takes yes or no, got {value!r}; write harness_profile = no to "
            "record no per-layer profiles (or --no-harness-profile on the command line)"
        )
    return meaning


def _choice(config: pytest.Config, option: str, ini: str, allowed: Sequence[str]) -> str:
    value = _layered(config, _dest(option), ini, allowed[0])
    if value not in allowed:
        raise pytest.UsageError(f"trt-harness: {option} / {ini} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _calibrator(config: pytest.Config) -> Calibrator:
    chosen = _choice(config, "--harness-calibrator", "harness_calibrator", CALIBRATORS)
    return next(calibrator for calibrator in CALIBRATORS if calibrator == chosen)  # typed as the Literal


def _dest(option: str) -> str:
    return option.lstrip("-").replace("-", "_")


def _select(
    raw: str, known: Sequence[str], convert: Callable[[str], T], what: str, option: str
) -> tuple[list[T], list[str]]:
    """Split a comma-separated selection into the known names and an error for each unknown one."""
    names = [name.strip() for name in raw.split(",") if name.strip()]
    chosen = [convert(name) for name in dict.fromkeys(names) if name in known]
    unknown = [
        f"unknown {what} '{name}' in {option} / ini; known: {', '.join(known)}. Fix: use one of those names"
        for name in names
        if name not in known
    ]
    return chosen, unknown


# The options that set MeasurePolicy's fields: its range errors name the option, not the field.
_MEASURE_OPTIONS = {
    "budget_s": ("--latency-budget", "harness_latency_budget"),
    "budget_max_s": ("--latency-budget-max", "harness_latency_budget_max"),
    "target_rel_ci": ("--latency-ci", "harness_latency_ci"),
}


def _measure_policy(config: pytest.Config) -> MeasurePolicy:
    try:
        return MeasurePolicy(
            budget_s=_number(config, "harness_latency_budget", "--latency-budget", "1.0", float),
            budget_max_s=_number(config, "harness_latency_budget_max", "--latency-budget-max", "10.0", float),
            target_rel_ci=_number(config, "harness_latency_ci", "--latency-ci", "0.01", float),
        )
    except PolicyValueError as error:
        option, ini = _MEASURE_OPTIONS[error.field]
        raw = _layered(config, _dest(option), ini, "")
        raise pytest.UsageError(f"trt-harness: {option} / {ini} must be {error.allowed}, got {raw!r}") from None


def _number(config: pytest.Config, ini: str, option: str, default: str, convert: Callable[[str], T]) -> T:
    raw = _layered(config, _dest(option), ini, default)
    try:
        return convert(raw)
    except _OutOfRange as error:
        raise pytest.UsageError(f"trt-harness: {option} / {ini} must be {error}, got {raw!r}") from None
    except ValueError:
        raise pytest.UsageError(f"trt-harness: {option} / {ini} must be a valid number, got {raw!r}") from None


_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def _size_limit(config: pytest.Config) -> int | None:
    """--engine-cache-size / harness_engine_cache_size in bytes: a number with an optional unit K, M, G or T
    (binary: 2G is 2 GiB; a trailing B or iB is allowed), or off (None: no limit)."""
    raw = _layered(config, "engine_cache_size", "harness_engine_cache_size", "2G")
    if raw.strip().lower() == "off":
        return None
    text = raw.strip().upper().removesuffix("IB").removesuffix("B")
    unit = text[-1:] if text[-1:] in _SIZE_UNITS else ""
    try:
        value = float(text.removesuffix(unit)) if unit else float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):  # 0 would evict every engine as soon as it is stored
        raise pytest.UsageError(
            f"trt-harness: --engine-cache-size / harness_engine_cache_size must be a size above 0 such as 500M or 4G, "
            f"or off, got {raw!r}"
        )
    return int(value * _SIZE_UNITS[unit])


def _default_results_name() -> Path:
    """Unique per session: two sessions started in the same microsecond still differ by process id."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    return RESULTS_DIR / f"results-{stamp}-{os.getpid()}.json"
