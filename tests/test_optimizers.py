"""The optimisers against numpy transcriptions of Keras 2's updates (written from the formulas of
``tf.keras.optimizers`` 2.x, optimizer_v2, and TensorFlow's training kernels, not from bioflow)."""
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from bioflow.registry import OPTIMIZERS
from bioflow.training.optimizers import Keras2RMSprop, make_optimizer
from helpers import SUBPROCESS_ENV

LR, DECAY, STEPS = 0.01, 0.05, 6
#: One parameter per regime: a gradient RMS of 1, of 1e-3, and of 1e-5 (far below √ε ≈ 3e-4).
THETA0 = np.array([0.5, -0.3, 0.2], np.float64)
SCALES = np.array([1.0, 1e-3, 1e-5])


def gradients():
    """The gradient of every step: fixed, of both signs, at the three scales."""
    rng = np.random.default_rng(7)
    return [SCALES * rng.uniform(-1, 1, 3) for _ in range(STEPS)]


def decayed(t):
    """Keras 2's ``_decayed_lr``: lr / (1 + decay · iterations), iterations counted before the step."""
    return LR / (1 + DECAY * t)


def keras2(name):
    """θ after every step of Keras 2's ``name`` (momentum 0, not centred, amsgrad off, ε = 1e-7)."""
    eps, theta, out = 1e-7, THETA0.copy(), []
    s1, s2 = np.zeros(3), np.zeros(3)  # the slots: m / rms / accum, and v / accum_update
    if name == "Adagrad":
        s1 = np.full(3, 0.1)
    cache = 1.0
    for t, g in enumerate(gradients()):
        lr = decayed(t)
        if name == "SGD":
            theta = theta - lr * g
        elif name == "RMSprop":
            s1 = 0.9 * s1 + 0.1 * g**2
            theta = theta - lr * g / (np.sqrt(s1) + eps)
        elif name == "Adagrad":  # ResourceApplyAdagradV2
            s1 = s1 + g**2
            theta = theta - lr * g / (np.sqrt(s1) + eps)
        elif name == "Adadelta":  # ResourceApplyAdadelta, rho 0.95
            s1 = 0.95 * s1 + 0.05 * g**2
            update = np.sqrt(s2 + eps) / np.sqrt(s1 + eps) * g
            s2 = 0.95 * s2 + 0.05 * update**2
            theta = theta - lr * update
        elif name == "Adam":  # ResourceApplyAdam
            s1 = 0.9 * s1 + 0.1 * g
            s2 = 0.999 * s2 + 0.001 * g**2
            lr_t = lr * np.sqrt(1 - 0.999 ** (t + 1)) / (1 - 0.9 ** (t + 1))
            theta = theta - lr_t * s1 / (np.sqrt(s2) + eps)
        elif name == "Adamax":  # ResourceApplyAdaMax
            s1 = 0.9 * s1 + 0.1 * g
            s2 = np.maximum(0.999 * s2, np.abs(g))
            theta = theta - lr / (1 - 0.9 ** (t + 1)) * s1 / (s2 + eps)
        elif name == "Nadam":  # decay overwritten by 0.004 (schedule); the rate is not decayed
            lr = LR
            m_t = 0.9 * (1 - 0.5 * 0.96 ** (0.004 * (t + 1)))
            m_t_1 = 0.9 * (1 - 0.5 * 0.96 ** (0.004 * (t + 2)))
            cache = cache * m_t
            s1 = 0.9 * s1 + 0.1 * g
            s2 = 0.999 * s2 + 0.001 * g**2
            m_bar = (1 - m_t) * g / (1 - cache) + m_t_1 * s1 / (1 - cache * m_t_1)
            theta = theta - lr * m_bar / (np.sqrt(s2 / (1 - 0.999 ** (t + 1))) + eps)
        out.append(theta.copy())
    return np.array(out)


def run(optimizer, steps=STEPS, variable=None):
    variable = variable if variable is not None else tf.Variable(THETA0.astype(np.float32))
    out = []
    for g in gradients()[:steps]:
        optimizer.apply_gradients([(tf.constant(g, tf.float32), variable)])
        out.append(variable.numpy().astype(np.float64))
    return np.array(out), variable


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_the_keras2_rule_of_every_optimiser_matches_its_transcription(name):
    optimizer, _ = make_optimizer(name, LR, DECAY, update_rule="keras2")
    got, _ = run(optimizer)
    # float32 arithmetic against float64: 1e-6 of the parameter scale, far below the steps (>= 1e-4)
    np.testing.assert_allclose(got, keras2(name), rtol=0, atol=2e-6)


