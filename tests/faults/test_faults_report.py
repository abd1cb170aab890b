"""Issue 18's audit, the report's rows (17, 25, 26): each fault kept as a test that fails without its fix.

The documents are made here, record by record, as the plugin writes them; the fleet's own sizes and speeds
(100,000 tests: seconds, RSS, MB of HTML) are measured by benchmarks/fleet_scale.py, not here.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main as cli_main
from harness.results import document as results_document
from harness.results import html, stream, text
from harness.results.document import ResultsFileError, TestResult
from harness.results.terminal import summary_lines

FAST_SAMPLES = [10.0 + index % 7 for index in range(300)]  # more than the report keeps: condensed to percentiles


def record(test_id: str, verdict: str = "pass", **fields: object) -> dict[str, object]:
    """A results record as the plugin writes it, for a test id like test_accuracy[case-fp16-opt-ort]."""
    point = test_id.split("[", 1)[1].rstrip("]")
    case, precision, shape, backend = point.split("-", 3)
    base = {"id": test_id, "nodeid": f"cases/test_matrix.py::{test_id}", "point": point, "case": case}
    return base | {"precision": precision, "shape": shape, "backend": backend, "verdict": verdict, **fields}


def contents(tests: list[dict[str, object]]) -> dict[str, object]:
    return {"schema": results_document.SCHEMA, "schema_version": results_document.SCHEMA_VERSION, "tests": tests}


def document(tests: list[dict[str, object]], source: str = "r.json") -> results_document.ResultsDocument:
    return results_document.from_json(contents(tests), source)


def latency(samples: list[float]) -> dict[str, object]:
    ordered = sorted(samples)
    return {
        "median_us": ordered[len(ordered) // 2],
        "p99_us": ordered[-1],
        "count": len(samples),
        "samples_us": samples,
    }


def section(page: str, anchor: str) -> str:
    start = page.index(f'<section id="{anchor}">')
    return page[start : page.index("</section>", start)]


def nan_output(**extra: object) -> dict[str, object]:
    """An output of NaN only: its errors are measured over no finite element, so they read 0."""
    return {
        "output": "y",
        "mean_rel": 0.0,
        "max_rel": 0.0,
        "nan_count": 10,
        "inf_count": 0,
        "tolerance": {"mean_rel": 1e-3},
        "failure": "10 NaN/Inf elements where the reference is finite",
        **extra,
    }


# --- row 17: a fleet's results file -------------------------------------------------------------------------------


def test_row_17_many_cases_draw_a_bounded_number_of_figures() -> None:
    """Row 17: "98 MB of HTML (one matplotlib figure per case)": figures are the worst tests and aggregates."""
    tests = [
        record(f"test_latency[case{index}-fp32-opt-ort]", latency=latency(FAST_SAMPLES)) for index in range(60)
    ] + [
        record(f"test_accuracy[case{index}-fp32-opt-ort]", accuracy=[{"output": "y", "mean_rel": 1e-6 * (index + 1),
               "max_rel": 1e-5, "tolerance": {"mean_rel": 1e-3}}]) for index in range(60)
    ]  # fmt: skip
    page = html.render(document(tests))
    assert page.count("<svg") == 3  # the heat map, the 20 worst latency tests, the medians per precision and backend
    assert "the 20 worst of 60 latency tests (60 cases)" in section(page, "latency")
    heat = section(page, "accuracy")
    assert "The 40 worst of 60 cases" in heat
    assert ">case59<" in heat and ">case0<" not in heat  # the largest errors are the ones drawn


def test_row_17_a_few_cases_keep_one_latency_figure_each() -> None:
    """Row 17, the small run: the default matrix's report still draws each case's tests."""
    tests = [record(f"test_latency[case{index}-fp32-opt-ort]", latency=latency(FAST_SAMPLES)) for index in range(3)]
    assert section(html.render(document(tests)), "latency").count("<svg") == 3


def test_row_17_thousands_of_passes_are_counted_per_case_not_listed() -> None:
    """Row 17: a report of 100,000 tests must stay <= 20 MB: beyond 1,000 passes, one row per case."""
    tests = [record(f"test_accuracy[case{index % 7}-fp32-p{index}-ort]") for index in range(1500)]
    verdicts = section(html.render(document(tests)), "verdicts")
    assert "1,500 tests passed: one row per case" in verdicts
    assert "p1499" not in verdicts and "<td>case6</td><td>214</td>" in verdicts


def test_row_17_the_report_reads_the_file_a_record_at_a_time_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row 17: "2.6 GB RSS": the report keeps each latency test's percentiles, not its samples, and shows the same."""
    samples = [float(value) for value in np.random.default_rng(0).lognormal(3, 0.5, 2000)]
    tests = [
        record("test_latency[a-fp32-opt-ort]", latency=latency(samples), derivation={"scales": {"w": [0.5] * 300}}),
        record(
            "test_accuracy[a-int8-opt-ort]",
            "fail",
            message=f'text of "samples_us": {list(range(1, 300))} ,"scales": {{}}',
        ),
        record("test_latency[b-fp32-opt-ort]", latency=latency(samples[:50])),
    ]
    path = tmp_path / "r.json"
    results_document.write(path, contents(tests))
    monkeypatch.setattr(stream, "_CHUNK", 97)  # records, samples and scales cut by the chunks' ends, anywhere
    loaded = html.load(path)
    kept = loaded.tests[0].latency
    assert kept is not None and len(kept.samples_us) == 101
    assert kept.samples_us == pytest.approx(list(np.percentile(samples, range(101))), rel=1e-12)
    assert loaded.tests[1].message == tests[1]["message"]  # a key's text inside a message is left alone
    assert loaded.tests[2].latency is not None and len(loaded.tests[2].latency.samples_us) == 50
    whole = results_document.load(path)
    assert [t.id for t in loaded.tests] == [t.id for t in whole.tests]
    assert _boxes(html.render(loaded)) == _boxes(html.render(whole))  # the medians and quartiles drawn


