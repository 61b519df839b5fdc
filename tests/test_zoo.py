"""The model zoo: publish, list, show, verify, export, pull over real HTTP, load and evaluate."""
import hashlib
import json
import pathlib
import re
import shutil
import stat
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bioflow import architecture, config, zoo
from bioflow.cli import main
from bioflow.errors import BioflowError
from bioflow.runner import train
from bioflow.training import rundir
from bioflow.zoo import naming
from helpers import EVALUATE_SMALL, SUBPROCESS_ENV, TINY_TRAIN, flip_byte
from zoo_http import ModelKerasHandler, QuietHandler, serve


class TruncatingHandler(ModelKerasHandler):
    """Announces the full length of model.keras but sends half of it, then closes."""

    def send_model(self, data):
        self.wfile.write(data[: len(data) // 2])
        self.close_connection = True


class SchemeRedirectHandler(QuietHandler):
    """Redirects model.keras to another scheme (``target``)."""

    target = None

    def do_GET(self):
        if not self.path.endswith("model.keras"):
            return super().do_GET()
        self.send_response(302)
        self.send_header("Location", self.target.format(host=self.headers["Host"], path=self.path))
        self.end_headers()


def exported(root, dest):
    zoo.export(dest, root=root)
    return dest


def assert_nothing_installed(root, name="tiny"):
    local = zoo.Zoo(root)
    assert local.versions(name) == []
    staging = root / ".staging"
    assert not staging.exists() or not list(staging.iterdir())


def sha(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def rewrite_card(remote, card):
    """Replace tiny@1.0.0's card on a remote and make the index vouch for it (a hostile server)."""
    card_path = remote / "tiny" / "1.0.0" / "card.json"
    card_path.write_text(json.dumps(card))
    index = json.loads((remote / "index.json").read_text())
    index["entries"]["tiny"]["versions"]["1.0.0"]["card"] = {"sha256": sha(card_path), "size": card_path.stat().st_size}
    (remote / "index.json").write_text(json.dumps(index))


# -- names -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["../x", "a/b", "/abs", "", "..", "a..b", "x\\y", ".hidden", "a@b@c"])
def test_bad_names_are_refused(bad):
    with pytest.raises(BioflowError, match="not valid"):
        naming.parse_spec(bad)


@pytest.mark.parametrize("bad", ["../model.keras", "/etc/passwd", "a/../b", "C:/x", "a\\b", "./a", "a//b"])
def test_bad_entry_paths_are_refused(bad):
    with pytest.raises(BioflowError, match="not allowed"):
        naming.check_relative_path(bad)


def test_versions_parse_sort_and_bump():
    assert naming.parse_spec("tiny") == ("tiny", "latest")
    assert naming.parse_spec("tiny@1.10.0") == ("tiny", "1.10.0")
    with pytest.raises(BioflowError, match="MAJOR.MINOR.PATCH"):
        naming.parse_spec("tiny@1.0")
    assert sorted(["1.10.0", "1.2.0", "0.9.9"], key=naming.version_key) == ["0.9.9", "1.2.0", "1.10.0"]
    assert naming.next_version([]) == "1.0.0"
    assert naming.next_version(["1.0.0", "1.9.3"]) == "1.10.0"


def test_default_root_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BIOFLOW_ZOO", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert zoo.default_root() == tmp_path / "cache" / "bioflow" / "zoo"
    (tmp_path / "zoo").mkdir()
    (tmp_path / "zoo" / "catalogue.json").write_text("{}")
    assert zoo.default_root() == pathlib.Path("zoo")
    monkeypatch.setenv("BIOFLOW_ZOO", str(tmp_path / "elsewhere"))
    assert zoo.default_root() == tmp_path / "elsewhere"


def test_repository_catalogue_lists_only_existing_entries():
    repo_zoo = pathlib.Path(__file__).resolve().parents[1] / "zoo"
    catalogue = json.loads((repo_zoo / "catalogue.json").read_text())
    for name, entry in catalogue["entries"].items():
        for version in entry["versions"]:
            assert (repo_zoo / name / version / "card.json").is_file(), f"{name}@{version}"


# -- publish ---------------------------------------------------------------------------------------

def test_train_publishes_with_a_complete_card(tiny_entry):
    run, root = tiny_entry
    entry = root / "tiny" / "1.0.0"
    card = json.loads((entry / "card.json").read_text())
    run_info = json.loads((run / "run.json").read_text())
    robustness = json.loads((run / "results" / "robustness.json").read_text())
    assert card["name"] == "tiny" and card["version"] == "1.0.0"
    assert set(card["versions"]) >= {"bioflow", "tensorflow", "keras"}
    assert card["git_commit"] == run_info["git_commit"]
    if (pathlib.Path(__file__).resolve().parents[1] / ".git").exists():  # installed from a git checkout
        assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", card["git_commit"]), card["git_commit"]
    assert card["data"] == run_info["data"] and card["data"]["dataset"] == "synthetic"
    model = keras.saving.load_model(run / "model.keras", safe_mode=True)
    assert card["parameters"]["total_params"] == model.count_params()
    arch = card["architecture"]
    assert (arch["base"], arch["convolution"], arch["bottleneck"], arch["recurrence"]) == \
        ("vgg16", "gabor", None, None)
    bank = arch["filter_bank"]["v1_gabor"]
    assert bank["trainable"] is False and bank["filter_bank"]["class_name"] == "Gabor"
    assert card["metrics"]["clean_accuracy"] == robustness["clean_accuracy"]
    assert set(card["metrics"]["auc"]) == {"uniform", "contrast", "high_pass"}
    expected = {"model.keras", "operative_config.gin", "history.csv", "results/perturbation.csv",
                "results/generalisation.csv", "results/robustness.json"}
    assert expected <= set(card["files"])
    for rel, meta in card["files"].items():
        assert meta == {"sha256": sha(entry / rel), "size": (entry / rel).stat().st_size}, rel
        assert not (entry / rel).stat().st_mode & stat.S_IWUSR, f"{rel} should be read-only"
    catalogue = json.loads((root / "catalogue.json").read_text())
    assert catalogue["entries"]["tiny"]["latest"] == "1.0.0"
    assert catalogue["entries"]["tiny"]["versions"]["1.0.0"]["card"]["sha256"] == sha(entry / "card.json")


def test_rerun_with_publish_does_not_duplicate(tiny_entry, capsys):
    run, root = tiny_entry
    config.parse(["quickstart"], TINY_TRAIN + EVALUATE_SMALL + ["train.publish = 'tiny'", f"train.zoo = '{root}'"])
    train(workdir=str(run.parents[1]), label="pair")
    assert "already in the zoo as tiny@1.0.0" in capsys.readouterr().out
    assert zoo.Zoo(root).versions("tiny") == ["1.0.0"]


def test_train_refuses_a_taken_version_before_training(tiny_entry, tmp_path):
    _, root = tiny_entry
    config.parse(["quickstart"], TINY_TRAIN + ["train.publish = 'tiny@1.0.0'", f"train.zoo = '{root}'"])
    with pytest.raises(BioflowError, match="tiny@1.0.0 is already in the zoo"):
        train(workdir=str(tmp_path))
    assert not list(tmp_path.rglob("history.csv"))  # no epoch was trained
    config.parse(["quickstart"], TINY_TRAIN + ["train.publish = '../x'"])
    with pytest.raises(BioflowError, match="'../x' is not valid"):
        train(workdir=str(tmp_path))


def test_publishing_an_existing_version_is_refused(tiny_entry, zoo_copy):
    run, _ = tiny_entry
    result = CliRunner().invoke(main, ["zoo", "publish", str(run), "--name", "tiny", "--version", "1.0.0",
                                       "--zoo", str(zoo_copy)])
    assert result.exit_code == 2
    assert "already in the zoo" in result.output and "immutable" in result.output and "1.1.0" in result.output
    result = CliRunner().invoke(main, ["zoo", "publish", str(run), "--name", "tiny", "--zoo", str(zoo_copy)])
    assert result.exit_code == 0, result.output
    local = zoo.Zoo(zoo_copy)
    assert local.versions("tiny") == ["1.0.0", "1.1.0"]
    assert local.resolve("tiny") == ("tiny", "1.1.0") == local.resolve("tiny@latest")
    assert json.loads((zoo_copy / "tiny" / "1.1.0" / "card.json").read_text())["version"] == "1.1.0"
    with pytest.raises(BioflowError, match="has no version '2.0.0'.*'1.0.0' or '1.1.0'"):
        local.resolve("tiny@2.0.0")


def test_publishing_an_unfinished_run_is_refused(tiny_entry, tmp_path):
    run, _ = tiny_entry
    broken = tmp_path / "run"
    shutil.copytree(run, broken)
    info = json.loads((broken / "run.json").read_text())
    (broken / "run.json").write_text(json.dumps(dict(info, status="running")))
    with pytest.raises(BioflowError, match="not a complete run"):
        zoo.publish(broken, "tiny", root=tmp_path / "zoo")
    assert zoo.Zoo(tmp_path / "zoo").names() == []


CONCURRENT_PUBLISHER = textwrap.dedent("""
    import pathlib, sys, time
    from bioflow import zoo
    run, root, version, ready, go = sys.argv[1:]
    pathlib.Path(ready).touch()
    while not pathlib.Path(go).exists():
        time.sleep(0.01)
    try:
        print(zoo.publish(run, "race", None if version == "auto" else version, root))
    except Exception as err:
        print("REFUSED", err)
        sys.exit(3)
""")


@pytest.mark.parametrize("version", ["auto", "1.0.0"])
def test_two_processes_publishing_at_once_leave_a_consistent_zoo(tiny_entry, tmp_path, version):
    run, _ = tiny_entry
    root = tmp_path / "zoo"
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT_PUBLISHER, str(run), str(root), version,
                               str(tmp_path / f"ready{i}"), str(go)], env=SUBPROCESS_ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    deadline = time.time() + 120
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
        if time.time() > deadline or any(p.poll() is not None for p in procs):
            pytest.fail("publisher did not start: " + " ".join(p.communicate()[1][-500:] for p in procs))
        time.sleep(0.05)
    go.touch()
    codes = [p.wait(timeout=120) for p in procs]
    outputs = [p.communicate()[0] for p in procs]
    local = zoo.Zoo(root)
    if version == "auto":
        assert codes == [0, 0], outputs
        assert local.versions("race") == ["1.0.0", "1.1.0"]
    else:
        assert sorted(codes) == [0, 3], outputs
        assert any("already in the zoo" in out for out in outputs)
        assert local.versions("race") == ["1.0.0"]
    catalogue = json.loads((root / "catalogue.json").read_text())
    assert sorted(catalogue["entries"]["race"]["versions"]) == local.versions("race")
    for v in local.versions("race"):
        assert local.verify(f"race@{v}") == []
        assert json.loads((root / "race" / v / "card.json").read_text())["version"] == v
    assert list((root / ".staging").iterdir()) == []


# -- list, show, verify --------------------------------------------------------------------------

def test_list_and_show(tiny_entry):
    _, root = tiny_entry
    result = CliRunner().invoke(main, ["zoo", "list", "--zoo", str(root)])
    assert result.exit_code == 0, result.output
    assert "tiny" in result.output and "1.0.0 (latest)" in result.output and "gabor" in result.output
    listed = json.loads(CliRunner().invoke(main, ["zoo", "list", "--json", "--zoo", str(root)]).output)
    assert [(c["name"], c["version"]) for c in listed] == [("tiny", "1.0.0")]
    result = CliRunner().invoke(main, ["zoo", "show", "tiny", "--zoo", str(root)])
    assert result.exit_code == 0 and "base vgg16, convolution gabor" in result.output
    card = json.loads(CliRunner().invoke(main, ["zoo", "show", "tiny@1.0.0", "--json", "--zoo", str(root)]).output)
    assert card["files"]["model.keras"]["size"] > 0
    result = CliRunner().invoke(main, ["zoo", "show", "nope", "--zoo", str(root)])
    assert result.exit_code == 2 and "No entry 'nope'" in result.output and "'tiny'" in result.output


def test_verify_detects_a_flipped_byte(zoo_copy):
    assert CliRunner().invoke(main, ["zoo", "verify", "tiny", "--zoo", str(zoo_copy)]).exit_code == 0
    flip_byte(zoo_copy / "tiny" / "1.0.0" / "model.keras")
    result = CliRunner().invoke(main, ["zoo", "verify", "tiny", "--zoo", str(zoo_copy)])
    assert result.exit_code == 1
    assert "model.keras: sha256 differs from the card's" in result.output
    with pytest.raises(BioflowError, match="does not match the sha256"):
        zoo.load("tiny", root=zoo_copy)


def test_verify_detects_an_edited_card_and_extra_files(zoo_copy):
    entry = zoo_copy / "tiny" / "1.0.0"
    card = json.loads((entry / "card.json").read_text())
    card["metrics"]["clean_accuracy"] = 0.99
    (entry / "card.json").write_text(json.dumps(card))
    (entry / "extra.txt").write_text("x")
    problems = zoo.Zoo(zoo_copy).verify("tiny")
    assert "card.json: sha256 differs from the catalogue's" in problems
    assert "extra.txt: not listed in the card" in problems


# -- export, pull, load ----------------------------------------------------------------------------

def test_pull_over_http_then_load_predicts_like_the_published_model(tiny_entry, tmp_path):
    run, root = tiny_entry
    remote = exported(root, tmp_path / "remote")
    index = json.loads((remote / "index.json").read_text())
    assert index["entries"]["tiny"]["latest"] == "1.0.0"
    local_root = tmp_path / "fresh"
    with serve(remote) as url:
        result = CliRunner().invoke(main, ["zoo", "pull", "tiny@1.0.0", "--remote", url, "--zoo", str(local_root)])
        assert result.exit_code == 0, result.output
        assert "every sha256 verified" in result.output
        again = CliRunner().invoke(main, ["zoo", "pull", "tiny", "--remote", url, "--zoo", str(local_root)])
        assert "already in the zoo" in again.output
    assert zoo.Zoo(local_root).verify("tiny@1.0.0") == []
    model, card = zoo.load("tiny", root=local_root)
    original = keras.saving.load_model(run / "model.keras", safe_mode=True)
    x = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 1)).astype(np.float32)
    x = (x - card["data"]["mean"]) / card["data"]["std"]
    np.testing.assert_array_equal(model.predict(x, verbose=0), original.predict(x, verbose=0))
    assert card["version"] == "1.0.0"


