"""Running a sweep's cells as Ray tasks, from a local Ray started in-process to a cluster.

Each cell is a Ray task that runs ``bioflow train`` with the CPUs and GPUs it asks for and its
TensorFlow threads limited to its CPU share. A CPU cell may run in a worker process that ran an
earlier cell (Ray reuses idle workers, which saves importing TensorFlow again): each cell clears
gin and the Keras session and sets its own seeds, precision and determinism, so it trains exactly
as in a fresh process. A GPU cell gets a fresh process, which frees the GPU's memory. A worker
that dies (SIGKILL, a lost node) is retried by Ray up to ``max_failures`` times, and the retried
run resumes from its last checkpoint; a cell that fails by itself (an error, a NaN loss) is
marked failed and not retried.
The driver writes ``sweep.csv``/``sweep.json`` as cells start and finish.
"""
import dataclasses
import json
import os
import pathlib
import shutil
import socket
import urllib.parse

from bioflow import bindings, config
from bioflow.errors import BioflowError, user_message
from bioflow.io import atomic_write
from bioflow.sweep import status
from bioflow.sweep.grid import Sweep, check_axes

#: How long an ``--address`` may take to answer before the sweep gives up.
CONNECT_TIMEOUT = 5.0


def load(gin_files, gin_params=()):
    """``(sweep, resolved gin files)``: parse the sweep's gin files and check its axes."""
    import gin

    config.parse(gin_files, gin_params)
    resolved = [str(config.resolve_gin_file(f).resolve()) for f in gin_files]
    sweep = gin.get_configurable(Sweep)()
    check_axes(sweep, resolved)
    return sweep, resolved


def run_dirs(cells, files, gin_params, workdir, label):
    """``{cell id: run directory}``, named as ``bioflow train`` names them (the model is not built).

    Two cells that would share a run directory (an axis that changes neither the model name, the
    trial nor the seed) are an error: their runs would overwrite each other. A cell whose network
    cannot be named (a filter bank whose parameters give NaN kernels) gets None: it fails in its
    worker with that error, as any cell that fails by itself, and does not stop the others.
    """
    from bioflow.model import build_model
    from bioflow.training.rundir import run_dir

    out, owner = {}, {}
    for cell in cells:
        config.parse(files, list(gin_params) + cell.gin_params())
        seed = bindings.query("train.seed", 42)
        try:
            path = str(run_dir(workdir, label, build_model(name_only=True), cell.trial, seed))
        except BioflowError:
            out[cell.id] = None
            continue
        if path in owner:
            raise BioflowError(f"Two cells would train into the same run directory {path}: "
                               f"{_describe(owner[path])} and {_describe(cell)}. The run directory is "
                               "<model>_t<trial>_s<seed>, and these axis values change none of them: add "
                               "train.seed to the axes, or run each value under its own --label.")
        owner[path], out[cell.id] = cell, path
    return out


def _describe(cell):
    return ", ".join(f"{k} = {v!r}" for k, v in cell.bindings) + f", trial {cell.trial}"


def _is_local(address):
    """Whether ``--address`` asks for a new Ray on this machine (it is left out, or ``local``)."""
    return address in (None, "local")


def check_address(address):
    """Fail within seconds, with a clear message, when a cluster ``address`` does not answer."""
    if address == "auto" or _is_local(address):
        return
    parsed = urllib.parse.urlparse(address if "://" in address else f"ray://{address}")
    host, port = parsed.hostname, parsed.port
    if not host or not port:
        raise BioflowError(f"--address {address!r} is not HOST:PORT, ray://HOST:PORT or 'auto'.")
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT) as conn:
            _grpc_handshake(conn)
    except OSError as err:
        raise BioflowError(f"Cannot reach the Ray cluster at {address} ({err}). Start it with `ray start --head`, "
                           "check the address, or leave out --address to run on this machine.") from err