def _boxes(page: str) -> list[str]:
    """The box outlines of the latency figure (their coordinates): what the condensed samples must not change."""
    figure = section(page, "latency")
    return re.findall(r'<path d="(M [^"]+z)" clip-path', figure)


def test_row_17_a_bad_sample_in_a_large_file_is_named_as_before(tmp_path: Path) -> None:
    """Row 17: reading a record at a time keeps results_document.load's checks: the test and the field are named."""
    bad = [*FAST_SAMPLES[:200], -1.0]
    path = tmp_path / "r.json"
    results_document.write(path, contents([record("test_latency[a-fp32-opt-ort]", latency=latency(bad))]))
    with pytest.raises(
        ResultsFileError, match=re.escape("test 'test_latency[a-fp32-opt-ort]': \"latency.samples_us[200]\"")
    ):
        html.load(path)
    path.write_text(path.read_text()[:-40])
    with pytest.raises(ResultsFileError, match=f"{re.escape(str(path))} is not valid JSON .*truncated"):
        html.load(path)


def test_row_17_the_stream_reader_gives_what_json_loads_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Row 17: the record-at-a-time reader is exact, whatever the chunk size and whatever follows "tests"."""
    data = {"a": [1, 2.5, "x]"], "tests": [{"id": str(i), "v": [i] * i, "s": '}{\\"' * i} for i in range(40)], "z": 10}
    path = tmp_path / "d.json"
    path.write_text(json.dumps(data, indent=1))
    for chunk in (1, 7, 64, 1 << 20):
        monkeypatch.setattr(stream, "_CHUNK", chunk)
        assert stream.read(path, dict) == data


# --- row 25: NaN and Inf ------------------------------------------------------------------------------------------


def test_row_25_a_nan_output_is_never_a_number_or_a_green_cell_in_the_html_report() -> None:
    """Row 25: a NaN output in the report: "error 0× tolerance" and a dark-green heat-map cell."""
    page = html.render(document([record("test_accuracy[m-fp16-opt-ort]", "fail", accuracy=[nan_output()])]))
    verdicts = section(page, "verdicts")
    assert "NaN in the output" in verdicts and "× tolerance" not in verdicts
    heat = section(page, "accuracy")
    assert ">NaN ✗<" in heat and "#4a148c" in heat  # its own colour and its name, not 0 on the green end
    assert ">0 ✗<" not in heat


def test_row_25_a_nan_layer_in_a_localization_is_named_and_over_its_tolerance() -> None:
    """Row 25: NaN/Inf never rendered as a number or green, the localization's layers included."""
    layers = [{"node": "conv1", "op_type": "Conv", "tensor": "c1", "mean_rel": "nan", "exceeds": True}]
    localization = {"summary": "first layer beyond 1e-3: conv1", "ran_on": "ort", "tolerance": 1e-3, "layers": layers}
    test = record("test_accuracy[m-fp16-opt-ort]", "fail", accuracy=[nan_output()], localization=localization)
    shown = section(html.render(document([test])), "localization")
    assert "<td>NaN</td>" in shown and '<span class="bar over" style="width:100px"></span> NaN' in shown
    assert not re.search(r"\bnan\b", shown)  # Python's own spelling of a NaN, as printed before


