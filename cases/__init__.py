"""The benchmark cases, one module each; ALL_CASES is what the harness collects."""

from cases import conv_add_relu, identity, mnist
from harness.case import Case

ALL_CASES: tuple[Case, ...] = (identity.CASE, conv_add_relu.CASE, mnist.CASE)
