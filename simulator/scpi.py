"""A generic, table-driven SCPI parser and command tree, shared by the SMU emulators.

What it implements (IEEE 488.2 / SCPI-1999 as real instruments apply it):

* headers with short and long forms (the upper-case part of ``SOURce`` is the short form),
  matched case-insensitively; only the exact short or long form is accepted;
* optional nodes in brackets (``[:SENSe[1]]:CURRent[:DC]:NPLCycles``) and numeric suffixes
  (``SOURce#`` captures a channel number, ``SOURce[1]`` accepts only an optional ``1``);
* ``;``-compound program messages with the SCPI path rule: after ``;`` a header without a
  leading ``:`` is relative to the node of the previous command; common commands (``*...``)
  do not change the path;
* parameter types (`Param` subclasses): NRf numbers with SI multipliers and units (``10mA``,
  ``1.5 kOHM``), MIN / MAX / DEF / UP / DOWN, booleans, character data with short/long
  forms, quoted strings, channel lists ``(@1,2)`` / ``(@1:2)``;
* an error queue with the standard error numbers, and the standard event / status byte
  registers behind ``*ESR?``, ``*STB?``, ``*ESE``, ``*SRE``, ``*OPC``, ``*CLS``.

The emulators (`simulator.keithley2450_emulator`, `simulator.keysight_b2900_emulator`)
subclass `ScpiDevice` and register their commands with `ScpiDevice.add`. Parsing a header
is a dictionary walk over the expanded forms, O(number of nodes) per message unit.

Error policy: a command error (-1xx: syntax, header, parameter form) discards the rest of
the line, as the IEEE 488.2 parser does; an execution error (-2xx: a value out of range, a
settings conflict) aborts only its own message unit and the next units still run. Replies
of the queries that did run are joined with ``;``.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# ---------------------------------------------------------------------------- errors

ERROR_MESSAGES: dict[int, str] = {
    0: "No error",
    -100: "Command error",
    -101: "Invalid character",
    -102: "Syntax error",
    -103: "Invalid separator",
    -104: "Data type error",
    -108: "Parameter not allowed",
    -109: "Missing parameter",
    -113: "Undefined header",
    -114: "Header suffix out of range",
    -120: "Numeric data error",
    -131: "Invalid suffix",
    -150: "String data error",
    -200: "Execution error",
    -221: "Settings conflict",
    -222: "Data out of range",
    -224: "Illegal parameter value",
    -350: "Queue overflow",
    -363: "Input buffer overrun",
    -410: "Query INTERRUPTED",
    -420: "Query UNTERMINATED",
}
"""Standard SCPI error numbers and their standard messages (SCPI-1999 vol. 2, ch. 21)."""


class ScpiError(Exception):
    """A SCPI error raised by the parser or a command handler; it goes to the error queue.

    ``detail`` is device-dependent information appended to the standard message after a
    ``;`` (SCPI allows this); it names the command and the offending value.
    """

    def __init__(self, code: int, detail: str = "", message: str | None = None) -> None:
        self.code = code
        self.message = message if message is not None else ERROR_MESSAGES.get(code, "Error")
        self.detail = detail
        super().__init__(f"{code},{self.message}" + (f"; {detail}" if detail else ""))

    @property
    def is_command_error(self) -> bool:
        """-100..-199: the message could not be parsed; the rest of the line is discarded."""
        return -199 <= self.code <= -100


# Standard Event Status Register bits (IEEE 488.2 11.5.1).
ESR_OPC = 1
ESR_QYE = 4
ESR_DDE = 8
ESR_EXE = 16
ESR_CME = 32
ESR_PON = 128
# Status byte bits.
STB_EAV = 4  # error/event queue not empty
STB_MAV = 16  # message available (never set: replies are returned at once)
STB_ESB = 32  # event summary
STB_MSS = 64  # master summary


def _esr_bit_for(code: int) -> int:
    if -199 <= code <= -100:
        return ESR_CME
    if -299 <= code <= -200:
        return ESR_EXE
    if -399 <= code <= -300 or code > 0:
        return ESR_DDE
    if -499 <= code <= -400:
        return ESR_QYE
    return 0


class ErrorQueue:
    """The instrument's FIFO error queue with SCPI overflow semantics.

    When the queue is full, the newest entry is replaced by -350 "Queue overflow" and
    further errors are lost until entries are read (SCPI-1999 vol. 2, 21.8.3).
    """

    def __init__(self, capacity: int = 10) -> None:
        if capacity < 2:
            raise ValueError(f"error queue capacity must be >= 2, got {capacity}")
        self.capacity = capacity
        self._entries: deque[tuple[int, str]] = deque()

    def push(self, code: int, message: str) -> None:
        """Queue one error (code, full message text); full: the newest becomes -350."""
        if len(self._entries) < self.capacity:
            self._entries.append((code, message))
        elif self._entries[-1][0] != -350:
            self._entries[-1] = (-350, ERROR_MESSAGES[-350])

    def pop(self) -> tuple[int, str]:
        """Oldest error, removed; ``(0, "No error")`` when empty."""
        if not self._entries:
            return 0, ERROR_MESSAGES[0]
        return self._entries.popleft()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Empty the queue (``*CLS``)."""
        self._entries.clear()

    def codes(self) -> list[int]:
        """The queued codes, oldest first, without removing them (for tests and logs)."""
        return [code for code, _ in self._entries]


