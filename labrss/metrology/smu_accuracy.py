"""The SMU models' published measurement accuracy, one versioned TOML table per model.

The tables live in ``labrss/metrology/accuracy_tables/*.toml`` (one file per model family,
each citing its datasheet page); adding a model is adding a file. Each range row holds what
the datasheet prints, ``+-(gain_pct % of reading + offset)``; `RangeAccuracy` turns it into
the two budget terms labrss uses: a gain error as a fraction of the reading and an offset
error as a fraction of the range, each a standard uncertainty (the bound divided by the
table's ``spec_sigmas``, docs/metrology.md).

    acc = accuracy_for_model("2450")          # by *IDN? model, or by driver name
    r = acc.current_range(10e-6)              # the 10 uA row
    r.u_gain, r.u_offset                      # 0.025 % / 3, 700 pA / 3

``python -m labrss.metrology.smu_accuracy`` prints every table.
"""

from __future__ import annotations

import math
import sys
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "TABLE_FORMAT",
    "TABLE_VERSION",
    "AccuracyTableError",
    "RangeAccuracy",
    "SMUAccuracy",
    "accuracy_for_model",
    "all_accuracy_tables",
    "load_accuracy_table",
    "si_format",
]

TABLE_FORMAT = "labrss-smu-accuracy"
TABLE_VERSION = 1

Quantity = Literal["current", "voltage"]


class AccuracyTableError(ValueError):
    """A table that cannot be used, or no table for a model; the message names both."""


@dataclass(frozen=True)
class RangeAccuracy:
    """One measurement range: the datasheet's ``+-(gain % of reading + offset)``.

    Attributes:
        quantity: ``"current"`` (A) or ``"voltage"`` (V).
        full_scale: the range (A or V).
        gain: the accuracy's reading term as a fraction (0.00025 for 0.025 %).
        offset: the accuracy's offset term (A or V).
        spec_sigmas: how many standard deviations the printed bound is.
    """

    quantity: Quantity
    full_scale: float
    gain: float
    offset: float
    spec_sigmas: float

    @property
    def offset_of_range(self) -> float:
        """The offset term as a fraction of the range (dimensionless)."""
        return self.offset / self.full_scale

    @property
    def u_gain(self) -> float:
        """Standard uncertainty of the range's gain error (fraction of reading)."""
        return self.gain / self.spec_sigmas

    @property
    def u_offset(self) -> float:
        """Standard uncertainty of the range's offset error (A or V)."""
        return self.offset / self.spec_sigmas

    @property
    def label(self) -> str:
        """A short name, e.g. ``"I 10 uA"`` or ``"V 200 mV"``."""
        unit = "A" if self.quantity == "current" else "V"
        return f"{'I' if self.quantity == 'current' else 'V'} {si_format(self.full_scale, unit)}"


