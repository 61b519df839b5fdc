"""Faults a user meets: concurrent runs, lost checkpoints, changed settings, killed evaluations,
a full disk, corrupt files, bad gin and data that cannot be learned. Each gets a clean message and
loses nothing."""
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import gin
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from click.testing import CliRunner

from bioflow import config, noise
from bioflow.cli import main
from bioflow.errors import BioflowError, user_message
from bioflow.evaluate import evaluate
from bioflow.runner import train
from bioflow.training import rundir

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
BIOFLOW = shutil.which("bioflow", path=os.path.dirname(sys.executable))


def bioflow_process(*args, **kwargs):
    """``bioflow ARGS`` in another process (the installed console script)."""
    command = [BIOFLOW] if BIOFLOW else [sys.executable, "-m", "bioflow.cli"]
    return subprocess.Popen([*command, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            **kwargs)


def params(*bindings):
    return [a for b in bindings for a in ("--gin-param", b)]


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def assert_clean_error(result, *fragments):
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), (result.output, result.exception)
    assert "Traceback" not in result.output and "In call to configurable" not in result.output, result.output
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)


@pytest.fixture
def run_copy(tiny_entry, tmp_path):
    """A writable copy of the tiny, complete, evaluated run, under WORKDIR/tiny/."""
    run, _ = tiny_entry
    copy = tmp_path / "work" / "tiny" / run.name
    shutil.copytree(run, copy)
    return copy


def wait_for(predicate, timeout=300, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.1)
    return False


# -- a run directory has one process at a time ------------------------------------------------------

def test_a_second_process_on_a_running_run_stops_at_once_naming_the_holder(tmp_path, tiny_bindings):
    args = ["train", "--workdir", str(tmp_path),
            *params(*tiny_bindings, "Fit.epochs = 60", "Synthetic.n_train = 512")]
    first = bioflow_process(*args)
    run = tmp_path / "quickstart" / "vgg16_gabor_t1_s42"
    try:
        assert wait_for(lambda: (run / "history.csv").exists(), proc=first), first.communicate()[1][-2000:]
        owner = json.loads((run / rundir.OWNER).read_text())
        assert owner["pid"] == first.pid and owner["action"] == "train"
        start = time.monotonic()
        config.parse(["quickstart"], [*tiny_bindings, "Fit.epochs = 60", "Synthetic.n_train = 512",
                                      "Fit.learning_rate = 0.5"])  # other settings: must not train at all
        with pytest.raises(BioflowError, match=f"is in use: process {first.pid} on .* holds it \\(train since"):
            train(workdir=str(tmp_path))
        result = invoke("evaluate", str(run), "--force")
        assert_clean_error(result, f"process {first.pid}")
        assert time.monotonic() - start < 20
        assert "Fit.learning_rate = 0.001" in (run / "operative_config.gin").read_text()
        assert first.poll() is None  # the first run goes on
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)


# -- resuming never loses history -------------------------------------------------------------------

def test_resume_without_checkpoints_refuses_and_keeps_the_history(run_copy, tiny_bindings):
    workdir = run_copy.parents[1]
    before = (run_copy / "history.csv").read_text()
    shutil.rmtree(run_copy / "checkpoints")
    config.parse(["quickstart"], [*tiny_bindings, "Fit.epochs = 3"])
    with pytest.raises(BioflowError, match=r"records 2 epochs, but there is no checkpoint .* pass --clean"):
        train(workdir=str(workdir), label="tiny", resume=True)
    assert (run_copy / "history.csv").read_text() == before
    assert json.loads((run_copy / "run.json").read_text())["status"] == "complete"


def test_a_truncated_newest_checkpoint_falls_back_to_the_one_before(run_copy, tiny_bindings, capsys):
    workdir = run_copy.parents[1]
    newest = next((run_copy / "checkpoints").glob("ckpt-2.data-*"))
    newest.write_bytes(newest.read_bytes()[:100])  # a copy cut short
    config.parse(["quickstart"], [*tiny_bindings, "Fit.epochs = 3"])
    train(workdir=str(workdir), label="tiny", resume=True)
    out = capsys.readouterr().out
    assert "Checkpoint ckpt-2 of vgg16_gabor_t1_s42 is corrupt or truncated; resuming from the older ckpt-1" in out
    assert "Resuming vgg16_gabor_t1_s42 from epoch 2" in out
    assert [r["epoch"] for r in rundir.read_history(run_copy / "history.csv")] == [0, 1, 2]
    assert json.loads((run_copy / "run.json").read_text())["status"] == "complete"


