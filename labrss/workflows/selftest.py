"""The self-test any lab can run on its bench: safe, non-destructive checks, pass or fail.

    from labrss.workflows.selftest import run_selftest
    with Lab(station) as lab, Store(path) as store:
        result = run_selftest(lab, store)
        print(result.table()); assert result.passed

`labrss selftest [--station FILE] [--json]` runs it (exit status 0 only when every check
passes). Each check works through the board and SMU interfaces only, so it runs on any
bench labrss has a driver for; checks of capabilities the bench does not have are listed
as "n/a". Nothing is driven beyond the station's read voltage, no DAC beyond half the
station's DAC limit, no memristor is pulsed. After every check the bench is made safe and
that is confirmed by read-back (board ``is_safe``, SMU output state from the instrument);
a check after which it is not, fails.

The checks (`CHECKS`):

* **identities**: the SMU's and the board's identify replies, serials, geometry and
  capabilities.
* **safe at start**: the board reports its safe state and the SMU's output is off.
* **SMU limits**: the compliance in force (read back from the instrument) is the station's;
  a source level beyond ``[limits] max_source_voltage_V`` is refused by the driver with
  nothing sent (the output stays off).
* **switches**: every switch written and read back, closed and open (two complementary
  patterns, then everything open).
* **break-before-make**: two cells on different rows and columns, each with one branch
  closed, read alone; then read in turn through `Lab` (which opens the previous cell
  before closing the next, and the board, which breaks before it makes within each
  command): a reading after a change must be the new cell's alone, never the two in
  parallel, and the routing read back names only the new cell.
* **isolation**: every switch open, every cell routed and read: each must read below the
  board's declared open-cell leakage (``open_cell_max_S``) plus the SMU's offset allowance
  (`OFFSET_FRACTION` of the measure range over the read voltage).
* **DACs** (``dacs``): with the rows disconnected (routing open, every switch open), every
  row DAC set to +-half the station's DAC limit and read back within one DAC step; then 0 V.
* **ADCs** (``adcs``): with every switch open and the DACs at 0 V, every column reads within
  `ADC_ZERO_FRACTION` of the ADC full scale.
* **temperature** (``temperature``): the sensor answers within -20..85 degC.
* **thermal stage** (a station with ``[thermal]``; docs/temperature.md): the controller's
  identity; its sensor reads a finite temperature within ``min_C - 20 .. max_C +
  cutoff_margin_K``; a set point beyond ``max_C`` is refused by the driver with nothing
  sent (the set point read back unchanged); the stage is safe: heater off, or on with a
  set point inside ``min_C..max_C``. Nothing is changed on the stage.
* **switch wear** (``switch-counts``): the per-switch operation counts; fails when a switch
  is at its rated life, warns from `WEAR_WARNING_FRACTION` of it.
* **safe after an interruption**: a cell held with the SMU output on, then an exception
  (an interruption) inside the block: the bench must read back safe afterwards.

With a store, the run (kind ``selftest``) holds every check's outcome (``checks``) and the
bench's description.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import numpy as np

from drivers.board import Capability, format_capabilities
from drivers.errors import InstrumentLimitError
from labrss.lab import Lab
from labrss.store import Store
from labrss.workflows.boards import register_board

__all__ = [
    "ADC_ZERO_FRACTION",
    "CHECKS",
    "OFFSET_FRACTION",
    "WEAR_WARNING_FRACTION",
    "CheckResult",
    "SelftestResult",
    "run_check",
    "run_selftest",
]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

OFFSET_FRACTION: Final = 0.005
"""An open cell may read up to this fraction of the SMU's measure range (over the read
voltage) above the board's declared leakage: the offset class of an SMU's lowest ranges
(a Keithley 2450's 10 nA range: 0.1 % of reading + 50 pA offset, i.e. 0.5 %)."""
ADC_ZERO_FRACTION: Final = 0.01
"""Largest zero-input ADC reading accepted, as a fraction of the ADC full scale."""
WEAR_WARNING_FRACTION: Final = 0.9
"""A switch past this fraction of its rated life gets a warning (labrss warns before the
rated life is reached)."""
BBM_MARGIN: Final = 0.5
"""A reading after a change passes when it is closer to the new cell alone than to the two
cells in parallel by this fraction of the old cell's conductance."""


class _InterruptionDrill(BaseException):
    """The exception the interruption drill raises inside a held cell (never escapes)."""


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome.

    Attributes:
        name: the check (`CHECKS`).
        status: ``"pass"``, ``"fail"`` or ``"n/a"`` (the bench lacks what it checks).
        detail: what was found, in one line.
        duration_s: wall time (s).
        figures: the numbers behind the verdict (JSON-ready).
    """

    name: str
    status: str
    detail: str
    duration_s: float
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class SelftestResult:
    """Every check's outcome; ``passed`` only when none failed."""

    checks: list[CheckResult]
    run_id: int | None = None
    bench: dict[str, Any] = field(default_factory=dict)
    wall_time_s: float = math.nan

    @property
    def passed(self) -> bool:
        """True when no check failed (n/a checks do not fail)."""
        return all(c.status != "fail" for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict: verdict, run id, bench, checks."""
        return {
            "passed": self.passed,
            "run_id": self.run_id,
            "wall_time_s": self.wall_time_s,
            "bench": self.bench,
            "checks": [asdict(c) for c in self.checks],
        }

    def table(self) -> str:
        """The pass/fail table, one line per check."""
        width = max(len(c.name) for c in self.checks)
        lines = [f"{'check':<{width}}  result  time     detail"]
        for c in self.checks:
            lines.append(
                f"{c.name:<{width}}  {c.status.upper():<6}  {c.duration_s:6.2f}s  {c.detail}"
            )
        verdict = "PASSED" if self.passed else "FAILED"
        failed = sum(c.status == "fail" for c in self.checks)
        lines.append(f"self-test {verdict}: {failed} of {len(self.checks)} checks failed")
        return "\n".join(lines)


class _CheckFailedError(Exception):
    """A check's verdict: failed, with the reason."""

    def __init__(self, detail: str, figures: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.figures = figures or {}


Outcome = tuple[str, dict[str, Any]]
"""What a check returns when it passes: (detail, figures)."""


def _identities(lab: Lab) -> Outcome:
    board, smu = lab.board, lab.smu
    if not board.identity or not smu.identity:
        raise _CheckFailedError(f"empty identity: board {board.identity!r}, SMU {smu.identity!r}")
    g = lab.geometry
    if min(g.rows, g.cols, g.branches) < 1:
        raise _CheckFailedError(f"geometry {g} is empty")
    caps = format_capabilities(board.capabilities)
    return (
        f"SMU {smu.model} {smu.serial}; board {board.serial} {g.rows}x{g.cols}x{g.branches} "
        f"({caps})",
        {
            "smu": smu.identity,
            "board": board.identity,
            "board_serial": board.serial,
            "geometry": [g.rows, g.cols, g.branches],
            "capabilities": sorted(c.value for c in board.capabilities),
            "mvm": board.mvm_mode,
        },
    )


def _confirm_safe(lab: Lab) -> dict[str, Any]:
    """Board safe and SMU output off, as the instruments report them."""
    board_safe = lab.board.is_safe()
    output_on = lab.smu.read_output_on()
    if not board_safe or output_on:
        raise _CheckFailedError(
            f"the bench is not safe: board is_safe = {board_safe}, SMU output on = {output_on}",
            {"board_safe": board_safe, "smu_output_on": output_on},
        )
    return {"board_safe": True, "smu_output_on": False}


def _safe_at_start(lab: Lab) -> Outcome:
    return "board safe, SMU output off", _confirm_safe(lab)


def _smu_limits(lab: Lab) -> Outcome:
    st = lab.station
    smu = lab.smu
    wanted = st.limits.compliance_current_A
    smu.configure_voltage_source(0.0, wanted)
    got = smu.read_compliance_A()
    figures: dict[str, Any] = {"compliance_A": got, "station_compliance_A": wanted}
    if not math.isclose(got, wanted, rel_tol=1e-6):
        raise _CheckFailedError(
            f"compliance in force {got!r} A, the station says {wanted!r} A", figures
        )
    beyond = 1.5 * st.limits.max_source_voltage_V
    try:
        smu.set_voltage(beyond)
    except InstrumentLimitError:
        pass
    else:
        smu.shutdown()
        raise _CheckFailedError(f"a source level of {beyond:g} V was accepted", figures)
    if smu.read_output_on():
        raise _CheckFailedError("the output turned on", figures)
    figures["refused_level_V"] = beyond
    return (
        f"compliance {got:g} A in force; {beyond:g} V refused before sending; output off",
        figures,
    )


def _switches(lab: Lab) -> Outcome:
    g = lab.geometry
    rr, cc, kk = np.indices((g.rows, g.cols, g.branches))
    pattern = ((rr + cc + kk) % 2).astype(bool)
    for name, masks in (("pattern", pattern), ("complement", ~pattern)):
        lab.set_masks(masks)  # verified by the driver's read-back too
        got = lab.masks()
        if not np.array_equal(got, masks):
            bad = np.argwhere(got != masks)[0].tolist()
            raise _CheckFailedError(f"{name}: switch {tuple(bad)} reads back {got[tuple(bad)]}")
    lab.open_all()
    if lab.masks().any():
        raise _CheckFailedError("switches still read back closed after open_all")
    n = g.rows * g.cols * g.branches
    return f"{n} switches written and read back closed and open", {"switches": n}


def _two_cells(lab: Lab) -> tuple[tuple[int, int], tuple[int, int]]:
    g = lab.geometry
    a = (0, 0)
    b = (g.rows - 1 if g.rows > 1 else 0, g.cols - 1 if g.cols > 1 else 0)
    return a, b


def _break_before_make(lab: Lab, nplc: float | None) -> Outcome:
    (ra, ca), (rb, cb) = _two_cells(lab)
    if (ra, ca) == (rb, cb):
        return "one cell only: nothing to change between", {}
    lab.open_all()
    g_a = lab.measure_branch(ra, ca, 0, nplc=nplc).conductance_S
    lab.open_all()
    g_b = lab.measure_branch(rb, cb, 0, nplc=nplc).conductance_S
    figures: dict[str, Any] = {"cells": [[ra, ca], [rb, cb]], "alone_S": [g_a, g_b]}
    if not (math.isfinite(g_a) and math.isfinite(g_b) and g_a > 0 and g_b > 0):
        raise _CheckFailedError(f"branch 0 of the two cells reads {g_a!r} S and {g_b!r} S", figures)
    changes = []
    for (r0, c0, g0), (r1, c1, g1) in (
        ((ra, ca, g_a), (rb, cb, g_b)),
        ((rb, cb, g_b), (ra, ca, g_a)),
    ):
        lab.measure_branch(r0, c0, 0, nplc=nplc)
        g = lab.measure_branch(r1, c1, 0, nplc=nplc).conductance_S
        routing = lab.board.routing()
        changes.append(g)
        if not abs(g - g1) < BBM_MARGIN * g0:
            raise _CheckFailedError(
                f"after the change ({r0},{c0}) -> ({r1},{c1}) the reading is {g:.6g} S: the "
                f"new cell alone is {g1:.6g} S, both in parallel {g0 + g1:.6g} S",
                figures | {"after_change_S": changes},
            )
        if not routing.startswith(f"CELL {r1},{c1},"):
            raise _CheckFailedError(f"routing reads back {routing!r} after the change", figures)
    figures["after_change_S"] = changes
    worst = max(abs(changes[0] - g_b) / g_a, abs(changes[1] - g_a) / g_b)
    figures["worst_excess_of_old_cell"] = worst
    return (
        f"after each change the reading is the new cell's alone (worst {worst:.2e} of the old "
        "cell's conductance)",
        figures,
    )


def _isolation(lab: Lab, nplc: float | None) -> Outcome:
    g = lab.geometry
    lab.open_all()
    bound_S = lab.board.open_cell_max_S
    if not math.isfinite(bound_S):
        raise _CheckFailedError(f"{lab.board.name} declares no open-cell leakage bound")
    worst = (-math.inf, (0, 0), 0.0)
    for r in range(g.rows):
        for c in range(g.cols):
            reading = lab.measure_cell(r, c, nplc=nplc)
            allowance = OFFSET_FRACTION * reading.current_range_A / abs(reading.voltage_V)
            excess = abs(reading.conductance_S) - (bound_S + allowance)
            if excess > worst[0]:
                worst = (excess, (r, c), reading.conductance_S)
            if not excess <= 0:
                raise _CheckFailedError(
                    f"open cell ({r},{c}) reads {reading.conductance_S:.4g} S, beyond the "
                    f"declared {bound_S:.3g} S + {allowance:.3g} S SMU offset allowance",
                    {"cell": [r, c], "conductance_S": reading.conductance_S},
                )
    cell, value = worst[1], worst[2]
    return (
        f"{g.rows * g.cols} open cells below {bound_S:.3g} S (+ offset); largest "
        f"{value:.3g} S at {cell}",
        {"bound_S": bound_S, "largest_S": value, "largest_cell": list(cell)},
    )


def _dacs(lab: Lab) -> Outcome:
    # The rows stay disconnected (routing open, every switch open): the DACs drive nothing,
    # so no element, memristor or not, sees the voltages (the driver's own DAC limit holds).
    board = lab.board
    rows = lab.geometry.rows
    lab.open_all()
    board.route_open()
    level = 0.5 * lab.station.limits.max_dac_voltage_V
    worst = 0.0
    for sign in (1.0, -1.0):
        wanted = sign * level * np.where(np.arange(rows) % 2 == 0, 1.0, -1.0)
        got = np.asarray(board.set_dacs(wanted), dtype=np.float64)
        back = np.asarray(board.dacs(), dtype=np.float64)
        err = float(np.max(np.abs(back - wanted)))
        worst = max(worst, err)
        if not (np.array_equal(back, got) and err <= board.dac_lsb_V * (1 + 1e-6)):
            raise _CheckFailedError(
                f"DAC read-back off by {err:.3g} V (1 LSB = {board.dac_lsb_V:.3g} V)"
            )
    board.zero_dacs()
    if np.any(np.asarray(board.dacs()) != 0.0):
        raise _CheckFailedError("DACs do not read back 0 V after zeroing")
    return (
        f"{rows} DACs at +-{level:g} V read back within {worst:.2e} V (1 LSB "
        f"{board.dac_lsb_V:.2e} V)",
        {"level_V": level, "worst_error_V": worst, "lsb_V": board.dac_lsb_V},
    )


def _adcs(lab: Lab) -> Outcome:
    board = lab.board
    lab.open_all()
    lab.apply_rows(np.zeros(lab.geometry.rows))
    reading = lab.read_columns("adc")
    bound = ADC_ZERO_FRACTION * board.adc_range_A
    worst = float(np.max(np.abs(reading.currents_A)))
    if not (np.isfinite(reading.currents_A).all() and worst <= bound):
        raise _CheckFailedError(
            f"zero-input ADC readings up to {worst:.3g} A, beyond {bound:.3g} A",
            {"currents_A": reading.currents_A.tolist()},
        )
    return (
        f"{reading.currents_A.size} ADCs read {worst:.2e} A or less at zero input "
        f"(full scale {board.adc_range_A:.2e} A)",
        {"worst_A": worst, "full_scale_A": board.adc_range_A},
    )


def _temperature(lab: Lab) -> Outcome:
    t = lab.board.temperature_C()
    if not -20.0 <= t <= 85.0:
        raise _CheckFailedError(f"the sensor reads {t!r} degC", {"temperature_C": t})
    return f"{t:.2f} degC", {"temperature_C": t}


THERMAL_CHECK: Final = "thermal stage"
"""The check that needs a ``[thermal]`` section (n/a without one)."""


def _thermal(lab: Lab) -> Outcome:
    stage = lab.thermal
    lim = stage.limits
    if not stage.identity:
        raise _CheckFailedError("the temperature controller's identity is empty")
    reading = stage.temperature_C()
    figures: dict[str, Any] = {"identity": stage.identity, "temperature_C": reading}
    low, high = lim.min_C - 20.0, lim.max_C + lim.cutoff_margin_K
    if not (math.isfinite(reading) and low <= reading <= high):
        raise _CheckFailedError(
            f"the stage reads {reading!r} degC, outside {low:g}..{high:g} degC", figures
        )
    before = stage.setpoint_C()
    try:
        stage.set_setpoint_C(lim.max_C + 1.0)
    except InstrumentLimitError:
        pass
    else:
        stage.safe()
        raise _CheckFailedError(
            f"a set point of {lim.max_C + 1.0:g} degC above max_C was not refused (the stage "
            f"was sent to safe_C = {lim.safe_C:g} degC)",
            figures,
        )
    after = stage.setpoint_C()
    heater = stage.heater_on()
    figures.update(setpoint_C=after, heater_on=heater)
    if after != before:
        raise _CheckFailedError(
            f"the refused set point changed the stage's: {before:g} -> {after:g} degC", figures
        )
    if heater and not lim.min_C <= after <= lim.max_C:
        raise _CheckFailedError(
            f"the heater is on with set point {after:g} degC, outside the station's limits "
            f"{lim.min_C:g}..{lim.max_C:g} degC",
            figures,
        )
    state = f"heater on at set point {after:g} degC" if heater else "heater off"
    return (
        f"{stage.identity}; reads {reading:.2f} degC; {state}; a set point above "
        f"max_C = {lim.max_C:g} degC refused with nothing sent",
        figures,
    )


def _switch_wear(lab: Lab) -> Outcome:
    wear = lab.board.switch_wear()
    used = wear.fraction_used()
    if not used:
        return "no switch counters", {}
    name = max(used, key=lambda n: used[n])
    figures = {
        "rated_operations": wear.rated_operations,
        "most_used": name,
        "most_used_count": wear.counts[name],
        "most_used_fraction": used[name],
        "warning": sorted(n for n, f in used.items() if f >= WEAR_WARNING_FRACTION),
    }
    where = wear.where.get(name, name)
    if used[name] >= 1.0:
        raise _CheckFailedError(
            f"switch {name} ({where}) is at {wear.counts[name]} operations, beyond its rated "
            f"life of {wear.rated_operations}: replace it",
            figures,
        )
    warn = "WARNING: " if used[name] >= WEAR_WARNING_FRACTION else ""
    return (
        f"{warn}most used switch {name} ({where}): {wear.counts[name]} of "
        f"{wear.rated_operations} rated operations ({100 * used[name]:.1f} %)",
        figures,
    )


def _interruption(lab: Lab, nplc: float | None) -> Outcome:
    (r, c), _ = _two_cells(lab)
    try:
        with lab.holding_cell(r, c, 1, nplc=nplc) as smu:
            if not smu.read_output_on():
                raise _CheckFailedError("the SMU output is not on inside the held cell")
            raise _InterruptionDrill
    except _InterruptionDrill:
        pass
    state = _confirm_safe(lab)
    return "the bench was safe after an interruption with the output on", state


Check = Callable[[Lab, float | None], Outcome]
CHECKS: Final[tuple[tuple[str, Capability | None, Check], ...]] = (
    ("identities", None, lambda lab, nplc: _identities(lab)),
    ("safe at start", None, lambda lab, nplc: _safe_at_start(lab)),
    ("SMU limits", None, lambda lab, nplc: _smu_limits(lab)),
    ("switches", None, lambda lab, nplc: _switches(lab)),
    ("break-before-make", None, _break_before_make),
    ("isolation", None, _isolation),
    ("DACs", Capability.DACS, lambda lab, nplc: _dacs(lab)),
    ("ADCs", Capability.ADCS, lambda lab, nplc: _adcs(lab)),
    ("temperature", Capability.TEMPERATURE, lambda lab, nplc: _temperature(lab)),
    (THERMAL_CHECK, None, lambda lab, nplc: _thermal(lab)),
    ("switch wear", Capability.SWITCH_COUNTS, lambda lab, nplc: _switch_wear(lab)),
    ("safe after an interruption", None, _interruption),
)
"""Every check: (name, the capability it needs or None, the function)."""


def run_check(lab: Lab, name: str, check: Check, nplc: float | None) -> CheckResult:
    """Run one check, then make the bench safe and confirm it (a check after which the
    bench is not safe fails); an exception from the check is its failure."""
    started = time.perf_counter()
    status: str = "pass"
    figures: dict[str, Any] = {}
    try:
        detail, figures = check(lab, nplc)
    except _CheckFailedError as exc:
        status, detail, figures = "fail", str(exc), exc.figures
    except Exception as exc:  # an instrument error is this check's failure, not the end
        status, detail = "fail", f"{type(exc).__name__}: {exc}"
    try:
        lab.safe()
        _confirm_safe(lab)
    except Exception as exc:
        status = "fail"
        detail = f"{detail}; AND THE BENCH IS NOT SAFE AFTER THIS CHECK: {exc}"
    return CheckResult(name, status, detail, time.perf_counter() - started, figures)


def run_selftest(
    lab: Lab,
    store: Store | None = None,
    *,
    nplc: float | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    note: str = "",
) -> SelftestResult:
    """Run every check (`CHECKS`) on the lab's bench; store the run (kind ``selftest``).

    ``nplc`` is the integration time of the readings (None: the station's). The run is
    ``completed`` when every check passed, ``failed`` otherwise (with the failed checks
    in its note); an exception that escapes (the bench gone) marks it failed too.
    """
    started = time.perf_counter()
    instrument0 = lab.instrument_time_s
    run_id = None
    if store is not None:
        board_id = register_board(lab, store)
        run_id = store.start_run("selftest", board_id, {"nplc": nplc}, lab.describe(), note=note)
    result = SelftestResult([], run_id=run_id, bench=lab.describe())
    try:
        for i, (name, capability, check) in enumerate(CHECKS):
            if progress is not None:
                progress(i, len(CHECKS), name)
            if capability is not None and capability not in lab.capabilities:
                result.checks.append(
                    CheckResult(name, "n/a", f"the bench has no '{capability.value}'", 0.0)
                )
                continue
            if name == THERMAL_CHECK and not lab.has_thermal:
                result.checks.append(
                    CheckResult(name, "n/a", "the station has no [thermal] stage", 0.0)
                )
                continue
            outcome = run_check(lab, name, check, nplc)
            log.info("self-test %s: %s (%s)", name, outcome.status, outcome.detail)
            result.checks.append(outcome)
        if progress is not None:
            progress(len(CHECKS), len(CHECKS), "done")
    except BaseException as exc:
        if store is not None and run_id is not None:
            store.put_value(run_id, "checks", json.loads(json.dumps(result.to_json())))
            store.finish_run(
                run_id,
                "failed",
                instrument_time_s=lab.instrument_time_s - instrument0,
                note=f"self-test stopped: {exc!r}",
            )
        raise
    result.wall_time_s = time.perf_counter() - started
    if store is not None and run_id is not None:
        store.put_value(run_id, "checks", result.to_json())
        failed = [c.name for c in result.checks if c.status == "fail"]
        store.finish_run(
            run_id,
            "completed" if result.passed else "failed",
            instrument_time_s=lab.instrument_time_s - instrument0,
            note="" if result.passed else "failed: " + ", ".join(failed),
        )
    return result
