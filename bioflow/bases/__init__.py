"""Base networks, registered in :data:`bioflow.registry.BASES`.

Each takes ``(x, first_layer, classes, **options)`` and returns the output.
``first_layer(x, FirstConv)`` builds the base's first convolution, or what replaces it (a
filter bank and/or a recurrent block); see :mod:`bioflow.model`.
"""
from bioflow.bases.allcnn import allcnn
from bioflow.bases.common import FirstConv, standard_first_layer
from bioflow.bases.imagenet import (
           IMAGENET_WEIGHTS,
           imagenet_weights_path,
           load_pretrained_weights,
)
from bioflow.bases.resnet import resnet50
from bioflow.bases.vgg import vgg16, vgg19
from bioflow.registry import BASES

__all__ = ["BASES", "FirstConv", "IMAGENET_WEIGHTS", "allcnn", "imagenet_weights_path", "load_pretrained_weights",
           "resnet50", "standard_first_layer", "vgg16", "vgg19"]
