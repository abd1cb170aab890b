"""pytest-benchmark integration: our samples become its rounds, so --benchmark-json,
--benchmark-histogram and its compare work on backend time (CUDA events for TensorRT).

pytest-benchmark times each round with the fixture's timer around the call. Here the call advances
a replay clock by exactly one of our samples, so each round it records is that sample. This relies
on BenchmarkFixture._timer and pedantic() of pytest-benchmark 5.x (pinned in pyproject.toml;
tests/test_bench.py keeps the integration honest).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def report_samples(benchmark: Any, samples_s: Sequence[float], extra_info: Mapping[str, object]) -> None:
    clock = [0.0]
    remaining = iter(samples_s)

    def replay() -> None:
        clock[0] += next(remaining)

    benchmark._timer = lambda: clock[0]
    benchmark.extra_info.update(extra_info)
    benchmark.pedantic(replay, rounds=len(samples_s), iterations=1, warmup_rounds=0)
