"""CIFAR-10G (generalisation test sets) as a TensorFlow Datasets builder (docs/science.md).

Six sets of 10 images per CIFAR-10 class at 224×224: line drawings, contours and silhouettes,
each also inverted. The builder reads a local copy (``copy=``, or TFDS's manual dir when it
exists), or else downloads the public archive of github.com/bdevans/CIFAR-10G::

    builder = Cifar10G(data_dir=tmp, copy=COPY)   # COPY holds 224x224/; never downloads
    builder.download_and_prepare()
    ds = builder.as_dataset(split="contours_inverted", as_supervised=True)

PNG modes ``L`` and ``1`` both load; the README.md files in the set folders are ignored.
"""
import pathlib

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from bioflow.data.sources import CIFAR10_CLASSES, check_reachable
from bioflow.errors import BioflowError

SETS = ("line_drawings", "contours", "silhouettes")
ALL_SETS = tuple(s + suffix for s in SETS for suffix in ("", "_inverted"))
ARCHIVE_URL = "https://github.com/bdevans/CIFAR-10G/archive/refs/heads/master.zip"


def find_root(folder):
    """The ``224x224`` folder inside a CIFAR-10G copy or extracted archive, or None."""
    if folder is None:
        return None
    folder = pathlib.Path(folder)
    for candidate in [folder / "224x224", *sorted(folder.glob("*/224x224"))]:
        if candidate.is_dir():
            return candidate
    return None


def check_layout(root):
    """Raise naming the first set or class folder missing from ``root`` (a ``224x224`` folder)."""
    for name in ALL_SETS:
        if not (root / name).is_dir():
            raise BioflowError(f"CIFAR-10G at {root.parent} has no set folder {name!r} (expected 224x224/{name}/).")
        for cls in CIFAR10_CLASSES:
            folder = root / name / cls
            if not folder.is_dir() or not any(folder.glob("*.png")):
                raise BioflowError(f"CIFAR-10G set {name!r} has no images for class {cls!r} ({folder}).")


def check_folder(folder):
    """The ``224x224`` folder of the CIFAR-10G copy ``folder``, or an error that says what was expected."""
    root = find_root(folder)
    if root is None:
        raise BioflowError(f"{folder} is not a CIFAR-10G copy: expected {pathlib.Path(folder) / '224x224'}/<set>/"
                           f"<class>/*.png, with the sets {', '.join(ALL_SETS)}. Give the folder that holds "
                           "224x224/ (a clone of github.com/bdevans/CIFAR-10G), or 'download' to fetch it.")
    check_layout(root)
    return root


def _no_download(err):
    return BioflowError(f"Cannot download CIFAR-10G: {err}. Give a local copy with --cifar10g DIR "
                        "(CIFAR10G.folder), the folder that holds 224x224/.")


def check_download(data_dir=None):
    """Before any long work: CIFAR-10G is prepared in the TFDS ``data_dir``, or its archive is reachable.

    Offline with nothing prepared, this fails in seconds with an error that names ``--cifar10g DIR``.
    """
    if Cifar10G(data_dir=data_dir).is_prepared():
        return
    try:
        check_reachable(ARCHIVE_URL)
    except ConnectionError as err:
        raise _no_download(err) from err


class Cifar10G(tfds.core.GeneratorBasedBuilder):
    """CIFAR-10G: one split per set, images ``(224, 224, 1)`` uint8 and CIFAR-10 labels."""

    name = "cifar10_g"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "The six sets of github.com/bdevans/CIFAR-10G at 224x224."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Optional: a local copy of github.com/bdevans/CIFAR-10G (the folder holding 224x224/), given as "
        "copy= or as manual_dir. Without it the builder downloads the repository's archive.")

    def __init__(self, *, copy=None, **kwargs):
        self._copy = copy  # a local copy: an error when it is wrong, never a fallback to a download
        super().__init__(**kwargs)

    def _info(self):
        return self.dataset_info_from_configs(
            description="Line drawings, contours and silhouettes of the CIFAR-10 classes (Evans et al. 2022).",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(224, 224, 1)),
                "label": tfds.features.ClassLabel(names=CIFAR10_CLASSES),
                "inverted": tfds.features.Scalar(dtype=np.bool_),
            }),
            supervised_keys=("image", "label"),
            homepage="https://github.com/bdevans/CIFAR-10G",
            license="CC BY-NC-SA 4.0",
        )

    def _split_generators(self, dl_manager):
        folder = self._copy
        if folder is None:
            try:
                folder = dl_manager.manual_dir  # TFDS's convention: used when it exists and is not empty
            except AssertionError:
                folder = None
        if folder is not None:
            root = check_folder(folder)
        else:
            try:
                check_reachable(ARCHIVE_URL)  # fails in seconds offline, instead of TFDS's minutes of retries
            except ConnectionError as err:
                raise _no_download(err) from err
            root = find_root(dl_manager.download_and_extract(ARCHIVE_URL))
            if root is None:
                raise BioflowError(f"The CIFAR-10G archive from {ARCHIVE_URL} has no 224x224/ folder.")
            check_layout(root)
        return {name: self._generate_examples(root / name) for name in ALL_SETS}

    def _generate_examples(self, folder):
        inverted = folder.name.endswith("_inverted")
        for cls in CIFAR10_CLASSES:
            for path in sorted((folder / cls).glob("*.png")):
                image = tf.io.decode_png(tf.io.read_file(str(path)), channels=1).numpy()  # modes L and 1
                yield f"{folder.name}/{cls}/{path.name}", {"image": image, "label": cls, "inverted": inverted}
