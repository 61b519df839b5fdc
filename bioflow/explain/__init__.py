"""Explanations of a trained network: Grad-CAM, occlusion sensitivity, front-end activation maps,
the most-activating test images and the kernels actually used.

    bioflow.explain.explain("runs/default/vgg16_gabor_t1_s42", noise_name="uniform")

Modules: ``methods`` (the computations, on a model and images), ``pictures`` (grids and heat-map
overlays), ``run`` (the ``explain`` gin root: a run or zoo entry → ``explain/`` PNGs and CSVs).
"""
from bioflow.explain import methods, pictures
from bioflow.explain.run import Explained, compute, explain, write

__all__ = ["Explained", "compute", "explain", "methods", "pictures", "write"]
