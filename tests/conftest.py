"""Test configuration shared by the whole suite.

Qt runs offscreen (no display needed); matplotlib uses the Agg backend; hypothesis has a
fixed, CI-friendly profile so every failure reproduces with its printed seed.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MPLBACKEND", "Agg")
# `labrss` turns an unexpected exception into one line for users; in tests it must fail
# loudly with its traceback (tests of that one line unset it).
os.environ.setdefault("LABRSS_DEBUG", "1")
# Discovery never broadcasts on the machine's network from a test: only loopback traffic
# (tests that exercise the broadcast path replace the broadcasting call).
os.environ["LABRSS_LAN_BROADCAST"] = "0"

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# ---------------------------------------------------------------- real hardware (optional)
# Tests against real instruments run only when their addresses are given, e.g.
#   pytest --smu-address "TCPIP0::192.168.1.50::5025::SOCKET" --board-port /dev/ttyACM0
# and skip otherwise (the fixtures below return None).


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("labrss hardware")
    group.addoption(
        "--smu-address",
        default=None,
        help="VISA resource of a real SMU, e.g. TCPIP0::192.168.1.50::5025::SOCKET",
    )
    group.addoption(
        "--smu-driver",
        default="keithley2450",
        choices=["keithley2450", "keysight_b2900"],
        help="driver for --smu-address (default: keithley2450)",
    )
    group.addoption(
        "--board-port",
        default=None,
        help="serial port or URL of a real crossbar board, e.g. /dev/ttyACM0 or COM3",
    )


@pytest.fixture(scope="session")
def smu_address(request: pytest.FixtureRequest) -> str | None:
    """The real SMU's VISA resource from ``--smu-address``, or None (hardware tests skip)."""
    value: str | None = request.config.getoption("--smu-address")
    return value


@pytest.fixture(scope="session")
def smu_driver(request: pytest.FixtureRequest) -> str:
    """The driver name for ``--smu-address`` (``--smu-driver``, default keithley2450)."""
    value: str = request.config.getoption("--smu-driver")
    return value


@pytest.fixture(scope="session")
def board_port(request: pytest.FixtureRequest) -> str | None:
    """The real crossbar board's port or URL from ``--board-port``, or None."""
    value: str | None = request.config.getoption("--board-port")
    return value
