"""The precision table is the one place a precision is declared: every reader takes its facts from the row."""

from __future__ import annotations

from harness.case import DEFAULT_MEAN_REL, Precision
from harness.precision.layers import REDUCED
from harness.precision.proof import EXPECTED
from harness.precision.table import PRECISIONS, Group, row


def test_every_precision_has_exactly_its_own_row() -> None:
    assert list(PRECISIONS) == list(Precision)
    assert all(entry.precision is precision for precision, entry in PRECISIONS.items())


def test_the_reduced_float_group_is_fp16_and_bf16() -> None:
    reduced = {precision for precision, entry in PRECISIONS.items() if entry.group is Group.REDUCED_FLOAT}
    assert reduced == {Precision.FP16, Precision.BF16}


def test_the_proof_holds_each_derived_precision_to_the_rows_inspector_word() -> None:
    assert EXPECTED == {Precision.FP16: "Half", Precision.BF16: "BFloat16", Precision.INT8: "Int8"}
    assert REDUCED == ("Half", "BFloat16", "Int8")


def test_the_default_limits_are_the_rows() -> None:
    assert DEFAULT_MEAN_REL == {precision: row(precision).default_mean_rel for precision in Precision}
    assert DEFAULT_MEAN_REL[Precision.BF16] == 1e-2