#: The HTTP/2 client preface and an empty SETTINGS frame: every gRPC server (Ray's GCS and its
#: client server are) answers with a SETTINGS frame of its own.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _grpc_handshake(conn):
    """Raise OSError unless the peer answers as a gRPC (HTTP/2) server, within the connection's timeout."""
    conn.sendall(_H2_PREFACE)
    frame = b""
    while len(frame) < 9:
        chunk = conn.recv(9 - len(frame))
        if not chunk:
            raise OSError("the connection closed: it is not a Ray (gRPC) server")
        frame += chunk
    if frame[3] != 4:  # the frame type of SETTINGS
        raise OSError("the server does not speak gRPC: it is not a Ray cluster")


def check_fits_locally(address, cpus_per_run, workers_per_run):
    """On a local Ray, a cell that asks for more CPUs than this machine has would wait forever: refuse it."""
    if not _is_local(address):
        return  # a cluster may grow (autoscaling); Ray reports what it cannot place
    needed, available = int(cpus_per_run) * int(workers_per_run), os.cpu_count() or 1
    if needed > available:
        raise BioflowError(f"Each cell asks for {needed} CPUs (--cpus-per-run {cpus_per_run} x --workers-per-run "
                           f"{workers_per_run}), but the local Ray has {available}: lower them, or give --address "
                           "to run on a cluster.")


def _import_ray():
    try:
        import ray
    except ImportError as err:
        raise BioflowError('bioflow sweep runs on Ray, which is not installed: pip install "bioflow[ray]"') from err
    return ray


def _count_attempt(attempts_path):
    """Record that a cell's worker has started once more (read by the driver's status lines)."""
    attempts = pathlib.Path(attempts_path)
    previous = json.loads(attempts.read_text()) if attempts.is_file() else {"attempts": 0}
    atomic_write(attempts, json.dumps({"attempts": previous["attempts"] + 1, "pid": os.getpid()}))


def _limit_threads(threads):
    """Give TensorFlow's kernels the cell's CPUs (intra-op threads), and its scheduler at least two
    inter-op threads: with one, a one-CPU cell's first epoch (tracing, the first steps) took 6.1 s
    instead of 3.5 s, while later epochs took the same time (tools/bench_sweep.py's cells)."""
    from bioflow import tensorflow_runtime

    tensorflow_runtime.load()  # a fresh Ray worker: TensorFlow's C++ start-up log held back
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(2, threads))


def _outcome(run):
    """What the status files record about a finished run directory."""
    run = pathlib.Path(run)
    info = json.loads((run / "run.json").read_text())
    robustness = run / "results" / "robustness.json"
    clean = json.loads(robustness.read_text()).get("clean_accuracy") if robustness.is_file() else None
    return dict(run_dir=str(run), val_accuracy=(info.get("final") or {}).get("val_accuracy"), clean_accuracy=clean)


def train_cell(gin_files, params, workdir, label, attempts_path, threads):
    """A Ray task: one ``bioflow train`` run; returns what the status files record about it."""
    _count_attempt(attempts_path)
    _limit_threads(threads)
    import keras

    from bioflow.runner import train

    keras.backend.clear_session()  # drop an earlier cell's models when Ray reuses this worker
    config.parse(gin_files, params)
    return _outcome(train(workdir=workdir, label=label))


def _train_worker(cfg):
    """Ray Train's loop on each worker of a multi-worker cell: ``bioflow train`` with ``multi_worker``.

    Ray Train has written ``TF_CONFIG``; the runner makes rank 0 the chief, which alone writes the
    run directory. A cell that fails by itself (a ``BioflowError``) is reported in the outcome file
    and returns, so Ray Train does not retry it; a dead worker raises, and Ray Train restarts them all.
    """
    os.environ.pop("TF_USE_LEGACY_KERAS", None)  # set by Ray's TensorFlow backend for tf.keras 2
    from ray import train as ray_train

    rank = ray_train.get_context().get_world_rank()
    if rank == 0:
        _count_attempt(cfg["attempts"])
    _limit_threads(cfg["threads"])
    from bioflow.runner import train

    config.parse(cfg["gin_files"], cfg["params"] + ["Execution.strategy = 'multi_worker'"])
    try:
        run = train(workdir=cfg["workdir"], label=cfg["label"])
        outcome = {"run_dir": str(run)}
    except BioflowError as err:
        outcome = {"error": user_message(err)}
    if rank == 0:
        atomic_write(cfg["outcome"], json.dumps(outcome))