def format_error(code: int, message: str) -> str:
    """The ``:SYST:ERR?`` reply: ``<code>,"<message>"`` with inner quotes made single."""
    return f'{code},"{message.replace(chr(34), chr(39))}"'


# ---------------------------------------------------------------------------- headers


@dataclass(frozen=True)
class _Node:
    short: str  # upper case
    long: str  # upper case
    optional: bool
    suffix_max: int  # 0: no suffix allowed; n >= 1: suffix 1..n allowed
    capture: bool  # whether the suffix is passed to the handler


_NODE_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*?)(#\d+|\[\d+\])?$")


def _parse_node(token: str, optional: bool) -> _Node:
    match = _NODE_RE.match(token)
    if not match:
        raise ValueError(f"bad SCPI pattern node {token!r}")
    name, suffix = match.group(1), match.group(2)
    short = "".join(ch for ch in name if ch.isupper() or ch.isdigit() or ch == "_")
    if not short:
        short = name.upper()
    suffix_max = 0
    capture = False
    if suffix:
        suffix_max = int(suffix[1:-1]) if suffix.startswith("[") else int(suffix[1:])
        capture = suffix.startswith("#")
    return _Node(short.upper(), name.upper(), optional, suffix_max, capture)


def _parse_pattern(pattern: str) -> list[_Node]:
    """Split ``[:SENSe[1]]:CURRent[:DC]:NPLCycles`` into nodes (brackets: optional nodes)."""
    nodes: list[_Node] = []
    i = 0
    text = pattern.strip()
    while i < len(text):
        if text.startswith("[:", i):
            depth = 0
            j = i
            while j < len(text):
                if text[j] == "[":
                    depth += 1
                elif text[j] == "]":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            inner = text[i + 2 : j]
            if ":" in inner.replace("[:", ""):
                raise ValueError(f"optional group with several nodes in {pattern!r}")
            nodes.append(_parse_node(inner, optional=True))
            i = j + 1
        elif text[i] == ":":
            j = i + 1
            depth = 0
            while (
                j < len(text)
                and not (text[j] in ":" and depth == 0)
                and not (text.startswith("[:", j))
            ):
                if text[j] == "[":
                    depth += 1
                elif text[j] == "]":
                    depth -= 1
                j += 1
            nodes.append(_parse_node(text[i + 1 : j], optional=False))
            i = j
        else:
            raise ValueError(f"SCPI pattern must start with ':' or '[:': {pattern!r}")
    return nodes


def _expansions(nodes: list[_Node]) -> list[list[_Node]]:
    """Every header form: each optional node present or absent."""
    forms: list[list[_Node]] = [[]]
    for node in nodes:
        if node.optional:
            forms = [*[[*f, node] for f in forms], *forms]
        else:
            forms = [[*f, node] for f in forms]
    return [f for f in forms if f]


def _split_token(token: str) -> tuple[str, int | None]:
    """``SOUR2`` -> ("SOUR", 2); ``VOLT`` -> ("VOLT", None)."""
    match = re.match(r"^([A-Za-z_][A-Za-z0-9_]*?)(\d*)$", token)
    if not match:
        raise ScpiError(-113, f"header mnemonic {token!r}")
    digits = match.group(2)
    return match.group(1).upper(), (int(digits) if digits else None)


# ---------------------------------------------------------------------------- parameters


class Special(str):
    """A special numeric value given by name: MIN, MAX, DEF, UP or DOWN."""


_MULTIPLIERS: dict[str, float] = {
    "EX": 1e18,
    "PE": 1e15,
    "T": 1e12,
    "G": 1e9,
    "MA": 1e6,
    "K": 1e3,
    "M": 1e-3,
    "U": 1e-6,
    "N": 1e-9,
    "P": 1e-12,
    "F": 1e-15,
    "A": 1e-18,
}
_NUMBER_RE = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)$")
_NONDECIMAL_RE = re.compile(r"^#([HhQqBb])([0-9A-Fa-f]+)$")
_SPECIALS = {
    "MIN": "MIN",
    "MINIMUM": "MIN",
    "MAX": "MAX",
    "MAXIMUM": "MAX",
    "DEF": "DEF",
    "DEFAULT": "DEF",
    "UP": "UP",
    "DOWN": "DOWN",
}


