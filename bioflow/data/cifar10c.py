"""CIFAR-10-C (Hendrycks & Dietterich 2019) through TFDS's ``cifar10_corrupted/<corruption>_<severity>``.

Three ways to the images, checked in this order:

* prepared: the configs already prepared in the TFDS data directory (``data_dir``, default
  ``$TFDS_DATA_DIR``);
* a copy: ``copy`` names a folder holding the published arrays (``CIFAR-10-C/`` of
  ``CIFAR-10-C.tar``: ``labels.npy`` and ``<corruption>.npy``), which TFDS's own builder prepares
  into the data directory (never a download);
* a download: TFDS's builder fetches ``CIFAR-10-C.tar`` (2.9 GB) from Zenodo. Offline, this fails
  within seconds and names ``copy``.
"""
import os
import pathlib

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.image_classification import cifar10_corrupted as tfds_c

from bioflow.data.sources import check_reachable
from bioflow.errors import BioflowError

#: bioflow's corruption names (Hendrycks' file names) → TFDS's config names.
TFDS_NAMES = {"glass_blur": "frosted_glass_blur", "elastic_transform": "elastic"}
#: CIFAR-10-C's 15 benchmark corruptions and its 4 extra ones, in bioflow's (Hendrycks') names.
BENCHMARK = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
             "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
             "jpeg_compression")
EXTRA = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
DOWNLOAD_URL = tfds_c._DOWNLOAD_URL


def config_name(corruption, severity):
    """TFDS's config of a corruption at a severity: ``('glass_blur', 3)`` → ``'frosted_glass_blur_3'``."""
    return f"{TFDS_NAMES.get(corruption, corruption)}_{int(severity)}"


class Cifar10CorruptedCopy(tfds_c.Cifar10Corrupted, skip_registration=True):
    """TFDS's ``cifar10_corrupted`` builder, prepared from a local copy of the published arrays."""

    name = "cifar10_corrupted"  # the same data directory layout as TFDS's own builder

    def __init__(self, *, copy, **kwargs):
        self._copy = copy
        super().__init__(**kwargs)

    def _split_generators(self, dl_manager):
        return [tfds.core.SplitGenerator(name=tfds.Split.TEST, gen_kwargs={"data_dir": self._copy})]


def check_copy(folder, corruptions):
    """The folder of a CIFAR-10-C copy that holds every array ``corruptions`` need, or an error naming
    the missing files."""
    folder = pathlib.Path(folder)
    root = folder / "CIFAR-10-C" if (folder / "CIFAR-10-C").is_dir() else folder
    files = ["labels.npy"] + [tfds_c._CORRUPTIONS_TO_FILENAMES[TFDS_NAMES.get(c, c)] for c in corruptions]
    missing = [f for f in dict.fromkeys(files) if not (root / f).is_file()]
    if missing:
        raise BioflowError(f"{folder} is not a CIFAR-10-C copy for these corruptions: it lacks "
                           f"{', '.join(missing)}. Give the folder of the extracted CIFAR-10-C.tar "
                           "(CIFAR-10-C/ with labels.npy and one <corruption>.npy per corruption).")
    labels = _array(root / "labels.npy")  # memory-mapped: only the header is read here
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) == 0 or len(labels) % 5:
        raise BioflowError(f"{root / 'labels.npy'} must hold integer labels, 5 severities' worth (a multiple of 5), "
                           f"got an array of {labels.dtype} with shape {labels.shape}.")
    for name in files[1:]:
        images = _array(root / name)
        if images.dtype != np.uint8 or images.shape != (len(labels), 32, 32, 3):
            raise BioflowError(f"{root / name} must hold {len(labels)} uint8 images of 32x32x3 (as labels.npy "
                               f"counts), got an array of {images.dtype} with shape {images.shape}.")
    return root


def _array(path):
    """A ``.npy`` file's array, memory-mapped; never unpickled (``allow_pickle=False``)."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as err:
        raise BioflowError(f"{path} is not a numpy array file that bioflow reads (no pickled objects): {err}") \
            from err


def _prepared(name, data_dir):
    """The prepared test split of config ``name``, or None."""
    try:
        return tfds.builder(f"cifar10_corrupted/{name}", data_dir=data_dir).as_dataset(split="test",
                                                                                     as_supervised=True)
    except AssertionError:  # not prepared in data_dir
        return None


def check_available(corruptions, severities, data_dir=None, copy=None, download=True):
    """Raise before any work when some ``(corruption, severity)`` can be neither read, prepared from
    ``copy`` nor downloaded; the message names the option to give."""
    wanted = [(c, s) for c in corruptions for s in severities]
    if all(_prepared(config_name(c, s), data_dir) is not None for c, s in wanted):
        return
    if copy is not None:
        check_copy(copy, corruptions)
        return
    _check_download(config_name(*wanted[0]), data_dir, download)


def _check_download(name, data_dir, download):
    where = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    if not download:
        raise BioflowError(f"CIFAR-10-C ({name}) is not prepared in {where}, and CorruptionSuite.download is "
                           "False: give a copy of the published arrays with --cifar10-c DIR (CorruptionSuite.copy).")
    try:
        check_reachable(DOWNLOAD_URL)
    except ConnectionError as err:
        raise BioflowError(f"Cannot download CIFAR-10-C ({name} is not prepared in {where}): {err}. Give a copy "
                           "of the published arrays (the extracted CIFAR-10-C.tar) with --cifar10-c DIR "
                           "(CorruptionSuite.copy), or a TFDS data directory where it is prepared "
                           "(CorruptionSuite.data_dir).") from err


def load(corruption, severity, data_dir=None, copy=None, download=True):
    """The test split of ``cifar10_corrupted/<corruption>_<severity>`` as ``(uint8 RGB image, label)``."""
    name = config_name(corruption, severity)
    prepared = _prepared(name, data_dir)
    if prepared is not None:
        return prepared
    if copy is not None:
        builder = Cifar10CorruptedCopy(copy=str(check_copy(copy, [corruption])), config=name, data_dir=data_dir)
        builder.download_and_prepare()
        return builder.as_dataset(split="test", as_supervised=True)
    _check_download(name, data_dir, download)
    builder = tfds.builder(f"cifar10_corrupted/{name}", data_dir=data_dir)
    builder.download_and_prepare()
    return builder.as_dataset(split="test", as_supervised=True)
