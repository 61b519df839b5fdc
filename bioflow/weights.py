"""Whether a network's weights are finite: on the device during training, by name after it.

What a network does with a NaN weight depends on the CPU: ``relu`` passes NaN on, but
``max_pool2d`` of an all-NaN window gives -3.4e38 on some CPUs, so a broken network can train to
finite, meaningless losses. bioflow therefore checks the weights themselves.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from bioflow.errors import BioflowError


def _float_variables(model):
    return [v for v in model.weights if "float" in str(v.dtype)]


def all_finite_fn(model: keras.Model):
    """A traced function that returns one boolean tensor: every float weight of ``model`` is finite.

    One reduction per variable, stacked and reduced on the device, so calling it costs one transfer.
    """
    variables = _float_variables(model)

    @tf.function(autograph=False)
    def all_finite():
        if not variables:
            return tf.constant(True)
        return tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(tf.convert_to_tensor(v)))
                                       for v in variables]))

    return all_finite


def nonfinite_weights(model: keras.Model) -> list[str]:
    """``["layer 'v1_lowpass', weight 'kernel': 3969 of 3969 values", …]``: every weight with NaN or inf."""
    found = []
    for layer in model.layers:  # a nested model's weights are named by that model's layer
        for weight in layer.weights:
            if "float" not in str(weight.dtype):
                continue
            values = np.asarray(keras.ops.convert_to_numpy(weight), dtype=np.float64)
            bad = int(np.count_nonzero(~np.isfinite(values)))
            if bad:
                found.append(f"layer {layer.name!r}, weight {weight.name!r}: {bad} of {values.size} values")
    return found


def check_finite(model: keras.Model, where: str) -> None:
    """Raise a :class:`BioflowError` naming ``where`` and each layer whose weights are NaN or infinite."""
    bad = nonfinite_weights(model)
    if bad:
        shown = "; ".join(bad[:5]) + (f" (and {len(bad) - 5} more)" if len(bad) > 5 else "")
        raise BioflowError(f"{where} holds weights that are NaN or infinite ({shown}): the network is broken "
                           "and bioflow does not use it.")
