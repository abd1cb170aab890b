"""Cases from files, no Python: a TOML spec (`[[case]]` tables), a pyproject.toml's `[[tool.trt-harness.case]]`,
or a folder in ONNX's test layout (model.onnx beside test_data_set_N/), each entry an ordinary harness.case.Case.

load.py turns entries into cases; model.py reads the ONNX model; inputs.py holds the input generators;
reference.py the references (ONNX Runtime at float32, cached, or stored outputs); testdata.py ONNX's test layout;
skeleton.py the text of `python -m harness init`.
"""

from harness.spec.errors import SpecError
from harness.spec.load import LoadedSpecs, has_pyproject_table, load_spec, load_specs
from harness.spec.skeleton import skeleton

__all__ = ["LoadedSpecs", "SpecError", "has_pyproject_table", "load_spec", "load_specs", "skeleton"]
