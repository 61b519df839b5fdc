"""One custom distributed training loop for every tf.distribute strategy.

Keras 3's ``model.fit`` fails under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585), so
bioflow trains with its own loop, as magenta/ddsp does: ``strategy.run`` on a ``tf.function``
step, losses averaged over the global batch, and a ``tf.train.Checkpoint`` of model, optimiser
and loop state after every epoch, so that a killed run resumes where it stopped.
"""
import math
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from bioflow import weights
from bioflow.errors import BioflowError
from bioflow.metrics import LossAccuracy, batch_totals


class TrainingDiverged(BioflowError):
    """The loss, or a weight, became NaN or infinite (the TerminateOnNaN condition, and the weight check)."""


class Interrupted(BioflowError):
    """A stop was requested (e.g. SIGTERM); rerunning the same command resumes the run."""


def step_mean_loss(labels, per_step):
    """Each image's cross-entropy averaged over its steps: ``labels (B,)``, ``per_step (B, steps, K)`` → ``(B,)``."""
    steps, classes = tf.shape(per_step)[1], tf.shape(per_step)[2]
    per_image_step = keras.losses.sparse_categorical_crossentropy(tf.repeat(labels, steps),
                                                                  tf.reshape(per_step, [-1, classes]))
    return tf.reduce_mean(tf.reshape(per_image_step, [-1, steps]), 1)


def _distribution_options():
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return options


