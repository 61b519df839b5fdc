"""The training runner: run directory, resume after SIGKILL, strategies, quickstart and errors."""
import json
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import gin
import keras
import numpy as np
import pytest

from bioflow import config, noise
from bioflow.components import RetinalBottleneck
from bioflow.errors import BioflowError
from bioflow.registry import BOTTLENECKS, Entry
from bioflow.runner import train
from bioflow.training import rundir
from bioflow.training.loop import TrainingDiverged
from helpers import SUBPROCESS_ENV, TINY_TRAIN


def tf_latest_checkpoint(run):
    import tensorflow as tf

    return tf.train.latest_checkpoint(str(run / "checkpoints"))


def cli(*args, env=None, **kwargs):
    """Run ``bioflow`` in a subprocess; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "bioflow.cli", *args], capture_output=True, text=True,
                          env=env or SUBPROCESS_ENV, **kwargs)


def params(*bindings):
    return [a for b in bindings for a in ("--gin-param", b)]


def test_run_directory_contents_and_no_retraining(tmp_path, capsys):
    config.parse(["quickstart"], TINY_TRAIN + ["Execution.tensorboard = True"])
    run = train(workdir=str(tmp_path), label="unit", trial=2, seed=5)
    assert run == tmp_path / "unit" / "vgg16_gabor_t2_s5"
    assert list((run / "logs").glob("events.out.tfevents.*"))
    for name in ("operative_config.gin", "history.csv", "run.json", "learning_curves.png", "model.keras"):
        assert (run / name).is_file(), name
    assert (run / "checkpoints" / "checkpoint").is_file()
    history = rundir.read_history(run / "history.csv")
    assert [row["epoch"] for row in history] == [0, 1]
    assert set(history[0]) == set(rundir.HISTORY_COLUMNS)
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete" and info["epochs_completed"] == 2 and info["data"]["dataset"] == "synthetic"
    assert info["data"]["std"] > 0 and info["versions"]["keras"] == keras.__version__
    assert "Fit.epochs = 2" in (run / "operative_config.gin").read_text()
    model = keras.saving.load_model(run / "model.keras", safe_mode=True)
    assert model.output_shape == (None, 10)
    stamp = (run / "history.csv").stat().st_mtime_ns
    capsys.readouterr()
    config.parse(["quickstart"], TINY_TRAIN)
    assert train(workdir=str(tmp_path), label="unit", trial=2, seed=5) == run
    assert "already complete" in capsys.readouterr().out
    assert (run / "history.csv").stat().st_mtime_ns == stamp


def test_resume_continues_a_finished_run_to_more_epochs(tmp_path, capsys):
    config.parse(["quickstart"], TINY_TRAIN)
    run = train(workdir=str(tmp_path))
    config.parse(["quickstart"], TINY_TRAIN + ["Fit.epochs = 3"])
    train(workdir=str(tmp_path), resume=True)
    assert "from epoch 3" in capsys.readouterr().out
    assert [r["epoch"] for r in rundir.read_history(run / "history.csv")] == [0, 1, 2]


def test_same_seed_same_losses(tmp_path):
    losses = []
    for d in ("a", "b"):
        config.parse(["quickstart"], TINY_TRAIN + ["Fit.epochs = 1"])
        run = train(workdir=str(tmp_path / d))
        losses.append(rundir.read_history(run / "history.csv")[0]["loss"])
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)


def test_process_wide_settings_do_not_leak_from_an_earlier_run():
    """A sweep's worker process may run several cells: each run sets op determinism and precision itself."""
    from tensorflow.python.framework import config as tf_config

    from bioflow.runner import configure
    from bioflow.settings import Execution, Fit

    settings = dict(label="unit", trial=1, seed=42, fit=Fit(epochs=1, optimizer="SGD", learning_rate=0.1, decay=0.0))
    try:
        configure(**settings, execution=Execution(mixed_precision="mixed_bfloat16", deterministic_ops=True))
        assert tf_config.is_op_determinism_enabled()
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        configure(**settings, execution=Execution())
        assert not tf_config.is_op_determinism_enabled()
        assert keras.mixed_precision.global_policy().name == "float32"
    finally:
        tf_config.disable_op_determinism()
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("bindings, message", [
    (["Fit.optimizer = 'Adamw'"], "'Adadelta', 'Adagrad', 'Adam', 'Adamax', 'Nadam', 'RMSprop' or 'SGD'"),
    (["build_model.classes = 7"], "has 10 classes but the model's head has 7"),
    (["Execution.strategy = 'tpu'"], "valid strategies are"),
    (["DataPipeline.augmentation = 'heavy'"], "'extra', 'none' or 'standard'"),
])
def test_bad_training_input(tmp_path, bindings, message):
    with pytest.raises(BioflowError) as info:
        config.parse(["quickstart"], TINY_TRAIN + bindings)
        train(workdir=str(tmp_path))
    assert message in str(info.value)


