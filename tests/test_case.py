"""Unit tests of harness/case.py: declaration checks, tolerances, profile shape checks and input seeds."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cases import ALL_CASES, conv_add_relu, identity, mnist
from harness.case import (
    Case,
    Precision,
    Profile,
    Shape,
    ShapePoint,
    Tolerance,
    check_case,
    check_shapes_in_profile,
)
from harness.errors import CaseDefinitionError, ShapeOutsideProfileError

IDENTITY = identity.CASE
ID_MIN, ID_OPT, ID_MAX = (1, 1, 1), (3, 4, 5), (6, 8, 10)
SEED_IDENTITY_0_OPT_0 = 4201674618  # zlib.crc32(b"identity/0/opt/0")


def with_profile(case: Case, **corners: dict[str, Shape]) -> Case:
    """The case with profile 0's corners replaced by those given (min=..., opt=..., max=...)."""
    profile = case.profiles[0]
    replaced = Profile(
        min=corners.get("min", profile.min), opt=corners.get("opt", profile.opt), max=corners.get("max", profile.max)
    )
    return dataclasses.replace(case, profiles=(replaced,))


def definition_error(case: Case) -> str:
    """The message of the CaseDefinitionError that check_case raises for the case."""
    with pytest.raises(CaseDefinitionError) as info:
        check_case(case)
    assert info.value.case == case.name
    message = str(info.value)
    assert message.startswith(f"case '{case.name}': ")
    return message


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda case: case.name)
def test_real_cases_are_accepted(case: Case) -> None:
    """The repository's own cases pass check_case: it raises nothing."""
    check_case(case)


def test_identity_profile_corners_are_the_expected_ones() -> None:
    """Guards the constants below: the identity profile is min (1,1,1), opt (3,4,5), max (6,8,10)."""
    profile = IDENTITY.profiles[0]
    assert (profile.min["x"], profile.opt["x"], profile.max["x"]) == (ID_MIN, ID_OPT, ID_MAX)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        pytest.param(
            with_profile(IDENTITY, opt={}),
            "profile 0 gives no min/opt/max shape for input 'x'",
            id="profile-missing-input",
        ),
        pytest.param(
            with_profile(IDENTITY, min={"x": (1, 1)}, opt={"x": (3, 4)}, max={"x": (6, 8)}),
            "profile 0 input 'x': min/opt/max must all have rank 3",
            id="rank-mismatch",
        ),
        pytest.param(
            with_profile(mnist.CASE, max={"x": (8, 1, 28, 32)}),
            "profile 0 input 'x': dim 3 is fixed at 28, so min/opt/max must all be 28",
            id="fixed-dim-differs",
        ),
        pytest.param(
            with_profile(IDENTITY, min={"x": (7, 1, 1)}, opt={"x": (6, 4, 5)}),
            "dim 0 has min 7 > max 6; swap them or fix the profile",
            id="min-above-max",
        ),
        pytest.param(
            with_profile(IDENTITY, opt={"x": (3, 9, 5)}),
            "dim 1 has opt 9 outside [min 1, max 8]; move opt inside",
            id="opt-above-max",
        ),
        pytest.param(
            with_profile(IDENTITY, opt={"x": (3, 4, 0)}),
            "dim 2 has opt 0 outside [min 1, max 10]; move opt inside",
            id="opt-below-min",
        ),
        pytest.param(
            with_profile(IDENTITY, min={"x": (1, 0, 1)}),
            "dim 1 has min 0; every dimension must be at least 1",
            id="min-below-one",
        ),
        pytest.param(
            with_profile(
                conv_add_relu.CASE,
                min={"x": (1, 8, 8, 8), "residual": (2, 16, 8, 8)},
            ),
            "profile 0: dimension 'N' is [2, 4, 8] (min/opt/max) for input 'residual' but [1, 4, 8] "
            "for input 'x'; tied dimensions must agree",
            id="tied-dims-disagree",
        ),
        pytest.param(
            dataclasses.replace(IDENTITY, tolerances={(Precision.FP16, "z"): Tolerance(mean_rel=1e-4)}),
            "a tolerance is given for output 'z' at fp16, but the case has no such output (outputs: y); "
            "rename or remove it",
            id="tolerance-unknown-output",
        ),
        pytest.param(
            dataclasses.replace(IDENTITY, tolerances={(Precision.FP32, "y"): Tolerance(mean_rel=2e-6)}),
            "raises mean relative error to 2e-06 above the default 1e-06 without a justification; "
            "say why (from measurement) in Tolerance(justification=...)",
            id="looser-tolerance-unjustified",
        ),
        pytest.param(
            dataclasses.replace(
                IDENTITY, tolerances={(Precision.FP16, "y"): Tolerance(mean_rel=1e-2, justification="  \n")}
            ),
            "raises mean relative error to 0.01 above the default 0.001 without a justification",
            id="looser-tolerance-blank-justification",
        ),
        pytest.param(
            dataclasses.replace(IDENTITY, profiles=()),
            "it declares no optimization profile; add at least one Profile(min, opt, max)",
            id="no-profiles",
        ),
    ],
)
def test_bad_declarations_are_rejected_with_the_fix(case: Case, expected: str) -> None:
    """check_case raises CaseDefinitionError starting with "case '<name>':" and containing the fix."""
    assert expected in definition_error(case)


