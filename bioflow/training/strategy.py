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
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_chief():
    """True on the worker that writes the run directory (task 0, or any single-machine run)."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = config.get("task", {})
    return task.get("type", "worker") in ("chief",) or (task.get("type", "worker") == "worker"
                                                         and task.get("index", 0) == 0
                                                         and "chief" not in config.get("cluster", {}))


def worker_id():
    """This worker's ``type_index`` (``'worker_0'`` on a single machine)."""
    task = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}").get("task", {})
    return f"{task.get('type', 'worker')}_{task.get('index', 0)}"
