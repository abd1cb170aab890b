"""Progress of long engine builds, for the person watching the terminal.

A build that passes a second says so: the builder's current phase and step where the library reports
them (TensorRT's IProgressMonitor, through `BuildRequest.progress`), at most a line a second, and a
closing line with the build time from every backend, the derivation of its model included. The derivation
says when int8 calibration starts and how long it took. Short builds print nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

LONG_BUILD_S = 1.0  # builds shorter than this print nothing
LINE_EVERY_S = 1.0  # at most one progress line a second


@dataclass
class _Phase:
    parent: str | None
    steps: int
    done: int = 0


class BuildProgressLines:
    """A `harness.backends.BuildProgress` that writes lines through `write` once a build is long."""

    def __init__(self, label: str, write: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> None:
        self._label = label
        self._write = write
        self._clock = clock
        self._started = clock()
        self._last_line: float | None = None
        self._phases: dict[str, _Phase] = {}
        self._innermost: str | None = None

    def phase_started(self, phase: str, parent: str | None, steps: int) -> None:
        self._phases[phase] = _Phase(parent, steps)
        self._innermost = phase
        self._tick()

    def step_done(self, phase: str, step: int) -> None:
        if phase in self._phases:
            self._phases[phase].done = step + 1  # TensorRT counts steps from 0
        self._innermost = phase
        self._tick()

    def phase_finished(self, phase: str) -> None:
        finished = self._phases.pop(phase, None)
        self._innermost = finished.parent if finished else None

    def finished(self, build_s: float, *, built: bool, derive_s: float = 0.0) -> None:
        """The build is over: its outcome and its whole cost, the derivation of its model included (an int8
        calibration can take far longer than the engine), if it was long enough to be watched."""
        total_s = derive_s + build_s
        if total_s >= LONG_BUILD_S or self._last_line is not None:
            parts = f" (deriving the model {derive_s:.1f} s, engine {build_s:.1f} s)" if derive_s else ""
            self._write(f"{'built' if built else 'failed to build'} {self._label} in {total_s:.1f} s{parts}")

    def _tick(self) -> None:
        now = self._clock()
        if now - self._started < LONG_BUILD_S:
            return
        if self._last_line is not None and now - self._last_line < LINE_EVERY_S:
            return
        self._last_line = now
        self._write(f"building {self._label} ({now - self._started:.0f} s): {self._where()}")

    def _where(self) -> str:
        """The phase chain down to the innermost running phase, each with its step count."""
        chain: list[str] = []
        phase = self._innermost
        while phase is not None and phase in self._phases and len(chain) < 8:
            state = self._phases[phase]
            chain.append(f"{phase} {state.done}/{state.steps}" if state.steps else phase)
            phase = state.parent
        return " › ".join(reversed(chain)) or "building"


class DerivationLines:
    """Says what a long derivation of a model (fp16/bf16 conversion, int8 quantization) is doing: a line when int8
    calibration starts (it can take a minute, with nothing else to show), and the total once it took a second."""

    def __init__(self, label: str, write: Callable[[str], None]) -> None:
        self._label = label  # "int8 model of mnist"
        self._write = write
        self._said = False

    def calibrating(self, batches: int) -> None:
        self._said = True
        self._write(f"deriving {self._label} (calibrating, {batches} batches)…")

    def finished(self, derive_s: float, *, derived: bool) -> None:
        if derive_s >= LONG_BUILD_S or self._said:
            self._write(f"{'derived' if derived else 'failed to derive'} {self._label} in {derive_s:.1f} s")