def test_every_checkpoint_truncated_names_clean(run_copy, tiny_bindings):
    for data in (run_copy / "checkpoints").glob("ckpt-*.data-*"):
        data.write_bytes(data.read_bytes()[:100])
    result = invoke("train", "--workdir", str(run_copy.parents[1]), "--label", "tiny", "--resume",
                    *params(*tiny_bindings, "Fit.epochs = 3"))
    assert_clean_error(result, "Every checkpoint of", "is corrupt or truncated (ckpt-2, ckpt-1)", "Pass --clean")


def test_history_ahead_of_its_checkpoint_is_refused(run_copy, tiny_bindings):
    workdir = run_copy.parents[1]
    rows = rundir.read_history(run_copy / "history.csv")
    rundir.write_history(run_copy / "history.csv", rows + [dict(rows[-1], epoch=2)])
    info = json.loads((run_copy / "run.json").read_text())
    (run_copy / "run.json").write_text(json.dumps(dict(info, status="running")))  # as if killed
    config.parse(["quickstart"], [*tiny_bindings, "Fit.epochs = 2"])
    with pytest.raises(BioflowError, match="records 3 epochs, but the newest checkpoint holds 2"):
        train(workdir=str(workdir), label="tiny")
    assert len(rundir.read_history(run_copy / "history.csv")) == 3


def test_pending_history_matching_the_checkpoint_is_completed(tmp_path):
    """A kill between an epoch's checkpoint and its history rename loses no row."""
    rows = [dict(epoch=e, loss=1.0, accuracy=0.5, val_loss=1.0, val_accuracy=0.5, lr=0.1) for e in range(3)]
    rundir.write_history(tmp_path / "history.csv", rows[:2])
    rundir.write_history(tmp_path / rundir.PENDING_HISTORY, rows)
    assert [r["epoch"] for r in rundir.committed_history(tmp_path, 3)] == [0, 1, 2]
    rundir.write_history(tmp_path / rundir.PENDING_HISTORY, rows + [dict(rows[0], epoch=3)])
    assert len(rundir.committed_history(tmp_path, 3)) == 3  # a pending epoch without its checkpoint is dropped
    assert not (tmp_path / rundir.PENDING_HISTORY).exists()


def test_changed_hyper_parameters_are_refused_with_the_differences(run_copy, tiny_bindings):
    workdir = run_copy.parents[1]
    config.parse(["quickstart"], [*tiny_bindings, "Fit.learning_rate = 0.01", "Synthetic.n_train = 128",
                                  "Fit.epochs = 3"])
    with pytest.raises(BioflowError) as info:
        train(workdir=str(workdir), label="tiny", resume=True)
    message = str(info.value)
    assert "Fit.learning_rate: 0.001 in the run, 0.01 now" in message
    assert "Synthetic.n_train: 256 in the run, 128 now" in message
    assert "Fit.epochs" not in message  # more epochs is what --resume is for
    info = json.loads((run_copy / "run.json").read_text())
    assert info["status"] == "complete" and info["epochs_completed"] == 2


def test_more_epochs_on_an_interrupted_run_needs_resume(run_copy, tiny_bindings, capsys):
    workdir = run_copy.parents[1]
    info = json.loads((run_copy / "run.json").read_text())
    (run_copy / "run.json").write_text(json.dumps(dict(info, status="interrupted")))
    config.parse(["quickstart"], [*tiny_bindings, "Fit.epochs = 3"])
    with pytest.raises(BioflowError, match="(?s)Fit.epochs: 2 in the run, 3 now.* pass --resume"):
        train(workdir=str(workdir), label="tiny")
    config.parse(["quickstart"], [*tiny_bindings, "Fit.epochs = 3"])
    train(workdir=str(workdir), label="tiny", resume=True)
    assert [r["epoch"] for r in rundir.read_history(run_copy / "history.csv")] == [0, 1, 2]
    assert "from epoch 3" in capsys.readouterr().out


@pytest.mark.parametrize("option, value", [("--label", "../escaped"), ("--label", "/tmp/abs"), ("--label", "a/b"),
                                           ("--gin-param", "build_model.name = '../../escaped'")])
