"""A latency regression explained by its layers (harness/explain.py): the explanation itself, in the session's
verdict and failure message (harness/suite.py, harness/gate.py), in `compare` (text, Markdown, job summary) and
in the HTML report's per-layer diff figure; and every partial or bad input: a profile missing on one side, an
empty one, a malformed one in a file."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import cli
from harness.baselines import BaselineFile
from harness.explain import KEPT, Explanation, explain
from harness.gate import GatePolicy, GateVerdict, judge_latency
from harness.profile import LayerProfile, LayerTime, diff
from harness.results import document as results_document
from harness.results import html
from harness.results.explanation import items, line
from harness.suite import _explained, _gate
from tests import test_gating
from tests.test_cli import LATENCY, Record, pair, record, results, write

project = test_gating.project  # the fixture: a throw-away project of the synthetic clock (tests/gate_support.py)
SOURCE = "onnxruntime profiler"
OLD = LayerProfile(
    (
        LayerTime("conv1", "Conv", 100.0, tactic="implicit_gemm"),
        LayerTime("conv2", "Conv", 50.0, tactic="winograd"),
        LayerTime("fused_relu_add", "FusedAdd", 20.0, fused=("relu", "add")),
        LayerTime("pool", "MaxPool", 10.0, formats=("NCHW", "NCHW")),
    ),
    runs=5,
    source=SOURCE,
)
NEW = LayerProfile(
    (
        LayerTime("conv1", "Conv", 140.0, tactic="direct"),  # +40 µs, a tactic change
        LayerTime("conv2", "Conv", 45.0, tactic="gemm"),  # changed, yet 5 µs faster
        LayerTime("relu", "Relu", 15.0),  # the fusion lost: relu and add apart, +10 µs together
        LayerTime("add", "Add", 15.0),
        LayerTime("pool", "MaxPool", 12.0, formats=("NCHW", "NCHW")),  # +2 µs, nothing else changed
        LayerTime("reformat", "Reformat", 3.0),  # appeared, +3 µs
    ),
    runs=5,
    source=SOURCE,
)


def test_a_profile_is_written_in_columns_and_read_back_as_were_files_written_before_them() -> None:
    written = OLD.to_json()
    assert written["columns"] == ["name", "kind", "median_us", "tactic", "formats", "fused"]  # precision: no layer
    assert written["layers"][2] == ["fused_relu_add", "FusedAdd", 20.0, None, None, ["relu", "add"]]  # type: ignore[index]
    assert LayerProfile.from_json(written) == OLD
    before_columns = {"source": SOURCE, "runs": 5, "layers": [layer.to_json() for layer in OLD.layers]}
    assert LayerProfile.from_json(before_columns) == OLD


def test_the_explanation_names_the_layers_that_added_most_with_their_share_and_what_changed() -> None:
    explanation = explain(OLD, NEW)
    # 180 µs → 230 µs: +50 µs, of which conv1 40 (80 %), the split fusion 10 (20 %), reformat 3 (6 %).
    assert items(explanation) == [
        "layers (onnxruntime profiler): 180.0 µs → 230.0 µs, +50.0 µs",
        "conv1 +40.0 µs (80 % of the layers' added time, 100.0 µs → 140.0 µs): tactic implicit_gemm -> direct",
        (
            "relu + add +10.0 µs (20 % of the layers' added time, 20.0 µs → 30.0 µs): fusion lost: fused_relu_add split "
            "into relu, add"
        ),
        "reformat +3.0 µs (6 % of the layers' added time, 0.0 µs → 3.0 µs): appeared",
        "1 more layer grew",  # pool, +2 µs
        "1 other layer changed without adding time",  # conv2's tactic
    ]
    assert line(explanation) == "; ".join(items(explanation))
    assert "\n" not in line(explanation)


def test_the_diff_says_which_layers_grew_changed_or_restructured_and_keeps_its_totals_when_cut() -> None:
    """The LayerDiff methods the explanation and compare's plan growth note rest on."""
    layers = diff(OLD, NEW)
    assert [entry.label for entry in layers.grown()] == ["conv1", "relu + add", "reformat", "pool"]
    assert layers.top(2) == layers.grown()[:2]
    assert [entry.label for entry in layers.changed_without_time()] == ["conv2"]  # 5 µs faster, new tactic
    assert [entry.label for entry in layers.structural()] == ["relu + add", "reformat"]  # not conv1's tactic
    kept = layers.kept(2)
    assert kept.entries == layers.grown()[:2] and kept.added_us == layers.added_us == 50.0
    explanation = explain(OLD, NEW)
    assert (explanation.grown, explanation.changed_without_time) == (4, 1)


