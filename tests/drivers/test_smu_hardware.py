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
    assert math.isnan(reading.voltage_V) or abs(reading.voltage_V) <= 0.2
    assert math.isnan(reading.current_A) or abs(reading.current_A) <= 1.1e-4
    assert len(burst) == 3
    hardware_smu.check_errors()


def test_limit_refused(hardware_smu: SourceMeter) -> None:
    with pytest.raises(InstrumentLimitError):
        hardware_smu.configure_voltage_source(0.5, 1e-4)
