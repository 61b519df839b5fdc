"""The seven optimisers of the original code, with Keras 2's ``decay`` and a plateau-adjustable rate.

The original built its optimiser through Keras 2 (``tf.keras.optimizers.get({'class_name': …,
'config': {'lr': …, 'decay': …}})``). Keras 3 computes three of the seven differently, so
bioflow has two update rules (``Fit.update_rule``):

* ``'keras2'`` (the default, the original's): RMSprop, Adagrad and Nadam are the Keras 2 rules
  below; SGD, Adadelta, Adam and Adamax are Keras 3's classes, whose updates are Keras 2's
  (docs/fidelity.md gives the formulas, and ``tests/test_optimizers.py`` checks all seven against
  numpy transcriptions of Keras 2).
* ``'keras3'``: Keras 3's own classes for all seven.

Both apply the rate ``lr / (1 + decay · iterations)`` (Keras 2's ``decay``), except Keras 2's
Nadam: it replaced any ``decay`` with its momentum-schedule constant 0.004 and never decayed
its rate, and so does :class:`Keras2Nadam`.
"""
import dataclasses

import keras
import tensorflow as tf
from keras import ops

from bioflow.errors import BioflowError, check_choice
from bioflow.registry import OPTIMIZERS
from bioflow.settings import UPDATE_RULES


@keras.saving.register_keras_serializable(package="bioflow")
class Keras2RMSprop(keras.optimizers.RMSprop):
    """RMSprop as Keras 2 computed it without momentum: ``θ ← θ − lr·g / (√v + ε)``.

    Keras 3 divides by ``√(v + ε)`` instead, which damps every parameter whose gradient RMS is
    below about ``√ε`` (3e-4 for ε = 1e-7).
    """

    def __init__(self, learning_rate=0.001, rho=0.9, epsilon=1e-7, name="keras2_rmsprop", **kwargs):
        super().__init__(learning_rate=learning_rate, rho=rho, momentum=0.0, epsilon=epsilon, centered=False,
                         name=name, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        velocity = self._velocities[self._get_variable_index(variable)]
        self.assign(velocity, ops.add(ops.multiply(self.rho, velocity),
                                      ops.multiply(1 - self.rho, ops.square(gradient))))
        self.assign_sub(variable, ops.divide(ops.multiply(lr, gradient), ops.add(ops.sqrt(velocity), self.epsilon)))

    def get_config(self):
        config = super().get_config()
        for key in ("momentum", "centered"):
            config.pop(key, None)
        return config


@keras.saving.register_keras_serializable(package="bioflow")
class Keras2Adagrad(keras.optimizers.Adagrad):
    """Adagrad as Keras 2 computed it: ``a ← a + g²; θ ← θ − lr·g / (√a + ε)`` (Keras 3: ``√(a + ε)``)."""

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, name="keras2_adagrad",
                 **kwargs):
        super().__init__(learning_rate=learning_rate, initial_accumulator_value=initial_accumulator_value,
                         epsilon=epsilon, name=name, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        accumulator = self._accumulators[self._get_variable_index(variable)]
        self.assign_add(accumulator, ops.square(gradient))
        self.assign_sub(variable, ops.divide(ops.multiply(lr, gradient), ops.add(ops.sqrt(accumulator), self.epsilon)))


@keras.saving.register_keras_serializable(package="bioflow")
class Keras2Nadam(keras.optimizers.Nadam):
    """Nadam as Keras 2 computed it: the momentum schedule ``μ_t = β1 (1 − ½·0.96^(0.004 t))``.

    Keras 3 uses ``0.96^t``, so its schedule reaches β1 within a few hundred steps, while Keras 2's
    stays near β1/2 for thousands. Keras 2's Nadam also overwrote ``decay`` with that 0.004 and
    never decayed its learning rate (build it with ``decay = 0``).
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, schedule_decay=0.004,
                 name="keras2_nadam", **kwargs):
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, name=name,
                         **kwargs)
        self.schedule_decay = float(schedule_decay)

    def _momentum(self, step, dtype):
        return self.beta_1 * (1.0 - 0.5 * ops.power(ops.cast(0.96, dtype), self.schedule_decay * step))

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        dtype = self._u_product.dtype
        self.assign(self._u_product, self._u_product * self._momentum(ops.cast(self.iterations + 1, dtype), dtype))
        # Keras 3's Nadam would update the product again with its own schedule: skip to the base class.
        keras.optimizers.Optimizer._backend_update_step(self, grads, trainable_variables, learning_rate)

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        local_step = ops.cast(self.iterations + 1, dtype)
        u_t = self._momentum(local_step, dtype)
        u_t_1 = self._momentum(local_step + 1, dtype)
        u_product_t = ops.cast(self._u_product, dtype)  # already multiplied by u_t this step
        u_product_t_1 = u_product_t * u_t_1
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        m_hat = ops.add(ops.divide(ops.multiply(u_t_1, m), 1 - u_product_t_1),
                        ops.divide(ops.multiply(1 - u_t, gradient), 1 - u_product_t))
        v_hat = ops.divide(v, 1 - ops.power(ops.cast(self.beta_2, dtype), local_step))
        self.assign_sub(variable, ops.divide(ops.multiply(m_hat, lr), ops.add(ops.sqrt(v_hat), self.epsilon)))

    def get_config(self):
        return dict(super().get_config(), schedule_decay=self.schedule_decay)


@dataclasses.dataclass(frozen=True)
class UpdateRules:
    """One optimiser's class under each update rule: Keras 3's, and the original's (Keras 2's)."""

    keras3: type
    keras2: type


# The names the original's ``--optimizer`` accepted; Keras 3's class where its update is Keras 2's.
for _name, _keras3, _keras2 in (
        ("SGD", keras.optimizers.SGD, None), ("RMSprop", keras.optimizers.RMSprop, Keras2RMSprop),
        ("Adagrad", keras.optimizers.Adagrad, Keras2Adagrad), ("Adadelta", keras.optimizers.Adadelta, None),
        ("Adam", keras.optimizers.Adam, None), ("Adamax", keras.optimizers.Adamax, None),
        ("Nadam", keras.optimizers.Nadam, Keras2Nadam)):
    OPTIMIZERS.add(_name, UpdateRules(keras3=_keras3, keras2=_keras2 or _keras3))


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


def make_optimizer(name, learning_rate, decay, mixed_float16=False, update_rule="keras2"):
    """Build optimiser ``name`` (case-insensitive) with ``update_rule`` (``'keras2'``, the original's, or
    ``'keras3'``); returns ``(optimizer, base_rate_variable)``."""
    check_choice(update_rule, UPDATE_RULES, "Fit.update_rule", "update rules")
    rules = OPTIMIZERS.get(name)  # an unknown name lists the registered optimisers
    if not learning_rate > 0 or decay < 0:
        raise BioflowError(f"learning_rate must be > 0 and decay >= 0, got {learning_rate!r} and {decay!r}.")
    cls = getattr(rules, update_rule)
    if cls is Keras2Nadam:
        decay = 0.0  # Keras 2's Nadam replaced decay with its schedule constant and kept its rate
    base = tf.Variable(float(learning_rate), trainable=False, dtype=tf.float32, name="base_learning_rate")
    optimizer = cls(learning_rate=DecayedRate(base, decay))
    if mixed_float16:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer, base
