"""Data: the synthetic set, preprocessing, the pipeline, TFDS CIFAR-10, image folders, CIFAR-10G."""
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from scipy.ndimage import gaussian_filter

from bioflow.data import CIFAR10, DataPipeline, ImageFolder, Synthetic, synthetic
from bioflow.data.preprocessing import CACHED_STATISTICS, resize, to_luminance
from bioflow.errors import BioflowError
from helpers import CIFAR10G, needs_cifar10g


def test_synthetic_is_deterministic_balanced_and_uint8():
    x1, y1 = synthetic.generate(200, seed=3)
    x2, y2 = synthetic.generate(200, seed=3)
    x3, _ = synthetic.generate(200, seed=4)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(x1, x3)
    assert x1.shape == (200, 32, 32, 1) and x1.dtype == np.uint8
    assert np.bincount(y1).tolist() == [20] * 10


def test_luminance_uses_itu_601_weights():
    rgb = tf.constant([[[[10.0, 100.0, 200.0]]]])
    assert float(to_luminance(rgb)[0, 0, 0, 0]) == pytest.approx(0.299 * 10 + 0.587 * 100 + 0.114 * 200, rel=1e-6)


def test_nearest_upscaling_replicates_pixels_and_lanczos_is_clipped():
    x = tf.constant(np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1) * 17)
    up = resize(x, 28, "nearest").numpy()
    np.testing.assert_array_equal(up[0, :7, :7, 0], np.full((7, 7), 0.0))
    np.testing.assert_array_equal(up[0, 21:, 21:, 0], np.full((7, 7), 255.0))
    lz = resize(x, 28, "lanczos").numpy()
    assert lz.min() >= 0 and lz.max() <= 255
    with pytest.raises(BioflowError, match="'lanczos' or 'nearest'"):
        resize(x, 8, "cubic")


def lanczos4_reference(image, out_h, out_w):
    """OpenCV's INTER_LANCZOS4, pixel by pixel: 8 taps of sinc(d)·sinc(d/4), normalised, edges clamped."""
    def taps(i, n_in, n_out):
        x = (i + 0.5) * n_in / n_out - 0.5
        first = int(np.floor(x)) - 3
        ks = [first + k for k in range(8)]
        ws = np.array([np.sinc(x - k) * np.sinc((x - k) / 4) for k in ks])
        return [min(max(k, 0), n_in - 1) for k in ks], ws / ws.sum()

    h, w = image.shape
    out = np.zeros((out_h, out_w))
    for i in range(out_h):
        rows, wr = taps(i, h, out_h)
        for j in range(out_w):
            cols, wc = taps(j, w, out_w)
            out[i, j] = sum(wr[a] * wc[b] * image[rows[a], cols[b]] for a in range(8) for b in range(8))
    return np.clip(out, 0, 255)


@pytest.mark.parametrize("shape, size", [((8, 8), 56), ((6, 9), 20), ((32, 32), 12)])
def test_lanczos_is_opencv_lanczos4(shape, size):
    image = np.random.default_rng(1).integers(0, 256, size=shape).astype(np.float32)
    ours = resize(tf.constant(image[None, ..., None]), size, "lanczos").numpy()[0, ..., 0]
    np.testing.assert_allclose(ours, lanczos4_reference(image.astype(np.float64), size, size), atol=2e-3)


def keras_generator_reference(x, theta, tx, ty, shear, zx, zy, flip, brightness):
    """Keras' ImageDataGenerator.apply_transform on one [H, W] image, from its description: one
    scipy affine_transform of R·T·S·Z about the centre (x, y axes swapped for numpy), the flip,
    then array_to_img(scale=True) → uint8 → PIL ImageEnhance.Brightness."""
    from PIL import Image, ImageEnhance
    from scipy import ndimage

    t = np.deg2rad(theta)
    m = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    m = m @ np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
    s = np.deg2rad(shear)
    m = m @ np.array([[1, -np.sin(s), 0], [0, np.cos(s), 0], [0, 0, 1]])
    m = m @ np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]])
    h, w = x.shape
    ox, oy = h / 2 - 0.5, w / 2 - 0.5
    m = np.array([[1, 0, ox], [0, 1, oy], [0, 0, 1]]) @ m @ np.array([[1, 0, -ox], [0, 1, -oy], [0, 0, 1]])
    m[:, [0, 1]] = m[:, [1, 0]]
    m[[0, 1]] = m[[1, 0]]
    out = ndimage.affine_transform(x, m[:2, :2], m[:2, 2], order=1, mode="nearest")
    if flip:
        out = out[:, ::-1]
    if brightness is None:
        return out
    out = out - out.min()
    if out.max() != 0:
        out = out / out.max()
    image = Image.fromarray((out * 255).astype("uint8"), "L")
    return np.asarray(ImageEnhance.Brightness(image).enhance(brightness), np.float64)