def test_names_that_would_write_outside_the_workdir_are_refused(tmp_path, option, value):
    workdir = tmp_path / "work"
    result = invoke("train", "--workdir", str(workdir), option, value)
    assert_clean_error(result, "is not valid", "without '..' or path separators")
    assert not list(tmp_path.rglob("run.json")) and not (tmp_path / "escaped").exists()


# -- failures leave nothing that looks alive ---------------------------------------------------------

def test_an_impossible_batch_size_fails_before_training_and_leaves_no_run(tmp_path, tiny_bindings):
    result = invoke("train", "--workdir", str(tmp_path), *params(*tiny_bindings, "Fit.batch_size = 100000"))
    assert_clean_error(result, "global batch of 100000 images", "larger than the training set of 256 images")
    assert not (tmp_path / "quickstart" / "vgg16_gabor_t1_s42").exists()


def test_gin_call_suffix_never_reaches_the_user(tmp_path):
    @gin.configurable("suffix_probe", module="test_faults")
    def probe(x=1):
        raise BioflowError(f"bad x {x}")

    with pytest.raises(BioflowError) as info:
        probe()
    assert "In call to configurable 'suffix_probe'" in str(info.value)  # what gin adds
    assert user_message(info.value) == "bad x 1"


@pytest.mark.parametrize("args, fragments", [
    (["--gin-param", "build_model.classes = (3"], ["unclosed bracket or string", "binding 'build_model.classes = (3'"]),
    (["--gin", "{bad}"], ["unclosed bracket or string", "bad.gin, line 2"]),
])
def test_an_unclosed_bracket_in_gin_is_a_clean_error(tmp_path, args, fragments):
    bad = tmp_path / "bad.gin"
    bad.write_text("build_model.classes = 10\nbuild_model.input_shape = (32,\n    32, 1\n")
    result = invoke("summary", *[a.replace("{bad}", str(bad)) for a in args])
    assert_clean_error(result, *fragments)


def test_corrupt_or_empty_run_json_is_a_clean_error(run_copy, tiny_bindings):
    for text in ("", "{\"status\": ", "[1, 2]"):
        (run_copy / "run.json").write_text(text)
        result = invoke("train", "--workdir", str(run_copy.parents[1]), "--label", "tiny", *params(*tiny_bindings))
        assert_clean_error(result, f"{run_copy / 'run.json'} is corrupt", "--clean")
        assert_clean_error(invoke("evaluate", str(run_copy)), "run.json is corrupt")
        assert_clean_error(invoke("zoo", "publish", str(run_copy), "--name", "x", "--zoo", str(run_copy / "z")),
                           "run.json is corrupt")


@pytest.mark.parametrize("name", ["catalogue.json", "index.json", "Catalogue.JSON"])
def test_names_colliding_with_zoo_files_are_refused(run_copy, tmp_path, name):
    result = invoke("zoo", "publish", str(run_copy), "--name", name, "--zoo", str(tmp_path / "z"))
    assert_clean_error(result, f"{name!r} is not valid", "the zoo's own files")


# -- evaluation -------------------------------------------------------------------------------------

def test_a_killed_evaluation_leaves_an_orphan_that_the_next_one_removes(run_copy):
    shutil.rmtree(run_copy / "results")
    proc = bioflow_process("evaluate", str(run_copy), "--n-images", "64", "--suite", "extended")
    assert wait_for(lambda: list(run_copy.glob(".results.*")), proc=proc), proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert list(run_copy.glob(".results.*")) and not (run_copy / "results").exists()
    config.parse([str(run_copy / "operative_config.gin")], ["NoiseSuite.noises = ['invert']"])
    evaluate(run_copy, n_images=16)
    assert not list(run_copy.glob(".results.*")) and (run_copy / "results" / "robustness.json").is_file()


def test_sigterm_stops_an_evaluation_without_an_orphan(run_copy):
    shutil.rmtree(run_copy / "results")
    proc = bioflow_process("evaluate", str(run_copy), "--n-images", "64", "--suite", "extended")
    assert wait_for(lambda: list(run_copy.glob(".results.*")), proc=proc), proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Interrupted: the evaluation stopped and wrote nothing" in err
    assert not list(run_copy.glob(".results.*")) and not (run_copy / "results").exists()
    assert not (run_copy / rundir.OWNER).exists()


