"""`bioflow sweep`: grids of tiny runs on a local Ray with 2 CPUs, retries, resume, publishing, bad input."""
import contextlib
import json
import os
import pathlib
import secrets
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bioflow import zoo
from bioflow.cli import main
from bioflow.sweep import Sweep
from bioflow.training import rundir
from helpers import SUBPROCESS_ENV, TINY_TRAIN

#: The shipped CPU-sized grid, relabelled; each test sets its own axes and trials after it.
TINY_SWEEP = "include 'tiny/sweep.gin'\ntrain.label = 'grid'\n"


def ray_children():
    """This process's descendants that belong to Ray (read from /proc)."""
    parents = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parents[int(stat.parent.name)] = (int(fields[1]), cmdline)
    mine, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, (ppid, _) in parents.items() if ppid in frontier} - mine
        mine |= frontier
    return [parents[pid][1][:80] for pid in mine if "ray" in parents[pid][1]]


@pytest.fixture
def no_ray_left():
    """Shut Ray down after the test, and check that no Ray process is left behind."""
    yield
    import ray

    if ray.is_initialized():
        ray.shutdown()
    deadline = time.time() + 20
    while ray_children() and time.time() < deadline:
        time.sleep(0.5)
    assert ray_children() == []


def sweep_file(tmp_path, axes, trials=1, extra=""):
    path = tmp_path / "sweep.gin"
    path.write_text(TINY_SWEEP + extra + f"\nSweep.axes = {axes}\nSweep.trials = {trials}\n")
    return path


def invoke(*args):
    return CliRunner().invoke(main, ["sweep", *map(str, args)])


def test_cells_are_the_product_of_the_axes_times_the_trials():
    grid = Sweep({"build_model.filter_bank": ["gabor", "dog"], "build_model.base": ["vgg16", "allcnn", "vgg19"]}, 2)
    cells = grid.cells()
    assert len(cells) == 12 and len({c.id for c in cells}) == 12
    assert cells[0].gin_params() == ["build_model.filter_bank = 'gabor'", "build_model.base = 'vgg16'",
                                     "train.trial = 1"]
    assert Sweep({"build_model.bottleneck": [None, 2]}).cells()[0].gin_params()[0] == "build_model.bottleneck = None"


