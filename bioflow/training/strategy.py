"""tf.distribute strategies by name: one device, all local GPUs, or several machines."""
import os

import tensorflow as tf

from bioflow.errors import BioflowError
from bioflow.registry import STRATEGIES


@STRATEGIES.register("default")
def one_device():
    """The default strategy: one device."""
    return tf.distribute.get_strategy()


@STRATEGIES.register("mirrored")
def mirrored():
    """All local GPUs, or every logical CPU device when there is no GPU."""
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)


@STRATEGIES.register("multi_worker")
def multi_worker():
    """``MultiWorkerMirroredStrategy`` from ``TF_CONFIG`` (several machines)."""
    if "TF_CONFIG" not in os.environ:
        raise BioflowError("strategy 'multi_worker' needs the TF_CONFIG environment variable "
                           "(cluster and task of this worker).")
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as err:
        raise BioflowError(f"Cannot start MultiWorkerMirroredStrategy: {err}. It must be created before any "
                           "other TensorFlow work in the process (call bioflow's train first).") from err


def make_strategy(name="default"):
    """The registered strategy ``name`` (``'default'``, ``'mirrored'``, ``'multi_worker'``), built."""
    return STRATEGIES.get(name)()


def _task():
    """``(task type, task index, has a chief)`` from ``TF_CONFIG``, read by TF's own resolver."""
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    jobs = resolver.cluster_spec().as_dict()
    return resolver.task_type or "worker", resolver.task_id or 0, "chief" in jobs


def is_chief():
    """True on the worker that writes the run directory: the ``chief`` task, else worker 0
    (also any single-machine run, which has no TF_CONFIG)."""
    task_type, index, has_chief = _task()
    return task_type == "chief" or (task_type == "worker" and index == 0 and not has_chief)


def worker_id():
    """This worker's ``type_index`` (``'worker_0'`` on a single machine)."""
    task_type, index, _ = _task()
    return f"{task_type}_{index}"
