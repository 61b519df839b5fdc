"""Registries: a new filter bank is one class, usable from gin and round-tripped through .keras;
error messages list the registered names; ``build_model`` records the architecture it builds."""
import gin
import keras
import numpy as np
import pytest

from bioflow import architecture, config, registry as registry_module
from bioflow.components import FilterBank
from bioflow.errors import BioflowError
from bioflow.model import build_model
from bioflow.registry import BASES, BOTTLENECKS, DATA_SOURCES, FILTER_BANKS, RECURRENCES, Registry
from helpers import TINY_GIN


@FILTER_BANKS.register("checkerboard")
class Checkerboard(FilterBank):
    """A test bank: ±1 checkerboards of period 2, 4, … (one kernel per period)."""

    kind = "checkerboard"

    def __init__(self, ksize=5, periods=(2, 4)):
        self.ksize, self.periods = ksize, tuple(int(p) for p in periods)

    def _kernels_2d(self):
        i = np.arange(self.ksize)
        return [np.where((i[:, None] // (p // 2) + i[None, :] // (p // 2)) % 2, -1.0, 1.0) for p in self.periods]

    def get_config(self):
        return dict(ksize=self.ksize, periods=list(self.periods))


def test_a_new_bank_is_one_class_built_from_gin_and_round_tripped_through_keras(tmp_path):
    gin.parse_config("\n".join([
        "build_model.input_shape = (32, 32, 1)", "build_model.base = 'allcnn'", "allcnn.width = 0.125",
        "build_model.filter_bank = @Checkerboard()", "Checkerboard.periods = [2, 4, 6]"]))
    model = build_model()
    layer = model.get_layer("v1_checkerboard")
    kernel = layer.get_weights()[0]
    assert kernel.shape == (5, 5, 1, 3) and not layer.trainable
    np.testing.assert_array_equal(kernel[:2, :2, 0, 0], [[1, -1], [-1, 1]])  # period 2
    np.testing.assert_array_equal(kernel[:4, 0, 0, 1], [1, 1, -1, -1])  # period 4
    arch = architecture.of(model)
    assert (arch.base, arch.convolution, model.name) == ("allcnn", "checkerboard", "allcnn_checkerboard")
    assert arch.filter_bank_config == {"class_name": "Checkerboard", "config": {"ksize": 5, "periods": [2, 4, 6]}}

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 1)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert loaded.get_layer("v1_checkerboard").filter_bank == Checkerboard(periods=(2, 4, 6))


def test_a_registered_name_is_built_through_gin():
    gin.parse_config("build_model.input_shape = (32, 32, 1)\nallcnn.width = 0.125\nCheckerboard.ksize = 3\n"
                     "build_model.base = 'allcnn'\nbuild_model.filter_bank = 'checkerboard'")
    assert build_model().get_layer("v1_checkerboard").get_weights()[0].shape == (3, 3, 1, 2)


@pytest.mark.parametrize("binding, message", [
    ("build_model.filter_bank = 'gabr'", "Unknown filter bank 'gabr'; valid filter banks are 'checkerboard', "
                                         "'combined', 'combined-full'"),
    ("build_model.base = 'vgg11'", "Unknown base 'vgg11'; valid bases are 'allcnn', 'resnet50', 'vgg16' or 'vgg19'"),
    ("build_model.recurrence = 'lstm'", "Unknown recurrence 'lstm'; valid recurrences are 'blt' or 'convlstm'"),
    ("build_model.bottleneck = 'retina'", "Unknown bottleneck 'retina'; valid bottlenecks are 'rib'"),
])
def test_unknown_names_list_the_registry(binding, message):
    gin.parse_config(binding)
    with pytest.raises(BioflowError, match=message.replace("(", r"\(")):
        build_model()


def test_data_sources_and_duplicates():
    from bioflow.data import DataPipeline, Synthetic

    gin.parse_config("Synthetic.n_train = 77")
    pipeline = DataPipeline()  # the default source goes through gin
    assert isinstance(pipeline.source, Synthetic) and pipeline.source.n_train == 77
    assert set(DATA_SOURCES) == {"synthetic", "cifar10", "image_folder"}
    with pytest.raises(BioflowError, match="Unknown data source 'mnist'; valid data sources are 'cifar10', "
                                           "'image_folder' or 'synthetic'"):
        DataPipeline(source="mnist")
    with pytest.raises(BioflowError, match="A base called 'vgg16' is already registered"):
        BASES.register("vgg16")(lambda x, first_layer, classes: x)
    fresh = Registry("widget")
    with pytest.raises(BioflowError, match=r"Unknown widget 'a'; valid widgets are \(none\)"):
        fresh.get("a")


@pytest.mark.parametrize("name, expected", [
    ("vgg16_gabor", ("vgg16", "gabor", None, None)),
    ("vgg16_rib", ("vgg16", "gabor", 2, None)),
    ("vgg16_rc", ("vgg16", "convlstm", None, "convlstm")),
    ("vgg16_rib_rc", ("vgg16", "convlstm", 2, "convlstm")),
    ("vgg16_rib_blt", ("vgg16", "gabor", 2, "blt")),
    ("evans2022/combined_trim_allcnn", ("allcnn", "combined", None, None)),
    ("evans2022/original_resnet50", ("resnet50", "original", None, None)),
])
def test_the_architecture_is_recorded_when_built(name, expected):
    config.parse([name, TINY_GIN], ["build_model.input_shape = (64, 64, 1)"])
    model = build_model()
    arch = architecture.of(model)
    assert (arch.base, arch.convolution, arch.bottleneck, arch.recurrence) == expected
    assert arch.input_shape == (64, 64, 1) and arch.classes == 10
    assert arch.parameters["total_params"] == model.count_params()
    assert arch.parameters["trainable_params"] == sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    # The fallback for runs saved without a record reads the same from the layers.
    old = architecture.from_layer_names(model)
    assert (old.base, old.convolution, old.bottleneck, old.recurrence) == expected
    # JSON round trip
    assert architecture.Architecture.from_dict(arch.to_dict()) == arch


def test_registries_hold_the_shipped_components():
    assert {"gabor", "dog", "lowpass", "low-pass", "combined", "combined-trim"} <= set(FILTER_BANKS)
    assert set(BASES) == {"vgg16", "vgg19", "resnet50", "allcnn"}
    assert set(RECURRENCES) == {"convlstm", "blt"} and set(BOTTLENECKS) == {"rib"}


def test_a_hostile_record_is_refused():
    with pytest.raises(BioflowError, match="bottleneck must be an integer or null"):
        architecture.Architecture.from_dict({"base": "vgg16", "convolution": "gabor", "bottleneck": "2; rm -rf /"})
    with pytest.raises(BioflowError, match="must be an object"):
        architecture.Architecture.from_dict(["vgg16"])


@pytest.mark.parametrize("registry", registry_module.ALL, ids=lambda r: r.kind)
def test_every_registry_fails_one_way_listing_its_names(registry):
    config.register()
    names = registry.names()
    assert names and len(names) == len(set(n.lower() for n in names))
    with pytest.raises(BioflowError) as info:
        registry.get("no-such-thing")
    message = str(info.value)
    assert message.startswith(f"Unknown {registry.kind} 'no-such-thing'; valid {registry.plural} are ")
    assert all(repr(n) in message for n in names)
    assert registry.get(names[0].upper()) is registry.get(names[0])  # names ignore case
