"""Memristor devices of the simulated board: pulse response, variability, drift and faults.

Every function works on whole arrays of devices (numpy, no Python loop over devices).

**State.** Each device has a conductance G in its own range [g_min, g_max] (S); the
normalised state is x = (G - g_min) / (g_max - g_min) in [0, 1]. At read voltages the
I-V is linear (I = G V): a memristor branch is a conductance in series with its switch,
like a resistor branch, and the nodal solve stays linear.

**Pulse response** (after NeuroSim's weight-update law, crossbar_sim.md 5.2, with a
VTEAM-like threshold law for amplitude, 4.1). A pulse of device voltage V and width w is
worth ``dP = ((|V| - V_th) / (V_ref - V_th))**alpha * w / w_ref`` reference pulses (zero
for |V| <= V_th: reads at 0.1-0.2 V never disturb). SET (V > 0) moves x along

    x(P) = x_inf (1 - exp(-P / A)),   x_inf = 1 / (1 - exp(-1 / shape)),   A = shape * levels

so from any x: ``x' = x_inf - (x_inf - x) exp(-dP / A)`` (large steps near g_min, small near
g_max, exactly g_max after ``levels`` reference pulses from g_min). RESET (V < 0) is the
same law mirrored (on 1 - x) with its own levels, shape, threshold, V_ref and alpha: the
asymmetry. Cycle-to-cycle noise (NeuroSim's 3.5 % of the range per pulse, scaled by the step
size): a pulse whose deterministic step is dx gets sigma = ``c2c_sigma * sqrt(|dx| * levels)``
of the range, i.e. c2c_sigma for a step of one average level (range / levels). The variance is
proportional to the step, so n small pulses spread as much as one pulse with the same total
step, and the noise vanishes where the law saturates at a bound. The result is clipped to
[0, 1].

**Read disturb.** Every voltage held across a device is a stress, not only a ``PULSe``: the
SMU's read voltage on a routed cell (and, in guarded cell routing, its opposite on every
closed cell of the other rows and columns), the DAC inputs of an MVM. A stress of device
voltage V for a time t (`MemristorArray.apply_stress`) does two things:

* above the threshold of its polarity (|V| > V_th) it switches the device exactly like a
  pulse of amplitude V and width t (the law above, cycle and noise included): a read at
  -0.49 V on a device whose RESET threshold is 0.45 V is a RESET pulse;
* at any voltage it makes the device creep towards the same bound, deterministically (no
  cycle counted, no new programming time, no noise), by

      dP_creep = read_disturb_rate * (t / w_ref) * sinh(min(|V|, V_th) / V_s) / sinh(V_th / V_s)

  reference pulses, with V_s = ``read_disturb_scale_V``. The sinh is the field-accelerated
  ion hopping rate behind the "voltage-time dilemma" of oxide switches: switching time
  falls exponentially with voltage, many decades over a volt (Menzel et al., Adv. Funct.
  Mater. 21, 4487 (2011)); it is zero at 0 V, odd in V, and one decade per V_s ln 10 =
  92 mV at the default 40 mV. At the threshold the creep is ``read_disturb_rate``
  reference pulses per reference width, so the two regimes join. Published arrays show
  this small cumulative drift: HfO2 1T1R multilevel cells drift under repeated reads, the
  drift adds up along a column's summed current, and reads should stay at 0.3 V or below
  (Shim, Luo, Seo, Yu, IRPS 2020, doi:10.1109/IRPS45951.2020.9129252); a million 0.2 V
  read pulses move programmed TaOx/HfOx weights only slightly (Yao et al., Nature 577, 641
  (2020), Extended Data Fig. 7). The default rate (1e-4) is an **estimate**: a second at the
  threshold is worth one reference pulse (~1 % of the range), and a million 20 ms readings
  at 0.1 V (NPLC 1, 50 Hz; 5.6 h of stress) creep a typical device (RESET threshold 0.6 V)
  by 0.07 reference pulses and the weakest (0.45 V) by 3. The bipolar character (SET-ward
  for V > 0, RESET-ward for V < 0) is why alternating the read polarity cancels it to first
  order (Shim et al.).

**Retention drift** (aihwkit's CMO/HfOx relaxation, crossbar_sim.md 2.2), from the time of
the device's last programming t_p:

    G(t) = clip(G_p - drift * L + drift_sigma * L * z, g_min, g_max),   L = ln(1 + (t - t_p) / t0)

with z ~ N(0, 1) drawn per device at every programming, so a device's drift is a smooth
function of time and devices spread as sigma(t) = drift_sigma * L.

**Read noise**: sigma = read_noise_S_per_decade * log10(G / 1 uS), white, fresh on every
read (`read_noise_sigma_S`; the board model adds it to what the SMU or the ADCs see).

**Faults**: stuck-on devices sit at g_max, stuck-off at g_min, whatever the pulses; after its
endurance budget (a per-device number of pulses, log-normal), a device's next pulse wears it
out and it sticks at g_max or g_min (per device, ``endurance_stuck_on_fraction``).

Complexity: a burst of n pulses on m devices costs O(n m); a conductance evaluation and a
stress O(N) for N devices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from simulator.board_config import MemristorConfig

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

READ_NOISE_REFERENCE_S = 1e-6
"""The read-noise law's reference conductance (1 uS: log10 of G in uS)."""