def test_load_pulls_from_the_environment_remote(tiny_entry, tmp_path, monkeypatch):
    _, root = tiny_entry
    remote = exported(root, tmp_path / "remote")
    monkeypatch.setenv("BIOFLOW_ZOO_REMOTE", str(remote))  # a folder is a remote too
    model, card = zoo.load("tiny@1.0.0", root=tmp_path / "fresh")
    assert card["name"] == "tiny" and model.output_shape[-1] == 10


def test_pull_remote_from_gin(tiny_entry, tmp_path):
    _, root = tiny_entry
    remote = exported(root, tmp_path / "remote")
    result = CliRunner().invoke(main, ["zoo", "pull", "tiny", "--gin-param", f"pull.remote = '{remote}'",
                                       "--zoo", str(tmp_path / "fresh")])
    assert result.exit_code == 0, result.output
    assert zoo.Zoo(tmp_path / "fresh").versions("tiny") == ["1.0.0"]
    result = CliRunner().invoke(main, ["zoo", "pull", "tiny", "--zoo", str(tmp_path / "other")],
                                env={"BIOFLOW_ZOO_REMOTE": ""})
    assert result.exit_code == 2 and "No remote zoo given" in result.output


def test_tampered_file_fails_the_pull_and_leaves_nothing(tiny_entry, tmp_path):
    _, root = tiny_entry
    remote = exported(root, tmp_path / "remote")
    flip_byte(remote / "tiny" / "1.0.0" / "results" / "robustness.json", offset=5)
    local_root = tmp_path / "fresh"
    with serve(remote) as url:
        with pytest.raises(BioflowError, match="robustness.json failed verification"):
            zoo.pull("tiny", remote=url, root=local_root)
    assert_nothing_installed(local_root)


