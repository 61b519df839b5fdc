"""Data sources, declared in gin: the synthetic set, CIFAR-10 through TFDS, and image folders.

A source's ``load()`` returns :class:`Splits`: unbatched ``tf.data`` sets of
``(float32 luminance image (H, W, 1) in 0..255, int64 label)`` at the source's own size. The
pipeline (:mod:`bioflow.data.pipeline`) resizes, normalises, augments and batches them.
"""
import dataclasses
import pathlib
import socket
import urllib.parse

import numpy as np
import tensorflow as tf

from bioflow.data import synthetic
from bioflow.data.preprocessing import to_luminance
from bioflow.errors import BioflowError
from bioflow.registry import DATA_SOURCES
from bioflow.validation import check_bool, check_int, check_number, check_positive_int

#: The most pixels one synthetic split may have: generated in float64, 2**30 pixels take 8 GiB.
MAX_PIXELS = 1 << 30

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
#: Where TFDS downloads CIFAR-10 from (checked before a download starts).
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


@dataclasses.dataclass
class Splits:
    """A loaded data set: training and test splits plus what describes them."""

    name: str
    class_names: tuple
    train: tf.data.Dataset
    test: tf.data.Dataset
    n_train: int
    n_test: int
    #: The image files of each split (image folders only), else None.
    train_files: tuple = None
    test_files: tuple = None