@dataclass(frozen=True)
class MemristorDevices:
    """Per-device parameters drawn once from the seed (every array has the board's shape)."""

    g_min_S: FloatArray
    g_max_S: FloatArray
    set_levels: FloatArray
    reset_levels: FloatArray
    set_shape: FloatArray
    reset_shape: FloatArray
    set_threshold_V: FloatArray
    reset_threshold_V: FloatArray
    """RESET threshold magnitude (V, > 0)."""
    endurance_cycles: IntArray
    """Pulses a device survives; the next one wears it out."""
    wears_out_on: BoolArray
    """True: a worn-out device sticks at g_max; False: at g_min."""
    stuck_on: BoolArray
    stuck_off: BoolArray
    initial_state: FloatArray
    """As-delivered normalised state x in [0, 1]."""
    initial_drift_z: FloatArray
    """The drift's standard normal for the as-delivered state (programmed at t = 0)."""
    formed: BoolArray | None = None
    """Delivered formed (None: every device; see "Forming")."""
    virgin_S: FloatArray | None = None
    """Conductance of each device while virgin (S; None when every device is formed)."""
    forming_V: FloatArray | None = None
    """Each device's forming voltage (V, magnitude; None when every device is formed)."""

    @property
    def shape(self) -> tuple[int, ...]:
        """The devices' array shape."""
        return tuple(self.g_min_S.shape)


def _clipped_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> FloatArray:
    return np.clip(rng.standard_normal(shape), -3.0, 3.0)