def test_the_explanation_keeps_the_figures_layers_and_reads_back_as_written() -> None:
    many_old = LayerProfile(tuple(LayerTime(f"l{i}", "Conv", 10.0) for i in range(40)), 3, SOURCE)
    many_new = LayerProfile(tuple(LayerTime(f"l{i}", "Conv", 10.0 + i) for i in range(40)), 3, SOURCE)
    explanation = explain(many_old, many_new)
    assert len(explanation.layers) == KEPT and explanation.layers[0].label == "l39"  # the most added time first
    assert explanation.grown == 39 and "36 more layers grew" in line(explanation)
    assert Explanation.from_json(explanation.to_json()) == explanation
    assert Explanation.from_json(explain(None, NEW).to_json()) == explain(None, NEW)


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        (None, NEW, "layers not explained: the baseline has no layer profile"),
        (OLD, None, "layers not explained: this run has no layer profile"),
        (None, None, "layers not explained: neither the baseline nor this run has a layer profile"),
        (OLD, LayerProfile((), 5, SOURCE), "layers not explained: this run recorded an empty layer profile"),
    ],
)
def test_a_missing_or_empty_profile_is_one_clause(
    old: LayerProfile | None, new: LayerProfile | None, said: str
) -> None:
    explanation = explain(old, new)
    assert line(explanation) == said and items(explanation) == [said] and explanation.layers == ()


def test_a_slowdown_outside_the_layers_is_said_so() -> None:
    """The end-to-end latency regressed while the profiled layers' sum did not: no share is made up."""
    faster = LayerProfile((LayerTime("conv1", "Conv", 90.0, tactic="direct"),), 5, SOURCE)
    explanation = explain(LayerProfile((LayerTime("conv1", "Conv", 100.0, tactic="implicit_gemm"),), 5, SOURCE), faster)
    assert line(explanation) == (
        "layers (onnxruntime profiler): 100.0 µs → 90.0 µs, the profiled layers did not add time: the slowdown is "
        "between them; 1 other layer changed without adding time"
    )


def test_the_headline_says_what_part_of_the_medians_rise_the_layers_account_for() -> None:
    """A tiny model's latency is mostly launch and framework time, in no layer: +50 µs of layers against a +500 µs
    median is said as 10 %, never as the whole slowdown."""
    headline = items(explain(OLD, NEW, latency_added_us=500.0))[0]
    assert headline == "layers (onnxruntime profiler): 180.0 µs → 230.0 µs, +50.0 µs of the median's +500.0 µs (10 %)"
    faster = LayerProfile((LayerTime("conv1", "Conv", 90.0),), 5, SOURCE)
    outside = explain(LayerProfile((LayerTime("conv1", "Conv", 100.0),), 5, SOURCE), faster, latency_added_us=30.0)
    assert items(outside)[0].endswith("did not add time (the median's +30.0 µs): the slowdown is between them")
    assert Explanation.from_json(outside.to_json()) == outside


def test_a_change_across_10_ms_is_said_in_one_unit() -> None:
    """A layer that crossed 10 ms reads "6.15 ms → 11.33 ms", not "6,146.5 µs → 11.33 ms" (a new user's find)."""
    old = LayerProfile((LayerTime("conv1", "Conv", 6_146.5),), 5, SOURCE)
    new = LayerProfile((LayerTime("conv1", "Conv", 11_330.0),), 5, SOURCE)
    headline, named = items(explain(old, new))[:2]
    assert headline == "layers (onnxruntime profiler): 6.15 ms → 11.33 ms, +5,183.5 µs"
    assert named.startswith("conv1 +5,183.5 µs (100 % of the layers' added time, 6.15 ms → 11.33 ms)")


# --- the session's gate ------------------------------------------------------------------------------------------

BASELINE_SAMPLES = [100.0 + 0.1 * i for i in range(50)]
SLOWER_SAMPLES = [130.0 + 0.1 * i for i in range(50)]


