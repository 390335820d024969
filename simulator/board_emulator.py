"""The board protocol's text layer over a `BoardModel`: the reference implementation of
docs/board-protocol.md.

`BoardProtocol.handle_line` takes one command line (terminator removed; bytes decoded as
latin-1 so garbage arrives intact) and returns exactly one reply line (no LF), or None for
a blank line. It never raises for any input: every failure is an ``ERR <code>,"<message>"``
reply and an entry in the error queue, and a failed command changes nothing. The TCP
server around it is `simulator.line_server.LineServer`.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simulator.board_model import BoardModel, BoardStateError, Routing

PROTOCOL_VERSION = "1.0"
ERROR_QUEUE_SIZE = 16
OVERFLOW_TEXT = "9.9E37"
"""The SCPI overflow value, reported for an ADC reading beyond +-adc_range_A."""

_STANDARD_TEXT = {
    -101: "Invalid character",
    -102: "Syntax error",
    -108: "Parameter not allowed",
    -109: "Missing parameter",
    -113: "Undefined header",
    -200: "Execution error",
    -221: "Settings conflict",
    -222: "Data out of range",
    -223: "Too much data",
    -350: "Queue overflow",
}

_INT_RE = re.compile(r"[+-]?[0-9]+\Z")
_HEX_RE = re.compile(r"(0[xX])?([0-9a-fA-F]+)\Z")
_FLOAT_RE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")
_ALLOWED_CHARS = frozenset(chr(c) for c in range(0x20, 0x7F)) | {"\t", "\r"}
"""Printable ASCII, TAB and CR (a stray CR counts as white space); anything else is -101."""


class ProtocolError(Exception):
    """A command failed with SCPI error ``code``; ``detail`` names the header or value."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail

    @property
    def message(self) -> str:
        """``<standard text>; <detail>``, safe to put between double quotes."""
        text = _STANDARD_TEXT.get(self.code, "Error")
        detail = self.detail.replace('"', "'")
        return f"{text}; {detail}" if detail else text


