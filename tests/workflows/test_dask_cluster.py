"""The batch engine on a real Dask cluster: `dask scheduler` + two `dask worker` on loopback.

A study and a pruning run on the cluster and are compared, bit for bit, with one-process
runs; one worker is killed (SIGKILL) mid-run and the result is unchanged; a Ctrl-C
cancels the cluster's tasks and `resume` recomputes nothing that finished. These tests
share one cluster (module fixture, one xdist group): about 5 s to start it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from labrss.networks.model import Layer, Network
from labrss.rss.study import MODELS, run_point
from labrss.slth.pensia import prune_to_target
from labrss.workflows.batch import BatchInterrupted, EngineSettings, open_client
from labrss.workflows.prune import PruneSettings, prune_network
from labrss.workflows.rss_study import RSSStudyConfig, run_rss_study

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dask_cluster")]

STUDY = RSSStudyConfig(
    n_values=(8, 12, 14), instances=48, models=("uniform", "differential20"), fit_min_n=8
)


@dataclass
class Cluster:
    address: str
    workers: dict[str, subprocess.Popen[bytes]]  # by name


def _dask(*args: str) -> list[str]:
    return [sys.executable, "-m", "dask", *args]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A scheduler and two one-thread workers (no nanny: a killed worker stays dead)."""
    from distributed import Client

    tmp = tmp_path_factory.mktemp("dask")
    sched_file = tmp / "scheduler.json"
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    procs: list[subprocess.Popen[bytes]] = []
    log = (tmp / "scheduler.log").open("wb")
    procs.append(
        subprocess.Popen(
            _dask(
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--dashboard-address",
                "127.0.0.1:0",  # its HTTP routes on a free loopback port, not 8787
                "--scheduler-file",
                str(sched_file),
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    )
    workers: dict[str, subprocess.Popen[bytes]] = {}
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists():
            assert procs[0].poll() is None, "dask scheduler exited"
            assert time.monotonic() < deadline, "dask scheduler did not start"
            time.sleep(0.1)
        for name in ("wA", "wB"):
            workers[name] = subprocess.Popen(
                _dask(
                    "worker",
                    "--scheduler-file",
                    str(sched_file),
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--no-dashboard",
                    "--dashboard-address",
                    "127.0.0.1:0",
                    "--host",
                    "127.0.0.1",
                    "--name",
                    name,
                ),
                stdout=(tmp / f"{name}.log").open("wb"),
                stderr=subprocess.STDOUT,
                env=env,
            )
            procs.append(workers[name])
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield Cluster(address, workers)
    finally:
        # Workers are killed: a SIGTERM'd worker closes gracefully, waiting for a task a
        # cancelled run left running (40 s of a test worker's time in make test).
        for p in workers.values():
            p.kill()
        if procs[0].poll() is None:
            procs[0].terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        log.close()


def test_study_on_the_cluster_is_bit_identical_to_one_process(
    cluster: Cluster, tmp_path: Path
) -> None:
    on_cluster = run_rss_study(
        STUDY, tmp_path / "cluster", engine=EngineSettings(scheduler=cluster.address),
        chunk_sums=1 << 14,
    )  # fmt: skip
    assert on_cluster.batch is not None
    assert len(on_cluster.batch.workers_seen) == 2  # both workers took chunks
    assert on_cluster.batch.computed == len(on_cluster.batch.results) > 10
    # one process, one call per point, no engine at all
    for point in on_cluster.points:
        ref = run_point(MODELS[point.model], point.n, STUDY.instances, seed=STUDY.seed)
        np.testing.assert_array_equal(point.worst_error, ref.worst_error)
        np.testing.assert_array_equal(point.random_error, ref.random_error)
    # and the same engine in this process, chunked differently: the same bytes
    local = run_rss_study(
        STUDY, tmp_path / "local", engine=EngineSettings.in_process(), chunk_sums=1 << 20
    )
    assert local.csv_path.read_bytes() == on_cluster.csv_path.read_bytes()


def _target_network() -> Network:
    rng = np.random.default_rng(11)
    return Network(
        [
            Layer(rng.normal(size=(12, 24)), rng.normal(size=24) * 0.1),
            Layer(rng.normal(size=(24, 6)), rng.normal(size=6) * 0.1),
        ],
        name="random 12-24-6",
    )


def test_ctrl_c_cancels_the_cluster_tasks_and_resume_recomputes_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    target = _target_network()
    settings = PruneSettings(n=24, seed=5, cells_per_chunk=48)
    engine = EngineSettings(scheduler=cluster.address)
    seen: list[float] = []

    def ctrl_c_after_two(done: float, total: float, message: str) -> None:
        seen.append(done)
        if len(seen) == 3:  # the start, then two chunks finished
            raise KeyboardInterrupt

    with open_client(engine) as client:
        with pytest.raises(BatchInterrupted, match="--resume") as info:
            prune_network(target, settings, tmp_path, client=client, progress=ctrl_c_after_two)
        assert info.value.saved == 2 and info.value.total > 8
        # the cluster is idle: the remaining tasks were cancelled, not left running
        deadline = time.monotonic() + 10
        while any(client.processing().values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(client.processing().values())
        assert len(list(tmp_path.glob("*.npz"))) == 2
        resumed = prune_network(target, settings, tmp_path, client=client, resume=True)
    assert resumed.batch.reused == 2
    assert resumed.batch.computed == info.value.total - 2
    ref = prune_to_target(target, settings.n, seed=settings.seed)
    for a, b in zip(resumed.ticket.network.layers, ref.network.layers, strict=True):
        np.testing.assert_array_equal(a.weights, b.weights)
        np.testing.assert_array_equal(a.bias, b.bias)
    with pytest.raises(ValueError, match="seed"):
        prune_network(
            target, PruneSettings(n=24, seed=6, cells_per_chunk=48), tmp_path,
            engine=engine, resume=True,
        )  # fmt: skip


def test_pruning_survives_a_worker_killed_mid_run(cluster: Cluster, tmp_path: Path) -> None:
    """Last in the module: it leaves the cluster with one worker.

    A watcher thread kills (SIGKILL) the first worker the scheduler has given chunks to,
    as soon as it holds some: its running and queued chunks are lost with it. Waiting for
    the first chunk to come back before killing raced with the run (a fast kernel or a
    lagging main process: everything had finished, "no worker was busy to kill")."""
    target = _target_network()
    settings = PruneSettings(n=34, seed=2, cells_per_chunk=24)
    killed: list[str] = []
    stop = threading.Event()

    with open_client(EngineSettings(scheduler=cluster.address)) as client:
        pid_of = client.run(os.getpid)
        pids = {
            info["name"]: (addr, pid_of[addr])
            for addr, info in client.scheduler_info()["workers"].items()
        }

        def kill_the_first_busy_worker() -> None:
            while not stop.is_set():
                busy = client.processing()
                for name, (addr, pid) in pids.items():
                    if busy.get(addr):  # chunks of ours are running or queued there
                        os.kill(pid, signal.SIGKILL)
                        cluster.workers[name].wait(timeout=10)
                        killed.append(addr)
                        return
                time.sleep(0.002)

        watcher = threading.Thread(target=kill_the_first_busy_worker, daemon=True)
        watcher.start()
        try:
            out = prune_network(target, settings, tmp_path, client=client)
        finally:
            stop.set()
            watcher.join(timeout=15)
    assert killed, "no worker was busy to kill"
    survivors = set(out.batch.workers_seen) - set(killed)
    assert survivors  # the other worker finished the killed one's chunks
    after_kill = [s for s in out.batch.stats.values() if s.worker not in killed]
    assert len(after_kill) >= len(out.batch.stats) // 2
    ref = prune_to_target(target, settings.n, seed=settings.seed)
    for a, b in zip(out.ticket.network.layers, ref.network.layers, strict=True):
        np.testing.assert_array_equal(a.weights, b.weights)
    assert out.ticket.layers == ref.layers
