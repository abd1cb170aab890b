"""benchmarks/gate_quality.py's ab mode pools rounds as `python -m harness ab` pools a side's runs, keeping each
round's count so that the gate pairs them."""

from __future__ import annotations

import numpy as np

from benchmarks.gate_quality import pooled_rounds


def test_ab_mode_pools_consecutive_rounds_per_arm_in_round_order() -> None:
    taken = [
        {
            "round": index,
            "arm": arm,
            "samples_us": np.array([100.0 * index + (arm == "B")]),
            "load": {"foreign_cores": index / 10, "steal_cores": 0.0},
        }
        for index in range(6)
        for arm in ("A", "B")
    ]
    measurements = pooled_rounds(taken, 3)
    pooled = {(m["round"], m["arm"]): m["samples_us"].tolist() for m in measurements}
    assert pooled == {
        (0, "A"): [0.0, 100.0, 200.0],
        (0, "B"): [1.0, 101.0, 201.0],
        (1, "A"): [300.0, 400.0, 500.0],
        (1, "B"): [301.0, 401.0, 501.0],
    }
    assert [m["round_sizes"] for m in measurements] == [[1, 1, 1]] * 4
    # the busiest of the pooled rounds, for the notes
    assert [m["load"]["foreign_cores"] for m in measurements] == [0.2, 0.2, 0.5, 0.5]
