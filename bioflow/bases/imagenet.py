"""ImageNet weights for ``Original`` bases, adapted to one-channel (grayscale) input.

The weight files are Keras Applications' "notop" HDF5 files. The pretrained first
convolution sees RGB; on grayscale input (R = G = B = L) the equivalent kernel is the sum of its
three input-channel slices, so bioflow sums them instead of re-initialising the layer.

The pretrained networks expect Keras' "caffe" preprocessing: BGR values in 0..255 minus the
ImageNet channel means. bioflow feeds z-scored luminance instead, so once the data statistics are
known, :func:`fold_input_normalisation` folds the difference into the first layer's weights and
bias: the layer then responds as the RGB network does to the same gray image preprocessed the
Keras way.
"""
import logging

import h5py
import keras
import numpy as np

from bioflow import architecture
from bioflow.errors import BioflowError, choices

log = logging.getLogger(__name__)
_KERAS_APPS = "https://storage.googleapis.com/tensorflow/keras-applications/"

#: Base name → (file URL, md5 hash as published by Keras Applications).
IMAGENET_WEIGHTS = {
    "vgg16": (_KERAS_APPS + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
              "6d6bbae143d832006294945121d1f1fc"),
    "vgg19": (_KERAS_APPS + "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
              "253f8cb515780f3b799900260a226db6"),
    "resnet50": (_KERAS_APPS + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
                 "4d473c1dd8becc155b73f8504c6f6626"),
}


#: Keras' "caffe" preprocessing of VGG-16/19 and ResNet-50: BGR channel means subtracted, no scaling.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
#: The pretrained first convolution of each base.
FIRST_CONV = {"vgg16": "block1_conv1", "vgg19": "block1_conv1", "resnet50": "conv1_conv"}


def imagenet_weights_path(base):
    """Download (once, into Keras' cache) and return the ImageNet weight file of ``base``."""
    if base not in IMAGENET_WEIGHTS:
        raise BioflowError(f"No ImageNet weights for base {base!r}; they exist for {choices(IMAGENET_WEIGHTS)}.")
    url, md5 = IMAGENET_WEIGHTS[base]
    fname = url.rsplit("/", 1)[-1]
    try:
        return keras.utils.get_file(fname, url, cache_subdir="models", file_hash=md5)
    except Exception as err:  # get_file raises bare Exceptions for network failures
        raise BioflowError(
            f"Could not download the ImageNet weights of {base!r} from {url} ({type(err).__name__}: {err}). "
            f"Fetching them needs network access once; offline, put {fname} in ~/.keras/models/ or pass "
            f"the file's path as build_model.weights.") from err


def _decode(values):
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def write_applications_weights(model, path):
    """Write ``model``'s weights in the Keras Applications (legacy HDF5) layout that
    :func:`load_pretrained_weights` reads, e.g. to use a Keras Applications model's own weights."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
        for layer in model.layers:
            group = f.create_group(layer.name)
            names = [f"{layer.name}/{w.name}:0".encode() for w in layer.weights]
            group.attrs["weight_names"] = names
            for name, w in zip(names, layer.weights):
                group.create_dataset(name.decode(), data=np.asarray(w.numpy()))


def load_pretrained_weights(model, path):
    """Load a Keras Applications (legacy HDF5) weight file into ``model`` by layer name.

    Kernels with 3 input channels are summed into 1 where the model has one input channel.
    Layers missing from the model, or whose shapes differ (e.g. ``fc1`` at another input size),
    are skipped. Returns ``{'loaded': [...], 'adapted': [...], 'skipped': [...]}``.
    """
    report = {"loaded": [], "adapted": [], "skipped": []}
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise BioflowError(f"Cannot read weight file {path!r}: {err}") from err
    with f:
        group = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in group.attrs:
            raise BioflowError(f"{path!r} is not a Keras Applications (legacy HDF5) weight file: "
                               "it has no 'layer_names' attribute.")
        for lname in _decode(group.attrs["layer_names"]):
            sources = [np.asarray(group[lname][w]) for w in _decode(group[lname].attrs["weight_names"])]
            if not sources:
                continue
            try:
                layer = model.get_layer(lname)
            except ValueError:
                report["skipped"].append(lname)
                continue
            targets = layer.get_weights()
            values, adapted = [], False
            for src, tgt in zip(sources, targets):
                if src.shape == tgt.shape:
                    values.append(src)
                elif src.ndim == 4 and src.shape[2] == 3 and tgt.shape == src.shape[:2] + (1,) + src.shape[3:]:
                    values.append(src.sum(axis=2, keepdims=True))
                    adapted = True
                else:
                    break
            if len(values) != len(targets) or len(sources) != len(targets):
                report["skipped"].append(lname)
                continue
            layer.set_weights(values)
            report["adapted" if adapted else "loaded"].append(lname)
    return report


def fold_input_normalisation(model, weights, mean, std):
    """Fold bioflow's input normalisation into the pretrained first convolution of ``model`` (in place).

    ``weights`` is ``'imagenet'`` or the Keras Applications weight file the model was built with.
    The RGB network sees ``x_c = L − m_c`` (caffe means ``m_c``) for a gray image ``L``; bioflow feeds
    ``z = (L − mean) / std``. With the file's kernel ``W_c`` and bias ``b`` the layer becomes
    ``W' = std · Σ_c W_c`` and ``b' = b + Σ_taps,c W_c · (mean − m_c)``, so its output equals the RGB
    layer's wherever the kernel does not reach the zero padding. Idempotent: it starts from the file.
    Returns False (and changes nothing) when the model's first layer did not take the file's weights
    (e.g. a base of another width).
    """
    base = architecture.of(model).base
    if base not in FIRST_CONV:
        raise BioflowError(f"Cannot fold the input normalisation into base {base!r}: pretrained weights exist for "
                           f"{choices(FIRST_CONV)}.")
    path = imagenet_weights_path(base) if weights == "imagenet" else weights
    name = FIRST_CONV[base]
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        kernel, bias = (np.asarray(group[name][w], np.float64) for w in _decode(group[name].attrs["weight_names"]))
    if kernel.shape[2] != 3:
        raise BioflowError(f"{path}: {name} has {kernel.shape[2]} input channels, not the 3 (BGR) of ImageNet weights.")
    layer = model.get_layer(name)
    if tuple(layer.kernel.shape) != kernel.shape[:2] + (1,) + kernel.shape[3:]:
        log.warning("%s of shape %s did not take the pretrained %s: its input normalisation is not folded.",
                    name, tuple(layer.kernel.shape), kernel.shape)
        return False
    offsets = float(mean) - np.asarray(CAFFE_BGR_MEAN)  # mean − m_c, in the weights' BGR channel order
    layer.set_weights([kernel.sum(axis=2, keepdims=True) * float(std), bias + offsets @ kernel.sum(axis=(0, 1))])
    return True