def test_xla_and_bfloat16_mixed_precision(tmp_path):
    config.parse(["quickstart"], TINY_TRAIN + ["Fit.epochs = 1", "Execution.jit_compile = True",
                                               "Execution.mixed_precision = 'mixed_bfloat16'"])
    try:
        run = train(workdir=str(tmp_path))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    row = rundir.read_history(run / "history.csv")[0]
    assert np.isfinite(row["loss"]) and row["accuracy"] > 0


def test_unreachable_download_host_fails_fast():
    from bioflow.data.sources import check_reachable
    start = time.time()
    with pytest.raises(ConnectionError, match="127.0.0.1:9"):  # refused at once
        check_reachable("http://127.0.0.1:9/cifar.tar.gz", timeout=2)
    assert time.time() - start < 5


def test_a_silent_download_host_fails_at_the_timeout():
    from bioflow.data.sources import check_reachable
    # A listener that never accepts, its backlog filled: further SYNs are dropped, so connect() hangs.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
            fillers.append(c)
        time.sleep(0.2)
        start = time.time()
        with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}.*timed out"):
            check_reachable(f"http://127.0.0.1:{port}/cifar.tar.gz", timeout=1.5)
        assert 1.4 < time.time() - start < 5
    finally:
        for c in fillers:
            c.close()
        server.close()


def test_nan_loss_stops_with_a_clear_error_and_no_complete_run(tmp_path):
    config.parse(["quickstart"], TINY_TRAIN + ["Fit.learning_rate = 1e30", "Fit.optimizer = 'SGD'"])
    with pytest.raises(TrainingDiverged, match="TerminateOnNaN"):
        train(workdir=str(tmp_path))
    # It diverged in its first epoch: no epoch completed, so no run directory is left behind.
    assert not list(tmp_path.rglob("run.json")) and not (tmp_path / "quickstart" / "vgg16_gabor_t1_s42").exists()