def test_fixed_dim_with_only_opt_differing_is_rejected() -> None:
    """A fixed dim must equal its value in every corner: a differing opt alone is enough to reject."""
    message = definition_error(with_profile(conv_add_relu.CASE, opt={"x": (4, 7, 32, 32), "residual": (4, 16, 32, 32)}))
    assert "input 'x': dim 1 is fixed at 8" in message
    assert "residual" not in message


def test_several_problems_are_reported_together() -> None:
    """Every problem goes into one message, separated by '; ', instead of stopping at the first."""
    case = dataclasses.replace(
        with_profile(IDENTITY, min={"x": (1, 0, 1)}, opt={"x": (3, 4, 11)}),
        tolerances={(Precision.FP32, "nope"): Tolerance(mean_rel=1e-6)},
    )
    message = definition_error(case)
    assert "dim 1 has min 0" in message
    assert "dim 2 has opt 11 outside [min 1, max 10]" in message
    assert "output 'nope'" in message
    assert message.count("; ") >= 2


def test_corners_of_different_ranks_are_a_definition_error() -> None:
    """An opt shape of lower rank than min and max is a CaseDefinitionError, not a crash."""
    assert "must all have rank 3" in definition_error(with_profile(IDENTITY, opt={"x": (3, 4)}))


@pytest.mark.parametrize(
    "tolerance",
    [
        Tolerance(mean_rel=5e-3, justification="measured: worst 2e-3 over seeds 0-99"),
        Tolerance(mean_rel=1e-4),
        Tolerance(mean_rel=1e-3),
        Tolerance(exact=True),
    ],
    ids=["raised-with-justification", "tightened", "equal-to-default", "exact"],
)
def test_justified_or_not_looser_tolerances_are_accepted(tolerance: Tolerance) -> None:
    """Raising a limit with a justification, tightening, keeping or making it exact needs no justification."""
    check_case(dataclasses.replace(IDENTITY, tolerances={(Precision.FP16, "y"): tolerance}))


@pytest.mark.parametrize(
    ("precision", "expected"), [(Precision.FP32, 1e-6), (Precision.TF32, 1e-3), (Precision.FP16, 1e-3)]
)
def test_default_tolerance_per_precision(precision: Precision, expected: float) -> None:
    """A float output without an override gets the precision's default mean_rel, not exact."""
    assert IDENTITY.tolerance(precision, "y") == Tolerance(mean_rel=expected)


@pytest.mark.parametrize("precision", list(Precision), ids=lambda p: p.value)
def test_integer_output_is_exact(precision: Precision) -> None:
    """mnist's int64 label must match exactly at every precision."""
    assert mnist.CASE.tolerance(precision, "label") == Tolerance(exact=True)


def test_override_wins_over_default() -> None:
    """A declared tolerance replaces the default for its (precision, output) only."""
    override = Tolerance(mean_rel=5e-4)
    case = dataclasses.replace(IDENTITY, tolerances={(Precision.FP16, "y"): override})
    assert case.tolerance(Precision.FP16, "y") is override
    assert case.tolerance(Precision.TF32, "y") == Tolerance(mean_rel=1e-3)
    assert case.tolerance(Precision.FP32, "y") == Tolerance(mean_rel=1e-6)  # the other precisions keep theirs


@pytest.mark.parametrize("point", list(ShapePoint), ids=lambda p: p.value)
def test_profile_corners_are_inside_the_profile(point: ShapePoint) -> None:
    """The min, opt and max shapes of every real case's profiles pass check_shapes_in_profile."""
    for case in ALL_CASES:
        for index, profile in enumerate(case.profiles):
            check_shapes_in_profile(case, index, profile.shapes(point))


