"""The explanation methods, as pure computations on a Keras model and images (no files).

Every function takes images in the model's own input space (already normalised) unless it says
otherwise, and returns numpy arrays. :func:`bioflow.explain.run.write` turns them into
PNGs and CSVs.
"""
import keras
import numpy as np
import tensorflow as tf

from bioflow.errors import BioflowError, choices

#: Layer classes whose output is a spatial feature map that Grad-CAM and top-k may use.
SPATIAL_RANK = 4


def spatial_layers(model):
    """Names of the layers with a 4-D ``(batch, H, W, C)`` output, in model order (the input excluded)."""
    return [layer.name for layer in model.layers
            if not isinstance(layer, keras.layers.InputLayer) and len(layer.output.shape) == SPATIAL_RANK]


def conv_layers(model):
    """Names of the convolutional layers (any layer with a 4-D kernel, bioflow's own included)."""
    return [layer.name for layer in model.layers
            if layer.name in spatial_layers(model) and any(len(w.shape) == 4 for w in layer.weights)]


def check_layer(model, name, what="layer"):
    """The layer called ``name`` if its output is spatial; else an error listing the valid layers."""
    names = [layer.name for layer in model.layers]
    if name not in names:
        raise BioflowError(f"Unknown {what} {name!r}; the model's convolutional layers are "
                           f"{choices(conv_layers(model))}.")
    layer = model.get_layer(name)
    if len(layer.output.shape) != SPATIAL_RANK:
        raise BioflowError(f"Layer {name!r} has no spatial output: its output shape is {tuple(layer.output.shape)}, "
                           f"not (batch, height, width, channels). Choose one of {choices(conv_layers(model))}.")
    return layer


#: Grad-CAM's default layer has maps of at least this size (7×7, as in Selvaraju et al.); coarser maps
#: say little about where the evidence is (a 2×2 map's centre mass is 1/4 whatever it holds).
MIN_CAM_SIZE = 7


def last_conv_layer(model, min_size=MIN_CAM_SIZE):
    """The default Grad-CAM layer: the last convolution whose maps are at least ``min_size`` on a side
    (the last convolution of the base at 224×224; an earlier block on tiny inputs), else the last one."""
    convs = conv_layers(model)
    if not convs:
        raise BioflowError(f"Model {model.name!r} has no convolutional layer to explain.")
    large = [n for n in convs if min(model.get_layer(n).output.shape[1:3]) >= min_size]
    return (large or convs)[-1]


def _probe(model, names):
    """A model from the input to the outputs of ``names`` and the model's output."""
    return keras.Model(model.inputs, [model.get_layer(n).output for n in names] + [model.output])


class GradCam:
    """Grad-CAM (Selvaraju et al. 2017) of one model at one layer; build once, call on many batches.

    The class score is the class's log-probability (bioflow's networks end in a softmax; the log
    does not saturate as the probability does). With ``A`` the layer's maps and ``g`` the score's
    gradient, ``cam = relu(Σ_k mean(g_k) A_k)``.
    """

    def __init__(self, model, layer_name):
        check_layer(model, layer_name)
        self.layer_name = layer_name
        self.probe = _probe(model, [layer_name])
        self._batch = tf.function(self._cams, reduce_retracing=True)

    def _cams(self, x, classes):
        with tf.GradientTape() as tape:
            tape.watch(x)  # records every op, so the gradient reaches any intermediate map
            maps, probs = self.probe(x, training=False)
            score = tf.math.log(tf.gather(tf.cast(probs, tf.float32), classes, batch_dims=1) + 1e-12)
        grads = tf.cast(tape.gradient(score, maps), tf.float32)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        return tf.nn.relu(tf.reduce_sum(weights * tf.cast(maps, tf.float32), axis=-1))

    def __call__(self, images, classes, batch_size=32):
        """``(cams [N, h, w], heat [N, H, W])`` for ``classes[i]`` of ``images[i]`` (model inputs).

        ``cams`` are at the layer's resolution, ``heat`` resized (bilinear) to the input; each is scaled
        to a maximum of 1 (all zeros where the class has no positive evidence).
        """
        images = np.asarray(images, np.float32)
        classes = np.asarray(classes, np.int64)
        cams = [self._batch(tf.constant(images[s:s + batch_size]), tf.constant(classes[s:s + batch_size])).numpy()
                for s in range(0, len(images), batch_size)]
        size = images.shape[1:3]
        if not cams:
            return np.zeros((0, 1, 1), np.float32), np.zeros((0, *size), np.float32)
        cams = np.concatenate(cams)
        peak = cams.reshape(len(cams), -1).max(axis=1)[:, None, None]
        cams = np.where(peak > 0, cams / np.maximum(peak, 1e-30), 0.0).astype(np.float32)
        heat = tf.image.resize(cams[..., None], size, method="bilinear").numpy()[..., 0]
        return cams, np.clip(heat, 0, None).astype(np.float32)


def grad_cam(model, layer_name, images, classes, batch_size=32):
    """Grad-CAM of ``classes[i]`` for ``images[i]`` at ``layer_name``: ``(cams, heat)`` (see :class:`GradCam`)."""
    return GradCam(model, layer_name)(images, classes, batch_size)


