"""`python -m harness init MODEL.onnx`: a commented spec skeleton for a model, ready for `--harness-spec`."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.atomic import write_atomically
from harness.cli.output import CliError, write_output
from harness.spec import skeleton


def run_init(model: Path, output: Path | None, *, force: bool) -> int:
    """Write the skeleton (SpecError for a bad model, CliError for an output that exists); exit status 0."""
    if model.is_dir():
        raise CliError(
            f"{model} is a folder: give the .onnx file; a folder in ONNX's test layout (model.onnx beside "
            f"test_data_set_N/) needs no spec: pytest --harness-spec {model}"
        )
    if output is not None and str(output) == "-":
        sys.stdout.write(skeleton(model, Path.cwd()))
        return 0
    spec = output if output is not None else model.with_suffix(".toml")
    if spec.is_dir():
        raise CliError(f"{spec} is a directory; pass -o a file path such as {spec / (model.stem + '.toml')}")
    if spec.exists() and not force:
        raise CliError(f"{spec} already exists; pass --force to overwrite it, or -o another path")
    text = skeleton(model, spec.parent)
    write_output(f"the spec {spec}", lambda: write_atomically(spec, text.encode()))
    print(f"wrote {spec}: check the profile (a guess) and the inputs' ranges, then run: pytest --harness-spec {spec}")
    return 0
