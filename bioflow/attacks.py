"""White-box adversarial attacks on a trained network: FGSM and PGD in L∞, L2 and L1.

Budgets are measured where the field measures them. By default (``AttackSuite.space = 'source'``)
the attacked image is the *source* image in [0, 1] at its own size (32×32 for CIFAR-10), and the
network's upscaling and normalisation are inside the differentiated function, so an ε of 8/255 means
what it means on RobustBench. ``space = 'input'`` attacks the network's input after upscaling.

A network that is random at inference (a layer that draws noise when ``training=False``) is
attacked with expectation over transformation: each gradient averages ``eot_samples`` passes, and the
accuracy is measured on a fresh pass. A deterministic network gets one pass.

Every result comes with the gradient-masking checks of Carlini et al. (2019): accuracy at ε = 0
equals the clean accuracy; accuracy does not rise with ε; PGD is at most FGSM; PGD's loss rises over
its iterations; a large ε drives the accuracy to chance. A failed check is a warning in the results,
never silent.

This module uses no ``from __future__ import annotations``: it is converted by ``tf.function``.
"""
import dataclasses
import math

import gin
import numpy as np
import pandas as pd
import tensorflow as tf

from bioflow import metrics, tensorflow_runtime
from bioflow.data.preprocessing import normaliser, resize
from bioflow.errors import BioflowError, check_choice
from bioflow.validation import check_bool, check_number, check_positive_int

KINDS = ("fgsm", "pgd", "autoattack")
NORMS = ("linf", "l2", "l1")
SPACES = ("source", "input")
#: The columns of ``results/adversarial.csv``.
COLUMNS = ("Model", "Convolution", "Base", "Weights", "Trial", "Seed", "Set", "Attack", "Norm", "Epsilon", "Steps",
           "Restarts", "EOT", "Space", "Accuracy", "Loss")
_EPS = 1e-12


@gin.register(module="bioflow")
@dataclasses.dataclass(frozen=True)
class Attack:
    """One attack at several budgets.

    Attributes:
        kind: ``'fgsm'`` (one step of size ε), ``'pgd'`` (projected gradient ascent) or
            ``'autoattack'`` (the Adversarial Robustness Toolbox's AutoAttack, L∞ or L2 only; the
            ``attacks`` extra).
        norm: ``'linf'``, ``'l2'`` or ``'l1'``: the ball ε measures.
        epsilons: the budgets, in the attacked space's [0, 1] units (8/255 = 0.0314 for L∞).
        steps: PGD's iterations.
        step_size: each PGD step moves ``step_size · ε / steps`` (2.5, Madry et al.'s choice).
        restarts: PGD runs from this many random starts; an image counts as robust only if it
            survives them all.
        random_start: start PGD at a random point of the ball (the first restart included).
    """

    kind: str = "pgd"
    norm: str = "linf"
    epsilons: tuple = (0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255)
    steps: int = 10
    step_size: float = 2.5
    restarts: int = 1
    random_start: bool = True

    def __post_init__(self):
        check_choice(self.kind, KINDS, "Attack.kind", "attacks")
        check_choice(self.norm, NORMS, "Attack.norm", "norms")
        if isinstance(self.epsilons, (str, bytes)) or not isinstance(self.epsilons, (list, tuple)) \
                or not self.epsilons:
            raise BioflowError(f"Attack.epsilons must be a non-empty list of budgets, got {self.epsilons!r}.")
        for eps in self.epsilons:
            check_number(eps, "Attack.epsilons[]", minimum=0, maximum=1e4)
        check_positive_int(self.steps, "Attack.steps", maximum=10_000)
        check_number(self.step_size, "Attack.step_size", above=0, maximum=100)
        check_positive_int(self.restarts, "Attack.restarts", maximum=100)
        check_bool(self.random_start, "Attack.random_start")
        if self.kind == "autoattack" and self.norm == "l1":
            raise BioflowError("Attack.kind 'autoattack' is defined in L∞ and L2; use norm 'linf' or 'l2'.")

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.norm}"


