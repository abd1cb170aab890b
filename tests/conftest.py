"""Shared set-up of the project's own tests."""

# In-process pytester sessions drop the modules they import when they end, and these C extensions
# refuse (or abort) when loaded twice in one process, so they are loaded once, before any session.
import onnx  # noqa: F401
import onnxruntime  # noqa: F401
import pytest
import scipy.stats  # noqa: F401


@pytest.fixture
def benchmark_measures(monkeypatch: pytest.MonkeyPatch) -> None:
    """A throw-away session whose pytest-benchmark measures even when this suite runs under xdist (`pytest -n`):
    pytest-benchmark disables itself in any process with PYTEST_XDIST_WORKER set, which the inner session
    inherits from the worker that runs it (pytest_benchmark/session.py)."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