@pytest.mark.parametrize("name, differs", [("RMSprop", True), ("Adagrad", False), ("Nadam", True), ("SGD", False),
                                           ("Adam", False)])
def test_keras3_differs_from_keras2_where_docs_fidelity_says(name, differs):
    """Keras 3's RMSprop damps small gradients (ε inside the root) and its Nadam schedules momentum
    with 0.96^t: both fail the Keras 2 transcription. Its Adagrad's ε moves too, but with an
    accumulator of at least 0.1 the difference stays below 1e-6 of a step."""
    optimizer, _ = make_optimizer(name, LR, DECAY, update_rule="keras3")
    got, _ = run(optimizer)
    error = np.abs(got - keras2(name)).max()
    assert (error > 1e-4) if differs else (error < 2e-6), error


def test_keras3_rmsprop_takes_a_fraction_of_the_step_for_small_gradients():
    """The damping the fidelity docs measure: at a gradient RMS of 1e-5, Keras 3's first step is
    1e-5 / sqrt(1e-11 + 1e-7) against 1e-5 / (sqrt(1e-11) + 1e-7) of Keras 2's: 0.031 of it."""
    steps = {}
    for rule in ("keras2", "keras3"):
        optimizer, _ = make_optimizer("RMSprop", LR, 0.0, update_rule=rule)
        got, _ = run(optimizer, steps=1)
        steps[rule] = np.abs(got[0] - THETA0)
    ratio = steps["keras3"] / steps["keras2"]
    assert ratio[0] == pytest.approx(1.0, abs=1e-4) and ratio[2] < 0.05  # float32 steps: 1e-5 relative


@pytest.mark.parametrize("name", ["RMSprop", "Adagrad", "Nadam"])
def test_a_checkpoint_resumes_the_keras2_rules_exactly(tmp_path, name):
    whole, _ = run(make_optimizer(name, LR, DECAY)[0])
    optimizer, base = make_optimizer(name, LR, DECAY)
    first, variable = run(optimizer, steps=3)
    checkpoint = tf.train.Checkpoint(optimizer=optimizer, variable=variable, base=base)
    path = checkpoint.save(str(tmp_path / "ckpt"))
    fresh, fresh_base = make_optimizer(name, LR, DECAY)
    fresh_variable = tf.Variable(np.zeros(3, np.float32))
    fresh.build([fresh_variable])
    tf.train.Checkpoint(optimizer=fresh, variable=fresh_variable, base=fresh_base).restore(path).assert_consumed()
    rest = []
    for g in gradients()[3:]:
        fresh.apply_gradients([(tf.constant(g, tf.float32), fresh_variable)])
        rest.append(fresh_variable.numpy())
    np.testing.assert_array_equal(np.concatenate([first, rest]).astype(np.float32), whole.astype(np.float32))


MIRRORED = """
import json, sys
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from bioflow.training.optimizers import make_optimizer
grads = np.array(json.loads(sys.argv[1]), np.float32)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    variable = tf.Variable(np.array([0.5, -0.3, 0.2], np.float32))
    optimizer, _ = make_optimizer(sys.argv[2], 0.01, 0.05)
    optimizer.build([variable])

@tf.function
def step(g):
    def replica(g):  # each replica holds half the gradient; the sum is the whole
        optimizer.apply_gradients([(g / 2.0, variable)])
    strategy.run(replica, args=(g,))

out = []
for g in grads:
    step(tf.constant(g))
    out.append(variable.numpy().tolist())
print(json.dumps(out))
"""


@pytest.mark.parametrize("name", ["RMSprop", "Nadam"])
def test_the_keras2_rules_under_mirrored_strategy(name):
    import json

    done = subprocess.run([sys.executable, "-c", MIRRORED, json.dumps([g.tolist() for g in gradients()]), name],
                          capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    got = np.array(json.loads(done.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(got, keras2(name), rtol=0, atol=2e-6)


def test_an_unknown_update_rule_lists_the_valid_ones():
    from bioflow.errors import BioflowError

    with pytest.raises(BioflowError, match="valid update rules are 'keras2' or 'keras3'"):
        make_optimizer("RMSprop", LR, DECAY, update_rule="keras1")
    assert Keras2RMSprop().get_config()["epsilon"] == 1e-7