def test_evaluate_refuses_a_running_run_unless_forced(run_copy):
    info = json.loads((run_copy / "run.json").read_text())
    (run_copy / "run.json").write_text(json.dumps(dict(info, status="running")))
    result = invoke("evaluate", str(run_copy), "--n-images", "8", "--gin-param", "NoiseSuite.noises = ['invert']")
    assert_clean_error(result, "is not a complete run (status 'running')", "--force")
    result = invoke("evaluate", str(run_copy), "--n-images", "8", "--force",
                    "--gin-param", "NoiseSuite.noises = ['invert']")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("n", ["0", "-3"])
def test_evaluate_refuses_n_images_below_one(run_copy, n):
    assert_clean_error(invoke("evaluate", str(run_copy), "--n-images", n),
                       f"evaluate.n_images must be a positive integer or None (all images), got {n}")


def test_a_wrong_cifar10g_folder_is_an_error_not_a_download(run_copy, tmp_path, monkeypatch, tiny_bindings):
    from bioflow.data import cifar10g

    monkeypatch.setattr(cifar10g, "ARCHIVE_URL", "http://127.0.0.1:9/never-downloaded.zip")
    (tmp_path / "not_cifar").mkdir()
    start = time.monotonic()
    result = invoke("evaluate", str(run_copy), "--cifar10g", str(tmp_path / "not_cifar"))
    expected = tmp_path / "not_cifar" / "224x224"
    assert_clean_error(result, "is not a CIFAR-10G copy", f"expected {expected}/<set>/<class>")
    assert time.monotonic() - start < 10
    result = invoke("train", "--workdir", str(tmp_path / "runs"), *params(
        *tiny_bindings, "train.skip_test = False", f"CIFAR10G.folder = '{tmp_path / 'not_cifar'}'"))
    assert_clean_error(result, "is not a CIFAR-10G copy")  # before training, not after
    assert not list((tmp_path / "runs").rglob("history.csv"))


def test_offline_cifar10g_download_fails_fast(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    from bioflow.data import cifar10g

    monkeypatch.setattr(cifar10g, "ARCHIVE_URL", "http://127.0.0.1:9/CIFAR-10G.zip")
    start = time.monotonic()
    with pytest.raises(BioflowError, match=r"Cannot download CIFAR-10G: cannot reach 127.0.0.1:9.*--cifar10g DIR"):
        cifar10g.Cifar10G(data_dir=str(tmp_path)).download_and_prepare(
            download_config=tfds.download.DownloadConfig())
    assert time.monotonic() - start < 10


@pytest.mark.parametrize("gin_file", ["vgg16_rib_rc", "evans2022/dog_allcnn"])
def test_seed_runs_offline_without_cifar10g_stop_before_training(gin_file, tmp_path, monkeypatch):
    from bioflow.data import cifar10g

    monkeypatch.setattr(cifar10g, "ARCHIVE_URL", "http://127.0.0.1:9/CIFAR-10G.zip")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))  # nothing prepared there
    result = invoke("train", "--gin", gin_file, "--gin", "tiny/base", "--workdir", str(tmp_path / "runs"))
    assert_clean_error(result, "Cannot download CIFAR-10G: cannot reach 127.0.0.1:9", "--cifar10g DIR")
    assert gin.query_parameter("CIFAR10G.folder") == "download"
    assert gin.query_parameter("CIFAR10G.perturb") is True
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.csv"))


def test_evaluating_a_32_then_a_64_pixel_run_in_one_process(run_copy, tmp_path):
    """Each image size gets its own perturbation graphs (it raised TypeError before)."""
    config.parse(["quickstart"], ["build_model.input_shape = (64, 64, 1)", "vgg16.width = 0.0625",
                                  "vgg16.fc_units = 16"])
    from bioflow.model import build_model

    big = tmp_path / "big"
    big.mkdir()
    build_model().save(big / "model.keras")
    info = json.loads((run_copy / "run.json").read_text())
    (big / "run.json").write_text(json.dumps(dict(info, data=dict(info["data"], image_size=64))))
    suite = noise.NoiseSuite(noises=["low_pass", "high_pass", "gaussian_blur", "phase_scrambling"],
                             levels={"low_pass": [1.0, 4.0], "high_pass": [10.0, 1.0], "gaussian_blur": [0.0, 1.0],
                                     "phase_scrambling": [0.0, 90.0]})
    config.parse([str(run_copy / "operative_config.gin")])
    small = evaluate(run_copy, suite=suite, n_images=8)
    large = evaluate(big, suite=suite, n_images=8)
    assert set(small["auc"]) == set(large["auc"]) == set(suite.noises)