@pytest.mark.parametrize("axis", range(3))
@pytest.mark.parametrize("side", ["below", "above"])
def test_each_dim_just_outside_is_refused(axis: int, side: str) -> None:
    """One dim one step below min or above max raises ShapeOutsideProfileError naming all that's needed."""
    shape = list(ID_OPT)
    shape[axis] = ID_MIN[axis] - 1 if side == "below" else ID_MAX[axis] + 1
    with pytest.raises(ShapeOutsideProfileError) as info:
        check_shapes_in_profile(IDENTITY, 0, {"x": tuple(shape)})
    message = str(info.value)
    assert message.startswith("case 'identity': input 'x'")
    assert f"dim {axis} = {shape[axis]} not in [{ID_MIN[axis]}, {ID_MAX[axis]}]" in message
    assert "profile 0" in message and str(list(ID_MIN)) in message and str(list(ID_MAX)) in message
    assert "use a shape inside the profile or add a profile that covers it" in message


def test_second_input_outside_is_refused_by_name() -> None:
    """With two inputs, the one outside the profile is the one named."""
    shapes = {"x": (4, 8, 32, 32), "residual": (4, 16, 65, 32)}
    with pytest.raises(ShapeOutsideProfileError, match=r"input 'residual'.*dim 2 = 65 not in \[8, 64\]"):
        check_shapes_in_profile(conv_add_relu.CASE, 0, shapes)


@pytest.mark.parametrize("shape", [(3, 4), (3, 4, 5, 1)], ids=["rank-2", "rank-4"])
def test_wrong_rank_is_refused(shape: Shape) -> None:
    """A shape of another rank raises ShapeOutsideProfileError giving both ranks and the allowed range."""
    with pytest.raises(ShapeOutsideProfileError) as info:
        check_shapes_in_profile(IDENTITY, 0, {"x": shape})
    message = str(info.value)
    assert message.startswith("case 'identity': input 'x'")
    assert f"rank {len(shape)}" in message and "expects rank 3" in message
    assert f"pass a shape between {list(ID_MIN)} and {list(ID_MAX)}" in message


def test_input_seed_is_stable_and_distinguishes_points() -> None:
    """input_seed is a pure function of (case, profile, point, base seed), and each of those changes it."""
    seed = IDENTITY.input_seed(0, ShapePoint.OPT, 0)
    assert seed == IDENTITY.input_seed(0, ShapePoint.OPT, 0)
    assert seed == dataclasses.replace(IDENTITY, description="other").input_seed(0, ShapePoint.OPT, 0)
    variants = {
        IDENTITY.input_seed(0, ShapePoint.MIN, 0),
        IDENTITY.input_seed(0, ShapePoint.MAX, 0),
        IDENTITY.input_seed(1, ShapePoint.OPT, 0),
        IDENTITY.input_seed(0, ShapePoint.OPT, 1),
        dataclasses.replace(IDENTITY, name="other").input_seed(0, ShapePoint.OPT, 0),
    }
    assert seed not in variants and len(variants) == 5


def test_input_seed_is_a_known_constant() -> None:
    """The seed is the same in every process and version (no hash randomization): baselines depend on it."""
    seed = IDENTITY.input_seed(0, ShapePoint.OPT, 0)
    assert seed == SEED_IDENTITY_0_OPT_0


def test_error_messages_are_anchored_on_case_name() -> None:
    """The case prefix is exactly "case '<name>': " even for names with regex metacharacters."""
    case = dataclasses.replace(IDENTITY, name="a.b+c", profiles=())
    assert re.match(r"^case 'a\.b\+c': it declares no", definition_error(case))


@st.composite
def inside_shapes(draw: st.DrawFn) -> Shape:
    """A shape with every dim drawn inside identity's [min, max] range."""
    return tuple(draw(st.integers(lo, hi)) for lo, hi in zip(ID_MIN, ID_MAX))


@st.composite
def outside_shapes(draw: st.DrawFn) -> tuple[Shape, int]:
    """An inside shape with exactly one dim moved below min or above max; also returns that dim's index."""
    shape = list(draw(inside_shapes()))
    axis = draw(st.integers(0, len(shape) - 1))
    below = st.integers(ID_MIN[axis] - 100, ID_MIN[axis] - 1)
    above = st.integers(ID_MAX[axis] + 1, ID_MAX[axis] + 1000)
    shape[axis] = draw(below | above)
    return tuple(shape), axis


