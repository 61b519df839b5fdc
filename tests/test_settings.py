"""train's settings objects: Fit and Execution check their values, gin binds their fields, and
files written before the rename (bioflow 0.2's train.epochs, …) still read."""
import gin
import pytest

from bioflow import config
from bioflow.errors import BioflowError
from bioflow.settings import RENAMED, Execution, Fit, current_key, upgrade


def test_the_defaults_are_the_seed_studys():
    fit = Fit()
    assert (fit.epochs, fit.batch_size, fit.optimizer, fit.learning_rate, fit.decay) == (100, 32, "RMSprop", 1e-4, 1e-6)
    assert fit.plateau == (0.2, 5, 1e-8) and fit.update_rule == "keras2" and fit.seeding == "per_trial"
    assert Execution() == Execution(strategy="default", mixed_precision=None, jit_compile=False)


@pytest.mark.parametrize("kwargs, message", [
    (dict(epochs=0), "Fit.epochs must be a positive integer"),
    (dict(batch_size=2.5), "Fit.batch_size must be a positive integer"),
    (dict(learning_rate=float("nan")), "Fit.learning_rate must be a finite number > 0"),
    (dict(plateau_factor=2.0), "Fit.plateau_factor"),
    (dict(seeding="random"), "Unknown Fit.seeding 'random'; valid seedings are 'original' or 'per_trial'"),
    (dict(update_rule="keras1"), "Unknown Fit.update_rule 'keras1'"),
])
def test_fit_refuses_bad_values_by_name(kwargs, message):
    with pytest.raises(BioflowError, match=message):
        Fit(**kwargs)


def test_execution_refuses_bad_values_by_name():
    with pytest.raises(BioflowError, match="Unknown Execution.mixed_precision 'fp8'"):
        Execution(mixed_precision="fp8")
    with pytest.raises(BioflowError, match="Execution.jit_compile must be True or False"):
        Execution(jit_compile="yes")


def test_gin_binds_the_fields():
    config.parse(["quickstart"], ["Fit.batch_size = 16", "Execution.tensorboard = True"])
    fit, execution = gin.get_configurable(Fit)(), gin.get_configurable(Execution)()
    assert (fit.epochs, fit.batch_size, fit.learning_rate, fit.seeding) == (6, 16, 1e-3, "original")
    assert execution.tensorboard is True


def test_a_run_written_before_the_rename_still_reads(tmp_path, capsys):
    old = tmp_path / "operative_config.gin"
    old.write_text("# Parameters for train:\n# ====\ntrain.epochs = 7\ntrain.label = 'old'\n"
                   "train.learning_rate = 0.01\nscoped/train.strategy = 'default'\n")
    config.parse([str(old)], ["train.batch_size = 8"])
    assert gin.query_parameter("Fit.epochs") == 7 and gin.query_parameter("Fit.learning_rate") == 0.01
    assert gin.query_parameter("Fit.batch_size") == 8 and gin.query_parameter("train.label") == "old"
    err = capsys.readouterr().err
    assert "train.epochs → Fit.epochs" in err and "--gin-param uses keys renamed" in err
    assert upgrade("train.label = 'x'\n") == ("train.label = 'x'\n", [])
    assert current_key("bioflow.train.jit_compile") == "bioflow.Execution.jit_compile"
    assert {v for k, v in RENAMED.items() if k.startswith("train.")} == {
        f"Fit.{k}" for k in Fit.__dataclass_fields__} | {f"Execution.{k}" for k in Execution.__dataclass_fields__}


def test_an_old_key_in_an_included_file_names_its_new_name(tmp_path):
    (tmp_path / "inner.gin").write_text("train.epochs = 3\n")
    outer = tmp_path / "outer.gin"
    outer.write_text(f"include '{tmp_path / 'inner.gin'}'\n")
    with pytest.raises(BioflowError, match=r"train.epochs is Fit.epochs since bioflow 0.3"):
        config.parse([str(outer)])
