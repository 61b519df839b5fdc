"""The seven optimisers of the original code, with Keras 2's ``decay`` and a plateau-adjustable rate."""
import keras
import tensorflow as tf

from bioflow.errors import BioflowError, choices

OPTIMIZERS = {
    "SGD": keras.optimizers.SGD,
    "RMSprop": keras.optimizers.RMSprop,
    "Adagrad": keras.optimizers.Adagrad,
    "Adadelta": keras.optimizers.Adadelta,
    "Adam": keras.optimizers.Adam,
    "Adamax": keras.optimizers.Adamax,
    "Nadam": keras.optimizers.Nadam,
}


class DecayedRate(keras.optimizers.schedules.LearningRateSchedule):
    """``base / (1 + decay * iterations)`` (Keras 2's ``decay``), where ``base`` is a variable that
    reduce-on-plateau lowers and checkpoints keep."""

    def __init__(self, base, decay):
        self.base = base
        self.decay = float(decay)

    def __call__(self, step):
        return self.base / (1.0 + self.decay * tf.cast(step, self.base.dtype))

    def get_config(self):
        return {"base": float(self.base.numpy()), "decay": self.decay}


def make_optimizer(name, learning_rate, decay, mixed_float16=False):
    """Build optimiser ``name`` (case-insensitive); returns ``(optimizer, base_rate_variable)``."""
    lookup = {k.lower(): k for k in OPTIMIZERS}
    if not isinstance(name, str) or name.lower() not in lookup:
        raise BioflowError(f"Unknown optimizer {name!r}; valid optimizers are {choices(OPTIMIZERS)}.")
    if not learning_rate > 0 or decay < 0:
        raise BioflowError(f"learning_rate must be > 0 and decay >= 0, got {learning_rate!r} and {decay!r}.")
    base = tf.Variable(float(learning_rate), trainable=False, dtype=tf.float32, name="base_learning_rate")
    optimizer = OPTIMIZERS[lookup[name.lower()]](learning_rate=DecayedRate(base, decay))
    if mixed_float16:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer, base
