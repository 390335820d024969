"""Truth stays in the simulator: application code never reaches for the simulator's truth.

docs/architecture.md: nothing under ``labrss/`` or ``calibration/`` reads simulator truth
(true values, ``lab.simulator.model``, dumps); only tests and benchmarks compare with it.
import-linter cannot see attribute access, so this test reads the application's source
(AST) and fails on:

* any use of the simulator's truth accessors by name (``true_*``, ``truth``,
  ``effective_switches``, ``memristors``, ``network``, ``dump_truth``), wherever they are
  called from, including through ``getattr`` with a constant name;
* the embedded `SimulatedBench`'s board model and emulators (``lab.simulator.model``,
  ``sim.board``, ``sim.smu``; its addresses, lifecycle and clock are fine): an expression
  is a bench when it is ``<lab>.simulator``, or a name bound to one (``sim =
  lab.simulator``) or to ``SimulatedBench(...)``;
* imports of simulator modules other than ``simulator.bench``.

The one sanctioned way out is the ground-truth export, ``labrss sim --dump-truth FILE``
(``labrss/cli/commands/sim.py``). It runs in ``make test`` with the rest of the suite.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from simulator.bench import SimulatedBench
from simulator.board_model import BoardModel

ROOT = Path(__file__).resolve().parents[1]
APPLICATION = ("labrss", "calibration")


def _documented_truth(cls: type) -> set[str]:
    """Public members of ``cls`` whose docstring says they are truth."""
    names = set()
    for name, member in inspect.getmembers(cls):
        doc = (inspect.getdoc(member) or "").lower()
        if not name.startswith("_") and ("truth" in doc or "true value" in doc):
            names.add(name)
    return names


TRUTH_ATTRIBUTES = frozenset(
    {"truth", "effective_switches", "memristors", "dump_truth"} | _documented_truth(BoardModel)
)
"""Names that reach truth whatever the receiver (``true_*`` too): these, and every member of
the board model its docstring calls truth (a new accessor is covered as soon as it is
documented as such). The model's other members (``network``, ``solver_stats``, ...) are
reached only through ``bench.model``, which the bench rule refuses."""

BENCH_DENIED = frozenset({"model", "smu", "board"})
"""What application code may not touch of a `SimulatedBench`: the board model (the truth)
and the two emulators (which hold it). Its addresses, lifecycle, clock (the bench's time,
which `Lab.clock_s` and `Lab.wait_s` need), seed and the like are what a user has."""

SANCTIONED = {
    ("labrss/cli/commands/sim.py", "dump_truth"),
    ("labrss/cli/commands/sim.py", "model"),
    ("labrss/cli/commands/sim.py", "simulator.truth"),
    ("labrss/cli/commands/sim.py", "simulator.board_model"),
    ("labrss/cli/commands/sim.py", "simulator.spice"),
}
"""The simulator's own exports, `labrss sim` being the simulator's command (docs/
architecture.md): the ground truth (``--dump-truth FILE``: ``dump_truth(bench.model,
FILE)``) and the board's SPICE netlist (``--netlist FILE``, in a routing it names)."""


def _is_truth_name(name: str) -> bool:
    return name.startswith("true_") or name in TRUTH_ATTRIBUTES


def _is_lab(node: ast.expr) -> bool:
    """``lab``, ``self`` (inside `Lab`), ``session.lab``, ``self._lab``: a `Lab`, whose
    ``.simulator`` is the embedded `SimulatedBench` (a `Station`'s ``.simulator`` is only
    its settings: preset, seed)."""
    if isinstance(node, ast.Name):
        return "lab" in node.id.lower() or node.id == "self"
    return isinstance(node, ast.Attribute) and "lab" in node.attr.lower()


def _ends_in_simulator(node: ast.expr) -> bool:
    """``lab.simulator``, ``self.simulator``: `Lab`'s embedded `SimulatedBench`."""
    return isinstance(node, ast.Attribute) and node.attr == "simulator" and _is_lab(node.value)


def _is_bench_call(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name | ast.Attribute)
        and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr)
        == "SimulatedBench"
    )


