"""Shared set-up of the project's own tests."""

# In-process pytester sessions drop the modules they import when they end, and these C extensions
# refuse (or abort) when loaded twice in one process, so they are loaded once, before any session.
import onnx  # noqa: F401
import onnxruntime  # noqa: F401
import scipy.stats  # noqa: F401