def si_format(value: float, unit: str) -> str:
    """``value`` with an SI prefix: ``si_format(1e-5, "A") == "10 uA"``."""
    for scale, prefix in ((1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p")):
        if abs(value) >= scale * 0.999:
            return f"{value / scale:g} {prefix}{unit}"
    return f"{value:g} {unit}"


@dataclass(frozen=True)
class SMUAccuracy:
    """The accuracy table of one SMU model family (ranges ascending).

    Attributes:
        family: e.g. ``"Keithley 2450"``.
        driver: the labrss driver name (``[smu] driver`` in the station file).
        idn_models: the ``*IDN?`` model strings the table applies to.
        datasheet: the citation (document, page, conditions).
        spec_sigmas: standard deviations per printed bound (3: HP/Keysight convention).
        overrange: readings are valid up to this fraction of a range (1.05: 105 %).
        current: measure-current ranges; voltage: measure-voltage ranges.
        source: the file the table was read from.
    """

    family: str
    driver: str
    idn_models: tuple[str, ...]
    datasheet: str
    spec_sigmas: float
    overrange: float
    current: tuple[RangeAccuracy, ...]
    voltage: tuple[RangeAccuracy, ...]
    source: str

    def _find(self, ranges: tuple[RangeAccuracy, ...], full_scale: float) -> RangeAccuracy:
        for row in ranges:
            if math.isclose(row.full_scale, full_scale, rel_tol=1e-6):
                return row
        have = ", ".join(r.label for r in ranges)
        kind = ranges[0].quantity if ranges else "?"
        raise AccuracyTableError(
            f"{self.family} ({self.source}): no {kind} range of {full_scale:g} in the table "
            f"(has {have})"
        )

    def current_range(self, full_scale_A: float) -> RangeAccuracy:
        """The measure-current row of range ``full_scale_A`` (A); AccuracyTableError if absent."""
        return self._find(self.current, full_scale_A)

    def voltage_range(self, full_scale_V: float) -> RangeAccuracy:
        """The measure-voltage row of range ``full_scale_V`` (V)."""
        return self._find(self.voltage, full_scale_V)

    def voltage_range_for(self, volts: float) -> RangeAccuracy:
        """The range an autoranged voltage reading of ``volts`` (V) lands on: the smallest
        whose over-range allowance holds it (the top range beyond)."""
        magnitude = abs(volts)
        for row in self.voltage:
            if magnitude <= row.full_scale * self.overrange:
                return row
        return self.voltage[-1]


def _rows(
    data: dict[str, Any], key: str, quantity: Quantity, sigmas: float, where: str
) -> tuple[RangeAccuracy, ...]:
    unit = "A" if quantity == "current" else "V"
    rows = data.get(key)
    if not isinstance(rows, list) or not rows:
        raise AccuracyTableError(f"{where}: [[{key}]] rows are missing")
    out: list[RangeAccuracy] = []
    for i, row in enumerate(rows):
        try:
            fs = float(row[f"range_{unit}"])
            gain = float(row["gain_pct"]) / 100.0
            offset = float(row[f"offset_{unit}"])
        except (KeyError, TypeError, ValueError) as exc:
            raise AccuracyTableError(
                f"{where}: [[{key}]] row {i + 1} needs range_{unit}, gain_pct and "
                f"offset_{unit} numbers ({exc})"
            ) from None
        if not (fs > 0 and gain >= 0 and offset >= 0) or not all(
            math.isfinite(v) for v in (fs, gain, offset)
        ):
            raise AccuracyTableError(
                f"{where}: [[{key}]] row {i + 1}: range_{unit} = {fs!r} must be > 0, "
                f"gain_pct and offset_{unit} >= 0"
            )
        if out and fs <= out[-1].full_scale:
            raise AccuracyTableError(f"{where}: [[{key}]] ranges must ascend (row {i + 1})")
        out.append(RangeAccuracy(quantity, fs, gain, offset, sigmas))
    return tuple(out)


def load_accuracy_table(path: str | Path, text: str | None = None) -> SMUAccuracy:
    """Read one accuracy table (``text`` if given, else the file). AccuracyTableError names
    the file and the bad key."""
    where = str(path)
    try:
        data = tomllib.loads(text if text is not None else Path(path).read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise AccuracyTableError(f"{where}: {exc}") from None
    if data.get("format") != TABLE_FORMAT:
        raise AccuracyTableError(f"{where}: format must be {TABLE_FORMAT!r}")
    if data.get("version") != TABLE_VERSION:
        raise AccuracyTableError(
            f"{where}: version {data.get('version')!r}; this labrss reads version {TABLE_VERSION}"
        )
    try:
        sigmas = float(data["spec_sigmas"])
        overrange = float(data.get("overrange", 1.0))
        family, driver = str(data["family"]), str(data["driver"])
        models = tuple(str(m) for m in data["idn_models"])
        datasheet = str(data["datasheet"])
    except (KeyError, TypeError, ValueError) as exc:
        raise AccuracyTableError(
            f"{where}: needs family, driver, idn_models, datasheet, spec_sigmas ({exc})"
        ) from None
    if not (math.isfinite(sigmas) and sigmas > 0 and 1.0 <= overrange < 2.0):
        raise AccuracyTableError(f"{where}: spec_sigmas must be > 0 and overrange in [1, 2)")
    return SMUAccuracy(
        family=family,
        driver=driver,
        idn_models=models,
        datasheet=datasheet,
        spec_sigmas=sigmas,
        overrange=overrange,
        current=_rows(data, "measure_current", "current", sigmas, where),
        voltage=_rows(data, "measure_voltage", "voltage", sigmas, where),
        source=Path(where).name,
    )


@cache
def all_accuracy_tables() -> tuple[SMUAccuracy, ...]:
    """Every table shipped in ``labrss/metrology/accuracy_tables`` (sorted by file name)."""
    folder = resources.files("labrss.metrology") / "accuracy_tables"
    tables = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            tables.append(load_accuracy_table(entry.name, entry.read_text("utf-8")))
    return tuple(tables)


def accuracy_for_model(model: str, driver: str | None = None) -> SMUAccuracy:
    """The table for ``*IDN?`` model ``model`` (e.g. ``"2450"``, ``"B2902A"``);
    AccuracyTableError lists the known models when none fits (``driver`` only names the
    station's driver in the message: models of one driver family differ in accuracy)."""
    tables = all_accuracy_tables()
    for table in tables:
        if model in table.idn_models:
            return table
    known = ", ".join(f"{m} ({t.family})" for t in tables for m in t.idn_models)
    raise AccuracyTableError(
        f"no accuracy table for SMU model {model!r}"
        + (f" (driver {driver!r})" if driver else "")
        + f"; known: {known}. Add labrss/metrology/accuracy_tables/<model>.toml "
        "from its datasheet"
    )


def _main() -> int:
    for t in all_accuracy_tables():
        print(f"{t.family} [{t.source}] models {', '.join(t.idn_models)}; {t.datasheet}")
        print(f"  printed accuracy = {t.spec_sigmas:g} sigma")
        for row in (*t.current, *t.voltage):
            print(
                f"  {row.label:>10}: {row.gain * 100:.3f} % of reading + "
                f"{row.offset:.3g} ({row.offset_of_range * 1e6:.1f} ppm of range)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(_main())
