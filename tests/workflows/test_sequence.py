"""Sequences: parsing and validation, the unrolled plan, running, cancel and resume
through the store, and `labrss sequence`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from labrss.cli.main import main
from labrss.lab import Lab
from labrss.station import parse_station
from labrss.store import Store, StoreError
from labrss.workflows.memristor_retention import RetentionSettings
from labrss.workflows.sequence import (
    SequenceError,
    check_sequence,
    load_sequence,
    parse_sequence,
    plan,
    run_sequence,
    save_sequence,
)

TOML = """
name = "demo"

[[steps]]
module = "retention"
cells = "0,0"
branches = "0-1"
interval_s = 60
duration_s = 120

[[steps]]
repeat = 2
  [[steps.steps]]
  wait_s = 10
  [[steps.steps]]
  module = "seek"
  cells = "0,1"
  branches = "0"
  target_S = 40e-6
  tolerance = 0.05
"""


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab(parse_station({"simulator": {"board": "memristor", "seed": 1}})) as opened:
        yield opened


def _write(tmp_path: Path, text: str, name: str = "seq.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_parse_plan_and_json_equivalent(tmp_path: Path) -> None:
    seq = load_sequence(_write(tmp_path, TOML))
    assert seq.name == "demo"
    ids = [(p.id, type(p.step).__name__) for p in plan(seq)]
    assert ids == [
        ("1", "ModuleStep"),
        ("2.1.1", "WaitStep"),
        ("2.1.2", "ModuleStep"),
        ("2.2.1", "WaitStep"),
        ("2.2.2", "ModuleStep"),
    ]
    first = plan(seq)[0].step
    assert first.settings == RetentionSettings(interval_s=60, duration_s=120)  # type: ignore[union-attr]
    saved = save_sequence(seq, tmp_path / "seq.json")
    again = load_sequence(saved)
    assert [p.id for p in plan(again)] == [p.id for p in plan(seq)]
    assert again.steps == seq.steps


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([{"module": "melt", "cells": "0,0"}], r"steps\[0\]: unknown module 'melt'"),
        (
            [{"module": "iv", "cells": "0,0", "cycels": 2}],
            r"steps\[0\] \(iv\): unknown key 'cycels'",
        ),
        ([{"module": "iv", "cells": "0,0", "cycles": 0}], r"steps\[0\] \(iv\): I-V cycles"),
        ([{"module": "iv"}], r"steps\[0\]: 'cells' .* is required"),
        ([{"module": "seek", "cells": "0,0"}], "'target_S' is required for seek"),
        ([{"repeat": 2, "steps": []}], r"steps\[0\]\.steps must be a non-empty list"),
        ([{"repeat": 0, "steps": [{"wait_s": 1}]}], "repeat = 0 must be >= 1"),
        ([{"wait_s": -1}], r"wait_s = -1 must be >= 0 s"),
        ([{"wait_s": 1, "module": "iv"}], "exactly one of"),
        ([{"repeat": 1000, "steps": [{"repeat": 1000, "steps": [{"wait_s": 1}]}]}], "more than"),
    ],
)
def test_bad_files_are_refused_naming_step_and_key(
    steps: list[dict[str, object]], message: str
) -> None:
    with pytest.raises(SequenceError, match=message):
        parse_sequence({"steps": steps}, "exp.toml")


def test_bench_checks_before_anything_runs(lab: Lab) -> None:
    seq = parse_sequence(
        {"steps": [{"wait_s": 5}, {"module": "iv", "cells": "0,0", "v_set_max_V": 2.5}]}
    )
    with pytest.raises(SequenceError, match=r"steps\[1\] \(iv\): .*exceeds the bench's pulse"):
        run_sequence(lab, seq)
    seq = parse_sequence({"steps": [{"module": "iv", "cells": "0,12"}]})
    with pytest.raises(SequenceError, match="column 12 is not on the board"):
        check_sequence(lab, seq)
    assert lab.pulses_applied == 0 and lab.readings_taken == 0


def test_run_cancel_and_resume(lab: Lab, tmp_path: Path) -> None:
    seq = load_sequence(_write(tmp_path, TOML))
    seen: list[str] = []

    def stop_at_second_seek() -> bool:
        return seen.count("seek") >= 1 and len(seen) >= 3

    with Store(tmp_path / "lab.db") as store:
        first = run_sequence(
            lab,
            seq,
            store=store,
            should_stop=stop_at_second_seek,
            on_step=lambda rec: seen.append(rec.module),
        )
        assert first.cancelled and [s.id for s in first.steps] == ["1", "2.1.1", "2.1.2"]
        run = store.run(first.run_id or -1)
        assert run.status == "interrupted" and run.kind == "sequence"
        children = [store.run(s.run_id) for s in first.steps if s.run_id is not None]
        assert [c.kind for c in children] == ["memristor_retention", "memristor_seek"]
        assert all(c.note.startswith(f"sequence run {first.run_id} step") for c in children)
        clock = lab.clock_s()
        second = run_sequence(lab, seq, store=store, resume=first.run_id)
        assert second.skipped == ["1", "2.1.1", "2.1.2"]
        assert [s.id for s in second.steps] == ["2.2.1", "2.2.2"]
        assert lab.clock_s() - clock >= 10.0  # the remaining wait ran
        assert store.run(second.run_id or -1).parent_run_id == first.run_id
        assert store.run(second.run_id or -1).status == "completed"
        steps = store.get_value(second.run_id or -1, "steps")
        assert [s["id"] for s in steps] == ["1", "2.1.1", "2.1.2", "2.2.1", "2.2.2"]
        with pytest.raises(StoreError, match="is completed: only interrupted or failed"):
            run_sequence(lab, seq, store=store, resume=second.run_id)


def test_sequence_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(
        tmp_path,
        json.dumps(
            {
                "steps": [
                    {"wait_s": 1},
                    {
                        "module": "seek",
                        "cells": "0,0",
                        "branches": "1",
                        "target_S": 3e-5,
                        "tolerance": 0.05,
                    },
                ]
            }
        ),
        "s.json",
    )
    assert main(["sequence", "check", str(path), "--json"]) == 0
    checked = json.loads(capsys.readouterr().out)
    assert [s["module"] for s in checked["steps"]] == ["wait", "seek"]
    db = str(tmp_path / "lab.db")
    assert main(["sequence", "run", str(path), "--db", db, "--json"]) == 0
    ran = json.loads(capsys.readouterr().out)
    assert ran["steps_run"] == 2 and ran["steps"][1]["status"] == "completed"
    assert main(["sequence", "run", str(tmp_path / "missing.toml"), "--no-store"]) == 2
    assert "cannot read sequence file" in capsys.readouterr().err