def _excerpt(text: str, limit: int = 40) -> str:
    """The user's text, shortened for an error message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class _Keyword:
    short: str
    long: str

    def matches(self, token: str) -> bool:
        up = token.upper()
        return up in (self.short, self.long)


def _kw(spec: str) -> _Keyword:
    """``"SWitch"`` -> short ``SW``, long ``SWITCH`` (the upper-case prefix is the short form)."""
    short = "".join(ch for ch in spec if ch.isupper() or ch.isdigit() or ch in "*")
    return _Keyword(short, spec.upper())


Handler = Callable[[list[str]], str]


class BoardProtocol:
    """Board protocol version 1 over a `BoardModel` (docs/board-protocol.md).

    Args:
        model: the board.
        firmware: reported by ``*IDN?``.
    """

    MAX_LINE_BYTES = 4096
    """Longest accepted command line in bytes, LF included."""

    def __init__(self, model: BoardModel, firmware: str = "1.0.0") -> None:
        self.model = model
        self.firmware = firmware
        self._errors: deque[tuple[int, str]] = deque()
        geo = model.geometry
        self._hex_digits = max(1, math.ceil(geo.branches / 4))
        commands: list[tuple[str, Handler]] = [
            ("*IDN?", self._idn),
            ("*RST", self._rst),
            ("*CLS", self._cls),
            ("*OPC?", self._opc),
            ("SYSTem:ERRor?", self._syst_err),
            ("SYSTem:ERRor:COUNt?", self._syst_err_count),
            ("SYSTem:VERSion?", self._syst_version),
            ("SYSTem:TEMPerature?", self._syst_temp),
            ("BOARD:GEOMetry?", self._geometry),
            ("BOARD:INFO?", self._info),
            ("BOARD:KIND?", self._kind_q),
            ("SWitch:BRANch", self._sw_branch),
            ("SWitch:BRANch?", self._sw_branch_q),
            ("SWitch:CELL", self._sw_cell),
            ("SWitch:CELL?", self._sw_cell_q),
            ("SWitch:ROW", self._sw_row),
            ("SWitch:ROW?", self._sw_row_q),
            ("SWitch:OPEN", self._sw_open),
            ("SWitch:COUNt?", self._sw_count),
            ("ROUTe:CELL", self._rout_cell),
            ("ROUTe:MVM", self._rout_mvm),
            ("ROUTe:OPEN", self._rout_open),
            ("ROUTe?", self._rout_q),
            ("DAC:VOLTage", self._dac_volt),
            ("DAC:VOLTage?", self._dac_volt_q),
            ("DAC:ROW", self._dac_row),
            ("DAC:ROW?", self._dac_row_q),
            ("DAC:ZERO", self._dac_zero),
            ("ADC:READ?", self._adc_read),
            ("ADC:READ:ALL?", self._adc_read_all),
            ("PULSe", self._pulse),
            ("PULSe:LIMits?", self._pulse_limits_q),
            ("PULSe:COUNt?", self._pulse_count_q),
            ("SAFE", self._safe),
            ("SAFE?", self._safe_q),
        ]
        self._commands: list[tuple[tuple[_Keyword, ...], bool, Handler]] = []
        for spec, handler in commands:
            query = spec.endswith("?")
            path = tuple(_kw(part) for part in spec.rstrip("?").split(":"))
            self._commands.append((path, query, handler))

    # ------------------------------------------------------------------ entry points
    def handle_line(self, line: str) -> str | None:
        """Execute one command line; return its reply line (no LF), or None if blank."""
        n_bytes = len(line.encode("latin-1", errors="replace")) + 1  # with its LF
        if line.endswith("\r"):
            line = line[:-1]
        try:
            if n_bytes > self.MAX_LINE_BYTES:
                raise ProtocolError(-223, f"line of {n_bytes} bytes exceeds {self.MAX_LINE_BYTES}")
            for pos, ch in enumerate(line):
                if ch not in _ALLOWED_CHARS:
                    raise ProtocolError(
                        -101, f"byte {ord(ch):#04x} at column {pos + 1} is not printable ASCII"
                    )
            if not line.strip():
                return None
            return self._execute(line.strip())
        except ProtocolError as err:
            return self._fail(err)
        except (ValueError, BoardStateError) as exc:  # the model refused: report, never raise
            return self._fail(ProtocolError(-200, str(exc)))

    def line_too_long(self, n_bytes: int) -> str | None:
        """A line of ``n_bytes`` bytes was discarded up to its LF by the server: -223."""
        return self._fail(
            ProtocolError(-223, f"line of {n_bytes} bytes exceeds {self.MAX_LINE_BYTES}")
        )

    def on_disconnect(self) -> None:
        """Link loss: the board enters the safe state (the error queue is kept)."""
        self.model.safe()

    @property
    def error_queue(self) -> list[tuple[int, str]]:
        """The queued errors, oldest first (code, message)."""
        return list(self._errors)

    # ------------------------------------------------------------------ machinery
    def _fail(self, err: ProtocolError) -> str:
        message = err.message
        if len(self._errors) >= ERROR_QUEUE_SIZE:
            self._errors[-1] = (-350, _STANDARD_TEXT[-350])
        else:
            self._errors.append((err.code, message))
        return f'ERR {err.code},"{message}"'

    def _execute(self, text: str) -> str:
        if ";" in text:
            raise ProtocolError(-102, "one command per line: ';' chaining is not supported")
        parts = text.split(None, 1)
        header = parts[0]
        param_text = parts[1].strip() if len(parts) > 1 else ""
        handler = self._lookup(header)
        if param_text:
            params = [p.strip() for p in param_text.split(",")]
            if any(not p for p in params):
                raise ProtocolError(-102, f"empty parameter in {_excerpt(param_text)!r}")
        else:
            params = []
        return handler(params)

    def _lookup(self, header: str) -> Handler:
        query = header.endswith("?")
        body = header[:-1] if query else header
        if body.startswith(":"):
            body = body[1:]
        tokens = body.split(":")
        for path, is_query, handler in self._commands:
            if is_query != query or len(path) != len(tokens):
                continue
            if all(kw.matches(tok) for kw, tok in zip(path, tokens, strict=True)):
                return handler
        raise ProtocolError(-113, f"unknown command {_excerpt(header)!r}")

    @staticmethod
    def _count(params: list[str], n: int, what: str) -> None:
        if len(params) < n:
            raise ProtocolError(-109, f"{what} needs {n} parameter(s), got {len(params)}")
        if len(params) > n:
            raise ProtocolError(-108, f"{what} takes {n} parameter(s), got {len(params)}")

    @staticmethod
    def _int(text: str, what: str) -> int:
        if not _INT_RE.match(text):
            raise ProtocolError(-102, f"{what} {_excerpt(text)!r} is not a decimal integer")
        return int(text)

    def _row(self, text: str) -> int:
        r = self._int(text, "row")
        if not 0 <= r < self.model.geometry.rows:
            raise ProtocolError(-222, f"row {r} not in 0..{self.model.geometry.rows - 1}")
        return r

    def _col(self, text: str) -> int:
        c = self._int(text, "column")
        if not 0 <= c < self.model.geometry.cols:
            raise ProtocolError(-222, f"column {c} not in 0..{self.model.geometry.cols - 1}")
        return c

    def _branch(self, text: str) -> int:
        k = self._int(text, "branch")
        if not 0 <= k < self.model.geometry.branches:
            raise ProtocolError(-222, f"branch {k} not in 0..{self.model.geometry.branches - 1}")
        return k

    def _mask(self, text: str) -> int:
        m = _HEX_RE.match(text)
        if not m:
            raise ProtocolError(-102, f"mask {_excerpt(text)!r} is not hexadecimal")
        value = int(m.group(2), 16)
        k = self.model.geometry.branches
        if value >> k:
            raise ProtocolError(
                -222, f"mask {_excerpt(text)} has bits beyond branch {k - 1} (K = {k})"
            )
        return value

    def _volts(self, text: str) -> float:
        if not _FLOAT_RE.match(text):
            raise ProtocolError(-102, f"voltage {_excerpt(text)!r} is not a decimal number")
        v = float(text)
        limit = self.model.config.dac.range_V
        if not (math.isfinite(v) and abs(v) <= limit):
            raise ProtocolError(-222, f"voltage {_excerpt(text)} V beyond +-{limit:g} V")
        return v

    def _format_mask(self, mask: int) -> str:
        return f"{mask:0{self._hex_digits}X}"

    # ------------------------------------------------------------------ identity and status
    def _idn(self, params: list[str]) -> str:
        self._count(params, 0, "*IDN?")
        g = self.model.geometry
        return f"LABRSS,XBAR-{g.rows}x{g.cols}x{g.branches},{self.model.serial},{self.firmware}"

    def _rst(self, params: list[str]) -> str:
        self._count(params, 0, "*RST")
        self.model.safe()
        return "OK"

    def _cls(self, params: list[str]) -> str:
        self._count(params, 0, "*CLS")
        self._errors.clear()
        return "OK"

    def _opc(self, params: list[str]) -> str:
        self._count(params, 0, "*OPC?")
        return "1"

    def _syst_err(self, params: list[str]) -> str:
        self._count(params, 0, "SYSTem:ERRor?")
        if not self._errors:
            return '0,"No error"'
        code, message = self._errors.popleft()
        return f'{code},"{message}"'

    def _syst_err_count(self, params: list[str]) -> str:
        self._count(params, 0, "SYSTem:ERRor:COUNt?")
        return str(len(self._errors))

    def _syst_version(self, params: list[str]) -> str:
        self._count(params, 0, "SYSTem:VERSion?")
        return PROTOCOL_VERSION

    def _syst_temp(self, params: list[str]) -> str:
        self._count(params, 0, "SYSTem:TEMPerature?")
        return f"{self.model.temperature_C():.2f}"

    def _geometry(self, params: list[str]) -> str:
        self._count(params, 0, "BOARD:GEOMetry?")
        g = self.model.geometry
        return f"{g.rows},{g.cols},{g.branches}"

    def _info(self, params: list[str]) -> str:
        self._count(params, 0, "BOARD:INFO?")
        items = []
        for key, value in self.model.info().items():
            text = f"{value:.9g}" if isinstance(value, float) else str(value)
            items.append(f"{key}={text}")
        return ";".join(items)

    # ------------------------------------------------------------------ switches
    def _sw_branch(self, params: list[str]) -> str:
        self._count(params, 4, "SWitch:BRANch")
        r, c, k = self._row(params[0]), self._col(params[1]), self._branch(params[2])
        state = self._int(params[3], "switch state")
        if state not in (0, 1):
            raise ProtocolError(-222, f"switch state {state} is not 0 or 1")
        self.model.set_branch(r, c, k, bool(state))
        return "OK"

    def _sw_branch_q(self, params: list[str]) -> str:
        self._count(params, 3, "SWitch:BRANch?")
        r, c, k = self._row(params[0]), self._col(params[1]), self._branch(params[2])
        return "1" if (self.model.cell_mask(r, c) >> k) & 1 else "0"

    def _sw_cell(self, params: list[str]) -> str:
        self._count(params, 3, "SWitch:CELL")
        r, c, mask = self._row(params[0]), self._col(params[1]), self._mask(params[2])
        self.model.set_cell_mask(r, c, mask)
        return "OK"

    def _sw_cell_q(self, params: list[str]) -> str:
        self._count(params, 2, "SWitch:CELL?")
        r, c = self._row(params[0]), self._col(params[1])
        return self._format_mask(self.model.cell_mask(r, c))

    def _sw_row(self, params: list[str]) -> str:
        self._count(params, 1 + self.model.geometry.cols, "SWitch:ROW")
        r = self._row(params[0])
        masks = [self._mask(p) for p in params[1:]]
        self.model.set_row_masks(r, masks)
        return "OK"

    def _sw_row_q(self, params: list[str]) -> str:
        self._count(params, 1, "SWitch:ROW?")
        r = self._row(params[0])
        cols = self.model.geometry.cols
        return ",".join(self._format_mask(self.model.cell_mask(r, c)) for c in range(cols))

    def _sw_open(self, params: list[str]) -> str:
        self._count(params, 0, "SWitch:OPEN")
        self.model.open_all_switches()
        return "OK"

    def _sw_count(self, params: list[str]) -> str:
        self._count(params, 0, "SWitch:COUNt?")
        return str(int(self.model.switches.sum()))

    # ------------------------------------------------------------------ routing
    def _rout_cell(self, params: list[str]) -> str:
        if len(params) < 2:
            raise ProtocolError(-109, f"ROUTe:CELL needs 2 or 3 parameters, got {len(params)}")
        if len(params) > 3:
            raise ProtocolError(-108, f"ROUTe:CELL takes 2 or 3 parameters, got {len(params)}")
        r, c = self._row(params[0]), self._col(params[1])
        wires = params[2].upper() if len(params) == 3 else "2W"
        if wires not in ("2W", "4W"):
            raise ProtocolError(-102, f"sense mode {_excerpt(params[2])!r} is not 2W or 4W")
        self.model.set_routing(Routing("cell", r, c, four_wire=wires == "4W"))
        return "OK"

    def _rout_mvm(self, params: list[str]) -> str:
        if not params:
            raise ProtocolError(-109, "ROUTe:MVM needs ADC or SMU,<column>")
        target = params[0].upper()
        if target == "ADC":
            if len(params) > 1:
                raise ProtocolError(-108, "ROUTe:MVM ADC takes no further parameter")
            self.model.set_routing(Routing("mvm_adc"))
            return "OK"
        if target == "SMU":
            if len(params) < 2:
                raise ProtocolError(-109, "ROUTe:MVM SMU needs a column")
            if len(params) > 2:
                raise ProtocolError(-108, f"ROUTe:MVM SMU takes 1 column, got {len(params) - 1}")
            self.model.set_routing(Routing("mvm_smu", col=self._col(params[1])))
            return "OK"
        raise ProtocolError(-102, f"MVM target {_excerpt(params[0])!r} is not ADC or SMU")

    def _rout_open(self, params: list[str]) -> str:
        self._count(params, 0, "ROUTe:OPEN")
        self.model.set_routing(Routing("open"))
        return "OK"

    def _rout_q(self, params: list[str]) -> str:
        self._count(params, 0, "ROUTe?")
        r = self.model.routing
        if r.mode == "cell":
            return f"CELL {r.row},{r.col},{'4W' if r.four_wire else '2W'}"
        if r.mode == "mvm_adc":
            return "MVM ADC"
        if r.mode == "mvm_smu":
            return f"MVM SMU,{r.col}"
        return "OPEN"

    # ------------------------------------------------------------------ DACs
    def _dac_volt(self, params: list[str]) -> str:
        self._count(params, 2, "DAC:VOLTage")
        r, v = self._row(params[0]), self._volts(params[1])
        self.model.set_dac(r, v)
        return "OK"

    def _dac_volt_q(self, params: list[str]) -> str:
        self._count(params, 1, "DAC:VOLTage?")
        r = self._row(params[0])
        return f"{self.model.dac_voltages_V[r]:.9g}"

    def _dac_row(self, params: list[str]) -> str:
        self._count(params, self.model.geometry.rows, "DAC:ROW")
        volts = [self._volts(p) for p in params]
        self.model.set_dac_all(volts)
        return "OK"

    def _dac_row_q(self, params: list[str]) -> str:
        self._count(params, 0, "DAC:ROW?")
        return ",".join(f"{v:.9g}" for v in self.model.dac_voltages_V)

    def _dac_zero(self, params: list[str]) -> str:
        self._count(params, 0, "DAC:ZERO")
        self.model.zero_dacs()
        return "OK"

    # ------------------------------------------------------------------ ADCs
    @staticmethod
    def _format_current(i_A: float) -> str:
        if math.isinf(i_A):
            return OVERFLOW_TEXT if i_A > 0 else "-" + OVERFLOW_TEXT
        return f"{i_A + 0.0:.9g}"  # + 0.0 turns -0.0 into 0

    def _adc_read(self, params: list[str]) -> str:
        self._count(params, 1, "ADC:READ?")
        c = self._col(params[0])
        routing = self.model.routing
        if routing.mode not in ("mvm_adc", "mvm_smu") or routing.col == c:
            raise ProtocolError(-221, f"column {c} is not routed to its ADC ({routing.describe()})")
        return self._format_current(float(self.model.adc_read()[c]))

    def _adc_read_all(self, params: list[str]) -> str:
        self._count(params, 0, "ADC:READ:ALL?")
        routing = self.model.routing
        if routing.mode != "mvm_adc":
            raise ProtocolError(
                -221, f"not every column is routed to its ADC ({routing.describe()})"
            )
        values = self.model.adc_read()
        return ",".join(self._format_current(float(v)) for v in np.asarray(values))

    # ------------------------------------------------------------------ memristors
    def _kind_q(self, params: list[str]) -> str:
        self._count(params, 2, "BOARD:KIND?")
        r, c = self._row(params[0]), self._col(params[1])
        return "MEM" if self.model.cell_kind(r, c) == "memristor" else "RES"

    def _number(self, text: str, what: str) -> float:
        if not _FLOAT_RE.match(text):
            raise ProtocolError(-102, f"{what} {_excerpt(text)!r} is not a decimal number")
        value = float(text)
        if not math.isfinite(value):
            raise ProtocolError(-222, f"{what} {_excerpt(text)} is not finite")
        return value

    def _memristor_branch(self, r: int, c: int, k: int) -> None:
        if self.model.cell_kind(r, c) != "memristor":
            raise ProtocolError(-221, f"branch ({r},{c},{k}) is a resistor")

    def _pulse(self, params: list[str]) -> str:
        if len(params) < 5:
            raise ProtocolError(-109, f"PULSe needs 5 or 6 parameters, got {len(params)}")
        if len(params) > 6:
            raise ProtocolError(-108, f"PULSe takes 5 or 6 parameters, got {len(params)}")
        lim = self.model.config.pulse
        r, c, k = self._row(params[0]), self._col(params[1]), self._branch(params[2])
        amp = self._number(params[3], "pulse amplitude")
        if abs(amp) > lim.max_amplitude_V:
            raise ProtocolError(
                -222, f"pulse amplitude {_excerpt(params[3])} V beyond +-{lim.max_amplitude_V:g} V"
            )
        width = self._number(params[4], "pulse width")
        if not lim.min_width_s <= width <= lim.max_width_s:
            raise ProtocolError(
                -222,
                f"pulse width {_excerpt(params[4])} s not in "
                f"{lim.min_width_s:g}..{lim.max_width_s:g} s",
            )
        count = 1
        if len(params) == 6:
            count = self._int(params[5], "pulse count")
            if not 1 <= count <= lim.max_count:
                raise ProtocolError(-222, f"pulse count {count} not in 1..{lim.max_count}")
        self._memristor_branch(r, c, k)
        self.model.pulse(r, c, k, amplitude_V=amp, width_s=width, count=count)
        return "OK"

    def _pulse_limits_q(self, params: list[str]) -> str:
        self._count(params, 0, "PULSe:LIMits?")
        lim = self.model.config.pulse
        return (
            f"{lim.max_amplitude_V:.9g},{lim.min_width_s:.9g},{lim.max_width_s:.9g},{lim.max_count}"
        )

    def _pulse_count_q(self, params: list[str]) -> str:
        self._count(params, 3, "PULSe:COUNt?")
        r, c, k = self._row(params[0]), self._col(params[1]), self._branch(params[2])
        self._memristor_branch(r, c, k)
        return str(self.model.pulse_count(r, c, k))

    # ------------------------------------------------------------------ safe state
    def _safe(self, params: list[str]) -> str:
        self._count(params, 0, "SAFE")
        self.model.safe()
        return "OK"

    def _safe_q(self, params: list[str]) -> str:
        self._count(params, 0, "SAFE?")
        return "1" if self.model.is_safe() else "0"