def parse_number(text: str, unit: str = "", *, what: str = "parameter") -> float:
    """Parse NRf with an optional suffix: a multiplier and/or ``unit`` (e.g. ``10mA``).

    IEEE 488.2 suffix rules: ``M`` is milli and ``MA`` mega, except that ``MOHM`` and
    ``MHZ`` are mega (7.7.3.4). Raises ScpiError -104 (not a number), -131 (bad suffix).
    """
    text = text.strip()
    match = _NONDECIMAL_RE.match(text)
    if match:
        base = {"H": 16, "Q": 8, "B": 2}[match.group(1).upper()]
        try:
            return float(int(match.group(2), base))
        except ValueError as exc:
            raise ScpiError(-120, f"{what}: bad non-decimal number {text!r}") from exc
    match = _NUMBER_RE.match(text)
    if not match:
        raise ScpiError(-104, f"{what}: expected a number, got {text!r}")
    value = float(match.group(1))
    suffix = match.group(2).upper()
    if not suffix:
        return value
    unit_u = unit.upper()
    if unit_u and suffix in {"MOHM", "MHZ"} and suffix.endswith(unit_u):
        return value * 1e6
    if unit_u and suffix.endswith(unit_u):
        suffix = suffix[: -len(unit_u)]
        if not suffix:
            return value
    if suffix in _MULTIPLIERS:
        return value * _MULTIPLIERS[suffix]
    raise ScpiError(-131, f"{what}: invalid suffix {match.group(2)!r} (unit {unit or 'none'})")


class Param:
    """A parameter type: converts one raw token (already split at commas)."""

    optional: bool = False
    name: str = "parameter"

    def convert(self, raw: str) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass
class Num(Param):
    """NRf number in ``[lo, hi]`` (SI units ``unit``), with MIN/MAX/DEF and optional UP/DOWN.

    MIN, MAX and DEF resolve to ``lo``, ``hi`` and ``default``; UP/DOWN (when allowed) come
    back as `Special` for the handler to step (ranges). Out of range: -222.
    """

    lo: float = -math.inf
    hi: float = math.inf
    default: float | None = None
    unit: str = ""
    name: str = "value"
    updown: bool = False
    optional: bool = False
    integer: bool = False

    def convert(self, raw: str) -> Any:
        word = raw.strip().upper()
        if word in _SPECIALS:
            kind = _SPECIALS[word]
            if kind == "MIN":
                return self._finish(self.lo)
            if kind == "MAX":
                return self._finish(self.hi)
            if kind == "DEF":
                if self.default is None:
                    raise ScpiError(-224, f"{self.name}: DEF not allowed")
                return self._finish(self.default)
            if not self.updown:
                raise ScpiError(-224, f"{self.name}: {word} not allowed")
            return Special(kind)
        if raw.strip().startswith(("'", '"')):
            raise ScpiError(-104, f"{self.name}: expected a number, got string {raw.strip()}")
        value = parse_number(raw, self.unit, what=self.name)
        if math.isnan(value):
            raise ScpiError(-222, f"{self.name}: not a number")
        if not self.lo <= value <= self.hi:
            raise ScpiError(
                -222,
                f"{self.name} {raw.strip()} outside {_fmt(self.lo)}..{_fmt(self.hi)}"
                + (f" {self.unit}" if self.unit else ""),
            )
        return self._finish(value)

    def _finish(self, value: float) -> float | int:
        return round(value) if self.integer else value


def _fmt(x: float) -> str:
    return f"{x:g}"


@dataclass
class Bool(Param):
    """Boolean: ON/OFF or a number (rounded; non-zero is ON)."""

    name: str = "state"
    optional: bool = False

    def convert(self, raw: str) -> Any:
        word = raw.strip().upper()
        if word == "ON":
            return True
        if word == "OFF":
            return False
        try:
            value = parse_number(raw, what=self.name)
        except ScpiError as exc:
            raise ScpiError(
                exc.code, f"{self.name}: expected ON, OFF, 1 or 0, got {raw.strip()!r}"
            ) from exc
        return round(value) != 0


