"""The input pipeline: source → luminance → resize → [augment] → normalise → batch, in tf.data."""
import gin
import tensorflow as tf

from bioflow.data.augment import check_augmentation, make_augmenter
from bioflow.data.preprocessing import (
    CACHED_STATISTICS,
    check_interpolation,
    check_normalisation,
    compute_statistics,
    normaliser,
    resize,
)
from bioflow.data.sources import decode_checked
from bioflow.errors import BioflowError
from bioflow.registry import DATA_SOURCES
from bioflow.validation import MAX_IMAGES, check_bool, check_positive_int

AUTOTUNE = tf.data.AUTOTUNE
#: The most a training shuffle buffer may hold (CIFAR-10's 50,000 32x32 images take 200 MB).
SHUFFLE_BYTES = 2 << 30


def epoch_seed(seed, epoch):
    """The seed of one epoch's shuffle and augmentation: a pure function of (seed, epoch)."""
    return (int(seed) * 1_000_003 + int(epoch) * 7_919) % (2**31 - 1)


def _augmented(batches, augmenter):
    """``batches`` through ``augmenter(images, batch_index)``."""
    # Sequential on purpose: the random layers draw in batch order, so runs repeat exactly.
    return batches.enumerate().map(lambda i, batch: (augmenter(batch[0], i), batch[1]))


