"""A portmapper (ONC RPC program 100000 version 2, RFC 1833) for the simulated instruments.

A VXI-11 client finds an instrument's core channel by asking the portmapper on the
instrument's host, TCP or UDP port 111: GETPORT(0x0607AF, 1, TCP) -> the port. pyvisa-py
always asks on 111 when the resource has no port (``TCPIP0::HOST::inst0::INSTR``), so the
simulator serves one there where the machine lets it bind that port (root on Linux, or
``net.ipv4.ip_unprivileged_port_start`` lowered), and says so where it cannot.

Procedures: NULL, GETPORT and DUMP; SET and UNSET from the network are refused (FALSE:
registrations are made by the simulator through `PortMapper.register`, as rpcbind accepts
them only from the local host's privileged ports); CALLIT is not offered (PROC_UNAVAIL).
"""

from __future__ import annotations

import threading
from typing import Final

from simulator.oncrpc import (
    IPPROTO_TCP,
    IPPROTO_UDP,
    Connection,
    Packer,
    Procedure,
    RpcProgram,
    RpcTcpServer,
    RpcUdpServer,
    Unpacker,
    no_args,
)

PMAP_PROGRAM: Final = 100000
PMAP_VERSION: Final = 2
PMAP_PORT: Final = 111
"""The portmapper's well-known port."""

Mapping = tuple[int, int, int, int]
"""(program, version, protocol, port)."""


def _mapping(u: Unpacker) -> Mapping:
    return u.uint(), u.uint(), u.uint(), u.uint()


class PortMapper:
    """Registrations (program, version, protocol) -> port, served over TCP and UDP.

    Args:
        host: where to listen (loopback by default).
        port: 111 for clients that ask there (pyvisa-py, NI-VISA); 0 for a free port.
        udp: serve UDP too (VISA libraries broadcast GETPORT over UDP to find instruments).
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = PMAP_PORT, udp: bool = True) -> None:
        self.host = host
        self._requested_port = port
        self._lock = threading.Lock()
        self._map: dict[tuple[int, int, int], int] = {}
        program = RpcProgram(
            PMAP_PROGRAM,
            PMAP_VERSION,
            {
                0: Procedure("null", no_args, lambda a, c: b""),
                1: Procedure("set", _mapping, self._refuse),
                2: Procedure("unset", _mapping, self._refuse),
                3: Procedure("getport", _mapping, self._getport),
                4: Procedure("dump", no_args, self._dump),
            },
            name="portmapper",
        )
        self._program = program
        self._want_udp = udp
        self._tcp = RpcTcpServer([program], name="portmapper", host=host, port=port)
        self._udp: RpcUdpServer | None = None
        self.udp_error: str | None = None
        """Why UDP is not served (bound TCP only), or None."""

    def register(self, program: int, version: int, port: int, protocol: int = IPPROTO_TCP) -> None:
        """Map (program, version, protocol) to ``port``."""
        with self._lock:
            self._map[(program, version, protocol)] = port

    def unregister(self, program: int, version: int, protocol: int = IPPROTO_TCP) -> None:
        """Remove a mapping (no error if absent)."""
        with self._lock:
            self._map.pop((program, version, protocol), None)

    def lookup(self, program: int, version: int, protocol: int = IPPROTO_TCP) -> int:
        """The registered port, 0 when none (what GETPORT answers)."""
        with self._lock:
            return self._map.get((program, version, protocol), 0)

    def _getport(self, args: Mapping, connection: Connection) -> bytes:
        program, version, protocol, _ = args
        return Packer().uint(self.lookup(program, version, protocol)).getvalue()

    def _dump(self, args: None, connection: Connection) -> bytes:
        packer = Packer()
        with self._lock:
            for (program, version, protocol), port in sorted(self._map.items()):
                packer.boolean(True).uint(program).uint(version).uint(protocol).uint(port)
        return packer.boolean(False).getvalue()

    def _refuse(self, args: Mapping, connection: Connection) -> bytes:
        return Packer().boolean(False).getvalue()

    def start(self) -> PortMapper:
        """Bind TCP (OSError naming the address when it cannot), then UDP if it can."""
        self._tcp.start()
        if self._want_udp:  # the same port number as TCP, as rpcbind does
            udp = RpcUdpServer([self._program], name="portmapper", host=self.host, port=self.port)
            try:
                self._udp = udp.start()
            except OSError as exc:
                self.udp_error = str(exc)
        return self

    @property
    def port(self) -> int:
        """The TCP port bound."""
        return self._tcp.port

    @property
    def serves_udp(self) -> bool:
        """Whether GETPORT over UDP is served too."""
        return self._udp is not None

    def close(self) -> None:
        """Stop serving. Idempotent."""
        self._tcp.close()
        if self._udp is not None:
            self._udp.close()


__all__ = ["IPPROTO_TCP", "IPPROTO_UDP", "PMAP_PORT", "PMAP_PROGRAM", "PMAP_VERSION", "PortMapper"]