class Trainer:
    """Trains ``model`` with ``optimizer`` under ``strategy``; build all three in ``strategy.scope()``.

    Args:
        base_rate: the optimiser's base learning-rate variable (see ``optimizers.DecayedRate``).
        global_batch: images per step over all replicas.
        plateau: ``(factor, patience, min_rate)`` of reduce-on-plateau on ``val_loss``.
        steps_model: for ``step_loss='mean'``: the same layers with every step's predictions as output
            (``bioflow.model.step_model``); each image's loss is then the mean over its steps, and the
            accuracy, validation and the saved model remain the last step's.
    """

    def __init__(self, strategy, model, optimizer, base_rate, global_batch, plateau=(0.2, 5, 1e-8),
                 jit_compile=False, steps_model=None):
        self.strategy, self.model, self.optimizer, self.base_rate = strategy, model, optimizer, base_rate
        self.steps_model = steps_model
        self.global_batch = global_batch
        self.plateau_factor, self.plateau_patience, self.min_rate = plateau
        with strategy.scope():
            optimizer.build(model.trainable_variables)
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="completed_epochs")
            self.best = tf.Variable(np.inf, dtype=tf.float64, trainable=False, name="plateau_best")
            self.wait = tf.Variable(0, dtype=tf.int64, trainable=False, name="plateau_wait")
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, base_rate=base_rate,
                                              epoch=self.epoch, best=self.best, wait=self.wait)
        self.stop_reason = None
        self._train_step = tf.function(self._train_step_fn, jit_compile=jit_compile or None)
        self._eval_step = tf.function(self._eval_step_fn, jit_compile=jit_compile or None)
        self._weights_finite = weights.all_finite_fn(model)

    # -- steps ------------------------------------------------------------------------------
    def _train_replica(self, images, labels):
        with tf.GradientTape() as tape:
            if self.steps_model is None:
                probs = tf.cast(self.model(images, training=True), tf.float32)
                per_example = keras.losses.sparse_categorical_crossentropy(labels, probs)
            else:
                per_step = tf.cast(self.steps_model(images, training=True), tf.float32)
                per_example, probs = step_mean_loss(labels, per_step), per_step[:, -1]
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch)
            if self.model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(self.model.losses))
            scaled = self.optimizer.scale_loss(loss)
        variables = self.model.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients([(g, v) for g, v in zip(grads, variables) if g is not None])
        if self.steps_model is not None:  # the reported training loss is the last step's, as validation's
            per_example = None
        return batch_totals(labels, probs, per_example)

    def _eval_replica(self, images, labels):
        return batch_totals(labels, tf.cast(self.model(images, training=False), tf.float32))

    def _reduce(self, per_replica):
        return [self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for v in per_replica]

    def _train_step_fn(self, batch):
        return self._reduce(self.strategy.run(self._train_replica, args=batch))

    def _eval_step_fn(self, batch):
        return self._reduce(self.strategy.run(self._eval_replica, args=batch))

    # -- loops ------------------------------------------------------------------------------
    def distribute(self, dataset):
        return self.strategy.experimental_distribute_dataset(dataset.with_options(_distribution_options()))

    def evaluate(self, dataset):
        """``(loss, accuracy)`` over a (global-batched) data set."""
        totals = LossAccuracy()
        for batch in self.distribute(dataset):
            totals.add(self._eval_step(batch))
        return totals.result("The validation data set")

    def request_stop(self, reason):
        """Stop at the next step boundary (safe to call from a signal handler)."""
        self.stop_reason = reason

    def _check_stop(self, epoch):
        if self.stop_reason is not None:
            raise Interrupted(f"Stopped by {self.stop_reason} during epoch {epoch + 1}; "
                              f"{int(self.epoch.numpy())} epochs are complete.")

    def check_weights(self, epoch):
        """Stop the run when a weight is NaN or infinite after ``epoch`` (one reduction and one transfer).

        The loss alone is no guard: on some CPUs max pooling turns an all-NaN window into -3.4e38,
        so NaN weights can give finite losses.
        """
        if bool(self._weights_finite()):
            return
        bad = "; ".join(weights.nonfinite_weights(self.model)[:5])
        raise TrainingDiverged(f"Weights became NaN or infinite during epoch {epoch + 1} ({bad}), although the "
                               f"training loss stayed finite. The run stopped before committing that epoch; "
                               f"its last good checkpoint holds {int(self.epoch.numpy())} epochs. Try a lower "
                               "learning rate, or check the components' parameters.")

    def current_rate(self):
        schedule = self.optimizer.learning_rate
        return float(schedule(self.optimizer.iterations)) if callable(schedule) else float(schedule)

    def _update_plateau(self, val_loss):
        """Keras' ReduceLROnPlateau (mode min, min_delta 1e-4, no cooldown) on the base rate."""
        if val_loss < float(self.best.numpy()) - 1e-4:
            self.best.assign(val_loss)
            self.wait.assign(0)
            return
        self.wait.assign_add(1)
        if int(self.wait.numpy()) >= self.plateau_patience:
            old = float(self.base_rate.numpy())
            if old > self.min_rate:
                new = max(old * self.plateau_factor, self.min_rate)
                self.base_rate.assign(new)
                print(f"Reducing the learning rate from {old:.3g} to {new:.3g} (val_loss has not improved "
                      f"for {self.plateau_patience} epochs).", flush=True)
            self.wait.assign(0)

    def fit(self, train_dataset_fn, val_dataset, epochs, steps_per_epoch, on_epoch_end, progress=None):
        """Train epochs ``self.epoch .. epochs-1``.

        ``train_dataset_fn(epoch)`` returns that epoch's global-batched data set; ``val_dataset`` is a
        data set, or a function of the epoch that returns one.
        ``on_epoch_end(row)`` gets the history row and must persist it before the checkpoint is
        written. ``progress`` is ``'bar'``, ``'line'`` or None (bar on a TTY, else one line).
        """
        progress = progress or ("bar" if sys.stdout.isatty() else "line")
        for epoch in range(int(self.epoch.numpy()), epochs):
            start = time.time()
            bar = keras.utils.Progbar(steps_per_epoch, stateful_metrics=["loss", "accuracy"]) \
                if progress == "bar" else None
            if bar is not None:
                print(f"Epoch {epoch + 1}/{epochs}", flush=True)
            totals = LossAccuracy()
            for step, batch in enumerate(self.distribute(train_dataset_fn(epoch))):
                loss = totals.add(self._train_step(batch))[0]
                if not math.isfinite(loss):
                    raise TrainingDiverged(f"The training loss became {loss} at epoch {epoch + 1}, step {step + 1} "
                                           "(TerminateOnNaN). Try a lower learning rate, or check the data "
                                           "normalisation.")
                self._check_stop(epoch)
                if bar is not None:
                    bar.update(step + 1, list(zip(("loss", "accuracy"), totals.result())))
            train_loss, train_acc = totals.result(f"The training set (in full batches of {self.global_batch} images)")
            self.check_weights(epoch)
            val_loss, val_acc = self.evaluate(val_dataset(epoch) if callable(val_dataset) else val_dataset)
            row = dict(epoch=epoch, loss=train_loss, accuracy=train_acc, val_loss=val_loss,
                       val_accuracy=val_acc, lr=self.current_rate(), seconds=time.time() - start)
            print(f"Epoch {epoch + 1}/{epochs} - {row['seconds']:.1f}s - loss {row['loss']:.4f} - accuracy "
                  f"{row['accuracy']:.4f} - val_loss {val_loss:.4f} - val_accuracy {val_acc:.4f} - "
                  f"lr {row['lr']:.3g}", flush=True)
            self._update_plateau(val_loss)
            self.epoch.assign(epoch + 1)
            on_epoch_end(row)
        return int(self.epoch.numpy())