def _context(baseline_profile: LayerProfile | None, profile: LayerProfile | None) -> SimpleNamespace:
    """What _explained and _gate read of a PointContext: its gate's baseline entry and settings, its record."""
    entry: dict[str, object] = {"latency": {"samples_us": BASELINE_SAMPLES}}
    if baseline_profile is not None:
        entry["layer_profile"] = baseline_profile.to_json()
    gate = SimpleNamespace(baseline=entry, note="baseline b.json", enforce=True, policy=GatePolicy(0.1), require=False)
    return SimpleNamespace(gate=gate, record=SimpleNamespace(name=LATENCY, layer_profile=profile, gate=None))


def test_a_regression_in_the_session_names_its_layers_and_keeps_its_verdict() -> None:
    context = _context(OLD, NEW)
    judged = judge_latency(BASELINE_SAMPLES, SLOWER_SAMPLES, GatePolicy(0.1), baseline="baseline b.json")
    explained = _explained(context, judged)  # type: ignore[arg-type]  # a stand-in for PointContext
    assert explained.verdict == judged.verdict == "regression" and explained.reason == judged.reason
    assert judged.latency is not None
    rise = judged.latency.new_median_us - judged.latency.old_median_us
    assert explained.explanation == explain(OLD, NEW, latency_added_us=rise)
    with pytest.raises(pytest.fail.Exception) as failure:
        _gate(context, explained)  # type: ignore[arg-type]
    message = str(failure.value)
    reason, layers = message.split("\n")  # the layers on a line of their own, after the verdict's reason
    assert reason == f"{LATENCY}: regression against baseline b.json: {judged.reason}"
    assert judged.reason.startswith("slower: median 1.29") and layers == line(explain(OLD, NEW, latency_added_us=rise))
    assert "+50.0 µs of the median's +30.0 µs (167 %)" in layers  # profiled apart from the timing: said as measured
    recorded = GateVerdict.from_json(context.record.gate.to_json())
    assert recorded == explained  # the results file's "gate" holds the explanation, typed


def test_a_passing_latency_is_not_explained_and_a_missing_profile_is_said() -> None:
    passed = judge_latency(BASELINE_SAMPLES, BASELINE_SAMPLES, GatePolicy(0.1))
    assert _explained(_context(OLD, NEW), passed) is passed  # type: ignore[arg-type]
    slower = judge_latency(BASELINE_SAMPLES, SLOWER_SAMPLES, GatePolicy(0.1))
    explained = _explained(_context(None, NEW), slower)  # type: ignore[arg-type]
    assert explained.explanation is not None and explained.explanation.missing == "the baseline has no layer profile"
    assert "explanation" not in passed.to_json()  # a verdict without one writes what files have always held


# --- compare ----------------------------------------------------------------------------------------------------


def _profiled(test: Record, profile: LayerProfile | None) -> Record:
    return {**test, "layer_profile": profile.to_json() if profile is not None else None}


def test_compare_names_the_layers_of_a_latency_regression_in_text_and_markdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    old, new = _profiled(record(LATENCY), OLD), _profiled(record(LATENCY, median_us=130.0, seed=1), NEW)
    files = pair(tmp_path, [old], [new])
    assert cli.main(["compare", *files]) == 1
    text = capsys.readouterr().out
    rise = new["latency"]["median_us"] - old["latency"]["median_us"]  # type: ignore[index]
    assert round(rise, 1) == 29.9  # the seeded samples' medians
    explained = explain(OLD, NEW, old_side="the old file", new_side="the new file", latency_added_us=rise)
    assert f"REGRESSION {LATENCY}: {line(explained)}" in text
    assert cli.main(["compare", *files, "--markdown"]) == 1
    markdown = capsys.readouterr().out
    assert (
        f"- REGRESSION `{LATENCY}`: layers (onnxruntime profiler): 180.0 µs → 230.0 µs, +50.0 µs of the median's "
        "+29.9 µs (167 %)\n"
    ) in markdown
    assert (
        "\n  - conv1 +40.0 µs (80 % of the layers' added time, 100.0 µs → 140.0 µs): tactic implicit_gemm -> direct\n"
    ) in markdown
    assert "\n  - 1 other layer changed without adding time\n" in markdown
    assert summary.read_text().endswith(markdown)  # the job summary gets the same list