class Choice(Param):
    """Character data from a set of mnemonics (``"FRONt|REAR"``); returns the long form.

    Accepts each choice's short or long form, case-insensitively. Unknown word: -224;
    a number or string instead of a word: -104.
    """

    def __init__(self, choices: str, *, name: str = "choice", optional: bool = False) -> None:
        self.name = name
        self.optional = optional
        self._forms: dict[str, str] = {}
        for choice in choices.split("|"):
            node = _parse_node(choice, optional=False)
            self._forms[node.short] = node.long
            self._forms[node.long] = node.long
        self.choices = choices

    def convert(self, raw: str) -> Any:
        word = raw.strip()
        if word.startswith(("'", '"')) or re.match(r"^[+-]?[\d.]", word):
            raise ScpiError(-104, f"{self.name}: expected one of {self.choices}, got {word}")
        if not re.match(r"^[A-Za-z][A-Za-z0-9_]*$", word):
            raise ScpiError(-224, f"{self.name}: {word!r} is not one of {self.choices}")
        try:
            return self._forms[word.upper()]
        except KeyError as exc:
            raise ScpiError(-224, f"{self.name}: {word} is not one of {self.choices}") from exc


@dataclass
class Str(Param):
    """A quoted string (single or double quotes, doubled quote escapes); returns its text."""

    name: str = "string"
    optional: bool = False

    def convert(self, raw: str) -> Any:
        text = raw.strip()
        if len(text) >= 2 and text[0] in "'\"" and text[-1] == text[0]:
            quote = text[0]
            return text[1:-1].replace(quote * 2, quote)
        raise ScpiError(-104, f"{self.name}: expected a quoted string, got {text!r}")


@dataclass
class CountOrInf(Param):
    """A count: an integer in ``[lo, hi]`` or ``INF``/``INFinite`` (returned as None)."""

    lo: int = 1
    hi: int = 2**31 - 1
    name: str = "count"
    optional: bool = False

    def convert(self, raw: str) -> Any:
        word = raw.strip().upper()
        if word in ("INF", "INFINITE"):
            return None
        return Num(self.lo, self.hi, name=self.name, integer=True).convert(raw)


@dataclass
class Word(Param):
    """Any character-data word (validated by the handler), returned upper-case."""

    name: str = "word"
    optional: bool = False

    def convert(self, raw: str) -> Any:
        word = raw.strip()
        if not re.match(r"^[A-Za-z][A-Za-z0-9_]*$", word):
            raise ScpiError(-104, f"{self.name}: expected a name, got {word!r}")
        return word.upper()


@dataclass
class Channels(Param):
    """A channel list ``(@1)``, ``(@1,2)`` or ``(@1:2)`` of channels ``1..n_channels``."""

    n_channels: int = 1
    name: str = "channel list"
    optional: bool = False

    def convert(self, raw: str) -> Any:
        text = raw.strip()
        match = re.match(r"^\(@([\d\s,:]*)\)$", text)
        if not match:
            raise ScpiError(-104, f"{self.name}: expected (@n[,m]), got {text!r}")
        channels: list[int] = []
        for part in match.group(1).split(","):
            part = part.strip()
            if not part:
                raise ScpiError(-102, f"{self.name}: empty entry in {text}")
            if ":" in part:
                a_text, _, b_text = part.partition(":")
                if not a_text.strip().isdigit() or not b_text.strip().isdigit():
                    raise ScpiError(-102, f"{self.name}: bad range in {text}")
                a, b = int(a_text), int(b_text)
                step = 1 if b >= a else -1
                channels.extend(range(a, b + step, step))
            elif part.isdigit():
                channels.append(int(part))
            else:
                raise ScpiError(-102, f"{self.name}: bad entry {part!r} in {text}")
        for ch in channels:
            if not 1 <= ch <= self.n_channels:
                raise ScpiError(-222, f"{self.name}: channel {ch} not in 1..{self.n_channels}")
        return tuple(channels)


# ---------------------------------------------------------------------------- the tree


@dataclass
class Call:
    """What a handler receives: the header as sent, suffixes captured, converted arguments."""

    header: str
    suffixes: tuple[int, ...]
    args: list[Any]
    raw_args: list[str] = field(default_factory=list)

    def suffix(self, index: int = 0) -> int:
        """The ``index``-th captured numeric suffix (1 when the node had none)."""
        return self.suffixes[index] if index < len(self.suffixes) else 1


@dataclass(frozen=True)
class _ParsedUnit:
    """A program message unit parsed and looked up (`ScpiDevice._parse_unit`)."""

    tokens: tuple[str, ...]
    is_common: bool
    new_path: tuple[str, ...]
    command: Command
    suffixes: tuple[int, ...]
    is_query: bool
    shown: str
    raw: tuple[str, ...]


SetHandler = Callable[[Call], None]
QueryHandler = Callable[[Call], str]


@dataclass
class Command:
    """One entry of the command tree: a header pattern and its set and/or query handlers."""

    pattern: str
    set: SetHandler | None = None
    query: QueryHandler | None = None
    params: Sequence[Param] = ()
    query_params: Sequence[Param] = ()
    variadic: Param | None = None  # extra trailing params of this type (e.g. buffer elements)
    max_variadic: int = 0