@DATA_SOURCES.register("synthetic")
class Synthetic:
    """The built-in synthetic data set (:mod:`bioflow.data.synthetic`): offline and deterministic."""

    name = "synthetic"

    def __init__(self, n_train=6000, n_test=1000, seed=0, image_size=32, noise=0.06):
        check_positive_int(image_size, "Synthetic.image_size", maximum=1024)
        for key, value in (("n_train", n_train), ("n_test", n_test)):
            check_positive_int(value, f"Synthetic.{key}", maximum=MAX_PIXELS // image_size**2)
        check_int(seed, "Synthetic.seed")
        check_number(noise, "Synthetic.noise", minimum=0, maximum=1)
        self.n_train, self.n_test, self.seed, self.image_size, self.noise = n_train, n_test, seed, image_size, noise

    def load(self):
        """Generate both splits (from different seeds) in memory."""
        x_train, y_train = synthetic.generate(self.n_train, self.seed, self.image_size, self.noise)
        x_test, y_test = synthetic.generate(self.n_test, self.seed + 1_000_003, self.image_size, self.noise)

        def ds(x, y):
            return tf.data.Dataset.from_tensor_slices((x.astype(np.float32), y))

        return Splits(self.name, synthetic.CLASS_NAMES, ds(x_train, y_train), ds(x_test, y_test),
                      self.n_train, self.n_test)


@DATA_SOURCES.register("cifar10")
class CIFAR10:
    """CIFAR-10 through TensorFlow Datasets, converted to luminance (docs/science.md, "Images")."""

    name = "cifar10"

    def __init__(self, data_dir=None, download=True):
        if data_dir is not None and not isinstance(data_dir, str):
            raise BioflowError(f"CIFAR10.data_dir must be a folder path or None, got {data_dir!r}.")
        self.data_dir, self.download = data_dir, check_bool(download, "CIFAR10.download")

    def load(self):
        """Load (downloading if needed and allowed) the ``train`` and ``test`` splits."""
        import tensorflow_datasets as tfds

        try:
            builder = tfds.builder("cifar10", data_dir=self.data_dir)
            try:
                train, test = builder.as_dataset(split=["train", "test"], as_supervised=True)
            except AssertionError:  # not prepared in data_dir
                if not self.download:
                    raise FileNotFoundError(f"CIFAR-10 is not prepared in {builder.data_dir} and download=False")
                check_reachable(CIFAR10_URL)
                builder.download_and_prepare()
                train, test = builder.as_dataset(split=["train", "test"], as_supervised=True)
        except Exception as err:  # TFDS raises many types when offline or unprepared
            raise BioflowError(
                f"Could not load CIFAR-10 through TFDS (data_dir={self.data_dir!r}): {type(err).__name__}: {err}. "
                "Without network access, prepare it on a connected machine and pass that folder with "
                "--data-dir (CIFAR10.data_dir), or try bioflow offline with the quickstart "
                "(`bioflow train`, built-in synthetic data).") from err

        def gray(image, label):
            return to_luminance(image), tf.cast(label, tf.int64)

        return Splits(self.name, tuple(builder.info.features["label"].names), train.map(gray), test.map(gray),
                      _count(builder, "train", train), _count(builder, "test", test))


def _count(builder, split, ds):
    try:
        return builder.info.splits[split].num_examples
    except KeyError:  # no split metadata (e.g. under tfds.testing.mock_data)
        n = int(ds.cardinality())
        return n if n >= 0 else int(ds.reduce(0, lambda c, _: c + 1))


def check_reachable(url, timeout=5.0):
    """Fail fast (instead of TFDS's minutes of retries) when ``url``'s host cannot be reached."""
    parsed = urllib.parse.urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
    except OSError as err:
        raise ConnectionError(f"cannot reach {parsed.hostname}:{port} to download ({err})") from err


def _list_class_folders(split_dir, what):
    classes = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    if not classes:
        raise BioflowError(f"{what} folder {split_dir} has no class sub-folders.")
    files = {}
    for name in classes:
        images = sorted(str(p) for p in (split_dir / name).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not images:
            raise BioflowError(f"Class folder {split_dir / name} has no images ({', '.join(IMAGE_EXTENSIONS)}).")
        files[name] = images
    return files


def decode_image_file(path):
    """Read and decode one image file to float32 luminance ``(H, W, 1)`` (TF-decodable formats)."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return to_luminance(image)


@DATA_SOURCES.register("image_folder")
class ImageFolder:
    """An image-folder data set (the original ``--image_path``): ``train/`` plus ``val/`` or ``test/``
    (``val/`` first, as the original chose), each with one sub-folder per class. Any image format
    that TensorFlow decodes is read; other files (e.g. README.md) are ignored.

    Args:
        path: the folder holding ``train/`` and the test split.
        test_split: the test folder's name (default: ``val``, else ``test``).
        name: the data set's name in ``run.json`` and the statistics cache (default: the name of
            the training folder, e.g. ``ecoset-cifar10``, which has cached statistics).
        train_path: train on this folder's ``train/`` instead (the original ``--train_image_path``);
            the test split still comes from ``path``.
    """

    def __init__(self, path, test_split=None, name=None, train_path=None):
        self.path, self.test_split, self.train_path = path, test_split, train_path
        self._name = name

    @property
    def name(self):
        trained_on = self.train_path or self.path  # the statistics are the training folder's
        return self._name or pathlib.Path(trained_on).expanduser().resolve().name

    def _test_dir(self, root):
        names = [self.test_split] if self.test_split else ["val", "test"]
        for name in names:
            if (root / name).is_dir():
                return root / name
        raise BioflowError(f"Image folder {root} has no {' or '.join(repr(n + '/') for n in names)} folder.")

    def load(self):
        """Index the files; decoding happens in the pipeline (and in the statistics pass)."""
        root = pathlib.Path(self.path).expanduser()
        train_root = pathlib.Path(self.train_path).expanduser() if self.train_path else root
        if not (train_root / "train").is_dir():
            raise BioflowError(f"Image folder {train_root} has no 'train/' folder (expected train/<class>/<image>).")
        train_files = _list_class_folders(train_root / "train", "Training")
        test_dir = self._test_dir(root)
        test_files = _list_class_folders(test_dir, "Test")
        classes = tuple(train_files)
        if len(classes) < 2:
            raise BioflowError(f"Image folder {train_root / 'train'} has one class ({classes[0]!r}); a classifier "
                               "needs at least two. Add a sub-folder of images per class to train/ and to the test "
                               "folder.")
        unknown = sorted(set(test_files) - set(classes))
        if unknown:
            raise BioflowError(f"{test_dir} has classes that {train_root / 'train'} lacks: {', '.join(unknown)}.")

        def ds(files):
            paths = [p for c in classes for p in files.get(c, [])]
            labels = [i for i, c in enumerate(classes) for _ in files.get(c, [])]
            data = tf.data.Dataset.from_tensor_slices((paths, np.asarray(labels, np.int64)))
            return data.map(lambda p, y: (decode_image_file(p), y), num_parallel_calls=tf.data.AUTOTUNE), paths

        train, train_paths = ds(train_files)
        test, test_paths = ds(test_files)
        return Splits(self.name, classes, train, test, len(train_paths), len(test_paths),
                      train_files=tuple(train_paths), test_files=tuple(test_paths))


def decode_checked(path):
    """:func:`decode_image_file`, raising an error that names a file TensorFlow cannot decode."""
    try:
        return decode_image_file(path)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as err:
        raise BioflowError(f"Cannot decode image file {path}: {err.message.splitlines()[0]}") from err
