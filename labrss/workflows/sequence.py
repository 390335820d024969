"""Sequences: experiments composed of characterisation modules, loops and delays over cell
selections, from a TOML or JSON file, resumable through the store.

    name = "loops, then retention, three times"

    [[steps]]
    module = "iv"                 # form | iv | retention | endurance | seek
    cells = "0,0-3"               # ROWS,COLS as for `labrss calibrate --cells`
    branches = "0-3"              # *, N, A-B, A+B (default *)
    cycles = 2                    # any field of the module's settings
    v_set_max_V = 1.8

    [[steps]]
    repeat = 3                    # a loop over the steps inside it
      [[steps.steps]]
      module = "retention"
      cells = "0,0"
      interval_s = 60
      duration_s = 600
      [[steps.steps]]
      wait_s = 3600               # a delay (the virtual clock on the simulator)

JSON is the same structure (``{"name": ..., "steps": [...]}``). `load_sequence` parses and
validates the whole file before anything runs: an unknown module or key, a value the
module refuses, or a loop without steps is a `SequenceError` naming the file, the step
(``steps[2].steps[0]``) and the key. `plan` unrolls the loops into concrete steps with
stable ids (``"2"``, ``"3.1.2"``: step 3, iteration 1, its step 2; 1-based).

`run_sequence` checks every step against the bench (cells on the board and memristors,
the pulse capability, amplitudes within the limits) before the first one runs, then runs
them in order. Each module step is a run of its own (its kind, with every reading); the
sequence is a run of kind ``sequence`` whose JSON result ``steps`` lists each finished
step (id, module, run id, status) and is rewritten after every step (one transaction).
An interrupted or failed sequence resumes like a calibration: ``run_sequence(...,
resume=RUN)`` starts a new run whose parent is RUN and skips every step that the lineage
completed; a step cut off half-way runs again from its start (a module's device state
cannot be rewound, so its partial run stays stored as ``interrupted``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labrss.lab import Lab, LabInputError
from labrss.memristor import WriteVerifySettings
from labrss.store import Store, StoreError
from labrss.workflows.boards import register_board
from labrss.workflows.memristor_endurance import EnduranceSettings, endurance
from labrss.workflows.memristor_form import FormSettings, form
from labrss.workflows.memristor_iv import IVSettings, iv_sweep
from labrss.workflows.memristor_module import (
    Branch,
    DataCallback,
    ModuleResult,
    ProgressCallback,
    StopFlag,
    check_amplitude,
    require_pulses,
    select_devices,
)
from labrss.workflows.memristor_retention import RetentionSettings, retention
from labrss.workflows.memristor_seek import seek
from labrss.workflows.run_close import close_run_after

MAX_STEPS = 100_000
"""Unrolled steps a sequence may have (a loop typo should not plan a billion steps)."""


class SequenceError(ValueError):
    """A sequence file that cannot run: names the file, the step and the key."""


# ---------------------------------------------------------------------------- modules
@dataclass(frozen=True)
class SeekStepSettings:
    """A seek step: the target, reads per decision, and the write-verify knobs."""

    target_S: float = 0.0
    reads: int = 2
    nplc: float | None = None
    write_verify: WriteVerifySettings = field(default_factory=WriteVerifySettings)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.target_S) and self.target_S > 0):
            raise ValueError(f"seek target_S = {self.target_S!r}: must be > 0 S")
        if self.reads < 1:
            raise ValueError(f"seek reads = {self.reads}: must be >= 1")


@dataclass(frozen=True)
class ModuleSpec:
    """A module a sequence can call: how to build its settings and how to run it."""

    name: str
    build: Callable[[dict[str, Any]], Any]
    run: Callable[[Lab, list[Branch], Any, dict[str, Any]], ModuleResult]
    amplitudes: Callable[[Any], list[tuple[str, float]]]


def _dataclass_builder(cls: type) -> Callable[[dict[str, Any]], Any]:
    def build(values: dict[str, Any]) -> Any:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise KeyError(f"{unknown[0]!r} (the module takes {', '.join(sorted(names))})")
        return cls(**values)

    return build


def _build_seek(values: dict[str, Any]) -> SeekStepSettings:
    own = {k: values.pop(k) for k in ("target_S", "reads", "nplc") if k in values}
    if "target_S" not in own:
        raise KeyError("'target_S' is required for seek")
    return SeekStepSettings(**own, write_verify=_dataclass_builder(WriteVerifySettings)(values))


MODULES: dict[str, ModuleSpec] = {
    "form": ModuleSpec(
        "form",
        _dataclass_builder(FormSettings),
        lambda lab, devices, s, kw: form(lab, devices, s, **kw),
        lambda s: [],  # a write through the SMU: checked against the station by `form`
    ),
    "iv": ModuleSpec(
        "iv",
        _dataclass_builder(IVSettings),
        lambda lab, devices, s, kw: iv_sweep(lab, devices, s, **kw),
        lambda s: [("v_set_max_V", s.v_set_max_V), ("v_reset_max_V", s.v_reset_max_V)],
    ),
    "retention": ModuleSpec(
        "retention",
        _dataclass_builder(RetentionSettings),
        lambda lab, devices, s, kw: retention(lab, devices, s, **kw),
        lambda s: [],
    ),
    "endurance": ModuleSpec(
        "endurance",
        _dataclass_builder(EnduranceSettings),
        lambda lab, devices, s, kw: endurance(lab, devices, s, **kw),
        lambda s: [("set_V", s.set_V), ("reset_V", s.reset_V)],
    ),
    "seek": ModuleSpec(
        "seek",
        _build_seek,
        lambda lab, devices, s, kw: seek(
            lab, devices, s.target_S, s.write_verify, reads=s.reads, nplc=s.nplc, **kw
        ),
        lambda s: [
            ("set_max_V", s.write_verify.set_max_V),
            ("reset_max_V", s.write_verify.reset_max_V),
        ],
    ),
}


def register_module(spec: ModuleSpec) -> None:
    """Make a module callable from sequences (the built-in ones register themselves)."""
    MODULES[spec.name] = spec


# ---------------------------------------------------------------------------- steps
@dataclass(frozen=True)
class ModuleStep:
    """Run ``module`` on the devices of ``cells`` x ``branches`` with ``settings``."""

    module: str
    cells: str
    branches: str
    settings: Any
    where: str


@dataclass(frozen=True)
class WaitStep:
    """Leave the bench untouched for ``seconds`` (s)."""

    seconds: float
    where: str


@dataclass(frozen=True)
class LoopStep:
    """Run ``steps`` ``repeat`` times."""

    repeat: int
    steps: tuple[Step, ...]
    where: str


Step = ModuleStep | WaitStep | LoopStep


@dataclass(frozen=True)
class SequenceDefinition:
    """A parsed, validated sequence (`load_sequence`)."""

    name: str
    steps: tuple[Step, ...]
    source: str
    """Where it came from (a file path or ``<dict>``)."""
    raw: dict[str, Any]
    """The parsed file, stored with the run for provenance."""


@dataclass(frozen=True)
class PlannedStep:
    """One concrete step of the unrolled sequence, with its stable id."""

    id: str
    step: ModuleStep | WaitStep


def _parse_steps(items: Any, where: str, source: str) -> tuple[Step, ...]:
    if not isinstance(items, list) or not items:
        raise SequenceError(f"{source}: {where} must be a non-empty list of steps")
    out: list[Step] = []
    for i, item in enumerate(items):
        here = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise SequenceError(f"{source}: {here} is not a table")
        kinds = [k for k in ("module", "wait_s", "repeat") if k in item]
        if len(kinds) != 1:
            raise SequenceError(
                f"{source}: {here} needs exactly one of 'module', 'wait_s' or 'repeat' "
                f"(got {kinds or 'none'})"
            )
        values = dict(item)
        if kinds[0] == "wait_s":
            seconds = values.pop("wait_s")
            if values:
                raise SequenceError(f"{source}: {here}: unknown key {sorted(values)[0]!r}")
            if (
                isinstance(seconds, bool)
                or not isinstance(seconds, int | float)
                or not (math.isfinite(seconds) and seconds >= 0)
            ):
                raise SequenceError(f"{source}: {here}: wait_s = {seconds!r} must be >= 0 s")
            out.append(WaitStep(float(seconds), here))
        elif kinds[0] == "repeat":
            repeat = values.pop("repeat")
            inner = values.pop("steps", None)
            if values:
                raise SequenceError(f"{source}: {here}: unknown key {sorted(values)[0]!r}")
            if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
                raise SequenceError(f"{source}: {here}: repeat = {repeat!r} must be >= 1")
            out.append(LoopStep(repeat, _parse_steps(inner, f"{here}.steps", source), here))
        else:
            module = values.pop("module")
            spec = MODULES.get(module) if isinstance(module, str) else None
            if spec is None:
                raise SequenceError(
                    f"{source}: {here}: unknown module {module!r} (one of "
                    f"{', '.join(sorted(MODULES))})"
                )
            cells = values.pop("cells", None)
            branches = values.pop("branches", "*")
            if not isinstance(cells, str) or not isinstance(branches, str):
                raise SequenceError(
                    f"{source}: {here}: 'cells' (ROWS,COLS, e.g. \"0,0-3\") is required and "
                    "'cells'/'branches' are strings"
                )
            try:
                settings = spec.build(values)
            except KeyError as exc:
                raise SequenceError(
                    f"{source}: {here} ({module}): unknown key {exc.args[0]}"
                ) from None
            except (TypeError, ValueError) as exc:
                raise SequenceError(f"{source}: {here} ({module}): {exc}") from exc
            out.append(ModuleStep(module, cells, branches, settings, here))
    return tuple(out)


def parse_sequence(data: Mapping[str, Any], source: str = "<dict>") -> SequenceDefinition:
    """A sequence from its parsed TOML/JSON structure (module docstring)."""
    values = dict(data)
    name = values.pop("name", Path(source).stem)
    steps = _parse_steps(values.pop("steps", None), "steps", source)
    if values:
        raise SequenceError(f"{source}: unknown top-level key {sorted(values)[0]!r}")
    definition = SequenceDefinition(str(name), steps, source, dict(data))
    count = _count(steps)
    if count > MAX_STEPS:
        raise SequenceError(f"{source}: {count} steps once unrolled, more than {MAX_STEPS}")
    return definition


def _count(steps: Sequence[Step]) -> int:
    """Steps once unrolled, without unrolling them."""
    return sum(s.repeat * _count(s.steps) if isinstance(s, LoopStep) else 1 for s in steps)


def load_sequence(path: str | Path) -> SequenceDefinition:
    """Read and validate a ``.toml`` or ``.json`` sequence file."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SequenceError(f"cannot read sequence file {p}: {exc}") from exc
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SequenceError(f"{p}: not valid {p.suffix.lstrip('.') or 'TOML'}: {exc}") from exc
    if not isinstance(data, dict):
        raise SequenceError(f"{p}: a sequence is a table with 'steps'")
    return parse_sequence(data, str(p))