class CommandTree:
    """Header lookup: every expanded form of every pattern in one dictionary.

    The key is the tuple of upper-case mnemonics (short or long, independently per node).
    Suffix checks happen after lookup, so a bad suffix gives -114 rather than -113.
    """

    def __init__(self) -> None:
        self._forms: dict[tuple[str, ...], list[tuple[list[_Node], Command]]] = {}

    def add(self, command: Command) -> None:
        """Register ``command`` under every form of its pattern."""
        if command.pattern.startswith(":*"):
            self._forms.setdefault((command.pattern[1:].upper(),), []).append(([], command))
            return
        nodes = _parse_pattern(command.pattern)
        for form in _expansions(nodes):
            self._register(form, command, 0, ())

    def _register(self, form: list[_Node], command: Command, i: int, key: tuple[str, ...]) -> None:
        if i == len(form):
            self._forms.setdefault(key, []).append((form, command))
            return
        node = form[i]
        self._register(form, command, i + 1, (*key, node.short))
        if node.long != node.short:
            self._register(form, command, i + 1, (*key, node.long))

    def lookup(self, tokens: list[str]) -> tuple[Command, tuple[int, ...]]:
        """Resolve header tokens (e.g. ``["SOUR2", "VOLT"]``) to a command and its suffixes.

        Raises ScpiError -113 (no such header) or -114 (suffix not allowed there).
        """
        if len(tokens) == 1 and tokens[0].startswith("*"):
            common = self._forms.get((tokens[0].upper(),))
            if common is None:
                raise ScpiError(-113, f"common command {tokens[0]}")
            return common[0][1], ()
        names: list[str] = []
        suffixes: list[int | None] = []
        for token in tokens:
            name, suffix = _split_token(token)
            names.append(name)
            suffixes.append(suffix)
        candidates = self._forms.get(tuple(names))
        if candidates is None:
            raise ScpiError(-113, f"header :{':'.join(tokens)}")
        last_error: ScpiError | None = None
        for form, command in candidates:
            captured: list[int] = []
            ok = True
            for node, suffix in zip(form, suffixes, strict=True):
                if suffix is None:
                    if node.capture:
                        captured.append(1)
                    continue
                if node.suffix_max == 0:
                    ok = False
                    last_error = ScpiError(-113, f"header :{':'.join(tokens)}")
                    break
                if not 1 <= suffix <= node.suffix_max:
                    ok = False
                    last_error = ScpiError(
                        -114,
                        f"header :{':'.join(tokens)}: suffix {suffix} not in 1..{node.suffix_max}",
                    )
                    break
                if node.capture:
                    captured.append(suffix)
            if ok:
                return command, tuple(captured)
        assert last_error is not None
        raise last_error


# ---------------------------------------------------------------------------- lexing

_ALLOWED_HEADER = re.compile(r"^[A-Za-z0-9_:*?]*$")


def split_units(line: str) -> list[str]:
    """Split a program message at ``;`` outside quotes and parentheses.

    Raises ScpiError -102 on an unterminated string or unbalanced parentheses.
    """
    units: list[str] = []
    current: list[str] = []
    quote = ""
    depth = 0
    for ch in line:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ScpiError(-102, "unbalanced ')'")
        elif ch == ";" and depth == 0:
            units.append("".join(current))
            current = []
            continue
        current.append(ch)
    if quote:
        raise ScpiError(-102, "unterminated quoted string")
    if depth:
        raise ScpiError(-102, "unbalanced '('")
    units.append("".join(current))
    return units


def split_params(text: str) -> list[str]:
    """Split a parameter string at ``,`` outside quotes and parentheses (already balanced)."""
    if not text.strip():
        return []
    parts: list[str] = []
    current: list[str] = []
    quote = ""
    depth = 0
    for ch in text:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    parts.append("".join(current).strip())
    for part in parts[:-1]:
        if not part:
            raise ScpiError(-102, f"empty parameter in {text.strip()!r}")
    return parts


def _check_characters(text: str) -> None:
    for ch in text:
        code = ord(ch)
        if code > 126 or (code < 32 and ch != "\t"):
            raise ScpiError(-101, f"character 0x{code:02X} in {text[:40]!r}")


# ---------------------------------------------------------------------------- the device


