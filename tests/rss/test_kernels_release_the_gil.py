"""Every compiled RSS kernel releases the GIL while it runs.

With ``--workers 0`` the batch engine runs kernels on a worker thread inside the CLI's
process; a kernel holding the GIL for its whole call (seconds at n = 40) keeps the main
thread from acting on Ctrl-C (docs/cluster.md). ``nogil`` does not change any result.
"""

from __future__ import annotations

import importlib

import pytest
from numba.core.registry import CPUDispatcher

MODULES = ("labrss.rss.exact", "labrss.rss.subset_sums", "labrss.rss.study")


def _compiled_kernels(module_name: str) -> list[tuple[str, CPUDispatcher]]:
    module = importlib.import_module(module_name)
    return [
        (name, value)
        for name, value in vars(module).items()
        if isinstance(value, CPUDispatcher) and value.py_func.__module__ == module_name
    ]


@pytest.mark.parametrize("module_name", MODULES)
def test_every_cached_kernel_is_nogil(module_name: str) -> None:
    # inline="always" helpers are compiled into their callers, never called from Python
    kernels = [
        (n, k)
        for n, k in _compiled_kernels(module_name)
        if k.targetoptions.get("inline", "never") != "always"
    ]
    assert kernels, f"no compiled kernels found in {module_name}: the test checks nothing"
    holding = [name for name, kernel in kernels if not kernel.targetoptions.get("nogil")]
    assert holding == [], f"{module_name}: kernels holding the GIL: {holding}"