def test_compare_names_the_layers_of_a_latency_its_own_session_failed_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """NEW's session failed the latency and wrote its layers on the message's second line: compare's reason keeps
    the message's first line (the why) and names the layers itself, once, in text and Markdown."""
    session = explain(OLD, NEW, latency_added_us=30.0)
    failed = record(LATENCY, median_us=130.0, seed=1, verdict="fail")
    message = f"Failed: {LATENCY}: regression against baseline b.json: slower: median 1.30×\n{line(session)}"
    gate = {"verdict": "regression", "baseline": "b.json", "reason": "slower", "explanation": session.to_json()}
    files = pair(
        tmp_path, [_profiled(record(LATENCY), OLD)], [{**_profiled(failed, NEW), "message": message, "gate": gate}]
    )
    for markdown in ([], ["--markdown"]):
        assert cli.main(["compare", *files, *markdown]) == 1
        output = capsys.readouterr().out
        assert output.count("conv1 +40.0 µs") == 1 and "regression against baseline b.json: slower" in output


def test_compare_says_which_file_lacks_a_profile_and_explains_no_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = _profiled(record(LATENCY), OLD), record(LATENCY, median_us=130.0, seed=1)
    assert cli.main(["compare", *pair(tmp_path, [old], [new])]) == 1
    assert f"REGRESSION {LATENCY}: layers not explained: the new file has no layer profile" in capsys.readouterr().out
    same = _profiled(record(LATENCY), NEW)
    assert cli.main(["compare", *pair(tmp_path, [old], [same])]) == 0
    assert "layers" not in capsys.readouterr().out  # a pass is not explained