def draw_memristor_devices(
    config: MemristorConfig,
    shape: tuple[int, ...],
    rng: np.random.Generator,
    stuck_on: BoolArray | None = None,
    stuck_off: BoolArray | None = None,
) -> MemristorDevices:
    """Draw every device's parameters (device-to-device variability) from ``rng``.

    Relative spreads are gaussian clipped at 3 sigma (the config keeps them positive); the
    endurance is log-normal, ``10**(log10(endurance_cycles) + endurance_sigma_decades z)``,
    at least 1. ``stuck_on``/``stuck_off`` are the fault masks (none if None; a device in
    both is stuck off).
    """
    c = config
    g_min = c.g_min_S * (1.0 + c.range_sigma * _clipped_normal(rng, shape))
    g_max = c.g_max_S * (1.0 + c.range_sigma * _clipped_normal(rng, shape))
    set_levels = c.set_levels * (1.0 + c.levels_sigma * _clipped_normal(rng, shape))
    reset_levels = c.reset_levels * (1.0 + c.levels_sigma * _clipped_normal(rng, shape))
    set_shape = c.set_shape * (1.0 + c.shape_sigma * _clipped_normal(rng, shape))
    reset_shape = c.reset_shape * (1.0 + c.shape_sigma * _clipped_normal(rng, shape))
    set_th = c.set_threshold_V + c.threshold_sigma_V * _clipped_normal(rng, shape)
    reset_th = c.reset_threshold_V + c.threshold_sigma_V * _clipped_normal(rng, shape)
    log_end = math.log10(c.endurance_cycles) + c.endurance_sigma_decades * rng.standard_normal(
        shape
    )
    endurance = np.maximum(np.rint(10.0 ** np.minimum(log_end, 15.0)), 1.0).astype(np.int64)
    wears_on = rng.random(shape) < c.endurance_stuck_on_fraction
    x0 = rng.uniform(c.initial_state_min, c.initial_state_max, shape)
    z0 = rng.standard_normal(shape)
    off = np.zeros(shape, dtype=bool) if stuck_off is None else np.asarray(stuck_off, dtype=bool)
    on = np.zeros(shape, dtype=bool) if stuck_on is None else np.asarray(stuck_on, dtype=bool)
    formed = virgin = forming = None
    if c.formed_fraction < 1.0:  # drawn last, and only then: formed presets keep their draws
        formed = rng.random(shape) < c.formed_fraction
        virgin = c.virgin_S * 10.0 ** (c.virgin_sigma_decades * _clipped_normal(rng, shape))
        forming = c.forming_V + c.forming_sigma_V * _clipped_normal(rng, shape)
    return MemristorDevices(
        formed=formed,
        virgin_S=virgin,
        forming_V=forming,
        g_min_S=g_min,
        g_max_S=g_max,
        set_levels=set_levels,
        reset_levels=reset_levels,
        set_shape=set_shape,
        reset_shape=reset_shape,
        set_threshold_V=set_th,
        reset_threshold_V=reset_th,
        endurance_cycles=endurance,
        wears_out_on=wears_on,
        stuck_on=on & ~off,
        stuck_off=off,
        initial_state=x0,
        initial_drift_z=z0,
    )


def effective_pulses(
    amplitude_V: npt.ArrayLike,
    width_s: npt.ArrayLike,
    threshold_V: npt.ArrayLike,
    *,
    reference_V: float,
    exponent: float,
    reference_width_s: float,
) -> FloatArray:
    """Reference pulses a pulse is worth: ((|V| - V_th)/(V_ref - V_th))**alpha * w/w_ref.

    Zero at and below the threshold (|V| <= V_th). Broadcasts over its array arguments.
    """
    v = np.abs(np.asarray(amplitude_V, dtype=np.float64))
    th = np.asarray(threshold_V, dtype=np.float64)
    over = np.maximum(v - th, 0.0) / (reference_V - th)
    w = np.asarray(width_s, dtype=np.float64)
    return np.asarray(over**exponent * (w / reference_width_s), dtype=np.float64)


def creep_pulses(
    voltage_V: npt.ArrayLike,
    duration_s: npt.ArrayLike,
    threshold_V: npt.ArrayLike,
    *,
    rate: float,
    scale_V: float,
    reference_width_s: float,
) -> FloatArray:
    """Reference pulses the read-disturb creep of a stress is worth (module docstring).

    ``rate * (t / w_ref) * sinh(min(|V|, V_th) / V_s) / sinh(V_th / V_s)``: zero at 0 V,
    ``rate * t / w_ref`` at and above the threshold. The sinh ratio is evaluated as
    ``exp(a - b) (1 - exp(-2a)) / (1 - exp(-2b))`` (a <= b), which never overflows.
    Broadcasts over its array arguments.
    """
    th = np.asarray(threshold_V, dtype=np.float64)
    a = np.minimum(np.abs(np.asarray(voltage_V, dtype=np.float64)), th) / scale_V
    b = th / scale_V
    ratio = np.exp(a - b) * -np.expm1(-2.0 * a) / -np.expm1(-2.0 * b)
    t = np.asarray(duration_s, dtype=np.float64)
    return np.asarray(rate * (t / reference_width_s) * ratio, dtype=np.float64)


def saturating_step(
    x: npt.ArrayLike, dp: npt.ArrayLike, levels: npt.ArrayLike, shape: npt.ArrayLike
) -> FloatArray:
    """NeuroSim's exponential law: state x after ``dp`` more reference pulses towards 1.

    ``x' = x_inf - (x_inf - x) exp(-dp / A)``, A = shape * levels, x_inf = 1/(1 - e^(-1/shape));
    clipped at 1 (reached after ``levels`` pulses from 0). No noise.
    """
    s = np.asarray(shape, dtype=np.float64)
    a = s * np.asarray(levels, dtype=np.float64)
    x_inf = 1.0 / -np.expm1(-1.0 / s)
    xa = np.asarray(x, dtype=np.float64)
    out = x_inf - (x_inf - xa) * np.exp(-np.asarray(dp, dtype=np.float64) / a)
    return np.asarray(np.minimum(out, 1.0), dtype=np.float64)