class ScpiDevice:
    """Base of a SCPI instrument: parser, command tree, error queue, status registers.

    Subclasses register commands with `add` (their own tree) and implement `identity`
    (the ``*IDN?`` reply) and `reset` (``*RST``). `handle_line` executes one program
    message and returns the reply line, or None when nothing is to be sent.
    """

    MAX_LINE_BYTES = 4096
    """Longest accepted program message (bytes, terminator included); longer: -363."""
    ERROR_QUEUE_CAPACITY = 10

    def __init__(self, name: str) -> None:
        self.name = name
        self._parse_cache: dict[tuple[str, tuple[str, ...]], _ParsedUnit] = {}
        """Parsed units by (unit, path), `_execute_unit`; emptied when a command is added."""
        self.tree = CommandTree()
        self._not_emulated: dict[tuple[str, ...], tuple[str, int]] = {}
        self.errors = ErrorQueue(self.ERROR_QUEUE_CAPACITY)
        self.esr = 0
        self.ese = 0
        self.sre = 0
        self._add_common_commands()

    # ------------------------------------------------------------------ registration
    def add(
        self,
        pattern: str,
        set: SetHandler | None = None,
        query: QueryHandler | None = None,
        params: Sequence[Param] = (),
        query_params: Sequence[Param] = (),
        *,
        variadic: Param | None = None,
        max_variadic: int = 0,
    ) -> None:
        """Register a command (see `Command`)."""
        self._parse_cache.clear()
        self.tree.add(
            Command(pattern, set, query, tuple(params), tuple(query_params), variadic, max_variadic)
        )

    def add_not_emulated(self, pattern: str, what: str, code: int = -113) -> None:
        """Declare a real command family the emulator refuses (``pattern`` and below).

        A header under ``pattern`` that no registered command matches is refused with
        ``code`` and a message naming ``what`` and saying it is not emulated, instead of a
        bare "Undefined header": a script learns that the instrument has the command and
        the emulator does not.
        """
        if pattern.startswith(":*"):
            self._not_emulated[(pattern[1:].upper(),)] = (what, code)
            return
        for form in _expansions(_parse_pattern(pattern)):
            keys: list[tuple[str, ...]] = [()]
            for node in form:
                names = {node.short, node.long}
                keys = [(*k, name) for k in keys for name in names]
            for key in keys:
                self._not_emulated[key] = (what, code)

    def not_emulated_error(self, tokens: list[str]) -> ScpiError | None:
        """The refusal for a header under a declared not-emulated family, else None."""
        if tokens[0].startswith("*"):
            names = [tokens[0].upper()]
        else:
            try:
                names = [_split_token(t)[0] for t in tokens]
            except ScpiError:
                return None
        raw = [t.upper() for t in tokens]
        for k in range(len(names), 0, -1):
            entry = self._not_emulated.get(tuple(raw[:k])) or self._not_emulated.get(
                tuple(names[:k])
            )
            if entry is not None:
                what, code = entry
                return ScpiError(
                    code,
                    f"{':'.join(tokens)}: {what} is not emulated by this simulator "
                    "(docs/smu-emulators.md)",
                )
        return None

    def _add_common_commands(self) -> None:
        self.add(":*IDN", query=lambda c: self.identity())
        self.add(":*RST", set=lambda c: self.reset())
        self.add(":*CLS", set=lambda c: self.clear_status())
        self.add(":*ESR", query=lambda c: str(self._read_esr()))
        self.add(
            ":*ESE",
            set=self._set_ese,
            query=lambda c: str(self.ese),
            params=[Num(0, 255, name="*ESE mask", integer=True)],
        )
        self.add(
            ":*SRE",
            set=self._set_sre,
            query=lambda c: str(self.sre),
            params=[Num(0, 255, name="*SRE mask", integer=True)],
        )
        self.add(":*STB", query=lambda c: str(self.status_byte()))
        self.add(":*OPC", set=self._set_opc, query=self._query_opc)
        self.add(":*WAI", set=lambda c: self._wait_or_refuse("*WAI"))
        self.add(":*TST", query=lambda c: "0")
        self.add(":SYSTem:ERRor[:NEXT]", query=lambda c: self.error_reply(*self.errors.pop()))
        self.add(":SYSTem:ERRor:COUNt", query=lambda c: str(len(self.errors)))
        self.add(":SYSTem:ERRor:ALL", query=self._all_errors)

    def _set_ese(self, call: Call) -> None:
        self.ese = int(call.args[0])

    def _set_sre(self, call: Call) -> None:
        self.sre = int(call.args[0]) & ~STB_MSS

    def _set_opc(self, call: Call) -> None:
        # OPC is set when every pending operation has completed (IEEE 488.2 12.5.2).
        if self.operations_pending():
            self._opc_armed = True
        else:
            self.esr |= ESR_OPC

    def _query_opc(self, call: Call) -> str:
        self._wait_or_refuse("*OPC?")
        return "1"

    def _wait_or_refuse(self, command: str) -> None:
        """``*WAI`` / ``*OPC?``: run pending operations to their end in instrument time."""
        if not self.wait_complete():
            raise ScpiError(
                -200,
                f"{command}: the running operation never completes by itself (infinite "
                "count or waiting for a trigger); the instrument would wait forever, the "
                "emulator refuses instead (send :ABOR)",
            )

    def operations_pending(self) -> bool:
        """Whether an overlapped operation (a trigger model, a sweep) is still running."""
        return False

    def wait_complete(self) -> bool:
        """Finish every pending operation (advancing instrument time); False if it cannot."""
        return True

    def operations_completed(self) -> None:
        """Called by subclasses when pending operations end: a pending ``*OPC`` sets OPC."""
        if getattr(self, "_opc_armed", False):
            self._opc_armed = False
            self.esr |= ESR_OPC

    def before_line(self) -> None:
        """Hook run before each program message (lets background operations progress)."""

    def _read_esr(self) -> int:
        value, self.esr = self.esr, 0
        return value

    def _all_errors(self, call: Call) -> str:
        replies = []
        while True:
            code, message = self.errors.pop()
            replies.append(self.error_reply(code, message))
            if code == 0:
                break
        if len(replies) > 1:
            replies.pop()
        return ",".join(replies)

    # ------------------------------------------------------------------ subclass hooks
    def error_reply(self, code: int, message: str) -> str:
        """One error queue entry as ``:SYST:ERR?`` returns it (vendors differ in the sign)."""
        return format_error(code, message)

    def identity(self) -> str:
        """The ``*IDN?`` reply."""
        raise NotImplementedError

    def reset(self) -> None:
        """``*RST``: default settings (subclasses extend)."""

    def clear_status(self) -> None:
        """``*CLS``: clear the error queue and event registers."""
        self.errors.clear()
        self.esr = 0

    def check_header_allowed(self, tokens: list[str], is_common: bool) -> None:
        """Hook to refuse headers in some state (e.g. another command language)."""

    # ------------------------------------------------------------------ status
    def status_byte(self) -> int:
        """``*STB?``: EAV (errors queued), ESB (enabled events), MSS (enabled summary)."""
        stb = 0
        if len(self.errors):
            stb |= STB_EAV
        if self.esr & self.ese:
            stb |= STB_ESB
        if stb & self.sre:
            stb |= STB_MSS
        return stb

    def push_error(self, code: int, detail: str = "", message: str | None = None) -> None:
        """Queue an error and set its event bit (CME, EXE, DDE or QYE)."""
        text = message if message is not None else ERROR_MESSAGES.get(code, "Error")
        if detail:
            text = f"{text};{detail}"
        # Replies stay printable ASCII whatever bytes the host sent.
        text = text.encode("ascii", "backslashreplace").decode("ascii")
        text = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text)
        self.errors.push(code, text)
        self.esr |= _esr_bit_for(code)

    # ------------------------------------------------------------------ link events
    def line_too_long(self, n_bytes: int) -> str | None:
        """The server discarded a line of ``n_bytes`` bytes: -363, no reply."""
        self.push_error(
            -363,
            f"{self.name}: line of {n_bytes} bytes exceeds {self.MAX_LINE_BYTES} bytes, discarded",
        )
        return None

    def query_interrupted(self) -> None:
        """A reply could not be delivered (the host sent or left before reading it): -410."""
        self.push_error(-410, f"{self.name}: reply not read by the host")

    def query_unterminated(self, fragment: str = "") -> None:
        """The host asked for data without a complete query (e.g. a cut-off line): -420."""
        self.push_error(-420, f"{self.name}: incomplete query {fragment[:40]!r}")

    # ------------------------------------------------------------------ execution
    def handle_line(self, line: str) -> str | None:
        """Execute one program message (no terminator); return the reply or None.

        Never raises for any input: bad input queues an error and the device stays usable.
        """
        if len(line.encode("latin-1", "replace")) + 1 > self.MAX_LINE_BYTES:
            return self.line_too_long(len(line.encode("latin-1", "replace")) + 1)
        line = line.rstrip("\r\n")
        replies: list[str] = []
        if not line.strip():
            return None
        self.before_line()
        try:
            units = split_units(line)
        except ScpiError as exc:
            self.push_error(exc.code, f"{exc.detail} in {line[:60]!r}")
            return None
        if len(units) > 1 and not units[-1].strip():
            units.pop()  # a trailing ';' before the terminator is accepted (IEEE 488.2 7.3)
        path: list[str] = []
        for unit in units:
            try:
                reply, path = self._execute_unit(unit, path)
            except ScpiError as exc:
                self.push_error(exc.code, exc.detail, exc.message)
                if exc.is_command_error:
                    break
                continue
            if reply is not None:
                replies.append(reply)
        return ";".join(replies) if replies else None

    _PARSE_CACHE_SIZE = 256

    def _execute_unit(self, unit: str, path: list[str]) -> tuple[str | None, list[str]]:
        # A host repeats the same few units (a reading line per reading): their parse (header
        # checks, tree lookup, parameter split) is memoised per (unit, path) once it
        # succeeded. The state-dependent header check and the parameter conversion run at
        # every execution.
        key = (unit, tuple(path))
        cache = self._parse_cache
        hit = cache.get(key)
        if hit is None:
            hit = self._parse_unit(unit, path)
            if len(cache) >= self._PARSE_CACHE_SIZE:
                cache.clear()
            cache[key] = hit
        else:
            self.check_header_allowed(list(hit.tokens), hit.is_common)
        command, shown, raw = hit.command, hit.shown, list(hit.raw)
        if hit.is_query:
            assert command.query is not None
            args = self._convert_params(shown, raw, command.query_params, command)
            reply = command.query(Call(shown, hit.suffixes, args, raw))
            return reply, list(hit.new_path)
        assert command.set is not None
        args = self._convert_params(shown, raw, command.params, command)
        command.set(Call(shown, hit.suffixes, args, raw))
        return None, list(hit.new_path)

    def _parse_unit(self, unit: str, path: list[str]) -> _ParsedUnit:
        """Parse one program message unit: header checks, tree lookup, parameter split.

        Raises ScpiError as the unit's execution would (nothing is executed here)."""
        text = unit.strip(" \t")
        if not text:
            raise ScpiError(-102, "empty command between ';'")
        _check_characters(text)
        match = re.match(r"^(\S+)(?:\s+(.*))?$", text, re.DOTALL)
        assert match is not None
        header, params_text = match.group(1), (match.group(2) or "")
        if not _ALLOWED_HEADER.match(header):
            bad = next(ch for ch in header if not re.match(r"[A-Za-z0-9_:*?]", ch))
            raise ScpiError(
                -101 if bad not in "\"'(),;#" else -102,
                f"character {bad!r} in header {header!r}",
            )
        is_query = header.endswith("?")
        if is_query:
            header = header[:-1]
        if "?" in header:
            raise ScpiError(-102, f"misplaced '?' in header {header + '?'!r}")
        if header.startswith(":*"):
            header = header[1:]  # ":*CLS" as some drivers send it (e.g. "*RST;:*CLS;")
        if header.startswith("*"):
            if not re.match(r"^\*[A-Za-z]+$", header):
                raise ScpiError(-102, f"bad common command {header!r}")
            tokens = [header.upper()]
            is_common = True
            new_path = path
        else:
            absolute = header.startswith(":")
            body = header[1:] if absolute else header
            if not body or body.endswith(":") or "::" in body or "*" in body:
                raise ScpiError(-102, f"bad header {header!r}")
            rel = body.split(":")
            tokens = rel if absolute else [*path, *rel]
            is_common = False
            new_path = tokens[:-1]
        self.check_header_allowed(tokens, is_common)
        try:
            command, suffixes = self.tree.lookup(tokens)
        except ScpiError as exc:
            refusal = self.not_emulated_error(tokens) if exc.code == -113 else None
            if refusal is not None:
                raise refusal from None
            raise
        raw = split_params(params_text)
        shown = (header + ("?" if is_query else "")).upper()
        if is_query and command.query is None:
            raise ScpiError(-100, f"{shown}: command has no query form")
        if not is_query and command.set is None:
            raise ScpiError(-100, f"{shown}: query only (add '?')")
        return _ParsedUnit(
            tuple(tokens),
            is_common,
            tuple(new_path),
            command,
            suffixes,
            is_query,
            shown,
            tuple(raw),
        )

    @staticmethod
    def _convert_params(
        shown: str, raw: list[str], params: Sequence[Param], command: Command
    ) -> list[Any]:
        n_required = sum(1 for p in params if not p.optional)
        if raw and not raw[-1]:
            # "a, b, " : an empty trailing parameter. Instruments that accept it (the 2450's
            # :TRAC:MAKE "buf", 100, ) treat it as omitted; only an optional one may be empty.
            position = len(raw) - 1
            spec = params[position] if position < len(params) else command.variadic
            if spec is None or not spec.optional or position < n_required:
                raise ScpiError(-102, f"{shown}: empty parameter {position + 1}")
            raw = raw[:-1]
        if len(raw) < n_required:
            missing = params[len(raw)]
            raise ScpiError(-109, f"{shown}: {missing.name} missing")
        limit = len(params) + (command.max_variadic if command.variadic else 0)
        if len(raw) > limit:
            raise ScpiError(-108, f"{shown}: {len(raw)} parameters given, at most {limit}")
        args: list[Any] = []
        for i, token in enumerate(raw):
            spec = params[i] if i < len(params) else command.variadic
            assert spec is not None
            try:
                args.append(spec.convert(token))
            except ScpiError as exc:
                raise ScpiError(exc.code, f"{shown}: {exc.detail}", exc.message) from None
        return args