def violations(source: str, path: str) -> list[str]:
    """Every place in ``source`` that reaches for the simulator's truth (module docstring)."""
    tree = ast.parse(source)
    bench_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.NamedExpr):
            value = node.value
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if value is not None and (_ends_in_simulator(value) or _is_bench_call(value)):
                bench_names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif (
            isinstance(node, ast.withitem)
            and isinstance(node.optional_vars, ast.Name)
            and (_ends_in_simulator(node.context_expr) or _is_bench_call(node.context_expr))
        ):
            bench_names.add(node.optional_vars.id)

    def is_bench(node: ast.expr) -> bool:
        return (
            _ends_in_simulator(node)
            or _is_bench_call(node)
            or (isinstance(node, ast.Name) and node.id in bench_names)
        )

    found: list[str] = []

    def flag(node: ast.AST, what: str, key: str) -> None:
        if (path, key) not in SANCTIONED:
            found.append(f"{path}:{getattr(node, 'lineno', '?')}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if _is_truth_name(node.attr):
                flag(node, f"truth accessor .{node.attr}", node.attr)
            elif is_bench(node.value) and node.attr in BENCH_DENIED:
                flag(node, f"simulated bench internals .{node.attr}", node.attr)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("getattr", "hasattr", "setattr") and len(node.args) >= 2:
                name = node.args[1]
                text = name.value if isinstance(name, ast.Constant) else None
                if isinstance(text, str) and (
                    _is_truth_name(text) or (is_bench(node.args[0]) and text in BENCH_DENIED)
                ):
                    flag(node, f"{node.func.id}(..., {text!r})", text)
            elif node.func.id == "dump_truth":
                flag(node, "dump_truth(...)", "dump_truth")
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            module = node.module
            if module.startswith("simulator") and module != "simulator.bench":
                flag(node, f"import from {module}", module)
            for alias in node.names:
                if _is_truth_name(alias.name):
                    flag(node, f"import of {alias.name}", alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("simulator") and alias.name != "simulator.bench":
                    flag(node, f"import {alias.name}", alias.name)
    return found


def application_files() -> list[Path]:
    return sorted(p for d in APPLICATION for p in (ROOT / d).rglob("*.py"))


def test_application_code_never_reads_simulator_truth() -> None:
    files = application_files()
    assert len(files) > 50  # the application is really there
    found = [
        v
        for f in files
        for v in violations(f.read_text(encoding="utf-8"), f.relative_to(ROOT).as_posix())
    ]
    assert not found, "application code reaches for the simulator's truth:\n" + "\n".join(found)


def test_every_truth_accessor_of_the_simulator_is_covered() -> None:
    # The board model's truth accessors are refused by name (their docstrings say truth).
    for name in ("true_cell_conductance_S", "truth", "effective_switches", "memristors"):
        assert _is_truth_name(name), name
    assert _documented_truth(BoardModel) <= TRUTH_ATTRIBUTES
    # The bench's truth-bearing members are what the bench rule refuses.
    bench = SimulatedBench("small", seed=0)  # built, not started: no sockets
    assert isinstance(bench.model, BoardModel)
    assert {"model", "smu", "board"} <= {n for n in vars(bench) if not n.startswith("_")}


@pytest.mark.parametrize(
    "snippet",
    [
        "g = lab.simulator.model.true_cell_conductance_S()",
        "sim = lab.simulator\nwith sim.lock:\n    x = sim.model.truth()",
        "x = self.simulator.board",
        "x = session.lab.simulator.smu",
        "with SimulatedBench('small') as b:\n    m = b.model",
        "x = getattr(lab.simulator, 'model')",
        "x = getattr(m, 'true_temperature_C')()",
        "from simulator.truth import dump_truth",
        "import simulator.board_model",
        "from simulator.board_model import BoardModel",
        "state = bench.memristors",
        "t = model.effective_switches()",
        "n = lab.simulator.model.network()",
    ],
)
def test_the_check_catches_reaching_for_truth(snippet: str) -> None:
    assert violations(snippet, "labrss/workflows/example.py")


@pytest.mark.parametrize(
    "snippet",
    [
        "now = self.simulator.clock.now_s",
        "url = lab.simulator.board_url",
        "from simulator.bench import SimulatedBench",
        "rows = [r.model for r in fits]",
        "lab.simulator.stop()",
        "sim = self.station.simulator\nb = sim.board",
        "base = default_station()\nsim = base.simulator\np = sim.board",
        "preset = lab.station.simulator.board",
    ],
)
def test_the_check_lets_application_code_be(snippet: str) -> None:
    assert not violations(snippet, "labrss/workflows/example.py")
