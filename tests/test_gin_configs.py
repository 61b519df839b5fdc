"""Every shipped gin file parses and builds (tiny shapes via bindings), dopamine-style."""
import pytest

from bioflow import config
from bioflow.model import build_model
from helpers import GIN_DIR, TINY_GIN

SHIPPED = sorted(str(p.relative_to(GIN_DIR).with_suffix("")) for p in GIN_DIR.rglob("*.gin"))


def test_the_package_ships_every_gin_file():
    assert len(SHIPPED) > 40
    assert config.list_gin_files() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_config_builds(name):
    bindings = []
    if "resnet50" in name:  # 63x63 'valid' banks after 3-pixel padding need more than 32x32
        bindings.append("build_model.input_shape = (64, 64, 1)")
    config.parse([name, TINY_GIN], bindings)
    model = build_model()
    assert model.output_shape == (None, 10)
    assert "build_model.input_shape" in config.operative_config()


@pytest.mark.parametrize("name, layers", [
    ("vgg16_gabor", ["v1_gabor"]),
    ("vgg16_rib", ["retina_conv1", "retina_conv2", "retina_conv3", "v1_gabor"]),
    ("vgg16_rc", ["recurrent_convlstm"]),
    ("vgg16_rib_rc", ["retina_conv3", "recurrent_convlstm"]),
    ("vgg16_rib_blt", ["retina_conv3", "v1_gabor", "recurrent_blt"]),
    ("evans2022/combined_trim_vgg19", ["v1_dog", "v1_gabor"]),
    ("evans2022/lowpass_allcnn", ["v1_lowpass"]),
    ("evans2022/original_resnet50", ["conv1_conv"]),
])
def test_experiment_files_select_their_components(name, layers):
    config.parse([name, TINY_GIN], ["build_model.input_shape = (64, 64, 1)"])
    names = [layer.name for layer in build_model().layers]
    start = names.index(layers[0])
    assert names[start:start + len(layers)] == layers  # present, in this order, one after another


def test_unknown_gin_file_lists_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(config.BioflowError, match=str(tmp_path)) as info:
        config.parse(["no_such_experiment"])
    assert "Looked in" in str(info.value)


def test_typo_in_a_gin_file_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.gin"
    bad.write_text("include 'vgg16_gabor.gin'\nGabor.ksize = 31\nGabor.sigmass = [2.0]\n")
    with pytest.raises(config.BioflowError) as info:
        config.parse([str(bad)])
    message = str(info.value)
    assert "sigmass" in message and "bad.gin" in message and "line 3" in message


def test_user_gin_file_can_include_shipped_files(tmp_path, monkeypatch):
    mine = tmp_path / "mine.gin"
    mine.write_text("include 'vgg16_gabor.gin'\ninclude 'tiny/base.gin'\nGabor.ksize = 7\n")
    monkeypatch.chdir(tmp_path)
    config.parse(["mine"])
    assert build_model().get_layer("v1_gabor").kernel.shape == (7, 7, 1, 24)