def test_extra_augmentation_is_keras_image_data_generator_in_one_resampling():
    from bioflow.data.augment import GeneratorTransform

    rng = np.random.default_rng(3)
    images = gaussian_filter(rng.uniform(0, 255, size=(6, 32, 32)), (0, 2, 2))[..., None].astype(np.float32)
    gen = GeneratorTransform(seed=5)
    params = gen.draw(6, 32, 32, batch_index=2)
    p = {k: v.numpy().astype(np.float64) for k, v in params.items()}
    assert np.abs(p["theta"]).max() <= 45 and np.abs(p["shear"]).max() <= 0.2 and p["zx"].min() >= 0.5
    geometric = gen.apply(tf.constant(images), params, brightness=False).numpy()[..., 0]
    full = gen.apply(tf.constant(images), params).numpy()[..., 0]
    for i in range(6):
        args = [p[k][i] for k in ("theta", "tx", "ty", "shear", "zx", "zy")] + [p["flip"][i] > 0.5]
        np.testing.assert_allclose(geometric[i], keras_generator_reference(images[i, ..., 0].astype(np.float64),
                                                                           *args, None), atol=2e-3)
        expected = keras_generator_reference(images[i, ..., 0].astype(np.float64), *args, p["brightness"][i])
        assert np.abs(full[i] - expected).max() <= 1 and (full[i] != expected).mean() < 0.01
        assert full[i].max() <= 255 * p["brightness"][i] + 1e-3 and full[i] == pytest.approx(np.floor(full[i]))


def test_pipeline_is_deterministic_per_seed_and_epoch():
    def batches(epoch, seed):
        p = DataPipeline(Synthetic(n_train=256, n_test=64), augmentation="extra")
        p.prepare(32)
        return [x.numpy() for x, _ in p.train_dataset(32, epoch, seed)]

    a, b = batches(0, 7), batches(0, 7)
    assert len(a) == 8 and all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not np.array_equal(a[0], batches(1, 7)[0])
    assert not np.array_equal(a[0], batches(0, 8)[0])


def test_pipeline_statistics_and_normalisation():
    p = DataPipeline(Synthetic(n_train=300, n_test=100), augmentation="none")
    stats = p.prepare(64)
    x, _ = synthetic.generate(300, 0)
    assert stats["mean"] == pytest.approx(x.mean(), rel=1e-9)  # nearest upscaling keeps the moments
    assert stats["std"] == pytest.approx(x.std(), rel=1e-9)
    assert stats["origin"] == "computed" and stats["image_size"] == 64
    images = np.concatenate([b.numpy() for b, _ in p.train_dataset(50, 0, 0)])
    assert images.shape == (300, 64, 64, 1)
    assert abs(images.mean()) < 0.02 and images.std() == pytest.approx(1.0, abs=0.02)


def test_cifar10_through_tfds_mock_data():
    with tfds.testing.mock_data(num_examples=24):
        p = DataPipeline(CIFAR10(), augmentation="standard")
        stats = p.prepare(32)
        x, y = next(iter(p.train_dataset(8, 0, 0)))
    assert stats["dataset"] == "cifar10" and stats["origin"] == "computed" and stats["n_train"] == 24
    assert x.shape == (8, 32, 32, 1) and y.dtype == tf.int64


def test_cifar10_uses_the_cached_statistics_at_224_nearest():
    with tfds.testing.mock_data(num_examples=4):
        p = DataPipeline(CIFAR10(), interpolation="nearest")
        stats = p.prepare(224)
    assert (stats["mean"], stats["std"]) == CACHED_STATISTICS[("cifar10", "nearest", 224)]
    assert stats["origin"] == "cached"


def test_cifar10_not_prepared_gives_a_clear_error(tmp_path):
    with pytest.raises(BioflowError, match="--data-dir") as info:
        CIFAR10(data_dir=str(tmp_path), download=False).load()
    assert "quickstart" in str(info.value)


def write_png(path, value, size=12, channels=1):
    path.parent.mkdir(parents=True, exist_ok=True)
    tf.io.write_file(str(path), tf.io.encode_png(np.full((size, size, channels), value, np.uint8)))