@gin.register(module="bioflow")
@dataclasses.dataclass(frozen=True)
class AttackSuite:
    """The attacks an evaluation runs (``gin/attack/``), and how.

    Attributes:
        attacks: :class:`Attack` objects (``[@fgsm/Attack(), @pgd/Attack()]`` in gin).
        eot_samples: passes averaged per gradient when the network is random at inference (8, as
            VOneNet's evaluation); a deterministic network gets one.
        space: ``'source'`` (the source image in [0, 1], before upscaling) or ``'input'``.
        n_images: attack the first N test images (None: all of the evaluation's test images).
        check_epsilon: the L∞ budget of the check that a large ε drives accuracy to chance.
        seed: the random starts' and the noise passes' seed.
    """

    attacks: tuple = ()
    eot_samples: int = 8
    space: str = "source"
    n_images: int = None
    check_epsilon: float = 0.5
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.attacks, (str, bytes)) or not isinstance(self.attacks, (list, tuple)) or not all(
                isinstance(a, Attack) for a in self.attacks) or not self.attacks:
            raise BioflowError("AttackSuite.attacks must be a non-empty list of attacks (@Attack(), …), got "
                               f"{self.attacks!r}.")
        check_positive_int(self.eot_samples, "AttackSuite.eot_samples", maximum=1000)
        check_choice(self.space, SPACES, "AttackSuite.space", "spaces")
        if self.n_images is not None:
            check_positive_int(self.n_images, "AttackSuite.n_images", alternative=" or None (every test image)")
        check_number(self.check_epsilon, "AttackSuite.check_epsilon", above=0, maximum=1)


def perturbation_norm(delta, norm):
    """Each image's ``norm`` (``'linf'``, ``'l2'``, ``'l1'``) of a batch of perturbations: ``[N]``."""
    return tf.reshape(_flat_norm(tf.convert_to_tensor(delta, tf.float32), norm), [-1])


def _flat_norm(x, norm):
    flat = tf.reshape(x, [tf.shape(x)[0], -1])
    value = tf.reduce_max(tf.abs(flat), 1) if norm == "linf" else (
        tf.sqrt(tf.reduce_sum(flat * flat, 1)) if norm == "l2" else tf.reduce_sum(tf.abs(flat), 1))
    return tf.reshape(value, [-1, 1, 1, 1])


def project_l1(delta, eps):
    """Each image's ``delta`` projected onto the L1 ball of radius ``eps`` (Duchi et al. 2008, exact)."""
    shape = tf.shape(delta)
    flat = tf.reshape(delta, [shape[0], -1])
    magnitude = tf.abs(flat)
    inside = tf.reduce_sum(magnitude, 1, keepdims=True) <= eps
    ordered = tf.sort(magnitude, axis=1, direction="DESCENDING")
    cumulative = tf.cumsum(ordered, axis=1)
    k = tf.cast(tf.range(1, tf.shape(flat)[1] + 1), flat.dtype)[None, :]
    keep = tf.cast(ordered - (cumulative - eps) / k > 0, tf.int32)
    rho = tf.maximum(tf.reduce_sum(keep, 1, keepdims=True), 1)
    theta = (tf.gather(cumulative, rho - 1, batch_dims=1) - eps) / tf.cast(rho, flat.dtype)
    shrunk = tf.sign(flat) * tf.maximum(magnitude - theta, 0.0)
    return tf.reshape(tf.where(inside, flat, shrunk), shape)


def _project(delta, eps, norm):
    if norm == "linf":
        return tf.clip_by_value(delta, -eps, eps)
    if norm == "l2":
        return delta * tf.minimum(1.0, eps / (_flat_norm(delta, "l2") + _EPS))
    return project_l1(delta, eps)


def _ascent(grad, norm):
    """The steepest-ascent direction of unit size in ``norm`` (dense for L1, as ART's PGD)."""
    if norm == "linf":
        return tf.sign(grad)
    return grad / (_flat_norm(grad, norm) + _EPS)


def _random_start(shape, eps, norm, seed):
    if norm == "linf":
        return tf.random.stateless_uniform(shape, seed, -1.0, 1.0) * eps
    direction = tf.random.stateless_normal(shape, seed)
    radius = tf.random.stateless_uniform([shape[0], 1, 1, 1], seed + 1)
    return _project(direction / (_flat_norm(direction, norm) + _EPS) * radius * eps, eps, norm)


