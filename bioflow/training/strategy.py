"""tf.distribute strategies by name: one device, all local GPUs, or several machines."""
import json
import os

import tensorflow as tf

from bioflow.errors import BioflowError, choices

STRATEGIES = ("default", "mirrored", "multi_worker")


def make_strategy(name="default"):
    """``'default'`` (one device), ``'mirrored'`` (all local GPUs, or every logical CPU device when
    there is no GPU) or ``'multi_worker'`` (``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``)."""
    if name not in STRATEGIES:
        raise BioflowError(f"Unknown strategy {name!r}; valid strategies are {choices(STRATEGIES)}.")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if "TF_CONFIG" not in os.environ:
        raise BioflowError("strategy 'multi_worker' needs the TF_CONFIG environment variable "
                           "(cluster and task of this worker).")
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as err:
        raise BioflowError(f"Cannot start MultiWorkerMirroredStrategy: {err}. It must be created before any "
                           "other TensorFlow work in the process (call bioflow's train first).") from err


def is_chief():
    """True on the worker that writes the run directory: the ``chief`` task, else worker 0
    (also any single-machine run, which has no TF_CONFIG)."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task_type = config.get("task", {}).get("type", "worker")
    if task_type == "chief":
        return True
    has_chief = "chief" in config.get("cluster", {})
    return task_type == "worker" and config.get("task", {}).get("index", 0) == 0 and not has_chief


def worker_id():
    """This worker's ``type_index`` (``'worker_0'`` on a single machine)."""
    task = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}").get("task", {})
    return f"{task.get('type', 'worker')}_{task.get('index', 0)}"
