"""Side-by-side timing helpers for the benchmarks in tools/."""
import argparse
import statistics
import time


def parser(doc, images, batch_size):
    """The benchmarks' command line: ``--images``, ``--batch-size`` and ``--repeats`` (3), with these defaults."""
    out = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    out.add_argument("--images", type=int, default=images)
    out.add_argument("--batch-size", type=int, default=batch_size)
    out.add_argument("--repeats", type=int, default=3)
    return out


def batches(batch_size, *arrays):
    """Consecutive slices of ``arrays`` as tensors: a list of tuples (of one tensor, for one array)."""
    import tensorflow as tf

    n = len(arrays[0])
    out = [tuple(tf.constant(a[s:s + batch_size]) for a in arrays) for s in range(0, n, batch_size)]
    return [b[0] for b in out] if len(arrays) == 1 else out


def median_seconds(fn, repeats):
    """Median wall time of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def untrained_quickstart(n_images, seed=0):
    """``(model, [0, 1] images, labels, data statistics)``: the quickstart's network, built untrained (the
    time does not depend on the weights), with random images at its input size."""
    import numpy as np

    from bioflow import config
    from bioflow.model import build_model

    config.parse(["quickstart"])
    model = build_model()
    rng = np.random.default_rng(seed)
    size = model.input_shape[1]
    images = rng.uniform(size=(n_images, size, size, 1)).astype(np.float32)
    labels = rng.integers(0, 10, n_images).astype(np.int64)
    return model, images, labels, dict(mean=120.0, std=60.0, normalisation="featurewise", interpolation="nearest")