# -- data that cannot be learned from ----------------------------------------------------------------

def image_folder(root, classes, value=None):
    for split in ("train", "test"):
        for k, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(4):
                pixels = np.full((8, 8, 1), value if value is not None else 40 * k + 10 * i, np.uint8)
                (folder / f"{i}.png").write_bytes(tf.io.encode_png(pixels).numpy())
    return root


def test_constant_images_are_an_error_not_nan(tmp_path, tiny_bindings):
    data = image_folder(tmp_path / "data", ["a", "b"], value=128)
    result = invoke("train", "--workdir", str(tmp_path / "runs"), *params(
        *tiny_bindings, "DataPipeline.source = @ImageFolder()", f"ImageFolder.path = '{data}'",
        "build_model.classes = 2", "Fit.batch_size = 2"))
    assert_clean_error(result, "pixel standard deviation of 0", "every training pixel is 128")
    assert not list(tmp_path.rglob("run.json"))


def test_a_one_class_image_folder_gets_advice_that_can_be_followed(tmp_path, tiny_bindings):
    data = image_folder(tmp_path / "data", ["only"])
    result = invoke("train", "--workdir", str(tmp_path / "runs"), *params(
        *tiny_bindings, "DataPipeline.source = @ImageFolder()", f"ImageFolder.path = '{data}'"))
    assert_clean_error(result, "has one class ('only'); a classifier needs at least two")
    assert "build_model.classes = 1" not in result.output


# -- a full disk -------------------------------------------------------------------------------------

DISK_FULL = textwrap.dedent("""\
    set -u
    mount -t tmpfs -o size=64m tmpfs "$MNT"
    run() { "$BIOFLOW_CMD" train --workdir "$MNT/runs" $BINDINGS "$@"; }
    run --gin-param "Fit.epochs = 1" > "$OUT/first.txt" 2>&1; echo $? > "$OUT/first.rc"
    dd if=/dev/zero of="$MNT/filler" bs=1M 2>/dev/null
    truncate -s -40K "$MNT/filler"   # 40 KB free: the next checkpoint does not fit
    run --resume --gin-param "Fit.epochs = 3" > "$OUT/full.txt" 2>&1; echo $? > "$OUT/full.rc"
    cp "$MNT/runs/quickstart/vgg16_gabor_t1_s42/history.csv" "$OUT/history_full.csv"
    rm "$MNT/filler"
    run --resume --gin-param "Fit.epochs = 3" > "$OUT/resumed.txt" 2>&1; echo $? > "$OUT/resumed.rc"
    cp "$MNT/runs/quickstart/vgg16_gabor_t1_s42/history.csv" "$OUT/history.csv"
    cp "$MNT/runs/quickstart/vgg16_gabor_t1_s42/run.json" "$OUT/run.json"
""")


def _unshare():
    """The command that gives a private mount namespace, or None when this machine does not allow one."""
    if shutil.which("unshare") is None:
        return None
    command = ["unshare", "--mount"] if os.getuid() == 0 else ["unshare", "--user", "--map-root-user", "--mount"]
    probe = subprocess.run([*command, "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"], capture_output=True)
    return command if probe.returncode == 0 else None