class MemristorArray:
    """The memristors' mutable state (conductances, programming times, pulse counts).

    Args:
        devices: the drawn per-device parameters (`draw_memristor_devices`).
        config: the shared parameters (pulse law, noise, drift).
        rng: the generator of cycle-to-cycle noise and drift draws (advanced by every pulse).

    Every array is in the devices' shape; index devices with a tuple of index arrays or a
    boolean mask of that shape. Not thread-safe (the board model holds the lock).
    """

    def __init__(
        self, devices: MemristorDevices, config: MemristorConfig, rng: np.random.Generator
    ) -> None:
        self.devices = devices
        self.config = config
        self._rng = rng
        d = devices
        self._g_prog_S = d.g_min_S + d.initial_state * (d.g_max_S - d.g_min_S)
        self._t_prog_s = np.zeros(d.shape)
        self._drift_z = d.initial_drift_z.copy()
        self._cycles = np.zeros(d.shape, dtype=np.int64)
        self._worn_out = np.zeros(d.shape, dtype=bool)
        self._formed = np.ones(d.shape, dtype=bool) if d.formed is None else d.formed.copy()
        self._broken = np.zeros(d.shape, dtype=bool)
        """Hard breakdown at forming: stuck at g_max for good."""

    # ------------------------------------------------------------------ state
    @property
    def cycles(self) -> IntArray:
        """Pulses each device has actually received (a copy)."""
        return self._cycles.copy()

    @property
    def worn_out(self) -> BoolArray:
        """Devices past their endurance budget (a copy)."""
        return self._worn_out.copy()

    @property
    def programmed_time_s(self) -> FloatArray:
        """Virtual time of each device's last programming (s; 0 = as delivered)."""
        return self._t_prog_s.copy()

    @property
    def formed(self) -> BoolArray:
        """Devices that are formed (a copy); the others are virgin."""
        return self._formed.copy()

    @property
    def broken(self) -> BoolArray:
        """Devices broken down at forming (a copy): stuck at g_max."""
        return self._broken.copy()

    def stuck_on(self) -> BoolArray:
        """Devices that sit at g_max whatever the pulses (faults, wear-out, breakdown)."""
        d = self.devices
        return (d.stuck_on | (self._worn_out & d.wears_out_on & ~d.stuck_off)) | self._broken

    def stuck_off(self) -> BoolArray:
        """Devices that sit at g_min whatever the pulses (faults and wear-out)."""
        d = self.devices
        return d.stuck_off | (self._worn_out & ~d.wears_out_on & ~d.stuck_on)

    def conductance_S(self, time_s: float) -> FloatArray:
        """Every device's true conductance at virtual time ``time_s`` (S), drift included."""
        c, d = self.config, self.devices
        age = np.maximum(time_s - self._t_prog_s, 0.0)
        ln_t = np.log1p(age / c.drift_t0_s)
        g = self._g_prog_S - c.drift_S_per_ln * ln_t + c.drift_sigma_S_per_ln * ln_t * self._drift_z
        g = np.clip(g, d.g_min_S, d.g_max_S)
        g = np.where(self.stuck_on(), d.g_max_S, g)
        g = np.where(self.stuck_off() & ~self._broken, d.g_min_S, g)
        if d.virgin_S is not None:
            g = np.where(self._formed, g, d.virgin_S)
        return np.asarray(g, dtype=np.float64)

    def window_bounds(self) -> tuple[FloatArray, FloatArray]:
        """The normalised state's bounds now (x_lo, x_hi): [0, 1] until the window closes
        with cycling (``window_closure``: each bound moves in by closure/2 (n/N)^2)."""
        c, d = self.config, self.devices
        if c.window_closure == 0.0:
            return np.zeros(d.shape), np.ones(d.shape)
        f = np.minimum(self._cycles / np.maximum(d.endurance_cycles, 1), 1.0)
        shift = 0.5 * c.window_closure * f * f
        return shift, 1.0 - shift

    def iv_factor(self, device_voltage_V: npt.ArrayLike) -> FloatArray:
        """I / (G V) at device voltage V: sinh(V / V0) / (V / V0), V0 by polarity (1 when
        linear, ``iv_v0_*`` infinite). The Stanford/PKU conduction law I = G V0 sinh(V/V0)."""
        c = self.config
        v = np.asarray(device_voltage_V, dtype=np.float64)
        v0 = np.where(v >= 0, c.iv_v0_set_V, c.iv_v0_reset_V)
        u = np.where(np.isfinite(v0), v / np.where(np.isfinite(v0), v0, 1.0), 0.0)
        small = np.abs(u) < 1e-6
        safe = np.where(small, 1.0, u)
        return np.asarray(np.where(small, 1.0 + u * u / 6.0, np.sinh(safe) / safe), np.float64)

    # ------------------------------------------------------------------ forming
    def form(
        self,
        index: BoolArray,
        *,
        current_limit_A: float,
        at_s: float,
    ) -> None:
        """Form the virgin devices ``index``: their filament grows until the current limit
        holds it, ending at G = I_limit / ``compliance_clamp_V`` (clipped to the range); a
        limit beyond ``breakdown_factor`` x g_max x clamp (or none: inf) breaks them down
        (stuck at g_max). The formed state is programmed at ``at_s`` (drift starts there).
        """
        c, d = self.config, self.devices
        idx = np.asarray(index, dtype=bool) & ~self._formed
        if not idx.any():
            return
        g_new = current_limit_A / c.compliance_clamp_V
        broken = idx & (g_new > c.breakdown_factor * d.g_max_S)
        ok = idx & ~broken
        self._formed |= idx
        self._broken |= broken
        self._g_prog_S = np.where(ok, np.clip(g_new, d.g_min_S, d.g_max_S), self._g_prog_S)
        self._g_prog_S = np.where(broken, d.g_max_S, self._g_prog_S)
        self._t_prog_s = np.where(idx, at_s, self._t_prog_s)
        self._drift_z = np.where(idx, self._rng.standard_normal(d.shape), self._drift_z)

    def read_noise_sigma_S(self, conductance_S: npt.ArrayLike) -> FloatArray:
        """Read-noise sigma for conductances ``conductance_S`` (S): coefficient * log10(G/1 uS)."""
        g = np.asarray(conductance_S, dtype=np.float64)
        decades = np.log10(np.maximum(g, READ_NOISE_REFERENCE_S) / READ_NOISE_REFERENCE_S)
        return np.asarray(self.config.read_noise_S_per_decade * decades, dtype=np.float64)

    # ------------------------------------------------------------------ pulses
    def apply_pulses(
        self,
        index: tuple[IntArray | int, ...] | BoolArray,
        amplitude_V: npt.ArrayLike,
        *,
        width_s: float,
        count: int,
        start_s: float,
        end_s: float,
        current_limit_A: float = math.inf,
    ) -> None:
        """Apply ``count`` identical pulses to the devices ``index``.

        ``current_limit_A``: the current compliance of the source (an SMU's; the pulse
        circuit has none): a SET ends no higher than I_limit / ``compliance_clamp_V``, and
        a virgin device whose forming voltage the pulse exceeds forms under it (`form`;
        without a limit that is a hard breakdown). Virgin devices do not switch.

        ``amplitude_V`` is the signed device voltage (+ SET, - RESET), one value or one per
        selected device; the burst starts at virtual time ``start_s`` (the devices' drifted
        state then is where the pulses start from) and its last pulse ends at ``end_s`` (the
        devices' new programming time). Drift within a burst is neglected (ln(1 + 1 ms / 1 s)
        is 1e-3 of a decade's drift).
        """
        if count < 0:
            raise ValueError(f"pulse count {count} is negative")
        if not (math.isfinite(width_s) and width_s >= 0):
            raise ValueError(f"pulse width {width_s} s must be a finite number >= 0")
        if end_s < start_s:
            raise ValueError(f"pulse burst ends at {end_s} s before it starts at {start_s} s")
        c, d = self.config, self.devices
        mask = np.zeros(d.shape, dtype=bool)
        mask[index] = True
        flat = np.flatnonzero(mask)
        if flat.size == 0 or count == 0:
            return
        try:
            amp = np.broadcast_to(np.asarray(amplitude_V, dtype=np.float64), (flat.size,))
        except ValueError:
            raise ValueError(
                f"{np.size(amplitude_V)} amplitudes for {flat.size} devices: give one, or one "
                "per selected device"
            ) from None
        if not np.all(np.isfinite(amp)):
            raise ValueError("pulse amplitude must be finite")

        def pick(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
            return a.reshape(-1)[flat]

        g_min, g_max = pick(d.g_min_S), pick(d.g_max_S)
        span = g_max - g_min
        g_now = pick(self.conductance_S(start_s)).astype(np.float64)
        x = (g_now - g_min) / span
        is_set = amp > 0
        dp = np.where(
            is_set,
            effective_pulses(
                amp,
                width_s,
                pick(d.set_threshold_V),
                reference_V=c.set_reference_V,
                exponent=c.set_exponent,
                reference_width_s=c.reference_width_s,
            ),
            effective_pulses(
                amp,
                width_s,
                pick(d.reset_threshold_V),
                reference_V=c.reset_reference_V,
                exponent=c.reset_exponent,
                reference_width_s=c.reference_width_s,
            ),
        )
        levels = np.where(is_set, pick(d.set_levels), pick(d.reset_levels))
        shape = np.where(is_set, pick(d.set_shape), pick(d.reset_shape))
        # Devices that switch: not stuck, and the pulse is above their threshold. Only they
        # count a cycle and are re-programmed (a sub-threshold pulse changes nothing at all).
        switching = (
            ~(pick(d.stuck_on) | pick(d.stuck_off) | pick(self._broken))
            & pick(self._formed)
            & (dp > 0)
        )
        if d.forming_V is not None:
            forms = ~pick(self._formed) & (np.abs(amp) > pick(d.forming_V))
            if forms.any():
                mask_f = np.zeros(d.shape, dtype=bool)
                mask_f.reshape(-1)[flat[forms]] = True
                self.form(mask_f, current_limit_A=current_limit_A, at_s=end_s)
        worn = pick(self._worn_out).astype(bool)
        was_worn = worn.copy()
        cycles = pick(self._cycles).astype(np.int64)
        endurance = pick(d.endurance_cycles).astype(np.int64)
        for _ in range(count):
            live = switching & ~worn
            cycles = cycles + live
            worn = worn | (live & (cycles > endurance))
            responsive = live & ~worn
            # SET moves x towards 1; RESET moves 1 - x towards 1.
            toward = np.where(is_set, x, 1.0 - x)
            stepped = saturating_step(toward, dp, levels, shape)
            new_x = np.where(is_set, stepped, 1.0 - stepped)
            # C2C noise: variance proportional to the deterministic step (in average levels).
            noise_sigma = c.c2c_sigma * np.sqrt(np.abs(new_x - x) * levels)
            new_x = new_x + noise_sigma * self._rng.standard_normal(flat.size)
            lo, hi = 0.0, 1.0
            if c.window_closure > 0.0:  # the window closes with cycling
                f = np.minimum(cycles / np.maximum(endurance, 1), 1.0)
                lo = 0.5 * c.window_closure * f * f
                hi = 1.0 - lo
            x = np.where(responsive, np.clip(new_x, lo, hi), x)
        if math.isfinite(current_limit_A):  # a SET under compliance stops at I / V_clamp
            x_cap = (current_limit_A / c.compliance_clamp_V - g_min) / span
            x = np.where(is_set & switching, np.minimum(x, np.maximum(x_cap, 0.0)), x)
        self._cycles.reshape(-1)[flat] = cycles
        self._worn_out.reshape(-1)[flat] = worn
        programmed = switching & ~was_worn & ~worn
        draws = self._rng.standard_normal(flat.size)
        upd = flat[programmed]
        self._g_prog_S.reshape(-1)[upd] = (g_min + x * span)[programmed]
        self._t_prog_s.reshape(-1)[upd] = end_s
        self._drift_z.reshape(-1)[upd] = draws[programmed]

    # ------------------------------------------------------------------ read disturb
    def creep(
        self,
        index: tuple[IntArray | int, ...] | BoolArray,
        voltage_V: npt.ArrayLike,
        *,
        duration_s: float,
        at_s: float,
    ) -> None:
        """Sub-threshold creep of the devices ``index`` under ``voltage_V`` for ``duration_s``.

        ``voltage_V`` is the signed device voltage (one value or one per selected device);
        the devices' state at virtual time ``at_s`` moves by `creep_pulses` reference pulses
        along the SET (V > 0) or RESET (V < 0) law, without noise. Their programming time
        and drift draw are kept (creep is not a programming), and so is their cycle count.
        Stuck and worn-out devices do not move.
        """
        if not (math.isfinite(duration_s) and duration_s >= 0):
            raise ValueError(f"stress duration {duration_s} s must be a finite number >= 0")
        c, d = self.config, self.devices
        mask = np.zeros(d.shape, dtype=bool)
        mask[index] = True
        flat = np.flatnonzero(mask)
        if flat.size == 0 or duration_s == 0 or c.read_disturb_rate == 0:
            return
        v = np.broadcast_to(np.asarray(voltage_V, dtype=np.float64), (flat.size,))

        def pick(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
            return a.reshape(-1)[flat]

        is_set = v > 0
        threshold = np.where(is_set, pick(d.set_threshold_V), pick(d.reset_threshold_V))
        dp = creep_pulses(
            v,
            duration_s,
            threshold,
            rate=c.read_disturb_rate,
            scale_V=c.read_disturb_scale_V,
            reference_width_s=c.reference_width_s,
        )
        live = (v != 0) & ~(pick(self.stuck_on()) | pick(self.stuck_off()))
        if not np.any(live & (dp > 0)):
            return
        g_min, g_max = pick(d.g_min_S), pick(d.g_max_S)
        span = g_max - g_min
        x = (pick(self.conductance_S(at_s)) - g_min) / span
        levels = np.where(is_set, pick(d.set_levels), pick(d.reset_levels))
        shape = np.where(is_set, pick(d.set_shape), pick(d.reset_shape))
        stepped = saturating_step(np.where(is_set, x, 1.0 - x), dp, levels, shape)
        new_x = np.where(is_set, stepped, 1.0 - stepped)
        shift_S = np.where(live, (new_x - x) * span, 0.0)
        self._g_prog_S.reshape(-1)[flat] += shift_S

    def apply_stress(
        self,
        voltage_V: npt.ArrayLike,
        *,
        duration_s: float,
        start_s: float,
        current_limit_A: float = math.inf,
    ) -> bool:
        """Hold ``voltage_V`` (V, signed, the devices' shape) across every device for
        ``duration_s`` (s) from virtual time ``start_s``: read disturb (module docstring),
        and the DC switching and forming of an SMU sweep, under the source's current limit
        ``current_limit_A`` (`apply_pulses`).

        Every device creeps (`creep`); devices above the threshold of their polarity are
        then switched as by one pulse of their voltage and width ``duration_s``
        (`apply_pulses`). Returns whether any device was switched (its conductance may have
        moved by levels: the caller re-evaluates what depends on it).
        """
        d = self.devices
        v = np.asarray(voltage_V, dtype=np.float64)
        if v.shape != d.shape:
            raise ValueError(f"stress voltages of shape {v.shape}, the devices are {d.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError("stress voltage must be finite")
        if duration_s == 0 or not np.any(v):
            return False
        self.creep(v != 0, v[v != 0], duration_s=duration_s, at_s=start_s)
        over = np.where(v > 0, v > d.set_threshold_V, -v > d.reset_threshold_V)
        if d.forming_V is not None:  # virgin devices do not switch; above forming, they form
            over = (over & self._formed) | (~self._formed & (np.abs(v) > d.forming_V))
        if not np.any(over):
            return False
        self.apply_pulses(
            over,
            v[over],
            width_s=duration_s,
            count=1,
            start_s=start_s,
            end_s=start_s + duration_s,
            current_limit_A=current_limit_A,
        )
        return True
