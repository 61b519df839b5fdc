"""Side-by-side timing helpers for the benchmarks in tools/."""
import statistics
import time


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