@pytest.mark.slow
def test_quickstart_trains_offline_above_0_6(tmp_path):
    # The README's default run evaluates 500 images (checked by hand in a fresh venv); 100 keep the suite short.
    zoo_root = tmp_path / "zoo"
    proc = cli("train", "--workdir", str(tmp_path / "runs"), "--gin-param", "evaluate.n_images = 100",
               "--publish", "quickstart", "--zoo", str(zoo_root), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(next(tmp_path.rglob("run.json")).read_text())
    assert info["final"]["val_accuracy"] >= 0.6, info["final"]
    assert "Run complete" in proc.stdout and "Epoch 6/6" in proc.stdout  # one line per epoch off a TTY
    robustness = json.loads(next(tmp_path.rglob("robustness.json")).read_text())  # evaluated after training
    assert robustness["n_images"] == 100 and set(robustness["auc"]) == set(noise.PAPER)

    # Shared over HTTP and evaluated by someone else: the entry gives the network and its card's
    # preprocessing, the command everything else; the published clean accuracy comes back.
    from bioflow import zoo
    from zoo_http import serve

    zoo.export(tmp_path / "remote", root=zoo_root)
    with serve(tmp_path / "remote") as url:
        pulled = cli("zoo", "pull", "quickstart", "--remote", url, "--zoo", str(tmp_path / "theirs"), timeout=300)
    assert pulled.returncode == 0, pulled.stderr[-3000:]
    evaluated = cli("evaluate", "--entry", "quickstart", "--zoo", str(tmp_path / "theirs"), "--n-images", "100",
                    "--out", str(tmp_path / "theirs_eval"), timeout=600)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    published = zoo.Zoo(zoo_root).card("quickstart")["metrics"]["clean_accuracy"]
    assert f"clean accuracy {published:.4f} on 100 images (published: {published:.4f} on 100 images)" in \
        evaluated.stdout, evaluated.stdout[-2000:]


@pytest.mark.slow
def test_sigkill_mid_run_then_resume(tmp_path):
    args = ["train", "--workdir", str(tmp_path), *params(*TINY_TRAIN, "Fit.epochs = 5", "Synthetic.n_train = 1024")]
    proc = subprocess.Popen([sys.executable, "-m", "bioflow.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=SUBPROCESS_ENV)
    history = tmp_path / "quickstart" / "vgg16_gabor_t1_s42" / "history.csv"
    deadline = time.time() + 300
    while time.time() < deadline and len(rundir.read_history(history)) < 2 and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    done = len(rundir.read_history(history))
    assert 2 <= done < 5, f"killed after {done} epochs"
    rerun = cli(*args, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    # An epoch is committed as pending history, checkpoint, then history.csv: a kill after the
    # checkpoint but before the rename resumes one epoch later than history.csv showed.
    resumed = int(re.search(r"from epoch (\d+)", rerun.stdout).group(1))
    assert resumed in (done + 1, done + 2) and "Epoch 1/5" not in rerun.stdout
    assert [r["epoch"] for r in rundir.read_history(history)] == [0, 1, 2, 3, 4]


def test_sigterm_stops_cleanly_and_says_how_to_resume(tmp_path):
    args = ["train", "--workdir", str(tmp_path), *params(*TINY_TRAIN, "Fit.epochs = 50")]
    proc = subprocess.Popen([sys.executable, "-m", "bioflow.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=SUBPROCESS_ENV)
    history = tmp_path / "quickstart" / "vgg16_gabor_t1_s42" / "history.csv"
    deadline = time.time() + 300
    while time.time() < deadline and not rundir.read_history(history) and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "SIGTERM" in err and "Rerun the same command to resume" in err
    info = json.loads(history.with_name("run.json").read_text())
    assert info["status"] == "interrupted" and "Stopped by SIGTERM" in info["error"]


MIRRORED_SCRIPT = """
import sys, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from bioflow.cli import main
main(sys.argv[1:])
"""


#: SGD, not RMSprop: RMSprop's first steps are nearly sign(g) · lr / sqrt(1 - rho), so a gradient that
#: is 0 up to rounding (a dead unit) flips sign with the summation order of two replicas, and the
#: epoch losses then differ by 1.4e-3 relative (measured on AMD EPYC; under 1e-3 on earlier CI machines).
#: With SGD at lr 0.1, one and two devices gave epoch losses within 1.3e-8 relative (AMD EPYC, oneDNN
#: on), while a global-batch bug (each replica's mean loss summed, i.e. the gradient doubled,
#: measured as lr 0.2) moves epoch 1's loss by 2.1e-4: rtol 1e-5 sits between the two, 770x above
#: the rounding spread and 20x below the effect.
GLOBAL_BATCH_RUN = [*TINY_TRAIN, "Fit.epochs = 2", "Fit.batch_size = 32", "Fit.optimizer = 'SGD'",
                    "Fit.learning_rate = 0.1"]


@pytest.mark.slow
def test_global_batch_gives_the_same_losses_on_one_and_two_devices(tmp_path):
    config.parse(["quickstart"], GLOBAL_BATCH_RUN)
    one = train(workdir=str(tmp_path / "one"))
    two = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, "train", "--workdir", str(tmp_path / "two"),
                          *params(*GLOBAL_BATCH_RUN, "Execution.strategy = 'mirrored'")],
                         capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    runs = [json.loads((one / "run.json").read_text()),
            json.loads(next((tmp_path / "two").rglob("run.json")).read_text())]
    assert runs[0]["replicas"] == 1 and runs[1]["replicas"] == 2
    assert runs[0]["global_batch"] == runs[1]["global_batch"] == 32
    histories = [rundir.read_history(one / "history.csv"),
                 rundir.read_history(next((tmp_path / "two").rglob("history.csv")))]
    for key in ("loss", "val_loss"):
        assert [r[key] for r in histories[1]] == pytest.approx([r[key] for r in histories[0]], rel=1e-5)
    odd = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, "train", "--workdir", str(tmp_path / "odd"),
                          *params(*GLOBAL_BATCH_RUN, "Execution.strategy = 'mirrored'", "Fit.batch_size = 15")],
                         capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=600)
    assert odd.returncode == 2 and "must divide evenly over the 2 replicas" in odd.stderr, odd.stderr[-2000:]


def test_clean_starts_over(tmp_path, capsys):
    config.parse(["quickstart"], TINY_TRAIN + ["Fit.epochs = 1"])
    run = train(workdir=str(tmp_path))
    (run / "stale.txt").write_text("from an earlier run")
    config.parse(["quickstart"], TINY_TRAIN + ["Fit.epochs = 1"])
    train(workdir=str(tmp_path), clean=True)
    assert not (run / "stale.txt").exists() and "Resuming" not in capsys.readouterr().out
    assert len(rundir.read_history(run / "history.csv")) == 1


def test_reduce_on_plateau_and_decay():
    import tensorflow as tf

    from bioflow.training.loop import Trainer
    from bioflow.training.optimizers import make_optimizer

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    opt, base = make_optimizer("sgd", 0.1, decay=0.5)
    trainer = Trainer(tf.distribute.get_strategy(), model, opt, base, 4, plateau=(0.2, 2, 0.005))
    for loss in (1.0, 0.9, 0.95, 0.9):  # two epochs without improvement -> 0.1 * 0.2
        trainer._update_plateau(loss)
    assert float(base.numpy()) == pytest.approx(0.02)
    for loss in (0.9, 0.9, 0.9, 0.9):
        trainer._update_plateau(loss)
    assert float(base.numpy()) == pytest.approx(0.005)  # floored at min_learning_rate
    opt.iterations.assign(2)
    assert trainer.current_rate() == pytest.approx(0.005 / (1 + 0.5 * 2))


class PoisonAfter(keras.layers.Layer):
    """Passes its input through, but writes NaN into its own weight once ``steps`` training steps have run.

    Its output never depends on the weight, so the loss stays finite whatever the CPU does with NaN:
    only the weight check can catch it.
    """

    def __init__(self, steps, **kwargs):
        super().__init__(**kwargs)
        self.steps = steps

    def build(self, input_shape):
        self.count = self.add_weight(name="count", shape=(), initializer="zeros", trainable=False)
        self.poison = self.add_weight(name="poison", shape=(1,), initializer="ones", trainable=False)

    def call(self, x, training=False):
        if training:
            self.count.assign_add(1.0)
            self.poison.assign(keras.ops.where(self.count > self.steps, float("nan"), self.poison))
        return x

    def get_config(self):
        return dict(super().get_config(), steps=self.steps)


class PoisonedBottleneck(RetinalBottleneck):
    """A bottleneck of width 1 whose first layer turns its weight to NaN during epoch 2 (8 steps an epoch)."""

    def __init__(self):
        super().__init__(width=1, filters=2)

    def __call__(self, x):
        return super().__call__(PoisonAfter(8, name="poison_after_8")(x))


gin.register(PoisonedBottleneck, module="bioflow_tests")


def test_nan_weights_with_a_finite_loss_stop_the_run_before_its_epoch_is_committed(tmp_path, monkeypatch):
    monkeypatch.setitem(BOTTLENECKS._entries, "poisoned", Entry("poisoned", PoisonedBottleneck))
    zoo_root = tmp_path / "zoo"
    config.parse(["quickstart"], TINY_TRAIN + ["Fit.epochs = 3", "build_model.bottleneck = 'poisoned'",
                                               "train.publish = 'poisoned'", f"train.zoo = '{zoo_root}'"])
    with pytest.raises(TrainingDiverged) as info:
        train(workdir=str(tmp_path))
    message = str(info.value)
    assert "Weights became NaN or infinite during epoch 2 (layer 'poison_after_8', weight 'poison': 1 of 1 " \
           "values)" in message and "although the training loss stayed finite" in message, message
    assert "its last good checkpoint holds 1 epochs" in message
    run = next(tmp_path.rglob("run.json")).parent
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "failed" and "Weights became NaN" in info["error"]
    assert [r["epoch"] for r in rundir.read_history(run / "history.csv")] == [0]  # epoch 2 was not committed
    assert pathlib.Path(tf_latest_checkpoint(run)).name == "ckpt-1"
    assert not (run / "model.keras").exists() and not zoo_root.exists()  # never saved, never published


def test_original_seeding_gives_every_trial_the_same_data_and_its_own_weights():
    from bioflow.runner import configure
    from bioflow.settings import Execution, Fit

    def settings(trial, seeding):
        return configure(label="unit", trial=trial, seed=42, execution=Execution(),
                         fit=Fit(epochs=1, optimizer="SGD", seeding=seeding, learning_rate=0.1, decay=0.0))

    original = [settings(t, "original") for t in (1, 2)]
    assert original[0].data_seed == original[1].data_seed == 42  # data order and augmentation: the seed alone
    assert original[0].rng_seed != original[1].rng_seed  # the initial weights: (seed, trial)
    per_trial = [settings(t, "per_trial") for t in (1, 2)]
    assert per_trial[0].data_seed != per_trial[1].data_seed
    assert [s.data_seed for s in per_trial] == [s.rng_seed for s in per_trial]
    with pytest.raises(BioflowError, match="Unknown Fit.seeding 'trial'; valid seedings are 'original' or "
                                           "'per_trial'"):
        settings(1, "trial")


def test_the_run_records_its_seeding_and_shuffle(tiny_entry):
    info = json.loads((tiny_entry[0] / "run.json").read_text())
    assert info["seeding"] == "original" and info["data_seed"] == 42  # the quickstart's train/paper.gin
    assert info["data"]["shuffle"] == "full (256 images each epoch)"