def test_truncated_response_fails_cleanly(tiny_entry, tmp_path):
    _, root = tiny_entry
    remote = exported(root, tmp_path / "remote")
    local_root = tmp_path / "fresh"
    with serve(remote, TruncatingHandler) as url:
        with pytest.raises(BioflowError, match="model.keras"):
            zoo.pull("tiny", remote=url, root=local_root)
    assert_nothing_installed(local_root)


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://{host}{path}"])
def test_redirect_to_another_scheme_is_refused(tiny_entry, tmp_path, target):
    _, root = tiny_entry
    remote = exported(root, tmp_path / "remote")
    handler = type("Redirect", (SchemeRedirectHandler,), {"target": target})
    with serve(remote, handler) as url:
        with pytest.raises(BioflowError, match=r"(?i)redirect\w* .*to (url ')?" + target.split(":")[0]):
            zoo.pull("tiny", remote=url, root=tmp_path / "fresh")
    assert_nothing_installed(tmp_path / "fresh")


def test_download_larger_than_declared_is_cut_off(tiny_entry, tmp_path):
    _, root = tiny_entry
    remote = exported(root, tmp_path / "remote")
    card_path = remote / "tiny" / "1.0.0" / "card.json"
    card = json.loads(card_path.read_text())
    card["files"]["history.csv"]["size"] = 10  # a card that understates a size
    rewrite_card(remote, card)
    with serve(remote) as url:
        with pytest.raises(BioflowError, match="history.csv is .*more than the 10"):
            zoo.pull("tiny", remote=url, root=tmp_path / "fresh")
    assert_nothing_installed(tmp_path / "fresh")


