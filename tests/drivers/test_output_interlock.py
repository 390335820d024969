"""No output without compliance: every public path to an SMU's output goes through the
interlock, and the driver's ``output_enabled`` stays in step with the instrument.

Exact command/reply exchanges (no I/O) for the three SMU drivers, then the 2450 and B2900
drivers against their emulators over real sockets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.adapters import ProtocolAdapter
from drivers.errors import InstrumentError
from drivers.keithley2450 import Keithley2450
from drivers.keysight_b2900 import KeysightB2900
from drivers.smu import SafetyLimits, SCPISourceMeter, message_units, open_smu
from drivers.testing import expected_protocol
from simulator.bench import SimulatedBench
from tests.drivers import test_keithley2400 as k2400
from tests.drivers import test_keithley2450 as k2450
from tests.drivers import test_keysight_b2900 as b2900

Pairs = list[tuple[str | None, str | None]]

DRIVERS: dict[str, tuple[Callable[[Any], SCPISourceMeter], Pairs, Pairs, Pairs, str]] = {
    # name: (make, init, source setup, output-on exchange, output query)
    "keithley2450": (
        k2450.make,
        k2450.INIT,
        k2450.SOURCE_SETUP,
        [(":OUTP ON", None), k2450.NO_ERROR],
        ":OUTP?",
    ),
    "keithley2400": (
        k2400.make,
        k2400.INIT,
        k2400.SOURCE_SETUP,
        [(":OUTP ON", None), k2400.NO_ERROR],
        ":OUTP?",
    ),
    "keysight_b2900": (
        b2900.maker(2),
        b2900.init(2),
        b2900.source_setup(2),
        [(":OUTP2 ON", None), b2900.NO_ERROR],
        ":OUTP2?",
    ),
}


@pytest.mark.parametrize("driver", DRIVERS)
def test_every_public_path_to_the_output_is_refused_before_compliance(driver: str) -> None:
    make, init, _, _, _ = DRIVERS[driver]
    adapter = ProtocolAdapter(list(init))
    smu = make(adapter)
    on = ":OUTP2 ON" if driver == "keysight_b2900" else ":OUTP ON"
    attempts: list[Callable[[], object]] = [
        smu.enable_output,
        lambda: setattr(smu, "output_state", True),
        lambda: smu.output_on().__enter__(),
        lambda: smu.write(on),
        lambda: smu.write(":outp:stat 1"),
        lambda: smu.write("OUTPUT2:STATE ON"),
        # compound lines: an output-on unit anywhere in a written or queried line
        lambda: smu.write(":SYST:BEEP 440,0.1;" + on),
        lambda: smu.ask(on + ";:READ?"),
        lambda: smu.ask(':DISP:USER1:TEXT "a;b";:outp:stat 1;*OPC?'),
    ]
    for attempt in attempts:
        with pytest.raises(InstrumentError, match="compliance"):
            attempt()
    assert adapter.written == [command for command, _ in init]  # nothing was sent
    assert not smu.output_enabled


@pytest.mark.parametrize("driver", DRIVERS)
def test_output_state_goes_through_the_interlock_and_keeps_the_driver_in_step(
    driver: str,
) -> None:
    make, init, setup, output_on, query = DRIVERS[driver]
    off = output_on[0][0].replace("ON", "OFF")  # type: ignore[union-attr]
    pairs: Pairs = [
        *init,
        *setup,
        *output_on,
        (query, "1"),
        (off, None),
        (query, "0"),
        (query, "1"),  # someone turned it on at the front panel
    ]
    with expected_protocol(make, pairs) as smu:
        smu.configure_voltage_source(0.2 if driver == "keysight_b2900" else 0.1, 1e-3)
        smu.output_state = True
        assert smu.output_enabled
        assert smu.output_state is True
        smu.output_state = False
        assert not smu.output_enabled
        assert smu.output_state is False
        assert smu.output_state is True
        assert smu.output_enabled  # re-synchronised from the instrument
    with expected_protocol(make, list(init)) as smu, pytest.raises(ValueError, match="True or"):
        smu.output_state = "ON"  # type: ignore[assignment]


@pytest.mark.parametrize("driver", DRIVERS)
def test_raw_writes_keep_the_driver_in_step(driver: str) -> None:
    make, init, setup, output_on, _ = DRIVERS[driver]
    on = output_on[0][0]
    assert on is not None
    pairs: Pairs = [*init, *setup, (on, None), (on.replace("ON", "OFF"), None), (on, None)]
    pairs += [("*RST", None)]
    with expected_protocol(make, pairs) as smu:
        smu.configure_voltage_source(0.2 if driver == "keysight_b2900" else 0.1, 1e-3)
        smu.write(on)
        assert smu.output_enabled
        smu.write(on.replace("ON", "OFF"))
        assert not smu.output_enabled
        smu.write(on)
        smu.write("*RST")  # output off and the compliance forgotten
        assert not smu.output_enabled
        assert smu.compliance_A is None
    with expected_protocol(make, list(init)) as smu, pytest.raises(InstrumentError):
        smu.write(on)  # after *RST the interlock holds again


@pytest.mark.parametrize(
    ("smu_model", "driver", "cls"),
    [("2450", "keithley2450", Keithley2450), ("B2902A", "keysight_b2900", KeysightB2900)],
)
def test_on_the_emulator_output_state_cannot_bypass_compliance(
    smu_model: str, driver: str, cls: type
) -> None:
    with SimulatedBench("small", seed=1, smu_model=smu_model) as bench:
        smu = open_smu(driver, bench.smu_resource, SafetyLimits(1.0, 0.01))
        try:
            assert isinstance(smu, cls)
            with pytest.raises(InstrumentError, match="compliance"):
                smu.output_state = True
            assert smu.output_state is False  # the instrument agrees: nothing was sent
            smu.configure_voltage_source(0.1, 1e-3)
            smu.output_state = True
            assert smu.output_state is True and smu.output_enabled
        finally:
            smu.shutdown()
            smu.close()


@pytest.mark.parametrize("driver", DRIVERS)
def test_compound_lines_go_through_the_interlock(driver: str) -> None:
    """A user's one-line sequence switches the output as its units do, in order; a ``*RST``
    before an output-on in the same line leaves no compliance: refused, nothing sent."""
    make, init, setup, output_on, _ = DRIVERS[driver]
    on = output_on[0][0]
    assert on is not None
    off = on.replace("ON", "OFF")
    pairs: Pairs = [*init, *setup, (f":SYST:BEEP 440,0.1;{on}", None), (f"{off};*OPC?", "1")]
    with expected_protocol(make, pairs) as smu:
        smu.configure_voltage_source(0.2 if driver == "keysight_b2900" else 0.1, 1e-3)
        smu.write(f":SYST:BEEP 440,0.1;{on}")
        assert smu.output_enabled
        assert smu.ask(f"{off};*OPC?") == "1"
        assert not smu.output_enabled
        with pytest.raises(InstrumentError, match="compliance"):
            smu.write(f"*RST;{on}")  # nothing sent (the protocol has no such pair)
        assert smu.compliance_A is not None  # nothing was sent, nothing forgotten


@given(st.lists(st.text(alphabet=st.sampled_from(list("ab :;\"'1")), max_size=12), max_size=5))
def test_message_units_rejoin_to_the_line(parts: list[str]) -> None:
    line = ";".join(parts)
    units = message_units(line)
    assert ";".join(units) == line
    assert len(units) <= line.count(";") + 1
    if '"' not in line and "'" not in line:
        assert units == line.split(";")
