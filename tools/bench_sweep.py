"""Benchmark: four tiny grid cells run one after another, then 2 at a time on a local Ray.

Side by side in one run, on the same grid (``gin/tiny/sweep.gin``: 2 filter banks × 2 trials of a tiny
VGG-16 on the synthetic set): the baseline runs ``bioflow train`` for each cell in turn (one process each, all
cores to TensorFlow); the sweep runs ``bioflow sweep --cpus-per-run 1`` (a local Ray started by the
command, two cells at a time, each limited to one TensorFlow thread pool of one CPU). Both times
include every process start; the sweep's includes Ray's start-up. Prints both and the ratio
(target: at least 1.5× on 2 cores). Needs the ``ray`` extra.

    python tools/bench_sweep.py [--epochs 2] [--train 1024]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: The shipped tiny grid (2 filter banks x 2 trials), with more work per cell.
GRID = "include 'tiny/sweep.gin'\nSynthetic.n_train = {train}\nSynthetic.n_test = 256\nFit.epochs = {epochs}\n"
CELLS = [(bank, trial) for trial in (1, 2) for bank in ("original", "low-pass")]


def bioflow(*args):
    subprocess.run([sys.executable, "-m", "bioflow.cli", *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train", type=int, default=1024, help="Training images per cell.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bioflow_bench_sweep_") as tmp:
        grid = os.path.join(tmp, "grid.gin")
        with open(grid, "w") as f:
            f.write(GRID.format(train=args.train, epochs=args.epochs))
        start = time.perf_counter()
        for bank, trial in CELLS:
            bioflow("train", "--gin", grid, "--workdir", os.path.join(tmp, "sequential"), "--gin-param",
                    f"build_model.filter_bank = '{bank}'", "--gin-param", f"train.trial = {trial}")
        sequential = time.perf_counter() - start
        start = time.perf_counter()
        bioflow("sweep", "--gin", grid, "--workdir", os.path.join(tmp, "ray"), "--cpus-per-run", "1")
        on_ray = time.perf_counter() - start
    print(f"4 cells ({args.epochs} epochs of {args.train} images each), {os.cpu_count()} CPUs")
    print(f"  one after another (bioflow train x 4)      {sequential:7.1f} s")
    print(f"  2 at a time on local Ray (bioflow sweep)   {on_ray:7.1f} s")
    print(f"  ratio                                      {sequential / on_ray:7.2f}x")


if __name__ == "__main__":
    main()