def test_index_entry_trying_parent_paths_is_refused(tiny_entry, tmp_path):
    _, root = tiny_entry
    remote = exported(root, tmp_path / "remote")
    index = json.loads((remote / "index.json").read_text())
    index["entries"]["../evil"] = index["entries"]["tiny"]
    (remote / "index.json").write_text(json.dumps(index))
    with serve(remote) as url:
        with pytest.raises(BioflowError, match="Index entry name '../evil' is not valid"):
            zoo.pull("tiny", remote=url, root=tmp_path / "fresh")
    assert not (tmp_path / "evil").exists()


def test_card_file_trying_parent_paths_is_refused(tiny_entry, tmp_path):
    _, root = tiny_entry
    remote = exported(root, tmp_path / "remote")
    card_path = remote / "tiny" / "1.0.0" / "card.json"
    card = json.loads(card_path.read_text())
    card["files"]["../../../escaped.txt"] = {"sha256": "0" * 64, "size": 1}
    rewrite_card(remote, card)
    with serve(remote) as url:
        with pytest.raises(BioflowError, match="'../../../escaped.txt' is not allowed"):
            zoo.pull("tiny", remote=url, root=tmp_path / "fresh" / "zoo")
    assert not list(tmp_path.rglob("escaped.txt"))
    assert_nothing_installed(tmp_path / "fresh" / "zoo")