@pytest.mark.slow
@pytest.mark.skipif(_unshare() is None, reason="needs a private mount namespace (unshare) to mount a tiny tmpfs")
def test_a_full_disk_is_one_clear_message_and_the_run_resumes(tmp_path, tiny_bindings):
    mnt, out = tmp_path / "mnt", tmp_path / "out"
    mnt.mkdir()
    out.mkdir()
    bindings = " ".join(f"--gin-param {shlex.quote(b)}" for b in tiny_bindings if not b.startswith("Fit.epochs"))
    env = dict(ENV, MNT=str(mnt), OUT=str(out), BINDINGS=bindings,
               BIOFLOW_CMD=BIOFLOW or f"{sys.executable} -m bioflow.cli")
    script = DISK_FULL.replace("$BINDINGS", bindings)
    done = subprocess.run([*_unshare(), "bash", "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "first.rc").read_text().strip() == "0", (out / "first.txt").read_text()[-2000:]
    full = (out / "full.txt").read_text()
    assert (out / "full.rc").read_text().strip() == "2", full[-2000:]
    run = mnt / "runs" / "quickstart" / "vgg16_gabor_t1_s42"
    assert f"Error: No space left on device: {run}/checkpoints. Free some space" in full
    assert "Traceback" not in full and "resume from the last completed epoch" in full
    assert len(pd.read_csv(out / "history_full.csv")) == 1  # the history was not cut, nor half-written
    resumed = (out / "resumed.txt").read_text()
    assert (out / "resumed.rc").read_text().strip() == "0", resumed[-2000:]
    assert "Resuming vgg16_gabor_t1_s42 from epoch 2" in resumed
    assert list(pd.read_csv(out / "history.csv")["epoch"]) == [0, 1, 2]
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


READ_ONLY = textwrap.dedent("""\
    set -u
    mount -t tmpfs -o size=64m tmpfs "$MNT"
    cp -r "$ZOO" "$MNT/zoo"
    mount -o remount,ro "$MNT"
    b() { name=$1; shift; $BIOFLOW_CMD "$@" > "$OUT/$name.txt" 2>&1; echo $? > "$OUT/$name.rc"; }
    b train train --workdir "$MNT/runs" $BINDINGS
    b publish zoo publish "$RUN" --name ro --zoo "$MNT/zoo"
    b pull zoo pull tiny --remote "$REMOTE" --zoo "$MNT/pulled"
    b report report --all --zoo "$ZOO" --out "$MNT/r.html"
    b evaluate evaluate --entry tiny --zoo "$ZOO" --out "$MNT/ev" --n-images 8 \
        --gin-param "NoiseSuite.noises = ['invert']"
    umount "$MNT"
    mount -t tmpfs -o size=12k tmpfs "$MNT"
    b full_report report --all --zoo "$ZOO" --out "$MNT/r.html"
    ls -A "$MNT" > "$OUT/full_report.ls"
    """)


@pytest.mark.slow
@pytest.mark.skipif(_unshare() is None, reason="needs a private mount namespace (unshare) to mount a read-only tmpfs")
def test_a_read_only_or_full_target_is_one_line_and_nothing_is_half_written(tiny_entry, tmp_path, tiny_bindings):
    run, root = tiny_entry
    mnt, out, remote = tmp_path / "mnt", tmp_path / "out", tmp_path / "remote"
    mnt.mkdir()
    out.mkdir()
    from bioflow import zoo

    zoo.export(remote, root=root)
    bindings = " ".join(f"--gin-param {shlex.quote(b)}" for b in tiny_bindings)
    env = dict(ENV, MNT=str(mnt), OUT=str(out), ZOO=str(root), RUN=str(run), REMOTE=str(remote),
               BIOFLOW_CMD=BIOFLOW or f"{sys.executable} -m bioflow.cli")
    done = subprocess.run([*_unshare(), "bash", "-c", READ_ONLY.replace("$BINDINGS", bindings)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("train", "publish", "pull", "report", "evaluate"):
        text = (out / f"{name}.txt").read_text()
        assert (out / f"{name}.rc").read_text().strip() == "2", (name, text[-2000:])
        assert "Error: Read-only file system: " + str(mnt) in text and "Traceback" not in text, (name, text[-2000:])
        assert "nothing was left half-written" in text, name
    text = (out / "full_report.txt").read_text()
    assert (out / "full_report.rc").read_text().strip() == "2" and "Error: No space left on device" in text, text
    assert (out / "full_report.ls").read_text().split() == [], "a full disk left part of the report behind"


# -- reports of damaged entries ----------------------------------------------------------------------

@pytest.mark.parametrize("rel, content, problem", [
    ("results/perturbation.csv", b"", "results/perturbation.csv is not a readable table (EmptyDataError)"),
    ("results/perturbation.csv", b"\x00\xff\xfe garbage\n\x80\x81", "results/perturbation.csv"),
    ("results/perturbation.csv", b"Noise,LI,Level,Accuracy\nuniform,0,0.0,high\n",
     "has values that are not numbers in column Accuracy"),
    ("history.csv", b"just,some,columns\n1,2,3\n", "history.csv lacks the columns epoch, loss, accuracy"),
])
def test_a_report_names_empty_or_garbage_tables_and_renders_the_rest(tiny_entry, tmp_path, rel, content, problem):
    from bioflow.report import build_report

    _, root = tiny_entry
    local = tmp_path / "zoo"
    shutil.copytree(root, local)
    shutil.copytree(local / "tiny", local / "other")
    card = local / "other" / "1.0.0" / "card.json"
    card.chmod(0o644)
    card.write_text(json.dumps(dict(json.loads(card.read_text()), name="other")))
    target = local / "other" / "1.0.0" / rel
    target.chmod(0o644)
    target.write_bytes(content)
    result = invoke("report", "--all", "--zoo", str(local), "--out", str(tmp_path / "report.html"))
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and problem in result.output
    data = build_report(tmp_path / "again.html", local, all_entries=True)
    assert [e.spec for e in data.entries] == ["other@1.0.0", "tiny@1.0.0"]
    assert any(problem in p for p in data.problems)
    assert set(data.curves["Model"]) >= {"vgg16_gabor"}  # tiny@1.0.0 still has its curves


@pytest.mark.parametrize("bindings, fragment", [
    (["evaluate.seed = 'zero'"], "evaluate.seed must be an integer, got 'zero'"),
    (["evaluate.batch_size = 0"], "evaluate.batch_size must be a positive integer, got 0"),
    (["evaluate.batch_size = 2000000"], "evaluate.batch_size must be at most 1,048,576, got 2000000"),
    (["Synthetic.n_test = 1000000000000"], "Synthetic.n_test must be at most 1,048,576, got 1000000000000"),
    (["NoiseSuite.levels = {'uniformm': [0.5, 0.6]}"], "Unknown noise 'uniformm'; valid noises are"),
    (["NoiseSuite.levels = {'uniform': []}"], "NoiseSuite.levels['uniform'] must list 1 to 256 levels"),
    (["NoiseSuite.levels = {'uniform': [" + ", ".join(["0.5"] * 300) + "]}"],
     "NoiseSuite.levels['uniform'] must list 1 to 256 levels (the paper uses 11), got 300"),
    (["Fit.learning_rate = -1.0"], "Fit.learning_rate must be a finite number > 0"),
    (["Fit.epochs = 10000000"], "Fit.epochs must be at most 100,000, got 10000000"),
    (["DataPipeline.source = @DataPipeline()"], "refer back to themselves (DataPipeline.source → DataPipeline)"),
    (["A = %B", "B = %A", "train.seed = %A"], "refer back to themselves (%A → %B → %A)"),
])
def test_roots_refuse_bad_values_before_any_work(tmp_path, tiny_bindings, bindings, fragment):
    result = invoke("train", "--workdir", str(tmp_path), *params(*tiny_bindings, "train.skip_test = False",
                                                                 *bindings))
    assert_clean_error(result, fragment)
    assert not list(tmp_path.rglob("run.json"))


def test_a_value_nested_too_deeply_is_a_clean_error(tmp_path):
    deep = tmp_path / "deep.gin"
    deep.write_text("train.label = " + "[" * 3000 + "]" * 3000 + "\n")
    result = invoke("summary", "--gin", str(deep))
    assert_clean_error(result, "nested too deeply", str(deep))


def test_a_huge_sweep_is_refused_at_once_and_a_large_one_says_what_it_expands(tmp_path):
    sweep = tmp_path / "sweep.gin"
    sweep.write_text("include 'tiny/sweep.gin'\nSweep.trials = 3000000\n")
    start = time.time()
    result = invoke("sweep", "--gin", str(sweep), "--dry-run")
    assert_clean_error(result, "= 6,000,000 cells, more than Sweep.max_cells = 10,000", "bind Sweep.max_cells")
    assert time.time() - start < 10
    pytest.importorskip("ray", reason="bioflow sweep needs the ray extra")
    rates = ", ".join(f"{0.001 * i:.3f}" for i in range(1, 102))
    sweep.write_text(f"include 'tiny/sweep.gin'\nSweep.trials = 1\nSweep.axes = {{'Fit.learning_rate': [{rates}]}}\n")
    result = invoke("sweep", "--gin", str(sweep), "--workdir", str(tmp_path / "runs"))
    assert "Sweep tiny_sweep: expanding 101 cells" in result.output
    assert_clean_error(result, "Two cells would train into the same run directory")