def test_row_25_the_terminal_summary_and_compare_say_nan() -> None:
    """Row 25, terminal and markdown: NaN/Inf never rendered as a number."""
    tests = [TestResult.from_json(record("test_accuracy[m-fp16-opt-ort]", "fail", accuracy=[nan_output()]))]
    row = summary_lines(tests)[2]
    assert row.split()[4:] == ["NaN", "NaN", "fail"] and "0.0e+00" not in row
    inf = [TestResult.from_json(record("test_accuracy[m-fp16-opt-ort]", "fail", accuracy=[nan_output(mean_rel="inf", nan_count=0)]))]  # fmt: skip
    assert summary_lines(inf)[2].split()[4:] == ["Inf", "Inf", "fail"]


def test_row_25_compare_shows_nan_not_a_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Row 25: compare's Markdown and text tables say NaN for a NaN output (its error reads 0 otherwise)."""
    good = {"output": "y", "mean_rel": 1e-4, "max_rel": 1e-3, "tolerance": {"mean_rel": 1e-3}}
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    results_document.write(old, contents([record("test_accuracy[m-fp16-opt-ort]", accuracy=[good])]))
    results_document.write(new, contents([record("test_accuracy[m-fp16-opt-ort]", "fail", accuracy=[nan_output()])]))
    for markdown in ((), ("--markdown",)):
        cli_main(["compare", str(old), str(new), *markdown])
        shown = capsys.readouterr().out
        assert "1.0e-04 / NaN" in shown and "0.0e+00" not in shown


def test_row_25_number_spells_nan_and_inf() -> None:
    """Row 25: one place says how a non-finite number reads."""
    assert [text.number(v) for v in (math.nan, math.inf, -math.inf, 0.5)] == ["NaN", "Inf", "-Inf", "0.5"]


# --- row 26: messages ---------------------------------------------------------------------------------------------


def test_row_26_a_long_message_is_capped_saying_where_the_full_text_is(tmp_path: Path) -> None:
    """Row 26: failure messages 3–10 KB each, shown whole; the results file keeps the full text."""
    message = "BuildError: " + "the builder's log line. " * 400  # 9.6 kB
    tests = [record("test_build[big-fp16-build-trt]", "error", message=message)]
    page = html.render(document(tests, source="out/r.json"))
    shown = re.search(r'<pre class="message">(.*?)</pre>', page, re.DOTALL)
    assert shown is not None and len(shown.group(1)) < 700
    assert "more characters: full text in out/r.json, test test_build[big-fp16-build-trt])" in shown.group(1)
    line = summary_lines([TestResult.from_json(tests[0])], results="out/r.json")[-1]
    assert len(line) < 700 and line.endswith(
        "more characters: full text in out/r.json, test test_build[big-fp16-build-trt])"
    )
    assert document(tests).tests[0].message == message  # the record itself keeps it all


def test_row_26_a_list_of_every_weight_is_summarised() -> None:
    """Row 26: the IR-3 "Required inputs" message lists every weight."""
    weights = ", ".join(f"'layer{index}.weight'" for index in range(300))
    message = f"Required inputs ([{weights}]) are missing from input feed (['x'])."
    page = html.render(document([record("test_accuracy[ir3-fp32-opt-ort]", "error", message=message)]))
    assert "&#x27;layer4.weight&#x27;, … (295 more)]" in page and "layer299" not in page
    shown = text.capped(message, "r.json", "t")
    assert shown == (
        "Required inputs (['layer0.weight', 'layer1.weight', 'layer2.weight', 'layer3.weight', 'layer4.weight', "
        "… (295 more)]) are missing from input feed (['x'])."
    )


def test_row_26_one_error_on_nine_tests_is_shown_once() -> None:
    """Row 26: one build error repeated nine times in scroll boxes."""
    message = "BuildError: case x: the builder ran out of workspace memory"
    tests = [record(f"test_build[x-fp16-build-trt{index}]", "error", message=message) for index in range(9)]
    page = html.render(document(tests))
    assert section(page, "verdicts").count(message) == 1 and "9 tests</summary>" in page
    lines = summary_lines([TestResult.from_json(test) for test in tests])
    failures = [line for line in lines if line.startswith("ERROR")]
    assert failures == [
        "ERROR 9 tests (" + ", ".join(f"test_build[x-fp16-build-trt{index}]" for index in range(9))
        + "): BuildError: case x: the builder ran out of workspace memory"
    ]  # fmt: skip


def test_row_26_per_layer_precision_of_a_large_model_is_counted_not_listed() -> None:
    """Row 26: "per-layer precision" a wall of ~1,700 node names."""
    names = [f"node{index} {'Float (kept)' if index % 34 == 0 else 'Half'}" for index in range(1700)]
    layers = {"source": "engine inspector", "summary": ", ".join(names), "problems": []}
    page = html.render(document([record("test_accuracy[big-fp16-opt-trt]", layers=layers)]))
    shown = section(page, "layers")
    assert "1,700 layers: 1,650 Half, 50 Float (kept); node0 Float (kept), node1 Half" in shown
    assert "(1,695 more)" in shown and "node1699" not in shown