def make_folder(root, classes=("cat", "dog"), test="test"):
    for split in ("train", test):
        for i, name in enumerate(classes):
            for k in range(3):
                write_png(root / split / name / f"{k}.png", 40 + 100 * i, channels=3 if k else 1)
    (root / "train" / "README.md").write_text("not an image")
    return root


def test_image_folder_loads_any_decodable_images(tmp_path):
    root = make_folder(tmp_path / "images", test="val")
    p = DataPipeline(ImageFolder(str(root)), augmentation="none")
    stats = p.prepare(16)
    assert stats["classes"] == ["cat", "dog"] and stats["n_train"] == 6 and stats["n_test"] == 6
    x, y = next(iter(p.test_dataset(6)))
    assert x.shape == (6, 16, 16, 1) and sorted(y.numpy().tolist()) == [0, 0, 0, 1, 1, 1]


def test_image_folder_prefers_val_and_is_named_after_its_folder(tmp_path):
    root = make_folder(tmp_path / "ecoset-cifar10", test="test")
    make_folder(root, classes=("cat", "dog"), test="val")
    (root / "val" / "cat" / "0.png").unlink()  # val/ has 5 images, test/ has 6
    p = DataPipeline(ImageFolder(str(root)), augmentation="none")
    stats = p.prepare(224)
    assert stats["n_test"] == 5 and stats["dataset"] == "ecoset-cifar10"
    assert (stats["mean"], stats["std"]) == CACHED_STATISTICS[("ecoset-cifar10", "nearest", 224)]
    assert stats["origin"] == "cached"
    assert DataPipeline(ImageFolder(str(root), name="mine")).prepare(16)["dataset"] == "mine"


def test_image_folder_trains_on_train_path_and_tests_on_path(tmp_path):
    train_root = make_folder(tmp_path / "a", classes=("cat", "dog"))
    test_root = make_folder(tmp_path / "b", classes=("cat", "dog"), test="val")
    for k in range(3, 7):
        write_png(train_root / "train" / "dog" / f"{k}.png", 200)
    p = DataPipeline(ImageFolder(str(test_root), train_path=str(train_root)), augmentation="none")
    stats = p.prepare(16)
    assert stats["n_train"] == 10 and stats["n_test"] == 6 and stats["dataset"] == "a"  # named by its training set
    assert all("/a/train/" in f for f in p.splits.train_files) and all("/b/val/" in f for f in p.splits.test_files)