BAD_CARD = '{"entries": {"tiny": {"versions": {"1.0.0": {"card": {"size": "9", "sha256": "x"}}}}}}'


@pytest.mark.parametrize("index", ["not json", '{"entries": {"tiny": {"versions": {"1.0.0": {}}}}}', BAD_CARD])
def test_malformed_index_is_refused(tmp_path, index):
    (tmp_path / "remote").mkdir()
    (tmp_path / "remote" / "index.json").write_text(index)
    with pytest.raises(BioflowError, match="index.json is not a bioflow zoo index"):
        zoo.pull("tiny", remote=str(tmp_path / "remote"), root=tmp_path / "zoo")
    assert zoo.Zoo(tmp_path / "zoo").names() == []


def test_unsupported_remote_scheme_lists_the_valid_ones(tmp_path):
    with pytest.raises(BioflowError, match="unsupported scheme 'ftp'.*'file', 'gs', 'http' or 'https'"):
        zoo.pull("tiny", remote="ftp://example.org/zoo", root=tmp_path)


def test_export_refuses_a_corrupt_entry(zoo_copy, tmp_path):
    flip_byte(zoo_copy / "tiny" / "1.0.0" / "history.csv", offset=3)
    with pytest.raises(BioflowError, match="fail verification: tiny@1.0.0: history.csv"):
        zoo.export(tmp_path / "remote", root=zoo_copy)
    assert not (tmp_path / "remote" / "index.json").exists()


# -- evaluate --zoo ----------------------------------------------------------------------------------