def train_cell_on_workers(gin_files, params, workdir, label, attempts_path, threads, workers, gpus, max_failures,
                          storage):
    """A Ray task holding no resources: one cell trained by ``workers`` processes through Ray Train's
    ``TensorflowTrainer`` (``MultiWorkerMirroredStrategy``), each with ``threads`` CPUs and ``gpus`` GPUs."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig, TrainingFailedError
    from ray.train.tensorflow import TensorflowTrainer

    outcome_path = pathlib.Path(attempts_path).with_suffix(".outcome.json")
    outcome_path.unlink(missing_ok=True)
    resources = dict(CPU=threads, GPU=gpus) if gpus else dict(CPU=threads)
    trainer = TensorflowTrainer(
        _train_worker,
        train_loop_config=dict(gin_files=list(gin_files), params=list(params), workdir=workdir, label=label,
                               attempts=attempts_path, outcome=str(outcome_path), threads=threads),
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=gpus > 0, resources_per_worker=resources),
        run_config=RunConfig(name=pathlib.Path(attempts_path).stem, storage_path=storage,
                             failure_config=FailureConfig(max_failures=max_failures)))
    try:
        trainer.fit()
    except TrainingFailedError as err:
        raise BioflowError(f"The cell's {workers} workers failed {max_failures + 1} times; the last error: "
                           f"{str(err).strip().splitlines()[-1][:300]}") from None
    outcome = json.loads(outcome_path.read_text()) if outcome_path.is_file() else {}
    if "run_dir" not in outcome:
        raise BioflowError(outcome.get("error") or "The cell's chief finished without a run directory.")
    return _outcome(outcome["run_dir"])


@dataclasses.dataclass(frozen=True)
class Resources:
    """What each cell of a sweep gets from Ray (``bioflow sweep``'s ``--*-per-run`` and ``--max-failures``).

    With ``workers_per_run`` > 1 each cell runs on that many workers (``MultiWorkerMirroredStrategy``
    through Ray Train), each with ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs. ``max_failures``
    retries a cell whose worker died; a cell that fails by itself is not retried.
    """

    cpus_per_run: int = 1
    gpus_per_run: float = 0
    workers_per_run: int = 1
    max_failures: int = 2

    def __post_init__(self):
        for key, least in (("cpus_per_run", 1), ("workers_per_run", 1), ("max_failures", 0), ("gpus_per_run", 0)):
            value = getattr(self, key)
            if value < least:
                raise BioflowError(f"--{key.replace('_', '-')} must be at least {least}, got {value}.")


def run(gin_files, gin_params=(), workdir="runs", label=None, address=None, resources=Resources(), publish=None,
        zoo=None, echo=print):
    """Run every unfinished cell of the sweep on Ray, each with ``resources``; returns the rows of ``sweep.csv``.

    ``label`` defaults to the sweep's ``train.label``; cells already complete (in ``sweep.json``,
    with a complete run directory) are skipped. ``publish`` publishes each finished cell as
    ``PREFIX-<axis values>``, one version per trial.
    """
    cpus_per_run, gpus_per_run = resources.cpus_per_run, resources.gpus_per_run
    workers_per_run, max_failures = resources.workers_per_run, resources.max_failures
    sweep, files = load(gin_files, gin_params)
    if label is None:
        label = bindings.query("train.label", "default")
    workdir = str(pathlib.Path(workdir).resolve())
    check_address(address)
    check_fits_locally(address, cpus_per_run, workers_per_run)
    ray = _import_ray()
    folder = status.folder_of(workdir, label)
    rows = status.read(folder)
    cells = sweep.cells()
    axes = list(sweep.axes)
    if len(cells) > 100:  # naming each cell parses its configuration: about 30 ms a cell
        echo(f"Sweep {label}: expanding {len(cells):,} cells (each cell's configuration is parsed once)…")
    paths = run_dirs(cells, files, gin_params, workdir, label)
    if publish is not None:
        from bioflow.zoo import Zoo, naming

        naming.check_name(publish, "The --publish prefix")
        zoo = str(Zoo(zoo).root.resolve())
    todo = []
    for cell in cells:
        row = rows.get(cell.id) or dict(cell=cell.id, trial=cell.trial, **dict(cell.bindings), status="pending",
                                        attempts=0)
        row["run_dir"] = paths[cell.id]
        done = _complete(row["run_dir"])  # finished, by this sweep or by hand
        row["status"] = "complete" if done else "pending"
        rows[cell.id] = row
        if not done:
            todo.append(cell)
        elif publish is not None:  # finished before --publish was asked: publish it now (once)
            from bioflow.zoo import publish_once

            name = f"{publish}-{cell.slug()}"
            publish_once(row["run_dir"], name, zoo)
            row["zoo_entry"] = _entry(row["run_dir"], name, zoo)
    meta = dict(label=label, workdir=workdir, gin=list(files), gin_params=list(gin_params))
    status.write(folder, rows, axes, meta)
    echo(f"Sweep {label}: {len(cells)} cells, {len(cells) - len(todo)} already complete, {len(todo)} to run.")
    if not todo:
        return rows
    marks = folder / ".sweep"
    marks.mkdir(parents=True, exist_ok=True)
    started_here = not ray.is_initialized()
    if started_here:
        echo(_init(ray, address))
    try:
        threads = max(1, int(cpus_per_run))
        if workers_per_run > 1:  # Ray Train holds the workers' resources; this task only waits for them
            task = ray.remote(num_cpus=0, max_retries=0)(train_cell_on_workers)
            extra = (workers_per_run, gpus_per_run, max_failures, str(marks / "ray_train"))
        else:
            # A CPU cell may reuse an idle worker (no TensorFlow import per cell); a GPU cell gets a
            # fresh one, which frees the GPU's memory (max_calls 0 = no limit).
            task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=max_failures,
                              retry_exceptions=False, max_calls=1 if gpus_per_run else 0)(train_cell)
            extra = ()
        pending = {}
        for cell in todo:
            params = list(gin_params) + cell.gin_params()
            if publish is not None:
                params += [f"train.publish = '{publish}-{cell.slug()}'", f"train.zoo = '{zoo}'"]
            attempts = marks / f"{cell.id}.json"
            attempts.unlink(missing_ok=True)
            shutil.rmtree(marks / "ray_train" / cell.id, ignore_errors=True)  # Ray Train's files of an earlier try
            pending[task.remote(files, params, workdir, label, str(attempts), threads, *extra)] = cell
            rows[cell.id].update(status="pending", attempts=0, error=None)
        finished = 0
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for cell in _note_starts(rows, marks, pending.values()):
                echo(_line(finished, len(todo), cell, rows[cell.id]))
            for ref in ready:
                cell = pending.pop(ref)
                row = rows[cell.id]
                row["attempts"] = _attempts(marks, cell)
                try:
                    row.update(ray.get(ref), status="complete", error=None)
                    if publish is not None:
                        row["zoo_entry"] = _entry(row["run_dir"], f"{publish}-{cell.slug()}", zoo)
                except ray.exceptions.RayTaskError as err:
                    cause = getattr(err, "cause", None)
                    row.update(status="failed", error=user_message(cause) if cause is not None else str(err)[:500])
                except ray.exceptions.RayError as err:  # the worker died more than max_failures times
                    row.update(status="failed", error=f"{type(err).__name__}: {str(err).splitlines()[0][:300]}")
                finished += 1
                echo(_line(finished, len(todo), cell, row))
            status.write(folder, rows, axes, meta)
    finally:
        if started_here:
            ray.shutdown()
    echo(f"Sweep {label}: {status.summary_line(rows)}. Status: {folder / 'sweep.csv'}")
    return rows


def _init(ray, address):
    """Start a local Ray sized to this machine, or join the cluster at ``address``; returns a line saying which."""
    options = dict(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    if _is_local(address):
        # "local": a new instance even when `ray start` or RAY_ADDRESS names a cluster on this machine
        ray.init(address="local", num_cpus=os.cpu_count(), **options)
        return f"Ray: a local instance with {os.cpu_count()} CPUs, stopped at the end."
    try:
        ray.init(address=address, **options)
    except (ConnectionError, TimeoutError, RuntimeError) as err:
        hint = ""
        if address != "auto" and os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
            hint = (" If the cluster uses token authentication (Ray 2.59 and later turn it on for `ray start`), set "
                    "RAY_AUTH_MODE=token and give its token in RAY_AUTH_TOKEN or ~/.ray/auth_token (`ray "
                    "get-auth-token` on the head node prints it).")
        raise BioflowError(f"Cannot join the Ray cluster at {address}: {err}. Start it with `ray start --head`, "
                           f"check the address, or leave out --address to run on this machine.{hint}") from err
    resources, nodes = ray.cluster_resources(), len(ray.nodes())
    return (f"Ray: joined the cluster at {address} ({nodes} node{'s' * (nodes != 1)}, {int(resources.get('CPU', 0))} "
            f"CPUs, {int(resources.get('GPU', 0))} GPUs).")


def _complete(run_dir):
    if run_dir is None:
        return False
    try:
        return json.loads((pathlib.Path(run_dir) / "run.json").read_text()).get("status") == "complete"
    except (OSError, ValueError):
        return False


def _attempts(marks, cell):
    path = marks / f"{cell.id}.json"
    try:
        return int(json.loads(path.read_text())["attempts"])
    except (OSError, ValueError, KeyError):
        return 0


def _note_starts(rows, marks, cells):
    """Mark cells whose worker has started (or restarted) as running; returns those cells."""
    started = []
    for cell in cells:
        n = _attempts(marks, cell)
        if n and (rows[cell.id]["status"] != "running" or rows[cell.id]["attempts"] != n):
            rows[cell.id].update(status="running", attempts=n)
            started.append(cell)
    return started


def _entry(run_dir, name, zoo):
    from bioflow.zoo import published_as

    version = published_as(run_dir, name, zoo)
    return f"{name}@{version}" if version else None


def _line(done, total, cell, row):
    value = row.get("val_accuracy")
    acc = f" val_accuracy {value:.4f}" if isinstance(value, float) else ""
    retried = f" (attempt {row['attempts']})" if row.get("attempts", 0) > 1 else ""
    what = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in cell.bindings)
    tail = {"failed": f": {row.get('error')}", "running": ""}.get(row["status"], f" {row.get('run_dir', '')}{acc}")
    return f"[{done}/{total}] {row['status']:8} trial {cell.trial} {what}{retried}{tail}"


def show_status(workdir, label, echo=print):
    """Print a sweep's ``sweep.csv`` rows (``bioflow sweep --status``)."""
    folder = status.folder_of(workdir, label)
    rows = status.read(folder)
    if not rows:
        raise BioflowError(f"No sweep status in {folder}: run `bioflow sweep` with this --workdir and --label first.")
    echo((folder / "sweep.csv").read_text().rstrip())
    echo(status.summary_line(rows))
    return rows
