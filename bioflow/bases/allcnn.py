"""ALL-CNN-C (Springenberg et al. 2015), as in the original BioNet code."""
import keras

from bioflow.bases.common import FirstConv, scaled
from bioflow.registry import BASES

# (filters, kernel, stride, padding) of the nine convolutions; ``None`` filters = classes.
ALLCNN_LAYERS = ((96, 3, 1, "same"), (96, 3, 1, "same"), (96, 3, 2, "same"),
                 (192, 3, 1, "same"), (192, 3, 1, "same"), (192, 3, 2, "same"),
                 (192, 3, 1, "same"), (192, 1, 1, "valid"), (None, 1, 1, "valid"))


@BASES.register("allcnn")
def allcnn(x, first_layer, classes, width=1.0, dropout=False, input_dropout=False, weight_decay=None,
           batch_norm=False):
    """ALL-CNN: nine ReLU convolutions, global average pooling and softmax.

    ``dropout`` adds 0.5 after blocks 1 and 2; ``input_dropout`` (its own flag, as in the
    original) adds 0.2 on the input; ``weight_decay`` is the L2 factor (applied as
    ``l2(weight_decay / 2)``, as in the original) on every convolution, the base's own first one
    included; ``batch_norm`` adds batch normalisation after every convolution.
    """
    reg = keras.regularizers.L2(weight_decay / 2) if weight_decay else None
    if input_dropout:
        x = keras.layers.Dropout(0.2, name="dropout0")(x)
    for n, (filters, kernel, stride, padding) in enumerate(ALLCNN_LAYERS, start=1):
        filters = classes if filters is None else scaled(filters, width)
        name = f"conv{n}"
        if n == 1:
            x = first_layer(x, FirstConv(filters, kernel, stride, padding, name, regularizer=reg))
        else:
            x = keras.layers.Conv2D(filters, kernel, strides=stride, padding=padding, kernel_regularizer=reg,
                                    bias_regularizer=reg, name=name)(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(axis=3, epsilon=1.001e-5, gamma_regularizer=reg,
                                                beta_regularizer=reg, name=f"conv{n}bn")(x)
        x = keras.layers.Activation("relu", name=f"conv{n}relu")(x)
        if dropout and n in (3, 6):
            x = keras.layers.Dropout(0.5, name=f"dropout{n // 3}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="logits")(x)
    return keras.layers.Activation("softmax", name="softmax")(x)
