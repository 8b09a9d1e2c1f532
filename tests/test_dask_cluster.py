"""The grid on a real Dask cluster: a `dask scheduler` and `dask worker` processes started here, `bench run --backend
dask --scheduler ...` as its own process. Same rows as the local backend; a worker killed mid-cell (the cell resumes
from its checkpoint on the other worker), a killed driver (the rerun recomputes nothing), an unreachable scheduler
(one error line); cuda cells only go to workers with the GPU resource; two drivers on one --out compute every cell
once (claims, bench/claims.py)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from bench import claims
from bench.store import ResultsStore
from tests.grid_helpers import FAST_SETS, MEAN_PLUGIN, mean_plugin  # noqa: F401  (fixture)

pytest.importorskip("distributed", reason="the dask extra is part of the test install: pip install -e '.[test]'")

REPO = Path(__file__).resolve().parents[1]
STEP_PLUGIN = str(REPO / "tests" / "plugins" / "step_model.py")
ENV = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
# Not results: timings, and the code commit a process read at start (a commit landing mid-test changes it)
TIMING = {"train_s", "sample_s", "eval_s", "img_per_s", "peak_rss_mb", "commit"}


# ------------------------------------------------------------------------------------------------ the cluster


@contextlib.contextmanager
def refused_port():
    """A local port that refuses connections while the block runs: bound here and never listened on, so no other
    process (a scheduler of a test running beside this one) can take it meanwhile."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def _start(argv: list[str], log: Path) -> subprocess.Popen:
    fh = open(log, "wb")
    try:
        return subprocess.Popen(argv, env=ENV, cwd=log.parent, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    finally:
        fh.close()


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(timeout=30)


class Cluster:
    """A scheduler and workers as separate OS processes (new sessions), each a process group killed at the end."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.address = ""  # set by start(): the scheduler takes a free port itself, never one chosen here and freed
        self.scheduler: subprocess.Popen | None = None
        self.workers: dict[str, subprocess.Popen] = {}

    def start(self, workers: dict[str, list[str]]) -> Cluster:
        """``workers``: name -> extra `dask worker` arguments (e.g. ["--resources", "GPU=1"])."""
        self.folder.mkdir(parents=True, exist_ok=True)
        info = self.folder / "scheduler.json"
        self.scheduler = _start([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                                 "--scheduler-file", str(info), "--no-dashboard"],
                                self.folder / "scheduler.log")  # fmt: skip
        self.address = self.wait_for_address(info)
        for name, extra in workers.items():
            self.workers[name] = _start([sys.executable, "-m", "dask", "worker", self.address, "--name", name,
                                         "--nthreads", "1", "--nworkers", "1", "--no-nanny", "--no-dashboard", *extra],
                                        self.folder / f"worker-{name}.log")  # fmt: skip
        self.wait_for_workers(len(workers))
        return self

    def wait_for_address(self, info: Path, timeout: float = 120) -> str:
        """The address the scheduler wrote to its --scheduler-file once it listens."""
        deadline = time.time() + timeout
        while time.time() < deadline and self.scheduler.poll() is None:
            try:
                return json.loads(info.read_text(encoding="utf-8"))["address"]
            except (OSError, ValueError, KeyError):  # not written yet, or written halfway
                time.sleep(0.2)
        raise AssertionError(f"the Dask scheduler wrote no address to {info} (exit code {self.scheduler.poll()}):\n"
                             f"{self.logs()}")  # fmt: skip

    def client(self):
        from distributed import Client

        return Client(self.address, timeout=30, set_as_default=False)

    def wait_for_workers(self, n: int, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                with self.client() as c:
                    c.wait_for_workers(n, timeout=max(1.0, deadline - time.time()))
                    return
            except (OSError, TimeoutError):
                time.sleep(0.5)
        raise AssertionError(f"{n} Dask workers did not join in {timeout} s:\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.folder.glob("*.log"))

    def stop(self) -> None:
        for proc in [*self.workers.values(), *([self.scheduler] if self.scheduler else [])]:
            _kill(proc)


@pytest.fixture
def cluster_factory(tmp_path):
    started: list[Cluster] = []

    def make(**workers: list[str]) -> Cluster:
        c = Cluster(tmp_path / f"cluster{len(started)}")
        started.append(c)
        return c.start(workers)

    yield make
    for c in started:
        c.stop()


@pytest.fixture(scope="module")
def gpu_and_cpu_cluster(tmp_path_factory):
    """Worker "gpu" offers the GPU resource (no CUDA behind it: nothing here runs CUDA), worker "cpu" none."""
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield c.start({"gpu": ["--resources", "GPU=1"], "cpu": []})
    finally:
        c.stop()


# ------------------------------------------------------------------------------------------------ bench run


def bench_args(out: Path, *extra: str, plugin: str = MEAN_PLUGIN, model: str = "test_mean",
               ratios: str = "0,30") -> list[str]:  # fmt: skip
    args = [sys.executable, "-m", "bench.cli", "run", "--plugin", plugin, "--profile", "smoke", "--models", model,
            "--datasets", "facemask", "--ratios", ratios, "--out", str(out), "--no-report", *extra]  # fmt: skip
    for s in FAST_SETS:
        args += ["--set", s]
    return args


def step_sets(marker: Path, steps: int, step_s: float) -> list[str]:
    return ["--set", "run.checkpoint_every_s=0.001", "--set", f"models.test_steps.steps={steps}",
            "--set", f"models.test_steps.step_s={step_s}", "--set", f"models.test_steps.marker={marker}"]  # fmt: skip


def run_bench(args: list[str], timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=timeout, cwd=cwd)


def rows(out: Path) -> list[dict]:
    frame = pd.read_csv(out / "runs.csv").astype(object)
    frame = frame.where(frame.notna(), None)  # NaN != NaN
    return sorted(({k: v for k, v in r.items() if k not in TIMING} for r in frame.to_dict("records")),
                  key=lambda r: (r["dataset"], r["model"], r["ratio"], r["seed"]))  # fmt: skip


def marker_lines(marker: Path) -> list[tuple[int, str, str, int]]:
    if not marker.exists():
        return []
    out = []
    for line in marker.read_text(encoding="utf-8").splitlines():
        pid, event, folder, step = line.split(" ")
        out.append((int(pid), event, folder, int(step)))
    return out


# ------------------------------------------------------------------------------------------------ tests


@pytest.mark.slow
def test_grid_on_a_dask_cluster_matches_the_local_backend(tmp_path, gpu_and_cpu_cluster):
    """Scheduler and two workers as processes; the driver's ETA lines and the workers' cell lines show on its
    stderr; the rows are the local backend's, minus timings. The driver runs elsewhere than the workers, with a
    relative --out and --plugin: the workers get them as absolute paths."""
    local = run_bench(bench_args(tmp_path / "local"))
    assert local.returncode == 0, local.stderr[-3000:]
    relative = os.path.relpath(MEAN_PLUGIN, tmp_path)
    dask = run_bench(bench_args(Path("dask"), "--backend", "dask", "--scheduler", gpu_and_cpu_cluster.address,
                                plugin=relative), cwd=tmp_path)  # fmt: skip
    assert dask.returncode == 0, dask.stderr[-3000:] + gpu_and_cpu_cluster.logs()
    assert rows(tmp_path / "dask") == rows(tmp_path / "local")
    assert len(rows(tmp_path / "dask")) == 2 and len(ResultsStore(tmp_path / "dask").scan()[0]) == 2
    err = dask.stderr
    assert "cell 1/2 finished: facemask/test_mean/" in err and "cell 2/2 finished" in err and "ETA" in err
    assert f"on the Dask scheduler {gpu_and_cpu_cluster.address} (2 worker(s) now)" in err
    assert "facemask/test_mean/r30/s0 [127.0.0.1:" in err and "]: fit on 57 training images" in err, err  # forwarded
    assert not list((tmp_path / "dask").glob("cells/**/" + claims.CLAIM_NAME)), "claims are removed when cells end"


def test_the_resources_a_job_asks_for_follow_its_device():
    """A cell whose profile trains on CUDA (cuda or cuda:N) asks for one GPU; CPU cells and detector tables none."""
    from dataclasses import replace

    from bench import api, detector_table, grid

    _, planned = api.plan(["gan"], ["facemask"], [0], [0], profile="smoke", out="unused", check_out=False)
    cpu_job = planned[0].job
    cuda_job = replace(cpu_job, profile={**cpu_job.profile, "run": {**cpu_job.profile["run"], "device": "cuda"}})
    cuda1_job = replace(cpu_job, profile={**cpu_job.profile, "run": {**cpu_job.profile["run"], "device": "cuda:1"}})
    assert grid.dask_resources(cpu_job) is None
    assert grid.dask_resources(cuda_job) == grid.dask_resources(cuda1_job) == {"GPU": 1}
    table = detector_table.TableJob("unused", cuda_job.profile, "facemask", 30.0, 0, None, [])
    assert grid.dask_resources(table) is None


class _Recording:
    """A Dask client that records each submit's key and resources (and can hide the workers' resources)."""

    def __init__(self, client, hide_resources: bool = False):
        self.client, self.hide, self.submitted = client, hide_resources, []

    def submit(self, *args, **kwargs):
        self.submitted.append((kwargs["key"], kwargs.get("resources")))
        return self.client.submit(*args, **kwargs)

    def scheduler_info(self):
        info = self.client.scheduler_info()
        if self.hide:
            info = {**info, "workers": {a: {**w, "resources": {}} for a, w in info["workers"].items()}}
        return info

    def __getattr__(self, name):
        return getattr(self.client, name)


class _Notes:
    def __init__(self):
        self.lines = []

    def note(self, message, phase=None):
        self.lines.append(message)


@pytest.mark.slow
@pytest.mark.usefixtures("mean_plugin")
def test_the_driver_sends_cuda_cells_to_gpu_workers_only(tmp_path, gpu_and_cpu_cluster):
    """grid's Dask round on the real cluster: a cell whose profile says cuda is submitted with {"GPU": 1} and runs on
    the GPU worker; a CPU cell with none. The cells are finished beforehand, so the workers only read their records
    (no CUDA needed); with no GPU worker in sight, the driver says the cuda cells wait for one."""
    from dataclasses import replace

    from distributed import get_task_stream

    from bench import grid
    from tests.grid_helpers import run_grid

    _, planned = run_grid(tmp_path / "out", ["test_mean"], ratios=(0,))
    cpu_job = planned[0].job
    cuda_job = replace(cpu_job, profile={**cpu_job.profile, "run": {**cpu_job.profile["run"], "device": "cuda"}})
    spec = grid.GridSpec(None, tmp_path / "out", [], [], [], [], scheduler=gpu_and_cpu_cluster.address,
                         backend="dask")  # fmt: skip
    with gpu_and_cpu_cluster.client() as c:
        names = {a: w["name"] for a, w in c.scheduler_info()["workers"].items()}
        for hide in (False, True):
            client, notes = _Recording(c, hide), _Notes()
            with get_task_stream(client=c) as stream:
                jobs = [cuda_job, cpu_job] * 4
                got = list(grid._dask_round(client, spec, jobs, notes, claims.Owner.this_run()))
            assert [r.config_digest for r in got] == [cpu_job.identity.config_digest] * 8
            assert [r for _, r in client.submitted] == [{"GPU": 1}, None] * 4
            ran_on = {t["key"]: names[t["worker"]] for t in stream.data}
            assert {ran_on[k] for k, r in client.submitted if r} == {"gpu"}, ran_on
            assert {ran_on[k] for k, r in client.submitted if not r} <= {"gpu", "cpu"}
            waiting = [line for line in notes.lines if "no Dask worker offers the GPU resource" in line]
            assert len(waiting) == (1 if hide else 0), notes.lines


@pytest.mark.slow
def test_a_worker_killed_mid_cell_resumes_the_cell_from_its_checkpoint(tmp_path, cluster_factory):
    """kill -9 of the worker running a cell: Dask sends the cell to the other worker, which resumes it from the
    checkpoint (history: resumed_from > 0); every cell is in runs.csv once."""
    cluster = cluster_factory(a=[], b=[])
    marker, out = tmp_path / "marker.txt", tmp_path / "out"
    args = bench_args(out, "--backend", "dask", "--scheduler", cluster.address, *step_sets(marker, 12, 0.5),
                      plugin=STEP_PLUGIN, model="test_steps")  # fmt: skip
    driver = subprocess.Popen(args, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)  # fmt: skip
    try:
        deadline, victim = time.time() + 180, None
        while time.time() < deadline and victim is None:
            for pid, event, folder, step in marker_lines(marker):
                if event == "step" and step >= 4:
                    victim = (pid, folder, step)
                    break
            time.sleep(0.1)
        assert victim is not None, "no cell reached step 4:\n" + cluster.logs()
        pid, folder, _ = victim
        name = next(n for n, p in cluster.workers.items() if p.pid == pid)
        _kill(cluster.workers[name])
        killed_at = max(s for p, e, f, s in marker_lines(marker) if p == pid and f == folder)
        rows_at_kill = len(pd.read_csv(out / "runs.csv")) if (out / "runs.csv").exists() else 0
        stdout, stderr = driver.communicate(timeout=300)
    finally:
        _kill(driver)
    assert driver.returncode == 0, stderr[-3000:] + cluster.logs()
    history = json.loads((Path(folder) / "metrics.json").read_text())["history"]
    assert 0 < history["resumed_from"] <= killed_at, (history, killed_at)
    fits = [(p, s) for p, e, f, s in marker_lines(marker) if e == "fit" and f == folder]
    assert fits[0] == (pid, 0) and fits[-1][1] == history["resumed_from"] and fits[-1][0] != pid, fits
    frame = pd.read_csv(out / "runs.csv")
    assert sorted(frame.ratio) == [0, 30], frame  # no row lost or written twice
    records, problems = ResultsStore(out).scan()
    assert len(records) == 2 and not problems
    print(
        f"killed worker {name} (pid {pid}) in {folder} at step {killed_at}; the cell resumed from step "
        f"{history['resumed_from']} on the other worker; runs.csv rows: {rows_at_kill} at the kill, {len(frame)} at the end"
    )
    print("\n".join(line[:160] for line in stderr.splitlines() if "/s0" in line))


@pytest.mark.slow
def test_a_killed_driver_is_rerun_without_recomputing_finished_cells(tmp_path, cluster_factory):
    """kill -9 of `bench run` mid-grid; the same command again finishes the grid; finished cells keep their
    done.json, and no cell is fitted twice (a cell a worker was still running is waited for, not started again)."""
    cluster = cluster_factory(a=[], b=[])
    marker, out = tmp_path / "marker.txt", tmp_path / "out"
    args = bench_args(out, "--backend", "dask", "--scheduler", cluster.address, *step_sets(marker, 4, 0.5),
                      plugin=STEP_PLUGIN, model="test_steps", ratios="0,10,20,30")  # fmt: skip
    driver = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)  # fmt: skip
    results = ResultsStore(out)
    try:
        deadline = time.time() + 180
        while time.time() < deadline and len(results.scan()[0]) < 2:
            time.sleep(0.1)
    finally:
        _kill(driver)
    finished = {r.config_digest: results.cell_folder(r.cell, r.config_digest) / "done.json" for r in results.scan()[0]}
    stamps = {d: p.stat().st_mtime_ns for d, p in finished.items()}
    assert 2 <= len(finished) < 4, "the kill should land mid-grid"
    indexed = len(pd.read_csv(out / "runs.csv")) if (out / "runs.csv").exists() else 0
    again = run_bench(args)
    assert again.returncode == 0, again.stderr[-3000:] + cluster.logs()
    print(f"driver killed with {len(finished)} cells finished ({indexed} in runs.csv); the rerun said:")
    print("\n".join(line for line in again.stderr.splitlines() if "cell" in line))
    records, problems = results.scan()
    assert sorted(r.ratio for r in records) == [0, 10, 20, 30] and not problems
    for digest, path in finished.items():
        assert path.stat().st_mtime_ns == stamps[digest], f"finished cell {path.parent} was recomputed"
    fits = Counter(f for p, e, f, s in marker_lines(marker) if e == "fit" and s == 0)
    assert len(fits) == 4 and set(fits.values()) == {1}, fits
    listed = pd.read_csv(out / "runs.csv")  # a cell that finished after the killed driver's last index write is
    assert listed.config_digest.is_unique and sorted(listed.ratio) == [0, 10, 20, 30], listed  # listed by the rerun


@pytest.mark.slow
def test_an_unreachable_scheduler_is_one_error_line(tmp_path):
    with refused_port() as port:  # nothing listens there
        t0 = time.monotonic()
        r = run_bench(bench_args(tmp_path / "out", "--backend", "dask", "--scheduler", f"tcp://127.0.0.1:{port}"))
        took = time.monotonic() - t0
    assert r.returncode == 2, r.stderr[-3000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}"), r.stderr[-3000:]
    assert "dask scheduler" in last and "--scheduler" in last
    assert "Traceback" not in r.stderr
    assert took < 120


@pytest.mark.slow
def test_a_scheduler_lost_mid_grid_is_one_error_line(tmp_path, cluster_factory):
    cluster = cluster_factory(a=[])
    marker, out = tmp_path / "marker.txt", tmp_path / "out"
    args = bench_args(out, "--backend", "dask", "--scheduler", cluster.address, *step_sets(marker, 40, 0.5),
                      plugin=STEP_PLUGIN, model="test_steps")  # fmt: skip
    driver = subprocess.Popen(args, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)  # fmt: skip
    try:
        deadline = time.time() + 180
        while time.time() < deadline and not marker_lines(marker):
            time.sleep(0.1)
        _kill(cluster.scheduler)
        _, err = driver.communicate(timeout=120)
    finally:
        _kill(driver)
    assert driver.returncode == 2, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: lost the Dask scheduler {cluster.address} while running "), err[-3000:]
    assert "rerun the same command" in last and "Traceback" not in err, err[-3000:]


@pytest.mark.slow
def test_two_drivers_on_one_out_compute_every_cell_once(tmp_path):
    """Two `bench run` started together on one --out (one job each, so they reach the cells at about the same time):
    every cell is fitted once (the plug-in marks each fit), both finish and report every cell, no claim is left."""
    marker, out = tmp_path / "marker.txt", tmp_path / "out"
    args = bench_args(out, *step_sets(marker, 5, 1.0), plugin=STEP_PLUGIN, model="test_steps", ratios="0,10,20,30")
    drivers = [subprocess.Popen(args, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True) for _ in range(2)]  # fmt: skip
    try:
        outs = [d.communicate(timeout=300) for d in drivers]
    finally:
        for d in drivers:
            _kill(d)
    for d, (_, err) in zip(drivers, outs):
        assert d.returncode == 0, err[-3000:]
    fits = Counter(f for p, e, f, s in marker_lines(marker) if e == "fit")
    assert len(fits) == 4 and set(fits.values()) == {1}, fits
    both = "\n".join(err for _, err in outs)
    assert "left to that run" in both, both[-3000:]
    for stdout, _ in outs:  # each driver's end-of-run table has every ratio
        assert "r = 0 %" in stdout and "r = 30 %" in stdout, stdout
    records, problems = ResultsStore(out).scan()
    assert sorted(r.ratio for r in records) == [0, 10, 20, 30] and not problems
    listed = pd.read_csv(out / "runs.csv")  # the two drivers took turns writing it: no line lost, none twice
    assert listed.config_digest.is_unique and sorted(listed.ratio) == [0, 10, 20, 30], listed
    assert not list(out.glob("cells/**/" + claims.CLAIM_NAME))


# ------------------------------------------------------------------------------------------------ claims


def test_a_live_claim_blocks_another_run_and_is_released(tmp_path):
    mine, other = claims.Owner.this_run(), claims.Owner.this_run()
    held = claims.take(tmp_path, mine)
    assert isinstance(held, claims.Claim)
    with held:
        busy = claims.take(tmp_path, other)
        assert isinstance(busy, claims.Busy) and f"pid {os.getpid()}" in busy.line()
        assert claims.holder(tmp_path, other) is not None
        assert claims.holder(tmp_path, mine) is None  # the same run may take it again (its worker died)
    assert not claims.path(tmp_path).exists()
    assert isinstance(claims.take(tmp_path, other), claims.Claim)


def test_a_dead_holder_or_a_stopped_heartbeat_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    claims.path(tmp_path).write_text(json.dumps({"nonce": "x", "run": "r", "host": socket.gethostname(),
                                                 "pid": dead.pid, "time": time.time()}))  # fmt: skip
    got = claims.take(tmp_path, claims.Owner.this_run())
    assert isinstance(got, claims.Claim)
    got.release()
    claims.path(tmp_path).write_text(json.dumps({"nonce": "y", "run": "r", "host": "another-host", "pid": 1}))
    assert isinstance(claims.take(tmp_path, claims.Owner.this_run()), claims.Busy)  # fresh, on another host
    old = time.time() - claims.STALE_S - 5
    os.utime(claims.path(tmp_path), (old, old))
    got = claims.take(tmp_path, claims.Owner.this_run())
    assert isinstance(got, claims.Claim)
    assert json.loads(claims.path(tmp_path).read_text())["pid"] == os.getpid()
    got.release()
    assert not list(tmp_path.iterdir())  # no temporary or moved-aside files left


def test_the_heartbeat_keeps_a_claim_fresh(tmp_path):
    held = claims.take(tmp_path, claims.Owner.this_run(), heartbeat_s=0.1)
    old = time.time() - 1000
    with held:
        os.utime(claims.path(tmp_path), (old, old))
        time.sleep(0.5)
        assert time.time() - claims.path(tmp_path).stat().st_mtime < 5
