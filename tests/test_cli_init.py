"""`python -m harness init MODEL.onnx` (harness/cli/init.py): a spec that loads back into a case of the model,
written beside it or where -o says, never over an existing file, and bad input named with the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import cli
from harness.case import Precision
from harness.spec import load_spec, load_specs
from tests.spec_support import linear_model


def test_init_writes_a_spec_beside_the_model_that_loads_into_its_case(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = linear_model(tmp_path / "net.onnx", input_name="pixels", batch="batch")
    assert cli.main(["init", str(model)]) == 0
    spec = tmp_path / "net.toml"
    assert f"wrote {spec}" in capsys.readouterr().out
    (case,) = load_spec(spec)
    assert [(t.name, t.dtype, t.shape) for t in case.inputs] == [("pixels", "float32", ("batch", 16))]
    assert case.precisions == tuple(Precision)


def test_init_into_another_folder_points_the_spec_at_the_model(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    model = linear_model(tmp_path / "models" / "net.onnx")
    spec = tmp_path / "specs" / "net.toml"
    assert cli.main(["init", str(model), "-o", str(spec)]) == 0
    assert 'model = "../models/net.onnx"' in spec.read_text()
    assert load_spec(spec)[0].name


def test_init_to_stdout_writes_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    linear_model(tmp_path / "net.onnx")
    assert cli.main(["init", "net.onnx", "-o", "-"]) == 0
    assert capsys.readouterr().out.startswith("# trt-harness spec for net.onnx")
    assert not (tmp_path / "net.toml").exists()


def test_init_never_overwrites_a_spec_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = linear_model(tmp_path / "net.onnx")
    spec = tmp_path / "net.toml"
    spec.write_text("# my edited spec\n")
    assert cli.main(["init", str(model)]) == cli.EXIT_UNUSABLE
    assert f"{spec} already exists; pass --force" in capsys.readouterr().err
    assert spec.read_text() == "# my edited spec\n"
    assert cli.main(["init", str(model), "--force"]) == 0
    assert spec.read_text().startswith("# trt-harness spec")


def test_init_of_a_file_that_is_not_onnx_names_it_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    assert cli.main(["init", str(junk)]) == cli.EXIT_UNUSABLE
    error = capsys.readouterr().err
    assert error.startswith("harness init: error: ") and str(junk) in error
    assert not (tmp_path / "junk.toml").exists()


def test_init_of_a_missing_file_or_a_folder_says_what_to_give(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["init", str(tmp_path / "nope.onnx")]) == cli.EXIT_UNUSABLE
    assert "nope.onnx: no such model file; give the path of an .onnx file" in capsys.readouterr().err
    assert cli.main(["init", str(tmp_path)]) == cli.EXIT_UNUSABLE
    error = capsys.readouterr().err
    assert "is a folder: give the .onnx file" in error and f"pytest --harness-spec {tmp_path}" in error


def test_a_test_layout_folder_without_its_model_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "layout"
    folder.mkdir()
    (error,) = load_specs([folder]).errors
    assert error == f"{folder}: no model.onnx here; an ONNX test-layout folder holds model.onnx beside test_data_set_N/"


def test_init_to_an_unwritable_path_exits_2_with_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = linear_model(tmp_path / "net.onnx")
    (tmp_path / "blocker").write_text("a file where a directory should be")
    spec = tmp_path / "blocker" / "net.toml"
    assert cli.main(["init", str(model), "-o", str(spec)]) == cli.EXIT_UNUSABLE
    error = capsys.readouterr().err
    # Refused before any work (harness/atomic.unwritable), naming the file in the way and the fix.
    assert f"cannot write {spec}: {spec.parent}, above {spec}, is not a directory" in error
    assert "pass -o a writable file path" in error