def test_samplewise_normalisation_is_per_image_and_recorded():
    p = DataPipeline(Synthetic(n_train=64, n_test=16), augmentation="none", normalisation="samplewise")
    stats = p.prepare(32)
    assert stats["normalisation"] == "samplewise"
    x, _ = next(iter(p.test_dataset(16)))
    np.testing.assert_allclose(x.numpy().mean(axis=(1, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(x.numpy().std(axis=(1, 2, 3)), 1, atol=1e-3)
    assert DataPipeline(Synthetic(n_train=64, n_test=16)).prepare(32)["normalisation"] == "featurewise"
    with pytest.raises(BioflowError, match="valid normalisations are 'featurewise' or 'samplewise'"):
        DataPipeline(normalisation="per-image")


def test_validation_through_the_augmenting_generator_on_request():
    def val(augment, epoch):
        p = DataPipeline(Synthetic(n_train=64, n_test=16), augmentation="standard", augment_validation=augment)
        p.prepare(32)
        return np.concatenate([x.numpy() for x, _ in p.validation_dataset(8, epoch, seed=1)])

    clean = np.concatenate([x.numpy() for x, _ in _pipeline(32).test_dataset(8)])
    np.testing.assert_array_equal(val(False, 0), clean)
    assert not np.allclose(val(True, 0), clean)
    np.testing.assert_array_equal(val(True, 0), val(True, 0))  # deterministic per (seed, epoch)
    assert not np.array_equal(val(True, 0), val(True, 1))


def _pipeline(size):
    p = DataPipeline(Synthetic(n_train=64, n_test=16), augmentation="standard")
    p.prepare(size)
    return p


@pytest.mark.parametrize("breakage, message", [
    (lambda r: shutil.rmtree(r / "train"), "has no 'train/' folder"),
    (lambda r: shutil.rmtree(r / "test"), "has no 'val/' or 'test/' folder"),
    (lambda r: [p.unlink() for p in (r / "train" / "dog").iterdir()], "dog has no images"),
    (lambda r: (r / "train" / "cat" / "1.png").write_bytes(b"\x89PNG broken"), "1.png"),
])
def test_image_folder_errors(tmp_path, breakage, message):
    root = make_folder(tmp_path / "images")
    breakage(root)
    with pytest.raises(BioflowError) as info:
        DataPipeline(ImageFolder(str(root))).prepare(16)
    assert message in str(info.value)


def prepare_cifar10g(manual_dir, data_dir):
    from bioflow.data.cifar10g import Cifar10G
    builder = Cifar10G(data_dir=str(data_dir))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
    return builder


@needs_cifar10g
def test_cifar10g_builder_reads_the_shared_copy(tmp_path):
    from bioflow.data.cifar10g import ALL_SETS
    builder = prepare_cifar10g(CIFAR10G, tmp_path)
    assert sorted(builder.info.splits) == sorted(ALL_SETS)
    for name in ("contours", "line_drawings_inverted"):  # modes 1 and L
        examples = list(builder.as_dataset(split=name))
        assert len(examples) == 100
        image = examples[0]["image"].numpy()
        assert image.shape == (224, 224, 1) and image.dtype == np.uint8 and image.max() == 255
        assert bool(examples[0]["inverted"]) == name.endswith("_inverted")
        assert np.bincount([int(e["label"]) for e in examples]).tolist() == [10] * 10


@needs_cifar10g
def test_cifar10g_missing_class_is_named(tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(CIFAR10G / "224x224", copy / "224x224")
    shutil.rmtree(copy / "224x224" / "silhouettes" / "frog")
    with pytest.raises(BioflowError, match="'silhouettes' has no images for class 'frog'"):
        prepare_cifar10g(copy, tmp_path / "tfds")


def indexed_pipeline(n, **options):
    """A pipeline whose training image i is the constant i (no augmentation), so batches name their images."""
    import dataclasses

    pipeline = DataPipeline(Synthetic(n_train=64, n_test=32), augmentation="none", **options)
    pipeline.prepare(32)
    images = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None], (n, 32, 32, 1))
    labels = np.zeros(n, np.int64)
    pipeline.splits = dataclasses.replace(pipeline.splits, train=tf.data.Dataset.from_tensor_slices((images, labels)),
                                          n_train=n)
    pipeline.stats["shuffle"] = pipeline._shuffle_record()
    return pipeline


def epoch_order(pipeline, epoch, seed=42):
    stats = pipeline.stats
    batches = [x.numpy()[:, 0, 0, 0] * stats["std"] + stats["mean"] for x, _ in pipeline.train_dataset(32, epoch, seed)]
    return np.rint(np.concatenate(batches)).astype(int)


def order_correlation(pipeline, n):
    """The correlation of each image's position in epoch 0 with its position in epoch 1."""
    positions = []
    for epoch in (0, 1):
        order, position = epoch_order(pipeline, epoch), np.full(n, -1)
        position[order] = np.arange(len(order))
        positions.append(position)
    both = (positions[0] >= 0) & (positions[1] >= 0)  # the last partial batch is dropped
    return np.corrcoef(positions[0][both], positions[1][both])[0, 1]


def test_the_training_set_is_shuffled_whole_each_epoch():
    """The original's generator permuted all 50,000 images each epoch; a 10,000-image buffer (bioflow's
    old default) keeps successive epoch orders correlated and the set's tail out of the first batches."""
    n = 50_000  # CIFAR-10's training set
    full = indexed_pipeline(n)
    assert full.stats["shuffle"] == f"full ({n} images each epoch)" and full.buffer == n
    order = epoch_order(full, 0)
    assert len(order) == len(set(order)) == 1562 * 32  # every image at most once, in 1,562 full batches
    assert order[:32].max() >= n * 3 // 4  # the tail reaches the first batch
    assert abs(order_correlation(full, n)) < 0.05
    buffered = indexed_pipeline(n, shuffle_buffer=10_000)
    assert buffered.stats["shuffle"] == f"a buffer of 10000 of the {n} training images (DataPipeline.shuffle_buffer)"
    assert order_correlation(buffered, n) > 0.5  # the issue measured 0.69
    assert epoch_order(buffered, 0)[:32].max() < 10_000 + 32


def test_a_training_set_too_large_to_hold_is_shuffled_in_a_buffer_that_says_so(monkeypatch):
    from bioflow.data import pipeline as pipeline_lib

    monkeypatch.setattr(pipeline_lib, "SHUFFLE_BYTES", 100 * 32 * 32 * 4)  # 100 of these 32x32 float images
    capped = indexed_pipeline(1000)
    assert capped.buffer == 100
    assert capped.stats["shuffle"] == "a buffer of 100 of the 1000 training images (the 0.00038147 GiB that a " \
        "shuffle may hold)"