def test_the_shipped_grids(tmp_path):
    result = invoke("--gin", "evans2022/sweep", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("60 cells (3 trials x 20 combinations)")
    assert "build_model.filter_bank = 'combined-trim'" in result.output
    result = invoke("--gin", "seed_study/sweep", "--dry-run")
    assert result.exit_code == 0 and result.output.startswith("12 cells (3 trials x 4 combinations)")
    from bioflow.sweep import cells

    sweep, files = cells.load(["seed_study/sweep"])
    names = {pathlib.Path(p).name for p in cells.run_dirs(sweep.cells(), files, [], str(tmp_path), "s").values()}
    # The four seed runs of the follow-up study, each three times.
    assert names == {f"{m}_t{t}_s42" for m in ("vgg16_gabor", "vgg16_gabor_rib2", "vgg16_gabor_convlstm",
                                               "vgg16_gabor_rib2_convlstm") for t in (1, 2, 3)}


@pytest.mark.slow
def test_a_2x2_grid_runs_publishes_and_a_rerun_trains_nothing(tmp_path, monkeypatch, no_ray_left):
    monkeypatch.setenv("BIOFLOW_ZOO", str(tmp_path / "zoo"))
    # Without --address the sweep starts its own Ray, even when RAY_ADDRESS names a cluster (here
    # one that does not exist: joining it would fail).
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:9")
    axes = {"build_model.filter_bank": ["original", "low-pass"]}
    path = sweep_file(tmp_path, axes, trials=2)
    workdir = tmp_path / "runs"
    cpus = max(1, (os.cpu_count() or 2) // 2)  # two cells at a time: 1 CPU each on 2 cores
    result = invoke("--gin", path, "--workdir", workdir, "--cpus-per-run", cpus, "--publish", "grid")
    assert result.exit_code == 0, result.output
    assert f"Ray: a local instance with {os.cpu_count()} CPUs" in result.output
    table = pd.read_csv(workdir / "grid" / "sweep.csv")
    assert len(table) == 4 and set(table["status"]) == {"complete"} and set(table["attempts"]) == {1}
    assert result.output.count("] running  trial") == 4 and result.output.count("] complete trial") == 4
    runs = sorted(pathlib.Path(p).name for p in table["run_dir"])
    assert runs == ["vgg16_lowpass_t1_s42", "vgg16_lowpass_t2_s42", "vgg16_original_t1_s42", "vgg16_original_t2_s42"]
    for run in table["run_dir"]:
        assert json.loads((pathlib.Path(run) / "run.json").read_text())["status"] == "complete"
    # Published concurrently, one version per trial, under the zoo lock.
    local = zoo.Zoo(tmp_path / "zoo")
    assert local.names() == ["grid-low-pass", "grid-original"]
    assert all(local.versions(n) == ["1.0.0", "1.1.0"] for n in local.names())
    assert all(local.verify(f"{n}@{v}") == [] for n in local.names() for v in local.versions(n))
    assert sorted(table["zoo_entry"]) == sorted(f"{n}@{v}" for n in local.names() for v in local.versions(n))
    catalogue = json.loads((tmp_path / "zoo" / "catalogue.json").read_text())
    assert {n: sorted(e["versions"]) for n, e in catalogue["entries"].items()} == \
        {n: local.versions(n) for n in local.names()}

    # `bioflow report --label grid` sees the grid as two models of two trials each.
    from bioflow.report import collect

    models = collect.collect(tmp_path / "zoo", label="grid").models
    assert sorted(zip(models["Model"], models["Trials"])) == [("vgg16_lowpass", 2)] * 2 + [("vgg16_original", 2)] * 2

    # Ray reused a worker process for a later cell: that cell trained exactly as the same `bioflow
    # train` run in a fresh process with the same TensorFlow threads.
    cells = {c.id: c for c in Sweep(axes, 2).cells()}
    marks = sorted((workdir / "grid" / ".sweep" / f"{c}.json" for c in cells), key=lambda m: m.stat().st_mtime_ns)
    by_pid = {}  # the cells each worker process started, in order
    for mark in marks:
        by_pid.setdefault(json.loads(mark.read_text())["pid"], []).append(mark.stem)
    assert len(by_pid) < 4, by_pid  # some worker ran two cells
    second = next(ran[1] for ran in by_pid.values() if len(ran) > 1)
    args = [sys.executable, "-m", "bioflow.cli", "train", "--gin", str(path), "--workdir", str(tmp_path / "fresh")]
    for binding in cells[second].gin_params():
        args += ["--gin-param", binding]
    subprocess.run(args, check=True, capture_output=True, env=dict(SUBPROCESS_ENV, TF_NUM_INTRAOP_THREADS=str(cpus),
                                                                    TF_NUM_INTEROP_THREADS=str(max(2, cpus))))
    reused = pathlib.Path(table.set_index("cell").loc[second, "run_dir"])
    fresh = tmp_path / "fresh" / "grid" / reused.name
    ours, theirs = (pd.read_csv(run / "history.csv") for run in (reused, fresh))
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-6, err_msg=key)

    history = {run: (pathlib.Path(run) / "history.csv").stat().st_mtime_ns for run in table["run_dir"]}
    result = invoke("--gin", path, "--workdir", workdir, "--publish", "grid")
    assert result.exit_code == 0, result.output
    assert "4 cells, 4 already complete, 0 to run" in result.output
    assert {run: (pathlib.Path(run) / "history.csv").stat().st_mtime_ns for run in table["run_dir"]} == history
    assert all(local.versions(n) == ["1.0.0", "1.1.0"] for n in local.names())  # nothing published twice
    result = invoke("--gin", path, "--workdir", workdir, "--status")
    assert result.exit_code == 0 and "4 cells: 4 complete" in result.output


@pytest.mark.slow
def test_a_killed_worker_is_retried_and_a_failing_cell_is_not(tmp_path, no_ray_left):
    """One sweep, two cells: the original's worker is killed mid-run (retried, and the run resumes);
    the low-pass cell fails as it builds (a sigma whose square underflows gives NaN kernels, refused
    by the bank on every CPU), so it is marked failed, not retried, and does not stop the other."""
    axes = {"build_model.filter_bank": ["original", "low-pass"]}
    path = sweep_file(tmp_path, axes, extra="Fit.epochs = 3\nSynthetic.n_train = 512\nLowPass.sigmas = [1e-200]\n")
    workdir = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "bioflow.cli", "sweep", "--gin", str(path), "--workdir",
                             str(workdir), "--max-failures", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=SUBPROCESS_ENV)
    history = workdir / "grid" / "vgg16_original_t1_s42" / "history.csv"
    original = next(c for c in Sweep(axes).cells() if c.bindings[0][1] == "original")
    deadline = time.time() + 300
    while time.time() < deadline and len(rundir.read_history(history)) < 1 and proc.poll() is None:
        time.sleep(0.1)
    worker = json.loads((workdir / "grid" / ".sweep" / f"{original.id}.json").read_text())["pid"]
    os.kill(worker, signal.SIGKILL)
    output = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, output[-3000:]
    assert [r["epoch"] for r in rundir.read_history(history)] == [0, 1, 2]  # each epoch exactly once
    table = pd.read_csv(workdir / "grid" / "sweep.csv").set_index("build_model.filter_bank")
    assert table.loc["original", "status"] == "complete" and table.loc["original", "attempts"] == 2, output[-2000:]
    assert "(attempt 2)" in output
    assert table.loc["low-pass", "status"] == "failed" and table.loc["low-pass", "attempts"] == 1  # not retried
    assert "LowPass: the kernel for sigmas=1e-200 has 49 NaN or infinite values of 49 (ksize 7)" in \
        table.loc["low-pass", "error"]
    assert "1 complete, 1 failed" in output


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_cluster(tmp_path):
    """A one-node Ray cluster started with `ray start --head` (token authentication on, 1 CPU):
    ``(address, environment with its token)``. Killed with its whole process group at the end."""
    port = free_port()
    env = dict(SUBPROCESS_ENV, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    log = tmp_path / "head.log"
    with open(log, "w") as out:
        head = subprocess.Popen([str(pathlib.Path(sys.executable).with_name("ray")), "start", "--head", "--block",
                                 "--num-cpus", "1", "--port", str(port), "--ray-client-server-port", str(free_port()),
                                 "--include-dashboard", "false", "--disable-usage-stats"],
                                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.time() + 90
        while "Ray runtime started" not in log.read_text() and head.poll() is None and time.time() < deadline:
            time.sleep(0.5)
        assert "Ray runtime started" in log.read_text(), log.read_text()[-2000:]
        yield f"127.0.0.1:{port}", env
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)  # SIGTERM drains for 30 s
        head.wait(timeout=30)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                os.killpg(head.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("processes of the `ray start` cluster are still running")


@pytest.mark.slow
def test_a_ray_start_cluster_is_joined_by_address_with_its_token(tmp_path, no_ray_left, ray_cluster):
    address, env = ray_cluster
    path = sweep_file(tmp_path, {"build_model.filter_bank": ["original"]})

    def sweep(workdir, env, *args):
        return subprocess.Popen([sys.executable, "-m", "bioflow.cli", "sweep", "--gin", str(path), "--workdir",
                                 str(tmp_path / workdir), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=env)

    # Two sweeps at once (each mostly waits for Ray): with the cluster's token, and without it.
    joined = sweep("joined", env, "--address", address)
    no_token = sweep("refused", {k: v for k, v in env.items() if not k.startswith("RAY_AUTH")}, "--address", address)
    output = joined.communicate(timeout=300)[0]
    assert f"Ray: joined the cluster at {address} (1 node, 1 CPUs, 0 GPUs)." in output, output[-3000:]
    assert joined.returncode == 0 and "1 cells: 1 complete" in output
    # Without the token, joining fails with a message that says how to give it.
    output = no_token.communicate(timeout=300)[0]
    assert no_token.returncode == 2 and f"Cannot join the Ray cluster at {address}" in output, output[-3000:]
    assert "set RAY_AUTH_MODE=token" in output and not list((tmp_path / "refused").rglob("run.json"))


#: The multi-worker run of both routes: the chief also evaluates a small suite and publishes.
MULTI_WORKER = ["Fit.batch_size = 32", "train.skip_test = False", "evaluate.n_images = 32",
                "NoiseSuite.noises = ['invert']"]


def by_hand_multi_worker_run(tmp_path):
    """The fallback route: two `bioflow train` processes, each started with its own TF_CONFIG.

    Each gets the TensorFlow threads of a sweep's worker with one CPU (one intra-op, two inter-op):
    float sums follow the intra-op thread count, and with two the first epoch's loss differs by 1e-3.
    """
    workers = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    args = ["train", "--workdir", str(tmp_path / "runs"), "--publish", "mwms", "--zoo", str(tmp_path / "zoo")]
    for binding in [*TINY_TRAIN, "Execution.strategy = 'multi_worker'", *MULTI_WORKER]:
        args += ["--gin-param", binding]
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        procs.append(subprocess.Popen([sys.executable, "-m", "bioflow.cli", *args], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True,
                                      env=dict(SUBPROCESS_ENV, TF_CONFIG=tf_config, TF_NUM_INTRAOP_THREADS="1",
                                               TF_NUM_INTEROP_THREADS="2")))
    try:
        outputs = [p.communicate(timeout=420)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    return outputs


def only_the_chief_wrote(root, zoo_root):
    """The one gabor run directory under ``root`` (a complete 2-replica run, evaluated, published once)."""
    runs = list(root.rglob("vgg16_gabor*/run.json"))
    assert len(runs) == 1  # only the chief writes a run directory
    info = json.loads(runs[0].read_text())
    assert info["status"] == "complete" and info["replicas"] == 2 and info["epochs_completed"] == 2
    robustness = json.loads((runs[0].parent / "results" / "robustness.json").read_text())
    assert robustness["n_images"] == 32 and set(robustness["auc"]) == {"invert"}
    assert sorted(p.parent.name for p in zoo_root.rglob("card.json")) == ["1.0.0"]
    return runs[0].parent


@pytest.mark.slow
def test_a_two_worker_cell_on_ray_train_matches_the_by_hand_tf_config_run(tmp_path, monkeypatch, no_ray_left):
    outputs = by_hand_multi_worker_run(tmp_path / "by_hand")
    by_hand = only_the_chief_wrote(tmp_path / "by_hand" / "runs", tmp_path / "by_hand" / "zoo")
    assert "Published to the zoo" in outputs[0] and "Published" not in outputs[1]
    chief, worker = ([line.split(" - ")[2:] for line in out.splitlines() if line.startswith("Epoch ")]
                     for out in outputs)
    assert chief == worker and len(chief) == 2

    # The same run as a sweep's cell on 2 workers, next to a cell that fails as it builds (a low-pass
    # sigma whose square underflows): that one fails on both workers and is not retried.
    path = sweep_file(tmp_path, {"build_model.filter_bank": ["gabor", "low-pass"]},
                      extra="Fit.epochs = 2\nLowPass.sigmas = [1e-200]\n" + "\n".join(MULTI_WORKER) + "\n")
    monkeypatch.setenv("BIOFLOW_ZOO", str(tmp_path / "ray" / "zoo"))
    result = invoke("--gin", path, "--workdir", tmp_path / "ray" / "runs", "--workers-per-run", 2, "--publish", "mwms")
    assert result.exit_code == 0, result.output
    on_ray = only_the_chief_wrote(tmp_path / "ray" / "runs", tmp_path / "ray" / "zoo")
    assert on_ray.name == by_hand.name == "vgg16_gabor_t1_s42"
    table = pd.read_csv(tmp_path / "ray" / "runs" / "grid" / "sweep.csv").set_index("build_model.filter_bank")
    row = table.loc["gabor"]
    assert row["status"] == "complete" and row["attempts"] == 1 and row["zoo_entry"] == "mwms-gabor@1.0.0"
    failed = table.loc["low-pass"]
    assert failed["status"] == "failed" and failed["attempts"] == 1, result.output[-2000:]
    assert "LowPass: the kernel for sigmas=1e-200" in failed["error"] and "1 complete, 1 failed" in result.output
    ours, theirs = (pd.read_csv(run / "history.csv") for run in (on_ray, by_hand))
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_bad_sweeps_fail_clearly(tmp_path, no_ray_left):
    path = sweep_file(tmp_path, {"train.learning_rat": [0.1]})
    for args in (["--dry-run"], ["--workdir", tmp_path / "runs"]):
        result = invoke("--gin", path, *args)
        assert result.exit_code == 2, result.output
        assert f"{path}:" in result.output and "'train.learning_rat', which gin refuses" in result.output
    path = sweep_file(tmp_path, {"build_model.base": []})
    result = invoke("--gin", path, "--dry-run")
    assert result.exit_code == 2 and "Sweep.axes['build_model.base'] must be a non-empty list" in result.output
    path = sweep_file(tmp_path, {"build_model.base": ["vgg16"]}, trials=0)
    result = invoke("--gin", path, "--dry-run")
    assert result.exit_code == 2 and "Sweep.trials must be a positive integer, got 0" in result.output
    result = invoke("--gin", path, "--workers-per-run", 0)
    assert result.exit_code == 2 and "--workers-per-run must be at least 1, got 0" in result.output
    path = sweep_file(tmp_path, {"build_model.filter_bank": ["original"]})
    result = invoke("--gin", path, "--workdir", tmp_path / "runs", "--workers-per-run", os.cpu_count() + 1)
    assert result.exit_code == 2 and f"Each cell asks for {os.cpu_count() + 1} CPUs" in result.output
    assert "but the local Ray has" in result.output
    path = sweep_file(tmp_path, {"Fit.learning_rate": [0.1, 0.2]})
    result = invoke("--gin", path, "--workdir", tmp_path / "runs")
    assert result.exit_code == 2 and "Two cells would train into the same run directory" in result.output
    start = time.time()
    path = sweep_file(tmp_path, {"build_model.filter_bank": ["original"]})
    result = invoke("--gin", path, "--workdir", tmp_path / "runs", "--address", "127.0.0.1:9")
    assert result.exit_code == 2 and "Cannot reach the Ray cluster at 127.0.0.1:9" in result.output
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        address = "ray://127.0.0.1:%d" % silent.getsockname()[1]
        result = invoke("--gin", path, "--workdir", tmp_path / "runs", "--address", address)
    assert result.exit_code == 2 and f"Cannot reach the Ray cluster at {address} (timed out)" in result.output
    assert time.time() - start < 20
    result = invoke("--status", "--workdir", tmp_path / "nowhere", "--label", "x")
    assert result.exit_code == 2 and "No sweep status in" in result.output
    assert not (tmp_path / "runs" / "grid" / "sweep.csv").exists()