@gin.register(module="bioflow")
class DataPipeline:
    """Declares the data of a run (docs/science.md, "Images").

    Args:
        source: a data source (``@Synthetic()``, ``@CIFAR10()``, ``@ImageFolder()``) or its registered
            name (``'synthetic'``, the default, ``'cifar10'``, ``'image_folder'``), built through gin.
        interpolation: ``'nearest'`` or ``'lanczos'`` when the model's input is larger than the images.
        augmentation: ``'none'``, ``'standard'`` or ``'extra'``.
        recalculate_statistics: recompute mean and std even when they are cached.
        normalisation: ``'featurewise'`` (the training set's mean and std) or ``'samplewise'`` (each
            image by its own, as the original did for image folders under ``--recalculate_statistics``).
        augment_validation: validate (the ``val_loss`` of the plateau schedule) on the test set passed
            through the training augmentation, as the original's generator did; False validates on
            the clean test set (bioflow's default).
        shuffle_buffer: the training shuffle buffer in images; None (the default) shuffles the whole
            training set each epoch, as the original's generator permuted it, unless the set is too
            large to hold (:data:`SHUFFLE_BYTES`): then the buffer is as many images as fit, and the
            run's ``data`` record says so (``shuffle``).
    """

    def __init__(self, source=None, interpolation="nearest", augmentation="standard", recalculate_statistics=False,
                 normalisation="featurewise", augment_validation=False, shuffle_buffer=None):
        self.source = DATA_SOURCES.create(source or "synthetic") if source is None or isinstance(source, str) \
            else source
        if not isinstance(self.source, DATA_SOURCES.components()):
            raise BioflowError(f"DataPipeline.source must be a data source ({DATA_SOURCES.class_names()}) or its "
                               f"name ({', '.join(DATA_SOURCES)}), got {type(self.source).__name__}.")
        check_bool(recalculate_statistics, "DataPipeline.recalculate_statistics")
        if shuffle_buffer is not None:
            check_positive_int(shuffle_buffer, "DataPipeline.shuffle_buffer", maximum=MAX_IMAGES,
                               alternative=" or None (the whole training set)")
        self.interpolation = check_interpolation(interpolation)
        self.augmentation = check_augmentation(augmentation)
        self.recalculate_statistics = recalculate_statistics
        self.normalisation = check_normalisation(normalisation)
        self.augment_validation = bool(augment_validation)
        self.shuffle_buffer = shuffle_buffer
        self.splits = None
        self.stats = None
        self.buffer = None  # the images the training shuffle holds, fixed by prepare()
        self.image_size = None

    def prepare(self, image_size):
        """Load the source and fix the normalisation statistics for ``image_size``; returns the stats."""
        self.image_size = image_size
        self.splits = self.source.load()
        if self.splits.n_train == 0 or self.splits.n_test == 0:
            raise BioflowError(f"Data set {self.splits.name!r} has an empty training or test split.")
        key = (self.splits.name, self.interpolation, image_size)
        if key in CACHED_STATISTICS and not self.recalculate_statistics:
            mean, std = CACHED_STATISTICS[key]
            origin = "cached"
        else:
            if self.splits.train_files is not None:
                # Image folders: one eager pass decodes every file (naming any corrupt one) and
                # gathers the training statistics on the way.
                for path in self.splits.test_files:
                    decode_checked(path)
                batches = ((resize(decode_checked(p), image_size, self.interpolation)[None], None)
                           for p in self.splits.train_files)
            else:
                batches = self._resized(self.splits.train).batch(256)
            mean, std = compute_statistics(batches)
            origin = "computed"
        if not std > 1e-6:  # also NaN
            raise BioflowError(f"Data set {self.splits.name!r} has a pixel standard deviation of {std:.3g} (every "
                               f"training pixel is {mean:.4g}): normalising would divide by zero and nothing can "
                               "be learned from it. Check the data source.")
        self.stats = dict(dataset=self.splits.name, interpolation=self.interpolation, image_size=image_size,
                          mean=mean, std=std, origin=origin, normalisation=self.normalisation,
                          n_train=self.splits.n_train,
                          n_test=self.splits.n_test, classes=list(self.splits.class_names),
                          shuffle=self._shuffle_record())
        return self.stats

    def _shuffle_buffer(self):
        """The images the training shuffle holds: the whole set, unless it is too large to hold."""
        if self.shuffle_buffer is not None:
            return min(self.shuffle_buffer, self.splits.n_train)
        image = next(iter(self.splits.train.take(1)))[0]
        fits = max(1, SHUFFLE_BYTES // max(1, int(tf.size(image)) * image.dtype.size))
        return min(self.splits.n_train, fits)

    def _shuffle_record(self):
        self.buffer = buffer = self._shuffle_buffer()
        if buffer >= self.splits.n_train:
            return f"full ({self.splits.n_train} images each epoch)"
        why = "DataPipeline.shuffle_buffer" if self.shuffle_buffer is not None else \
            f"the {SHUFFLE_BYTES / 2**30:g} GiB that a shuffle may hold"
        return f"a buffer of {buffer} of the {self.splits.n_train} training images ({why})"

    @property
    def n_classes(self):
        return len(self.splits.class_names)

    def _resized(self, ds):
        size, interp = self.image_size, self.interpolation
        return ds.map(lambda x, y: (resize(x, size, interp), y), num_parallel_calls=AUTOTUNE)

    def _normalised(self, ds):
        norm = normaliser(self.stats)
        return ds.map(lambda x, y: (norm(x), y), num_parallel_calls=AUTOTUNE)

    def train_dataset(self, global_batch, epoch, seed):
        """One epoch of shuffled, augmented, normalised training batches (deterministic in seed, epoch)."""
        if self.stats is None:
            raise RuntimeError("call prepare() first")
        s = epoch_seed(seed, epoch)
        ds = self.splits.train.shuffle(self.buffer, seed=s, reshuffle_each_iteration=False)
        ds = self._resized(ds).batch(global_batch, drop_remainder=True)
        augmenter = make_augmenter(self.augmentation, s)
        if augmenter is not None:
            ds = _augmented(ds, augmenter)
        return self._normalised(ds).prefetch(AUTOTUNE)

    def test_dataset(self, batch):
        """The normalised test split in order."""
        if self.stats is None:
            raise RuntimeError("call prepare() first")
        return self._normalised(self._resized(self.splits.test).batch(batch)).prefetch(AUTOTUNE)

    def validation_dataset(self, batch, epoch, seed):
        """The data of an epoch's ``val_loss``: the test split, augmented when ``augment_validation``."""
        augmenter = make_augmenter(self.augmentation, epoch_seed(seed, epoch) ^ 0x5A5A5) \
            if self.augment_validation else None
        if augmenter is None:
            return self.test_dataset(batch)
        ds = _augmented(self._resized(self.splits.test).batch(batch), augmenter)
        return self._normalised(ds).prefetch(AUTOTUNE)