class Target:
    """The differentiated function: attacked images in [0, 1] → class probabilities.

    ``loss(x, labels)`` is each image's cross-entropy of its true class (the network outputs
    probabilities), with the probabilities; ``gradient`` is the loss's gradient with respect to ``x``.
    """

    def __init__(self, model, stats, space="source"):
        size = model.input_shape[1]
        self.classes = int(model.output_shape[-1])
        normalise = normaliser(stats)
        interpolation = stats.get("interpolation") or "nearest"

        def forward(x01):
            x = x01 * 255.0
            if space == "source":
                x = resize(x, size, interpolation)
            return tf.cast(model(normalise(x), training=False), tf.float32)

        def loss(x01, labels):
            probs = forward(x01)
            picked = tf.reduce_sum(probs * tf.one_hot(labels, tf.shape(probs)[1]), 1)  # no gather: its gradient
            # takes an int32 kernel that oneDNN logs about on CPUs without AVX-512
            return -tf.math.log(tf.clip_by_value(picked, _EPS, 1.0)), probs

        def gradient(x01, labels, samples):
            """``(gradient, mean loss)`` averaged over ``samples`` passes (EOT)."""
            total, value = tf.zeros_like(x01), 0.0
            for _ in range(samples):  # a Python loop: unrolled when traced
                with tf.GradientTape() as tape:
                    tape.watch(x01)
                    batch_loss = tf.reduce_sum(loss(x01, labels)[0])
                total += tape.gradient(batch_loss, x01, unconnected_gradients=tf.UnconnectedGradients.ZERO)
                value += batch_loss
            return total / samples, value / (samples * tf.cast(tf.shape(x01)[0], tf.float32))

        def pgd(x0, labels, eps, alpha, start, norm, steps, samples):
            """PGD's whole loop in one graph: the adversarial batch and the mean loss before each step
            and after the last."""
            x, losses = tf.clip_by_value(x0 + start, 0.0, 1.0), []
            for _ in range(steps):
                grad, value = gradient(x, labels, samples)
                losses.append(value)
                x = tf.clip_by_value(x0 + _project(x + alpha * _ascent(grad, norm) - x0, eps, norm), 0.0, 1.0)
            losses.append(tf.reduce_mean(loss(x, labels)[0]))
            return x, tf.stack(losses)

        self.forward = tf.function(forward, reduce_retracing=True, autograph=False)
        self.loss = tf.function(loss, reduce_retracing=True, autograph=False)
        self._gradient = tf.function(gradient, reduce_retracing=True, autograph=False)
        self.pgd = tf.function(pgd, reduce_retracing=True, autograph=False)

    def gradient(self, x01, labels, samples):
        """The loss's gradient with respect to ``x01``, averaged over ``samples`` passes (EOT)."""
        return self._gradient(x01, labels, samples)[0]


def is_stochastic(target, images):
    """True when two passes over the same images give different probabilities."""
    x = tf.constant(images[:8])
    return not np.array_equal(target.forward(x).numpy(), target.forward(x).numpy())


def _attack_batch(target, x0, labels, eps, attack, samples, seed):
    """``(adversarial images, per-iteration mean losses)`` of one batch at one budget (eager around graphs)."""
    norm = attack.norm
    if attack.kind == "fgsm":
        step = _ascent(target.gradient(x0, labels, samples), norm) * eps
        return tf.clip_by_value(x0 + _project(step, eps, norm), 0.0, 1.0), []
    alpha = attack.step_size * eps / attack.steps
    start = _random_start(tf.shape(x0), eps, norm, seed) if attack.random_start else tf.zeros_like(x0)
    x, losses = target.pgd(x0, labels, tf.constant(eps, tf.float32), tf.constant(alpha, tf.float32), start, norm,
                           attack.steps, samples)
    return x, list(losses.numpy())


def adversarial_examples(target, images, labels, attack, eps, *, samples=1, seed=0, batch_size=64):
    """``images`` ([0, 1], numpy) attacked by ``attack`` at budget ``eps`` through ``target`` (a
    :class:`Target`), batch by batch, from its first start; ``samples`` passes per gradient (EOT)."""
    if attack.kind == "autoattack":
        return autoattack(target, images, labels, eps, attack.norm, batch_size, int(target.classes))
    out = []
    for start in range(0, len(labels), batch_size):
        x0 = tf.constant(images[start:start + batch_size])
        y = tf.constant(labels[start:start + batch_size])
        x, _ = _attack_batch(target, x0, y, float(eps), attack, samples, tf.constant([seed, start * 101], tf.int32))
        out.append(x.numpy())
    return np.concatenate(out) if out else np.zeros_like(images)