def save_sequence(definition: SequenceDefinition | Mapping[str, Any], path: str | Path) -> Path:
    """Write a sequence as JSON (the GUI's save; TOML files are written by hand)."""
    raw = definition.raw if isinstance(definition, SequenceDefinition) else dict(definition)
    p = Path(path).expanduser()
    p.write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
    return p


def plan(definition: SequenceDefinition) -> list[PlannedStep]:
    """The unrolled steps, in order, with stable ids (module docstring)."""
    out: list[PlannedStep] = []

    def walk(steps: Sequence[Step], prefix: str) -> None:
        for i, step in enumerate(steps, start=1):
            sid = f"{prefix}{i}"
            if isinstance(step, LoopStep):
                for it in range(1, step.repeat + 1):
                    walk(step.steps, f"{sid}.{it}.")
            else:
                out.append(PlannedStep(sid, step))

    walk(definition.steps, "")
    return out


# ---------------------------------------------------------------------------- running
@dataclass
class StepRecord:
    """A finished step: its id, what it was, its run and status."""

    id: str
    module: str
    run_id: int | None
    status: str
    summary: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return dataclasses.asdict(self)


@dataclass
class SequenceResult:
    """What `run_sequence` did: the sequence run, its steps, skipped (resumed) ones."""

    run_id: int | None
    steps: list[StepRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    cancelled: bool = False

    def summary(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "run_id": self.run_id,
            "cancelled": self.cancelled,
            "steps_run": len(self.steps),
            "steps_skipped": len(self.skipped),
            "steps": [s.as_dict() for s in self.steps],
        }


def check_sequence(lab: Lab, definition: SequenceDefinition) -> dict[str, list[Branch]]:
    """Check every module step against the bench before anything runs; return each
    distinct (cells, branches) selection's devices. Raises `SequenceError`."""
    selections: dict[str, list[Branch]] = {}
    max_v: float | None = None
    for planned in plan(definition):
        step = planned.step
        if not isinstance(step, ModuleStep):
            continue
        key = f"{step.cells}|{step.branches}"
        try:
            if key not in selections:
                selections[key] = select_devices(lab, step.cells, step.branches)
            if max_v is None:
                max_v = require_pulses(lab, step.module)[0]
            for name, value in MODULES[step.module].amplitudes(step.settings):
                check_amplitude(f"{step.module} {name}", value, max_v, lab)
        except LabInputError as exc:
            raise SequenceError(
                f"{definition.source}: {step.where} ({step.module}): {exc}"
            ) from exc
    return selections


def _completed_steps(store: Store, run_id: int) -> dict[str, dict[str, Any]]:
    done: dict[str, dict[str, Any]] = {}
    for rid in store.lineage(run_id):
        if "steps" not in store.result_names(rid):
            continue
        for rec in store.get_value(rid, "steps"):
            if rec.get("status") == "completed" and rec["id"] not in done:
                done[rec["id"]] = rec
    return done


def run_sequence(
    lab: Lab,
    definition: SequenceDefinition,
    *,
    store: Store | None = None,
    resume: int | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopFlag | None = None,
    on_step: Callable[[StepRecord], None] | None = None,
    on_data: DataCallback | None = None,
    note: str = "",
) -> SequenceResult:
    """Run a sequence (module docstring). ``resume`` (needs ``store``) is the interrupted
    or failed sequence run to continue; ``on_step`` is called after each finished step."""
    selections = check_sequence(lab, definition)
    steps = plan(definition)
    done: dict[str, dict[str, Any]] = {}
    run_id: int | None = None
    if resume is not None:
        if store is None:
            raise SequenceError("resuming a sequence needs the store that holds it")
        parent = store.run(resume)
        if parent.kind != "sequence":
            raise StoreError(f"run {resume} is a {parent.kind} run, not a sequence")
        done = _completed_steps(store, resume)
    if store is not None:
        settings = {"name": definition.name, "source": definition.source, "file": definition.raw}
        run_id = store.start_run(
            "sequence",
            register_board(lab, store),
            settings,
            lab.describe(),
            parent_run_id=resume,
            note=note or definition.name,
        )
    result = SequenceResult(run_id)
    records: list[dict[str, Any]] = list(done.values())

    def save() -> None:
        if store is not None and run_id is not None:
            store.put_value(run_id, "steps", records)

    try:
        for i, planned in enumerate(steps):
            if planned.id in done:
                result.skipped.append(planned.id)
                continue
            if should_stop is not None and should_stop():
                result.cancelled = True
                break
            step = planned.step
            label = step.module if isinstance(step, ModuleStep) else f"wait {step.seconds:g} s"
            if progress is not None:
                progress(i, len(steps), f"step {planned.id}: {label}")
            if isinstance(step, WaitStep):
                lab.wait_s(step.seconds)
                record = StepRecord(planned.id, "wait", None, "completed", {"wait_s": step.seconds})
            else:
                devices = selections[f"{step.cells}|{step.branches}"]
                kwargs: dict[str, Any] = {
                    "store": store,
                    "should_stop": should_stop,
                    "on_data": on_data,
                    "note": f"sequence run {run_id} step {planned.id}",
                }
                module_result = MODULES[step.module].run(lab, devices, step.settings, kwargs)
                status = "interrupted" if module_result.cancelled else "completed"
                record = StepRecord(
                    planned.id, step.module, module_result.run_id, status, module_result.summary()
                )
            result.steps.append(record)
            records.append(record.as_dict())
            save()
            if on_step is not None:
                on_step(record)
            if record.status != "completed":
                result.cancelled = True
                break
        if progress is not None:
            progress(len(steps), len(steps), "cancelled" if result.cancelled else "done")
        if store is not None and run_id is not None:
            save()
            store.put_value(run_id, "summary", result.summary())
            store.finish_run(
                run_id,
                "interrupted" if result.cancelled else "completed",
                note="cancelled by the user" if result.cancelled else None,
            )
        return result
    except BaseException as exc:
        if store is not None and run_id is not None:
            close_run_after(exc, store, run_id, what="sequence", save=save)
        raise