def test_evaluate_a_zoo_entry(tiny_entry, tmp_path):
    _, root = tiny_entry
    out = tmp_path / "eval"
    result = CliRunner().invoke(main, ["evaluate", "--entry", "tiny@1.0.0", "--zoo", str(root), "--out", str(out),
                                       "--n-images", "32", "--gin-param", "NoiseSuite.noises = ['invert']",
                                       "--gin-param", "Synthetic.n_test = 64"])  # the data it was published on
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "results" / "robustness.json").read_text())
    card = zoo.Zoo(root).card("tiny@1.0.0")
    assert summary["clean_accuracy"] == pytest.approx(card["metrics"]["clean_accuracy"])
    assert f"on 32 images (published: {card['metrics']['clean_accuracy']:.4f} on 32 images)" in result.output
    assert zoo.Zoo(root).verify("tiny@1.0.0") == []  # the entry itself is untouched
    result = CliRunner().invoke(main, ["evaluate"])
    assert result.exit_code == 2 and "either a run directory or --entry" in result.output


def test_no_pickles_or_lambda_layers_in_an_entry(tiny_entry):
    _, root = tiny_entry
    entry = root / "tiny" / "1.0.0"
    assert not [p for p in entry.rglob("*") if p.suffix in (".pkl", ".pickle", ".npy", ".h5")]
    import zipfile

    with zipfile.ZipFile(entry / "model.keras") as archive:
        model_config = archive.read("config.json").decode()
    assert "Lambda" not in model_config and "TFOpLambda" not in model_config


# -- entries and runs from before the architecture record (bioflow 0.1) ------------------------------

OLD_ARCHITECTURE_KEYS = ("base", "convolution", "bottleneck", "recurrence", "filter_bank", "bottleneck_layers",
                         "recurrence_layers")


def test_an_entry_published_without_the_architecture_record_still_loads(zoo_copy, tmp_path):
    """An entry built by this release, with its card cut back to what bioflow 0.1 wrote."""
    from bioflow.report import collect
    from bioflow.zoo.local import CATALOGUE, catalogue_of

    card_path = zoo_copy / "tiny" / "1.0.0" / "card.json"
    card = json.loads(card_path.read_text())
    assert card["architecture"]["schema"] == 1 and card["architecture"]["input_shape"] == [32, 32, 1]
    card["architecture"] = {k: card["architecture"][k] for k in OLD_ARCHITECTURE_KEYS}
    card["versions"]["published_with"] = "0.1.0"
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    (zoo_copy / CATALOGUE).write_text(json.dumps(catalogue_of(zoo.Zoo(zoo_copy)), indent=2) + "\n")
    assert zoo.Zoo(zoo_copy).verify("tiny@1.0.0") == []

    model, card = zoo.load("tiny", root=zoo_copy)
    arch = architecture.read(zoo.loading.run_info(card), model)
    assert (arch.base, arch.convolution, arch.bottleneck, arch.recurrence, arch.schema) == ("vgg16", "gabor", None,
                                                                                          None, 0)
    assert arch.input_shape == (32, 32, 1) and arch.parameters["total_params"] == model.count_params()
    out = tmp_path / "eval"
    result = CliRunner().invoke(main, ["evaluate", "--entry", "tiny", "--zoo", str(zoo_copy), "--out", str(out),
                                       "--n-images", "16", "--gin-param", "NoiseSuite.noises = ['invert']"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "results" / "perturbation.csv")
    assert set(table["Convolution"]) == {"gabor"} and set(table["Base"]) == {"vgg16"}
    models = collect.models_table(collect.collect(zoo_copy, all_entries=True).entries)
    assert models[["Convolution", "Base"]].values.tolist() == [["gabor", "vgg16"]]


def test_a_run_without_the_record_is_read_from_its_layers_and_published_with_one(tiny_run, tmp_path):
    info = json.loads((tiny_run / "run.json").read_text())
    recorded = info.pop("architecture")
    (tiny_run / "run.json").write_text(json.dumps(info))
    model, info = rundir.load_run(tiny_run)
    arch = architecture.read(info, model)
    assert (arch.base, arch.convolution, arch.bottleneck, arch.recurrence) == \
        (recorded["base"], recorded["convolution"], recorded["bottleneck"], recorded["recurrence"])
    assert arch.parameters == recorded["parameters"] and list(arch.input_shape) == recorded["input_shape"]
    folder = zoo.publish(tiny_run, "old", root=tmp_path / "zoo")
    card = json.loads((folder / "card.json").read_text())
    assert card["architecture"]["convolution"] == "gabor" and card["architecture"]["schema"] == 0
