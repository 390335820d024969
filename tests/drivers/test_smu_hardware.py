"""The SMU drivers against a real instrument; skipped unless ``--smu-address`` is given.

    pytest tests/drivers/test_smu_hardware.py --smu-address TCPIP0::192.168.1.50::5025::SOCKET \
        [--smu-driver keysight_b2900]

Only gentle requests: 0.1 V with a 100 uA compliance, output off at the end.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from drivers.errors import InstrumentLimitError
from drivers.smu import SafetyLimits, SourceMeter, open_smu

pytestmark = pytest.mark.hardware

LIMITS = SafetyLimits(max_voltage_V=0.2, max_current_A=1e-4)


@pytest.fixture(scope="module")
def hardware_smu(smu_address: str | None, smu_driver: str) -> Iterator[SourceMeter]:
    if smu_address is None:
        pytest.skip("no --smu-address given")
    smu = open_smu(smu_driver, smu_address, LIMITS, timeout_s=10.0)
    yield smu
    smu.shutdown()
    smu.close()


def test_identity(hardware_smu: SourceMeter) -> None:
    assert hardware_smu.model
    assert hardware_smu.serial
    assert hardware_smu.serial in hardware_smu.identity


def test_configure_measure_and_shutdown(hardware_smu: SourceMeter) -> None:
    hardware_smu.reset()
    hardware_smu.configure_voltage_source(0.1, 1e-4)
    hardware_smu.configure_measurement(nplc=1.0)
    with hardware_smu.output_on():
        reading = hardware_smu.measure()
        burst = hardware_smu.measure_many(3)
    assert not hardware_smu.output_enabled
    assert reading.nplc == 1.0
    assert reading.current_range_A > 0
    assert len(burst) == 3
    # Every reading is a number (a NaN is a parse failure or a missing element, not a
    # measurement). Whatever is connected, the current stays within the 100 uA compliance
    # (+10 % for the compliance's own accuracy and a range's overshoot); unless the
    # compliance held, the voltage is the 0.1 V source within its accuracy (2450: 0.015 %
    # + 200 uV on the 200 mV range; B2900: 0.015 % + 225 uV: 1 mV covers both), else it
    # is between 0 and 0.1 V.
    for r in (reading, *burst):
        assert math.isfinite(r.voltage_V) and math.isfinite(r.current_A), r
        assert abs(r.current_A) <= 1.1e-4, r
        if r.limit_tripped:
            assert -1e-3 <= r.voltage_V <= 0.101, r
        else:
            assert abs(r.voltage_V - 0.1) <= 1e-3, r
    hardware_smu.check_errors()


def test_limit_refused(hardware_smu: SourceMeter) -> None:
    with pytest.raises(InstrumentLimitError):
        hardware_smu.configure_voltage_source(0.5, 1e-4)
