"""VGG-16 and VGG-19 (Simonyan & Zisserman 2015) with Keras Applications' layer names."""
import keras

from bioflow.bases.common import FirstConv, check_input_size, scaled
from bioflow.registry import BASES

VGG_FILTERS = (64, 128, 256, 512, 512)


def _vgg(x, convs_per_block, first_layer, classes, width, fc_units, name):
    check_input_size(x, 32, name)
    for block, (n_convs, filters) in enumerate(zip(convs_per_block, VGG_FILTERS), start=1):
        for i in range(1, n_convs + 1):
            layer_name = f"block{block}_conv{i}"
            if block == 1 and i == 1:
                x = first_layer(x, FirstConv(scaled(filters, width), 3, 1, "same", layer_name, "relu"))
            else:
                x = keras.layers.Conv2D(scaled(filters, width), 3, padding="same", activation="relu",
                                        name=layer_name)(x)
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(fc_units, activation="relu", name="fc1")(x)
    x = keras.layers.Dense(fc_units, activation="relu", name="fc2")(x)
    return keras.layers.Dense(classes, activation="softmax", name="predictions")(x)


@BASES.register("vgg16")
def vgg16(x, first_layer, classes, width=1.0, fc_units=4096):
    """VGG-16 with its top (fc1, fc2 of ``fc_units``); ``width`` scales every conv."""
    return _vgg(x, (2, 2, 3, 3, 3), first_layer, classes, width, fc_units, "vgg16")


@BASES.register("vgg19")
def vgg19(x, first_layer, classes, width=1.0, fc_units=4096):
    """VGG-19 with its top (fc1, fc2 of ``fc_units``); ``width`` scales every conv."""
    return _vgg(x, (2, 2, 4, 4, 4), first_layer, classes, width, fc_units, "vgg19")
