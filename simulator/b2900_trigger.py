"""The Keysight B2900's ARM-TRIGger model: two device actions per channel, on one clock.

The B2900 runs one ARM-TRIGger model per channel and per device action (SCPI Command
Reference B2910-90030, "Trigger System"; User's Guide 6-27): TRANsient (the source output
steps through its FIX / SWEep / LIST values) and ACQuire (a measurement). Each model:

1. waits for the ARM event (source AINT, BUS or TIMer), then the ARM delay;
2. waits for the TRIGger event, then the TRIGger delay, and executes the device action;
3. repeats 2 TRIGger-count times, then 1-3 ARM-count times, then goes idle.

Up to four such models (two channels x two actions) run at once, so this module is a small
discrete-event scheduler on the bench's `VirtualClock` rather than one generator advancing
the clock (`simulator.background.BackgroundRun` serves the 2450's single trigger model). A
model is a generator that yields what it waits for:

* ``("at", t_s)``: the instrument time of its next action (a timer tick, a delay, the end of
  a measurement it is busy with);
* ``("bus", layer)``: a bus trigger (``*TRG``) or ``:ARM|:TRIG ...:IMMediate``;
* ``("until", fn)``: the AINT source of an action whose partner runs: ``fn()`` returns the
  time the event occurs (the source has settled, the measurement has ended) or None while
  it has not happened yet.

The scheduler always executes the earliest timed event (ties: transient before acquire,
channel 1 before 2), advancing the clock to it; models waiting for a bus trigger hold still.
Like `BackgroundRun`, it progresses before each host line by the wall time since the
previous line (at least `LINE_TIME_S`), and ``*OPC?`` / ``*WAI`` / ``:IDLE?`` / ``:FETC``
run it to the end deterministically. Transport independent: only the emulator calls it.

Costs: O(number of models) per event, at most four models.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Final

from simulator.background import LINE_TIME_S
from simulator.clock import VirtualClock

ACTIONS: Final = ("TRAN", "ACQ")
"""Device actions in the order their simultaneous events execute."""
SOURCES: Final = ("AINT", "BUS", "TIM")
"""Emulated ARM / TRIGger event sources (automatic internal, *TRG, timer)."""
MAX_EVENTS_PER_PROGRESS: Final = 200_000
"""Bound on the events one `progress` executes (an INF count on a fast timer while the host
sleeps for minutes would otherwise block the line)."""

Wait = tuple[str, object]


@dataclass
class Layer:
    """One layer (ARM or TRIGger) of one device action: count, delay, event source, timer."""

    count: int | None = 1
    """Repetitions; None is INFinity (until ``:ABOR``)."""
    delay_s: float = 0.0
    source: str = "AINT"
    timer_s: float = 1e-5


@dataclass
class ActionLayers:
    """The ARM and TRIGger layers of one device action of one channel."""

    arm: Layer = field(default_factory=Layer)
    trig: Layer = field(default_factory=Layer)

    @property
    def open_ended(self) -> bool:
        """An INFinity count: the action never ends by itself."""
        return self.arm.count is None or self.trig.count is None

    @property
    def steps(self) -> int | None:
        """Device actions executed in one initiation (None: unbounded)."""
        if self.open_ended:
            return None
        assert self.arm.count is not None and self.trig.count is not None
        return self.arm.count * self.trig.count


class Machine:
    """One initiated device action of one channel and where its model is waiting."""

    def __init__(self, channel: int, action: str, open_ended: bool) -> None:
        self.channel = channel
        self.action = action
        self.open_ended = open_ended
        self.order = (channel, ACTIONS.index(action))
        self.done_at: list[float] = []
        """Per executed step: when the source settled (TRAN) or the measurement ended (ACQ)."""
        self.alive = True
        self.wait: Wait = ("at", 0.0)
        self.steps: Generator[Wait, None, None] | None = None


def action_model(
    machine: Machine,
    layers: ActionLayers,
    clock: VirtualClock,
    act: Callable[[int], float],
    partner: Callable[[], Machine | None],
    *,
    finish: Callable[[int], None] | None = None,
) -> Generator[Wait, None, None]:
    """The ARM-TRIGger model of one device action.

    ``act(step)`` executes the device action (step counts from 0 over all ARM cycles) at the
    present instrument time and returns how long the action keeps the model busy (s): the
    source wait of a transient step, the conversion time of a measurement; ``finish(step)``
    runs when that time has passed (a reading is stored when its conversion ends). ``partner()``
    returns the other action of the same channel when it was initiated with this one (AINT
    then synchronises them: a measurement after its source step has settled, the next
    source step after the previous measurement), else None.
    """
    arm, trig = layers.arm, layers.trig
    armed_at = clock.now_s
    step = 0
    cycle = 0
    while arm.count is None or cycle < arm.count:
        if arm.source == "BUS":
            yield ("bus", "ARM")
        elif arm.source == "TIM":
            yield ("at", armed_at + cycle * arm.timer_s)
        if arm.delay_s:
            yield ("at", clock.now_s + arm.delay_s)
        layer_start = clock.now_s
        k = 0
        while trig.count is None or k < trig.count:
            if trig.source == "BUS":
                yield ("bus", "TRIG")
            elif trig.source == "TIM":
                yield ("at", max(layer_start + k * trig.timer_s, clock.now_s))
            elif partner() is not None:
                yield ("until", _aint_event(machine, partner, step))
            if trig.delay_s:
                yield ("at", clock.now_s + trig.delay_s)
            busy_s = act(step)
            machine.done_at.append(clock.now_s + busy_s)
            yield ("at", clock.now_s + busy_s)
            if finish is not None:
                finish(step)
            step += 1
            k += 1
        cycle += 1


def _aint_event(
    machine: Machine, partner: Callable[[], Machine | None], step: int
) -> Callable[[], float | None]:
    """When the automatic internal trigger of ``step`` fires, given the partner action."""

    def event_time() -> float | None:
        other = partner()
        if other is None:
            return 0.0
        # A measurement waits for its source step to settle; a source step (after the
        # first) waits for the previous step's measurement to end.
        needed = step if machine.action == "ACQ" else step - 1
        if needed < 0:
            return 0.0
        if len(other.done_at) > needed:
            return other.done_at[needed]
        return None if other.alive else 0.0

    return event_time


class TriggerScheduler:
    """Runs the initiated device actions of every channel in instrument time.

    Args:
        clock: the bench's virtual clock.
        on_error: called with (channel, exception) when a device action fails; that
            channel's actions stop (the readings made are kept).
        on_machine_end: called with each machine when its model ends (normally or not).
        on_idle: called once when the last running action has ended.
    """

    def __init__(
        self,
        clock: VirtualClock,
        *,
        on_error: Callable[[int, Exception], None],
        on_machine_end: Callable[[Machine], None],
        on_idle: Callable[[], None],
    ) -> None:
        self.clock = clock
        self._on_error = on_error
        self._on_machine_end = on_machine_end
        self._on_idle = on_idle
        self.machines: list[Machine] = []
        self._last_wall_s = time.monotonic()

    # ------------------------------------------------------------------ queries
    def find(self, channel: int, action: str) -> Machine | None:
        """The running machine of ``channel``'s ``action``, if any."""
        for machine in self.machines:
            if machine.alive and machine.channel == channel and machine.action == action:
                return machine
        return None

    def active(
        self, channels: Iterable[int] | None = None, actions: Iterable[str] = ACTIONS
    ) -> bool:
        """Whether any of the given channels' given actions is running (all when None)."""
        chans = None if channels is None else set(channels)
        acts = set(actions)
        return any(
            m.alive and (chans is None or m.channel in chans) and m.action in acts
            for m in self.machines
        )

    # ------------------------------------------------------------------ control
    def start(self, machine: Machine, steps: Generator[Wait, None, None]) -> None:
        """Add an initiated action; its model runs from the present instrument time."""
        if not self.active():
            self._last_wall_s = time.monotonic()
        machine.steps = steps
        self.machines.append(machine)
        self._resume(machine)
        self._collect()

    def bus_trigger(
        self, channel: int | None = None, action: str | None = None, layer: str | None = None
    ) -> None:
        """``*TRG`` (all) or an immediate ARM/TRIGger event: waiting models continue now.

        A model not waiting for a bus event at this moment (busy measuring, waiting for a
        timer) ignores it, as an event detector does.
        """
        now = self.clock.now_s
        for machine in self.machines:
            if (
                machine.alive
                and machine.wait[0] == "bus"
                and (channel is None or machine.channel == channel)
                and (action is None or machine.action == action)
                and (layer is None or machine.wait[1] == layer)
            ):
                machine.wait = ("at", now)

    def abort(self, channels: Iterable[int], actions: Iterable[str]) -> None:
        """``:ABOR``: the given actions stop at once; readings already made are kept."""
        chans, acts = set(channels), set(actions)
        for machine in self.machines:
            if machine.alive and machine.channel in chans and machine.action in acts:
                self._end(machine)
        self._collect()

    def progress(self) -> None:
        """Advance by the wall time since the previous call (>= LINE_TIME_S)."""
        wall = time.monotonic()
        elapsed = max(wall - self._last_wall_s, LINE_TIME_S)
        self._last_wall_s = wall
        if not self.active():
            return
        target = self.clock.now_s + elapsed
        executed = 0
        while executed < MAX_EVENTS_PER_PROGRESS:
            machine = self._next_timed()
            if machine is None or self._wait_time(machine) > target:
                break
            self._execute(machine)
            executed += 1
        if self._next_timed() is not None and self.clock.now_s < target:
            # A model waits for a timer or a delay: instrument time passes meanwhile.
            self.clock.advance(target - self.clock.now_s)

    def run_to_end(self, channels: Iterable[int] | None = None) -> bool:
        """Run until the given channels' actions (all when None) have ended.

        Returns False, having run what it could, when one of them cannot end by itself:
        an INFinity count, or a model waiting for a bus trigger.
        """
        chans = None if channels is None else set(channels)

        def relevant() -> list[Machine]:
            return [m for m in self.machines if m.alive and (chans is None or m.channel in chans)]

        if any(m.open_ended for m in relevant()):
            return False
        while relevant():
            machine = self._next_timed()
            if machine is None:
                return False
            mine = [m for m in relevant() if self._wait_time(m) != float("inf")]
            if not mine:
                return False
            self._execute(machine)
        return True

    # ------------------------------------------------------------------ internals
    def _wait_time(self, machine: Machine) -> float:
        """When ``machine`` executes next (inf: waiting for a bus trigger or its partner)."""
        kind, value = machine.wait
        if kind == "at":
            assert isinstance(value, float | int)
            return float(value)
        if kind == "until":
            assert callable(value)
            t = value()
            return float("inf") if t is None else float(t)
        return float("inf")

    def _next_timed(self) -> Machine | None:
        best: Machine | None = None
        best_key: tuple[float, tuple[int, int]] | None = None
        for machine in self.machines:
            if not machine.alive:
                continue
            t = self._wait_time(machine)
            if t == float("inf"):
                continue
            key = (max(t, self.clock.now_s), machine.order)
            if best_key is None or key < best_key:
                best, best_key = machine, key
        return best

    def _execute(self, machine: Machine) -> None:
        t = self._wait_time(machine)
        if t > self.clock.now_s:
            self.clock.advance(t - self.clock.now_s)
        self._resume(machine)
        self._collect()

    def _resume(self, machine: Machine) -> None:
        assert machine.steps is not None
        try:
            machine.wait = next(machine.steps)
        except StopIteration:
            self._end(machine)
        except Exception as exc:  # a device action failed: the channel's models stop
            self._end(machine)
            for other in self.machines:
                if other.alive and other.channel == machine.channel:
                    self._end(other)
            self._on_error(machine.channel, exc)

    def _end(self, machine: Machine) -> None:
        if not machine.alive:
            return
        machine.alive = False
        if machine.steps is not None:
            machine.steps.close()
        self._on_machine_end(machine)

    def _collect(self) -> None:
        """Forget ended machines; report idle when the last one has ended."""
        had = bool(self.machines)
        self.machines = [m for m in self.machines if m.alive]
        if had and not self.machines:
            self._on_idle()