def autoattack(target, images, labels, eps, norm, batch_size, classes):
    """AutoAttack on ``images`` through the Adversarial Robustness Toolbox (its default ensemble:
    APGD-CE and APGD-DLR with 5 restarts of 100 iterations, DeepFool and Square with 5,000 queries),
    given the network's log-probabilities as logits; returns the adversarial images."""
    import os

    try:
        from art.attacks.evasion import AutoAttack
        from art.estimators.classification import TensorFlowV2Classifier
    except ImportError as err:
        raise BioflowError("Attack.kind 'autoattack' runs the Adversarial Robustness Toolbox's AutoAttack: "
                           "install it with pip install 'bioflow[attacks]'.") from err
    import keras

    def logits(x, training=False):  # ART passes training=; log p is a logit: softmax(log p) = p
        return tf.math.log(tf.clip_by_value(target.forward(x), _EPS, 1.0))

    classifier = TensorFlowV2Classifier(model=logits, nb_classes=classes, input_shape=images.shape[1:],
                                        loss_object=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                                        clip_values=(0.0, 1.0))
    attack = AutoAttack(classifier, norm=np.inf if norm == "linf" else 2, eps=eps, eps_step=2 * eps,
                        batch_size=batch_size)
    quiet = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # ART's sub-attacks draw progress bars
    try:
        return attack.generate(images, y=labels)
    finally:
        if quiet is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = quiet


@dataclasses.dataclass
class Adversarial:
    """What an attack suite computed: the table, the summary record and the checks' warnings."""

    table: pd.DataFrame
    summary: dict
    warnings: list


def run(model, info, images, labels, suite, meta, *, batch_size=64, set_name="test", echo=print):
    """Attack ``model`` on ``images`` ([0, 1], in ``suite.space``) with every attack and budget of ``suite``.

    The first runs of the gradient graphs log a oneDNN note through TensorFlow's C++ log on CPUs
    without AVX-512; it is held back like TensorFlow's start-up log (``bioflow --verbose`` shows it).
    """
    with tensorflow_runtime.quietly():
        return _run(model, info, images, labels, suite, meta, batch_size, set_name, echo)


def _run(model, info, images, labels, suite, meta, batch_size, set_name, echo):
    target = Target(model, info["data"], suite.space)
    stochastic = is_stochastic(target, images)
    samples = suite.eot_samples if stochastic else 1
    n = len(labels)
    rows, curves = [], {}

    def evaluate(attack, eps, restart_seed):
        if attack.kind == "autoattack":
            if stochastic:
                raise BioflowError("AutoAttack is for deterministic networks (RobustBench rejects random defences); "
                                   "this one is random at inference: attack it with PGD, which averages over "
                                   "AttackSuite.eot_samples passes.")
            x = images if eps == 0 else autoattack(target, images, labels, eps, attack.norm, batch_size,
                                                   int(model.output_shape[-1]))
            loss, probs = target.loss(tf.constant(x), tf.constant(labels))
            return float(np.mean(probs.numpy().argmax(1) == labels)), float(np.mean(loss.numpy())), None
        correct, loss_sum, iteration_losses = np.ones(n, bool), 0.0, []
        for start in range(0, n, batch_size):
            x0 = tf.constant(images[start:start + batch_size])
            y = tf.constant(labels[start:start + batch_size])
            survived = np.ones(len(y), bool)
            batch_loss = None
            for restart in range(attack.restarts if attack.kind == "pgd" else 1):
                seed = tf.constant([restart_seed, start * 101 + restart], tf.int32)
                x, losses = (x0, []) if eps == 0 else _attack_batch(target, x0, y, eps, attack, samples, seed)
                loss, probs = target.loss(x, y)  # a fresh pass: the accuracy of a random network is measured anew
                survived &= probs.numpy().argmax(1) == y.numpy()
                batch_loss = loss.numpy() if batch_loss is None else np.maximum(batch_loss, loss.numpy())
                if losses and restart == 0:
                    iteration_losses.append(np.asarray(losses) * len(y))
            correct[start:start + len(y)] = survived
            loss_sum += float(batch_loss.sum())
        curve = np.sum(iteration_losses, 0) / n if iteration_losses else None
        return float(correct.mean()), loss_sum / n, curve

    # The clean pass through the same graph as the ε = 0 rows, so that a deterministic network gives the
    # same answers bit for bit (another graph could fuse differently and flip a near-tie).
    clean_accuracy, _, _ = evaluate(Attack(kind="fgsm", epsilons=(0.0,)), 0.0, 0)
    for a_index, attack in enumerate(suite.attacks):
        echo(f"Attacking {set_name}: {attack.name} at {len(attack.epsilons)} budgets"
             + (f" (EOT over {samples} passes)" if samples > 1 else ""))
        for eps in attack.epsilons:
            acc, loss, curve = evaluate(attack, float(eps), suite.seed * 1009 + a_index)
            rows.append(dict(meta, Set=set_name, Attack=attack.kind, Norm=attack.norm, Epsilon=float(eps),
                             Steps={"pgd": attack.steps, "fgsm": 1}.get(attack.kind),
                             Restarts={"pgd": attack.restarts, "fgsm": 1}.get(attack.kind), EOT=samples,
                             Space=suite.space,
                             Accuracy=acc, Loss=loss))
            if curve is not None:
                curves[(attack.name, float(eps))] = curve
    table = pd.DataFrame(rows, columns=COLUMNS)
    probe = Attack(kind="pgd", norm="linf", epsilons=(suite.check_epsilon,), steps=10, restarts=1)
    large, _, _ = evaluate(probe, suite.check_epsilon, suite.seed * 1009 + 997)
    checks = masking_checks(table, curves, clean_accuracy, large, suite.check_epsilon,
                            classes=int(model.output_shape[-1]), n=n, stochastic=stochastic)
    warnings = [c["detail"] for c in checks if not c["passed"]]
    for warning in warnings:
        echo(f"Warning: gradient masking check failed: {warning}")
    aucs = {}
    for (kind, norm), group in table.groupby(["Attack", "Norm"], sort=False):
        if len(group) >= 2:
            aucs[f"{kind}-{norm}"] = metrics.auc(group["Epsilon"], group["Accuracy"])
    summary = dict(space=suite.space, eot_samples=samples, stochastic=stochastic, n_images=n,
                   clean_accuracy=clean_accuracy, auc=aucs, checks=checks, warnings=warnings)
    return Adversarial(table, summary, warnings)


