"""Going to a temperature and waiting until the board is there: the thermal stage's use.

    from labrss.lab.stage import go_to_temperature
    with Lab(station) as lab:                # the station has a [thermal] section
        settled = go_to_temperature(lab, 30.0, progress=print)
        print(settled.board_C, settled.waited_s)

Stable means, over the last ``stability_window_s`` (the station's ``[thermal]``): the
set point is no longer ramping, every stage reading is within ``stability_K`` of the set
point, and the board's own sensor moved by less than ``stability_K`` (the board follows
the stage with its own, longer, time constant; its elements feel the board, not the
stage). The bench is polled every ``poll_s`` and time passes with `Lab.wait_s` (a sleep on
hardware, the virtual clock on the simulator). After ``stability_timeout_s`` without
stability, `ThermalStabilityError` names the set point and the last readings; the stage
is left where it is (the caller decides; an interrupted `Lab` block sends it to the safe
set point).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from labrss.lab.errors import LabError
from labrss.lab.lab import Lab

__all__ = [
    "StageSample",
    "StageSettled",
    "ThermalStabilityError",
    "ThermalWaitStoppedError",
    "go_to_temperature",
    "sample_stage",
]

#: Progress callback: (message).
StageProgress = Callable[[str], None]


class ThermalStabilityError(LabError):
    """The stage or the board did not settle at a set point within the timeout."""


class ThermalWaitStoppedError(LabError):
    """``should_stop`` asked to stop while waiting for stability."""


@dataclass(frozen=True)
class StageSample:
    """One look at the stage: bench clock (s), set point, stage and board readings (degC),
    heater output (%), ramping. ``board_C`` is NaN on a board without a sensor."""

    time_s: float
    setpoint_C: float
    stage_C: float
    board_C: float
    heater_percent: float
    ramping: bool

    def to_json(self) -> dict[str, float | bool | None]:
        """JSON-ready (NaN as None)."""
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in self.__dict__.items()
        }


@dataclass(frozen=True)
class StageSettled:
    """Where a wait ended: the set point, the last sample, how long it took (s) and every
    sample taken (for the record and the GUI's plot)."""

    setpoint_C: float
    last: StageSample
    waited_s: float
    samples: tuple[StageSample, ...]

    @property
    def board_C(self) -> float:
        """The board's sensor at the end (degC)."""
        return self.last.board_C


def sample_stage(lab: Lab) -> StageSample:
    """Read the stage and the board's sensor once."""
    th = lab.thermal
    try:
        board_C = float(lab.board.temperature_C())
    except Exception:  # a board without a sensor: the stage alone decides
        board_C = math.nan
    return StageSample(
        time_s=lab.clock_s(),
        setpoint_C=th.setpoint_C(),
        stage_C=th.temperature_C(),
        board_C=board_C,
        heater_percent=th.heater_percent(),
        ramping=th.ramping(),
    )


def _stable(window: list[StageSample], setpoint_C: float, band_K: float) -> bool:
    if any(s.ramping or abs(s.stage_C - setpoint_C) > band_K for s in window):
        return False
    boards = [s.board_C for s in window if math.isfinite(s.board_C)]
    return not boards or max(boards) - min(boards) < band_K


def go_to_temperature(
    lab: Lab,
    setpoint_C: float,
    *,
    ramp_K_per_min: float | None = None,
    progress: StageProgress | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_sample: Callable[[StageSample], None] | None = None,
) -> StageSettled:
    """Send the stage to ``setpoint_C`` and wait until it and the board are stable
    (module docstring). Limits are checked by the driver before anything is sent.
    ``on_sample`` gets every sample as it is taken (the GUI's live plot).

    Raises:
        LabError: the station has no thermal stage.
        InstrumentLimitError: the set point or ramp is outside the station's limits.
        ThermalStabilityError: not stable within ``stability_timeout_s``.
        ThermalWaitStoppedError: ``should_stop`` returned True.
    """
    settings = lab.station.thermal
    th = lab.thermal
    assert settings is not None  # lab.thermal raised otherwise
    th.set_setpoint_C(setpoint_C, ramp_K_per_min=ramp_K_per_min)
    start = lab.clock_s()
    samples: list[StageSample] = [sample_stage(lab)]
    if on_sample is not None:
        on_sample(samples[-1])
    needed = max(2, math.ceil(settings.stability_window_s / settings.poll_s) + 1)
    if progress is not None:
        progress(f"stage: going to {setpoint_C:g} degC (now {samples[-1].stage_C:.3f} degC)")
    while True:
        window = samples[-needed:]
        if len(window) == needed and _stable(window, setpoint_C, settings.stability_K):
            last = samples[-1]
            if progress is not None:
                progress(
                    f"stage: stable at {setpoint_C:g} degC after {last.time_s - start:.0f} s "
                    f"(stage {last.stage_C:.3f}, board {last.board_C:.2f} degC)"
                )
            return StageSettled(setpoint_C, last, last.time_s - start, tuple(samples))
        if should_stop is not None and should_stop():
            raise ThermalWaitStoppedError(f"stopped while waiting for {setpoint_C:g} degC")
        waited = lab.clock_s() - start
        if waited > settings.stability_timeout_s:
            last = samples[-1]
            boards = [s.board_C for s in window if math.isfinite(s.board_C)]
            moved = max(boards) - min(boards) if boards else math.nan
            raise ThermalStabilityError(
                f"{th.name}: not stable at {setpoint_C:g} degC after {waited:.0f} s "
                f"([thermal] stability_timeout_s = {settings.stability_timeout_s:g}): stage "
                f"{last.stage_C:.3f} degC, heater {last.heater_percent:.1f} %, "
                f"{'ramping, ' if last.ramping else ''}board {last.board_C:.2f} degC moved "
                f"{moved:.3f} K over the last {settings.stability_window_s:g} s (criterion: "
                f"within {settings.stability_K:g} K); check the heater range, the chiller "
                "and the limits"
            )
        lab.wait_s(settings.poll_s)
        samples.append(sample_stage(lab))
        if on_sample is not None:
            on_sample(samples[-1])
        if progress is not None and len(samples) % 30 == 0:
            s = samples[-1]
            progress(
                f"stage: {s.stage_C:.3f} degC (set {setpoint_C:g}), board {s.board_C:.2f} "
                f"degC, heater {s.heater_percent:.1f} %"
            )
