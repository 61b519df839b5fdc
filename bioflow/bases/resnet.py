"""ResNet-50 (He et al. 2016) with Keras Applications' layer names."""
import keras

from bioflow.bases.common import FirstConv, check_input_size, scaled
from bioflow.registry import BASES

BN_EPSILON = 1.001e-5


def _bottleneck_block(x, filters, stride, conv_shortcut, name):
    bn = dict(axis=3, epsilon=BN_EPSILON)
    if conv_shortcut:
        shortcut = keras.layers.Conv2D(4 * filters, 1, strides=stride, name=name + "_0_conv")(x)
        shortcut = keras.layers.BatchNormalization(**bn, name=name + "_0_bn")(shortcut)
    else:
        shortcut = x
    x = keras.layers.Conv2D(filters, 1, strides=stride, name=name + "_1_conv")(x)
    x = keras.layers.BatchNormalization(**bn, name=name + "_1_bn")(x)
    x = keras.layers.Activation("relu", name=name + "_1_relu")(x)
    x = keras.layers.Conv2D(filters, 3, padding="same", name=name + "_2_conv")(x)
    x = keras.layers.BatchNormalization(**bn, name=name + "_2_bn")(x)
    x = keras.layers.Activation("relu", name=name + "_2_relu")(x)
    x = keras.layers.Conv2D(4 * filters, 1, name=name + "_3_conv")(x)
    x = keras.layers.BatchNormalization(**bn, name=name + "_3_bn")(x)
    x = keras.layers.Add(name=name + "_add")([shortcut, x])
    return keras.layers.Activation("relu", name=name + "_out")(x)


def _stack(x, filters, blocks, stride, name):
    x = _bottleneck_block(x, filters, stride, True, name + "_block1")
    for i in range(2, blocks + 1):
        x = _bottleneck_block(x, filters, 1, False, f"{name}_block{i}")
    return x


@BASES.register("resnet50")
def resnet50(x, first_layer, classes, width=1.0):
    """ResNet-50 with global average pooling and a softmax layer.

    A filter bank replacing ``conv1`` runs with 'valid' padding and no stride after the 3-pixel
    zero padding, as the original code did (docs/science.md).
    """
    check_input_size(x, 32, "resnet50")
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = first_layer(x, FirstConv(scaled(64, width), 7, 2, "valid", "conv1_conv"))
    x = keras.layers.BatchNormalization(axis=3, epsilon=BN_EPSILON, name="conv1_bn")(x)
    x = keras.layers.Activation("relu", name="conv1_relu")(x)
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, (filters, blocks, stride) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)), start=2):
        x = _stack(x, scaled(filters, width), blocks, stride, f"conv{stage}")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