@pytest.mark.parametrize(
    ("damage", "field"),
    [
        (lambda profile: ["not", "an", "object"], r'"layer_profile" must be an object or null'),
        (lambda profile: {**profile, "layers": "conv1"}, r'"layer_profile.layers" must be a list of layers'),
        (
            lambda profile: {**profile, "layers": [7]},
            r'"layer_profile.layers\[0\]" must be a row of 6 values, one per column \(name, kind, median_us, tactic, formats, fused\)',
        ),
        (lambda profile: {**profile, "columns": ["name", "speed"]}, r'"layer_profile.columns" must be a list of the'),
        (lambda profile: {"layers": [7]}, r'"layer_profile.layers\[0\]" must be an object'),  # a file before columns
        (lambda profile: _layer(profile, name=None), r'"layer_profile.layers\[0\].name" must be the layer\'s name'),
        (
            lambda profile: _layer(profile, median_us="nan"),
            r'"layer_profile.layers\[0\].median_us" \(layer \'conv1\'\) must be a finite number ≥ 0',
        ),
        (lambda profile: _layer(profile, median_us=-1.0), r'"layer_profile.layers\[0\].median_us"'),
    ],
)
def test_a_malformed_layer_profile_exits_2_naming_the_file_test_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: object, field: str
) -> None:
    broken = _profiled(record(LATENCY), OLD)
    broken["layer_profile"] = damage(broken["layer_profile"])  # type: ignore[operator]
    good = write(tmp_path / "good.json", results(record(LATENCY)))
    bad = write(tmp_path / "bad.json", results(broken))
    assert cli.main(["compare", str(good), str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert re.search(rf"bad.json: test 'test_latency\[mnist-fp16-opt-ort\]': {field}", captured.err), captured.err
    assert "re-run the tests to write it again" in captured.err


def test_a_baseline_as_old_explains_from_its_entry_and_a_malformed_one_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = BaselineFile(tmp_path / "ort-1.32.0.json", "amd-epyc", "ort", "1.32.0")
    baseline.entries = {LATENCY: _profiled(record(LATENCY), OLD)}
    baseline.write()
    new = write(tmp_path / "new.json", results(_profiled(record(LATENCY, median_us=130.0, seed=1), NEW)))
    assert cli.main(["compare", str(baseline.path), str(new)]) == 1
    assert f"REGRESSION {LATENCY}: layers (onnxruntime profiler): 180.0 µs → 230.0 µs" in capsys.readouterr().out
    baseline.entries = {LATENCY: {**record(LATENCY), "layer_profile": {"layers": [{"name": "conv1"}]}}}
    baseline.write()
    assert cli.main(["compare", str(baseline.path), str(new)]) == 2
    said = capsys.readouterr().err
    assert f"baseline {baseline.path}: test '{LATENCY}': \"layer_profile.layers[0].median_us\" (layer 'conv1')" in said
    assert "delete that entry and record it again with --update-baselines" in said


def _layer(profile: dict[str, object], **changed: object) -> dict[str, object]:
    damaged = copy.deepcopy(profile)
    for column, value in changed.items():
        damaged["layers"][0][damaged["columns"].index(column)] = value  # type: ignore[index, attr-defined]
    return damaged


# --- the HTML report --------------------------------------------------------------------------------------------


def _regressed(test_id: str, explanation: Explanation) -> dict[str, object]:
    judged = judge_latency(BASELINE_SAMPLES, SLOWER_SAMPLES, GatePolicy(0.1))
    gate = GateVerdict(judged.verdict, judged.reason, "baseline b.json", judged.latency, explanation=explanation)
    return {"id": test_id, "verdict": "fail", "latency": {"samples_us": SLOWER_SAMPLES}, "gate": gate.to_json()}


def _report(*tests: dict[str, object]) -> str:
    contents = {"schema": results_document.SCHEMA, "schema_version": results_document.SCHEMA_VERSION}
    return html.render(results_document.from_json({**contents, "tests": list(tests)}))


def _section(page: str) -> str:
    start = page.index('<section id="layer-diff">')
    return page[start : page.index("</section>", start)]


def test_the_report_draws_old_against_new_per_layer_with_the_changed_layers_marked() -> None:
    section = _section(_report(_regressed(LATENCY, explain(OLD, NEW))))
    assert section.count("<svg") == 1
    # The figure's labels are text (svg.fonttype none): a changed layer's ends in " *", an unchanged one's does not.
    for changed in ("conv1 *", "relu + add *", "reformat *", "conv2 *"):
        assert changed in section
    assert ">pool<" in section and "pool *" not in section  # only its time changed
    item = (
        "conv1 +40.0 µs (80 % of the layers&#x27; added time, 100.0 µs → 140.0 µs): tactic implicit_gemm -&gt; direct"
    )
    assert f"<li>{item}</li>" in section


def test_the_report_bounds_its_layer_diffs_and_says_a_missing_profile() -> None:
    regressed = [_regressed(f"test_latency[m{i}-fp32-opt-ort]", explain(OLD, NEW)) for i in range(12)]
    missing = _regressed("test_latency[lonely-fp32-opt-ort]", explain(None, NEW))
    section = _section(_report(*regressed, missing))
    assert section.count("<svg") == 10  # _LAYER_DIFFS figures at most, whatever the fleet
    assert "3 more explained regressions: in the results file" in section
    assert "no latency regression was explained" in _section(_report(record(LATENCY)))
    lonely = _section(_report(missing))
    assert "layers not explained: the baseline has no layer profile" in lonely and "<svg" not in lonely


def test_a_session_regression_says_its_layers_in_the_failure_and_the_results_file(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end (tests/gate_support.py's synthetic clock): the baseline's entries carry a layer profile, the run
    that regressed records none of its own: the failure and the recorded verdict say so in one clause."""
    path = test_gating.record_baselines(project)
    baseline = json.loads(path.read_text())
    for entry in baseline["entries"].values():
        entry["layer_profile"] = OLD.to_json()
    path.write_text(json.dumps(baseline))
    monkeypatch.setenv("HARNESS_TEST_SLOWDOWN", "1.3")
    result = project.runpytest(*test_gating.FAST, "-k", "latency and opt", "--results", "r.json")
    result.assert_outcomes(failed=1)
    # The summary's failure line is the verdict's reason; the layers follow on a line of their own.
    result.stdout.fnmatch_lines(
        [
            "FAIL test_latency[[]identity-fp32-opt-ort[]]: regression against baseline*slower*",
            "  layers not explained: *",
        ]
    )
    assert "  layers not explained: this run has no layer profile" in result.stdout.lines
    (test,) = json.loads((project.path / "r.json").read_text())["tests"]
    assert test["gate"]["verdict"] == "regression"
    assert test["gate"]["explanation"] == {"missing": "this run has no layer profile"}


def test_layers_related_through_a_chain_of_nodes_are_one_group_in_execution_order() -> None:
    """A fusion regrouped across several layers (profile.diff's components): old a+b and c, new b+c and a."""
    old = LayerProfile((LayerTime("ab", "Fused", 10.0, fused=("a", "b")), LayerTime("c", "Conv", 5.0)), 1, SOURCE)
    new = LayerProfile((LayerTime("a", "Conv", 4.0), LayerTime("bc", "Fused", 20.0, fused=("b", "c"))), 1, SOURCE)
    (layer,) = explain(old, new).layers
    assert (layer.old, layer.new, layer.old_us, layer.new_us) == (("ab", "c"), ("a", "bc"), 15.0, 24.0)
    assert layer.changes == ("renamed: ab, c -> a, bc",)
