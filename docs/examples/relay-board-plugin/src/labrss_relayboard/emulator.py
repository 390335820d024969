"""The ACME relay board's protocol on the simulated board's physics (for tests and demos).

labrss's simulator serves it when a station says ``[board] driver = "relayboard"`` and
``address = "sim"`` (the driver's ``simulator = "labrss_relayboard.emulator:
RelayBoardProtocol"``): every electrical answer then comes from the simulated crossbar's
nodal solve, through its public interface (`simulator.board_model.BoardModel`).
"""

from __future__ import annotations

from simulator.board_model import OPEN_ROUTING, BoardModel, Routing

INFO_KEYS = ("nominal_ohm", "nominal_min_ohm", "nominal_max_ohm", "tolerance", "switch_on_ohm")


class RelayBoardProtocol:
    """One ASCII line in, one line out (`simulator.line_server.LineSession`)."""

    def __init__(self, model: BoardModel) -> None:
        self.model = model

    def handle_line(self, line: str) -> str | None:
        words = line.split()
        if not words:
            return None
        try:
            return self._execute(words)
        except (ValueError, IndexError) as exc:
            return f"ERR {exc}"

    def on_disconnect(self) -> None:
        self.model.safe()  # the board opens every relay when the host goes away

    def _execute(self, words: list[str]) -> str:
        m = self.model
        head, args = words[0].upper(), [int(w) for w in words[1:] if w.upper() != "OFF"]
        if head == "ID?":
            g = m.geometry
            return f"ACME,RELAYBOARD-{g.rows}x{g.cols}x{g.branches},{m.serial}"
        if head == "INFO?":
            info = m.info()
            found = [f"{k}={info[k]}" for k in INFO_KEYS if k in info]
            off_max = info.get("switch_off_max_S")
            if off_max is not None:
                found.append(f"switch_off_max_S={off_max}")
            return ";".join(found)
        if head == "CELL":
            m.set_cell_mask(args[0], args[1], args[2])
            return "OK"
        if head == "CELL?":
            return str(m.cell_mask(args[0], args[1]))
        if head == "OPEN":
            m.open_all_switches()
            return "OK"
        if head == "ROUTE":
            routing = OPEN_ROUTING if words[1:] == ["OFF"] else Routing("cell", args[0], args[1])
            m.set_routing(routing)
            return "OK"
        if head == "ROUTE?":
            route = m.routing
            return "OFF" if route.mode == "open" else f"{route.row} {route.col}"
        if head == "SAFE?":
            safe = not m.switches.any() and m.routing == OPEN_ROUTING
            return "1" if safe else "0"
        raise ValueError(f"unknown command {words[0]!r}")