def masking_checks(table, curves, clean_accuracy, large_accuracy, large_epsilon, *, classes, n, stochastic):
    """Carlini et al.'s checks on one suite's results, each ``{name, passed, detail}``.

    The tolerance is one image for a deterministic network (PGD's random starts may spare one image
    at a larger ε), and two binomial standard errors more for a random one.
    """
    tolerance = 1.0 / n + (2 * math.sqrt(0.25 / n) if stochastic else 0.0)
    checks = []

    def check(name, passed, detail):
        checks.append(dict(name=name, passed=bool(passed), detail=detail))

    zero = table[table["Epsilon"] == 0.0]
    for _, row in zero.iterrows():
        check("epsilon_zero_is_clean", abs(row["Accuracy"] - clean_accuracy) <= tolerance - 1.0 / n + 1e-9,
              f"{row['Attack']}-{row['Norm']} at ε = 0 gives {row['Accuracy']:.3f}, the clean accuracy is "
              f"{clean_accuracy:.3f}")
    for (kind, norm), group in table.groupby(["Attack", "Norm"], sort=False):
        ordered = group.sort_values("Epsilon")["Accuracy"].to_numpy()
        rises = np.diff(ordered).max(initial=0.0)
        check("accuracy_falls_with_epsilon", rises <= tolerance + 1e-9,
              f"{kind}-{norm}'s accuracy rises by {rises:.3f} between two budgets")
    for norm, group in table.groupby("Norm", sort=False):
        fgsm = group[group["Attack"] == "fgsm"].set_index("Epsilon")["Accuracy"]
        pgd = group[group["Attack"] == "pgd"].set_index("Epsilon")["Accuracy"]
        for eps in sorted(set(fgsm.index) & set(pgd.index)):
            check("pgd_at_most_fgsm", pgd[eps] <= fgsm[eps] + tolerance + 1e-9,
                  f"PGD ({pgd[eps]:.3f}) is above FGSM ({fgsm[eps]:.3f}) in {norm} at ε = {eps:.4g}")
    for (name, eps), curve in curves.items():
        if eps > 0:  # a rise below 1e-4 of the loss is float32 summation noise, not ascent
            check("loss_rises_over_iterations", curve[-1] > curve[0] * (1 + 1e-4),
                  f"{name} at ε = {eps:.4g}: the loss went from {curve[0]:.4f} to {curve[-1]:.4f} over its "
                  "iterations (a gradient that does not lead anywhere)")
    chance = 1.0 / classes
    check("large_epsilon_reaches_chance", large_accuracy <= chance + tolerance + 1e-9,
          f"PGD in L∞ at ε = {large_epsilon:g} leaves {large_accuracy:.3f} accuracy, above chance ({chance:.3f})")
    return checks
