"""Measure how the original's phase scrambling differs from bioflow's conjugate-symmetric one.

On the CIFAR-10G images (224×224, gray, in [0, 1]) prints, per width, the output's standard
deviation as a fraction of the input's and the pixel correlation with the clean image, for
``phase_scrambling`` (the original's algorithm) and ``phase_scrambling_symmetric``. The figures
in the README and docs/fidelity.md come from this script.

    python tools/measure_phase_scrambling.py [--cifar10g ../shared/data/CIFAR-10G] [--images 120]
"""
import argparse
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bioflow import noise  # noqa: E402
from bioflow.data.cifar10g import find_root  # noqa: E402


def load(folder, count):
    """Up to ``count`` CIFAR-10G images, spread over the sets, as float32 [N, 224, 224, 1] in [0, 1]."""
    paths = sorted(pathlib.Path(find_root(folder)).glob("*/*/*.png"))
    chosen = paths[:: max(1, len(paths) // count)][:count]
    return np.stack([tf.io.decode_png(tf.io.read_file(str(p)), channels=1).numpy().astype(np.float32) / 255
                     for p in chosen])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cifar10g", default=str(pathlib.Path(__file__).parents[2] / "shared/data/CIFAR-10G"))
    parser.add_argument("--images", type=int, default=120)
    args = parser.parse_args()
    x = load(args.cifar10g, args.images)
    print(f"{len(x)} CIFAR-10G images of 224x224; std ratio = std(out)/std(in), corr = correlation with the input")
    print(f"{'width':>6} {'original std':>13} {'symmetric std':>14} {'original corr':>14} {'symmetric corr':>15}")
    for width in (36.0, 72.0, 108.0, 144.0, 180.0):
        row = []
        for name in ("phase_scrambling", "phase_scrambling_symmetric"):
            out = np.concatenate([noise.apply(name, x[i:i + 20], width, indices=np.arange(i, min(i + 20, len(x))))
                                  .numpy() for i in range(0, len(x), 20)])
            std = np.mean(out.std(axis=(1, 2, 3)) / x.std(axis=(1, 2, 3)))
            corr = np.mean([np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(out, x)])
            row.append((std, corr))
        print(f"{width:>6.0f} {row[0][0]:>13.3f} {row[1][0]:>14.3f} {row[0][1]:>14.3f} {row[1][1]:>15.3f}")


if __name__ == "__main__":
    main()