@settings(derandomize=True, max_examples=60, deadline=None)
@given(shape=inside_shapes())
def test_any_shape_inside_the_profile_passes(shape: Shape) -> None:
    """Property: every shape within [min, max] per dim is accepted."""
    check_shapes_in_profile(IDENTITY, 0, {"x": shape})


@settings(derandomize=True, max_examples=60, deadline=None)
@given(drawn=outside_shapes())
def test_any_shape_with_one_dim_outside_is_refused(drawn: tuple[Shape, int]) -> None:
    """Property: moving one dim outside [min, max] is refused, and the message names that dim."""
    shape, axis = drawn
    with pytest.raises(ShapeOutsideProfileError, match=rf"dim {axis} = {shape[axis]} not in"):
        check_shapes_in_profile(IDENTITY, 0, {"x": shape})


def test_tied_dimensions_must_agree_at_run_time() -> None:
    """Inputs sharing a dimension name (conv_add_relu's batch) must get the same value in one run."""
    shapes = {"x": (2, 8, 32, 32), "residual": (3, 16, 32, 32)}
    with pytest.raises(ShapeOutsideProfileError, match=r"dimension 'N' is 3 in input 'residual' but 2 in input 'x'"):
        check_shapes_in_profile(conv_add_relu.CASE, 0, shapes)


def test_missing_input_shape_is_refused_by_name() -> None:
    """Leaving an input out is a harness error naming it, not a KeyError."""
    with pytest.raises(ShapeOutsideProfileError, match=r"no shape given for inputs \['residual'\]"):
        check_shapes_in_profile(conv_add_relu.CASE, 0, {"x": (2, 8, 32, 32)})


def test_profile_naming_an_unknown_input_is_a_definition_error() -> None:
    """A profile entry for an input the case does not have is reported with the fix."""
    message = definition_error(
        with_profile(IDENTITY, min={"x": (1, 1, 1), "z": (1,)}, opt={"x": (3, 4, 5)}, max={"x": (6, 8, 10)})
    )
    assert "profile 0 names ['z'], which the case has no input for" in message and "rename or remove them" in message


@pytest.mark.parametrize(
    ("generated", "message"),
    [
        (lambda shapes, rng: {"x": np.zeros(shapes["x"])}, r"input 'x' as float64, but the case declares float32"),
        (lambda shapes, rng: {"x": [[[0.0]]]}, r"input 'x' as list, not a numpy array"),
        (lambda shapes, rng: {"x": np.zeros((2, 2), np.float32)}, r"input 'x' with rank 2 \(shape \[2, 2\]\)"),
        (lambda shapes, rng: {"x": np.zeros((1, 1, 1), np.float32), "z": 0}, r"returned \['x', 'z'\]; return"),
        (lambda shapes, rng: None, r"returned NoneType; return \{input name: array\} for exactly the inputs \['x'\]"),
    ],
    ids=["float64", "list", "rank", "extra-input", "none"],
)
def test_generated_inputs_disagreeing_with_the_tensor_specs_name_the_input(generated: object, message: str) -> None:
    case = dataclasses.replace(IDENTITY, generate_inputs=generated)
    with pytest.raises(CaseDefinitionError, match=rf"^case 'identity': its generate_inputs\(shapes, rng\) .*{message}"):
        case.make_inputs({"x": (1, 1, 1)}, np.random.default_rng(0))


def test_a_fixed_dimension_of_the_tensor_spec_is_checked() -> None:
    assert mnist.CASE.make_inputs({"x": (2, 1, 28, 28)}, np.random.default_rng(0))["x"].shape == (2, 1, 28, 28)
    case = dataclasses.replace(mnist.CASE, generate_inputs=lambda shapes, rng: {"x": np.zeros((2, 3, 28, 28), "f4")})
    with pytest.raises(CaseDefinitionError, match=r"input 'x' with shape \[2, 3, 28, 28\], but dim 1 is fixed at 1"):
        case.make_inputs({"x": (2, 1, 28, 28)}, np.random.default_rng(0))


def test_a_reference_or_model_that_returns_the_wrong_thing_is_named() -> None:
    with pytest.raises(CaseDefinitionError, match=r"its reference\(inputs\) returned list, not a mapping"):
        dataclasses.replace(IDENTITY, reference=lambda inputs: [1]).reference_outputs({"x": np.zeros((1, 1, 1))})
    with pytest.raises(CaseDefinitionError, match=r"its onnx_model\(\) returned NoneType, not an onnx.ModelProto"):
        dataclasses.replace(IDENTITY, onnx_model=lambda: None).model()