def centre_mass(heat, fraction=0.5):
    """The share of each heat map's mass inside the central square of ``fraction`` of its side."""
    n, h, w = heat.shape
    top, left = int(round(h * (1 - fraction) / 2)), int(round(w * (1 - fraction) / 2))
    inner = heat[:, top:h - top, left:w - left].reshape(n, -1).sum(axis=1)
    total = heat.reshape(n, -1).sum(axis=1)
    return np.where(total > 0, inner / np.maximum(total, 1e-30), np.nan)


def occlusion(predict, images, labels, patch=8, stride=4, fill=0.0, max_batch=256):
    """Occlusion sensitivity (Zeiler & Fergus 2014): the drop in the true class's probability when a
    ``patch``×``patch`` square, filled with ``fill``, covers each position (steps of ``stride``).

    ``predict(x)`` maps a batch of model inputs to probabilities. Every occluded copy of an image is
    made with one mask multiply and predicted in batches of up to ``max_batch``, not one by one.
    Returns ``(drops [N, ny, nx], base [N])``: the drop per patch position and the clean probability.
    """
    n, h, w, _ = images.shape
    if patch < 1 or stride < 1 or patch > min(h, w):
        raise BioflowError(f"occlusion needs 1 <= patch <= the image size ({h}x{w}) and stride >= 1, got patch "
                           f"{patch} and stride {stride}.")
    ys, xs = range(0, h - patch + 1, stride), range(0, w - patch + 1, stride)
    masks = np.ones((len(ys) * len(xs), h, w, 1), np.float32)
    for i, (y, x) in enumerate((y, x) for y in ys for x in xs):
        masks[i, y:y + patch, x:x + patch] = 0.0
    masks = tf.constant(masks)
    labels = np.asarray(labels, np.int64)
    base = np.asarray(predict(tf.convert_to_tensor(images, tf.float32)))[np.arange(n), labels]
    drops = np.empty((n, len(masks)), np.float32)
    per_call = max(1, max_batch // len(masks))  # whole images per predict call
    for start in range(0, n, per_call):
        chunk = tf.convert_to_tensor(images[start:start + per_call], tf.float32)
        k = int(chunk.shape[0])
        occluded = chunk[:, None] * masks[None] + fill * (1.0 - masks[None])  # [k, P, H, W, 1]
        probs = np.asarray(predict(tf.reshape(occluded, (-1, h, w, images.shape[3])))).reshape(k, len(masks), -1)
        drops[start:start + k] = base[start:start + k, None] - probs[np.arange(k), :, labels[start:start + k]]
    return drops.reshape(n, len(ys), len(xs)), base


def activations(model, layer_names, images, batch_size=32):
    """``{layer: maps [N, H, W, C]}`` of ``layer_names`` for ``images``."""
    for name in layer_names:
        check_layer(model, name)
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in layer_names])
    outs = [[] for _ in layer_names]
    for start in range(0, len(images), batch_size):
        result = probe(tf.convert_to_tensor(images[start:start + batch_size], tf.float32), training=False)
        result = result if isinstance(result, (list, tuple)) else [result]
        for store, value in zip(outs, result):
            store.append(np.asarray(tf.cast(value, tf.float32)))
    return {name: np.concatenate(store) for name, store in zip(layer_names, outs)}


def top_k(model, layer_name, batches, units, k=9):
    """The ``k`` images that most activate each of ``units`` (channels) of ``layer_name``, in one pass.

    A unit's activation on an image is its spatial mean. ``batches`` yields ``(images, indices)``.
    Returns ``{unit: [(index, activation), …]}``, highest first (ties by lower index).
    """
    layer = check_layer(model, layer_name)
    channels = int(layer.output.shape[-1])
    bad = [u for u in units if not 0 <= u < channels]
    if bad:
        raise BioflowError(f"Layer {layer_name!r} has {channels} channels (units 0..{channels - 1}); got units {bad}.")
    probe = keras.Model(model.inputs, layer.output)
    best_values = np.full((len(units), 0), -np.inf)
    best_index = np.zeros((len(units), 0), np.int64)
    for images, indices in batches:
        maps = np.asarray(tf.cast(probe(tf.convert_to_tensor(images, tf.float32), training=False), tf.float32))
        means = maps.mean(axis=(1, 2))[:, units].T  # [units, batch]
        values = np.concatenate([best_values, means], axis=1)
        index = np.concatenate([best_index, np.broadcast_to(np.asarray(indices, np.int64), means.shape)], axis=1)
        order = np.lexsort((index, -values), axis=1)[:, :k]  # highest activation, then lowest index
        best_values = np.take_along_axis(values, order, axis=1)
        best_index = np.take_along_axis(index, order, axis=1)
    return {u: list(zip(best_index[i].tolist(), best_values[i].tolist())) for i, u in enumerate(units)}


def kernel_drift(layer):
    """``(kernels [k, h, w] (first input channel), relative L2 distance per kernel or None)``.

    For a bioflow filter-bank layer the distance is ``|W - W0| / |W0|`` per output kernel, from the
    bank's own initial kernels; other layers have no known initialisation (None).
    """
    kernel = np.asarray(layer.get_weights()[0], np.float64)  # [h, w, in, out]
    shown = np.transpose(kernel[:, :, 0, :], (2, 0, 1))
    bank = getattr(layer, "filter_bank", None)
    if bank is None:
        return shown, None
    initial = bank.kernels(kernel.shape[2])
    diff = np.sqrt(((kernel - initial) ** 2).sum(axis=(0, 1, 2)))
    norm = np.sqrt((initial ** 2).sum(axis=(0, 1, 2)))
    return shown, diff / np.maximum(norm, 1e-30)
