"""The shipped gin tree is a tree of differences, and ``bioflow config`` shows where each value comes from.

Every shipped file resolves with each key bound once (or to one value), at most 3 includes deep,
and restates no Python default; the tracer agrees with gin itself; the Evans grid's sweep cells
are its 20 files.
"""
import json

import gin
import pytest
from click.testing import CliRunner

from bioflow import config, config_trace, model
from bioflow.cli import main
from bioflow.errors import BioflowError
from helpers import GIN_DIR

SHIPPED = sorted(str(p.relative_to(GIN_DIR).with_suffix("")) for p in GIN_DIR.rglob("*.gin"))
#: A kind file's one binding selects its component; vgg16 and "no filter bank" are also the defaults.
SELECTIONS = {"bases/vgg16.gin": "build_model.base", "filterbank/original.gin": "build_model.filter_bank"}


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_file_binds_each_key_once_within_three_includes(name):
    trace = config_trace.trace([name])
    conflicts = {key: [f"{b.text} at {b.where}" for b in bound]
                 for key, bound in trace.resolved().items() if len({b.text for b in bound}) > 1}
    assert not conflicts, f"{name} binds these keys to different values: {conflicts}"
    assert trace.depth() <= 3, trace.files


@pytest.mark.parametrize("name", SHIPPED)
def test_no_shipped_binding_restates_its_python_default(name):
    restated = [f"{b.key} = {b.text} ({b.where})" for b in config_trace.trace([name]).bindings
                if config_trace.is_default(b) and SELECTIONS.get(b.source) != b.key]
    assert not restated, f"these bindings say what the code already does: {restated}"


def test_the_detectors_can_fail(tmp_path):
    twice = tmp_path / "twice.gin"
    twice.write_text("include 'quickstart.gin'\nFit.epochs = 2\n")
    bound = config_trace.trace([str(twice)]).resolved()["Fit.epochs"]
    assert [(b.text, b.where) for b in bound] == [("6", "tiny/quickstart.gin:7"), ("2", f"{twice}:2")]
    deep = [tmp_path / f"level{i}.gin" for i in range(5)]
    for i, path in enumerate(deep):
        path.write_text(f"include '{deep[i + 1]}'\n" if i + 1 < len(deep) else "Fit.epochs = 3\n")
    assert config_trace.trace([str(deep[0])]).depth() == 4
    restate = config_trace.trace([], ["Fit.epochs = 100", "Gabor.sigmas = [8.0]", "Fit.epochs = 7"]).bindings
    assert [config_trace.is_default(b) for b in restate] == [True, True, False]
    assert not config_trace.same_value(True, 1) and config_trace.same_value(1e-4, 0.0001)


def test_an_include_loop_and_a_missing_include_name_the_files(tmp_path):
    a, b = tmp_path / "a.gin", tmp_path / "b.gin"
    a.write_text(f"include '{b}'\n")
    b.write_text(f"include '{a}'\n")
    with pytest.raises(BioflowError, match=r"lead back to themselves: .*a\.gin → .*b\.gin → .*a\.gin"):
        config_trace.trace([str(a)])
    a.write_text("Fit.epochs = 2\ninclude 'no/such.gin'\n")
    with pytest.raises(BioflowError, match=r"a\.gin: the included file 'no/such.gin' was not found"):
        config_trace.trace([str(a)])


def _gin_value(key):
    value = gin.query_parameter(key)
    if isinstance(value, gin.config.ConfigurableReference):
        return f"@{value.selector.removeprefix('bioflow.')}{'()' if value.evaluate else ''}"
    return value


@pytest.mark.parametrize("name", ["quickstart", "vgg16_rib_rc", "evans2022/sweep", "tiny/sweep", "seed_study/sweep"])
def test_the_trace_resolves_as_gin_does(name):
    config.parse([name], ["Fit.epochs = 3"])
    resolved = config_trace.trace([name], ["Fit.epochs = 3"]).resolved()
    ours = {key: bound[-1].value for key, bound in resolved.items()}
    assert ours.pop("Fit.epochs") == 3
    for key, value in ours.items():
        expected = _gin_value(key)
        assert config_trace.same_value(value, expected) or str(value) == expected, key
    bound_in_gin = {f"{sel.rpartition('.')[2]}.{param}" for (_, sel), params in gin.config._CONFIG.items()
                    for param in params}
    assert {key for key in resolved} == bound_in_gin


def test_bioflow_config_shows_each_binding_once_with_its_source():
    result = CliRunner().invoke(main, ["config", "--gin", "quickstart", "--gin-param", "Fit.epochs = 2"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("# quickstart: 18 bindings from 8 files")
    keys = [line[2:].split(" = ")[0] for line in lines[1:]]
    assert len(keys) == len(set(keys)) == 18
    row = {line[2:].split(" = ")[0]: line for line in lines[1:]}
    assert row["Fit.epochs"].startswith("* Fit.epochs = 2") and "--gin-param:1" in row["Fit.epochs"]
    assert "overrides 6 at tiny/quickstart.gin:7" in row["Fit.epochs"]
    assert row["build_model.base"].startswith("  ") and "(the Python default)" in row["build_model.base"]
    assert "# tiny/base.gin:3  (default (224, 224, 1))" in row["build_model.input_shape"]
    view = json.loads(CliRunner().invoke(main, ["config", "--gin", "quickstart", "--json"]).output)
    assert {f["file"] for f in view["files"]} >= {"quickstart.gin", "tiny/quickstart.gin", "filterbank/gabor.gin"}
    assert next(b for b in view["bindings"] if b["key"] == "Fit.seeding") == {
        "key": "Fit.seeding", "value": "'original'", "source": "train/paper.gin:4", "default": "'per_trial'",
        "differs": True, "overrides": []}


def _setup(files, params):
    """What a configuration runs: its bound values (axes and label aside) and the bank and base it builds."""
    config.parse(files, params)
    bound = {key: b[-1].text for key, b in config_trace.trace(files, params).resolved().items()
             if not key.startswith(("Sweep.", "train.label", "build_model.filter_bank", "build_model.base"))}
    bank = gin.query_parameter("build_model.filter_bank")
    if isinstance(bank, gin.config.ConfigurableReference):
        bank = bank.scoped_configurable_fn()
    return bound, model.resolve_filter_bank(bank), model.resolve_base(gin.query_parameter("build_model.base"))[0]


def test_each_evans_sweep_cell_is_its_file():
    from bioflow.sweep import cells

    sweep, _ = cells.load(["evans2022/sweep"])
    grid = sweep.cells()
    assert len(grid) == 60
    seen = set()
    for cell in grid:
        values = dict(cell.bindings)
        name = f"evans2022/{values['build_model.filter_bank'].replace('-', '_')}_{values['build_model.base']}"
        seen.add(name)
        assert _setup(["evans2022/sweep"], cell.gin_params()) == _setup([name], [f"train.trial = {cell.trial}"]), name
    assert seen == {n for n in SHIPPED if n.startswith("evans2022/") and n != "evans2022/sweep"}
