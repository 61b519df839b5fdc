"""The original code's published CSV results in the report: the dissertation's real files (when the
workspace has them) and hostile ones."""
import pathlib
import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bioflow import bionet_layout as published
from bioflow.cli import main
from bioflow.errors import BioflowError
from bioflow.report import collect

RESULTS = pathlib.Path(__file__).resolve().parents[2] / "shared" / "reference" / "dissertation-results" / "results"
needs_results = pytest.mark.skipif(not (RESULTS / "metrics").is_dir(),
                                   reason=f"the dissertation's published results are not at {RESULTS} "
                                          "(only in the dev workspace)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: The dissertation's names: one baseline under two names, and the training logs' file-name models.
RENAMES = {"Gabor_VGG16": "Baseline", "baseline": "Baseline", "4": "RIB (N=4)", "recurrent": "Recurrent"}
MODELS = {"Baseline", "RIB (N=2)", "RIB (N=4)", "Recurrent", "RIB Recurrent"}


def hand_tables():
    """The CIFAR-10 perturbation rows, read with pandas alone (no bioflow code)."""
    table = pd.read_csv(RESULTS / "metrics" / "perturbed_cifar" / "Gabor_VGG16_1_perturb_cifar10_s42.csv")
    table["Model"] = table["Model"].str.strip()
    return table


@needs_results
def test_the_dissertations_results_give_its_five_models_clean_accuracies_and_aucs():
    data = collect.collect(published=[RESULTS], renames=RENAMES)
    assert set(data.models["Model"]) == MODELS and set(data.models["Name"]) == {"published"}
    hand = hand_tables()
    clean = hand[(hand["Noise"] == "Uniform") & (hand["LI"] == 0)].set_index("Model")["Accuracy"]
    got = data.models.set_index("Model")["CleanAccuracy"]
    for model, accuracy in clean.items():
        assert got[model] == accuracy  # the unperturbed test set: uniform noise at level 0
    aucs = data.aucs.set_index(["Model", "Noise"])
    for (model, noise), group in hand.groupby(["Model", "Noise"]):
        order = np.argsort(group["Level"].to_numpy())
        levels, accuracies = group["Level"].to_numpy()[order], group["Accuracy"].to_numpy()[order]
        by_hand = float(np.sum(np.diff(levels) * (accuracies[1:] + accuracies[:-1]) / 2))
        name = published.NOISES[noise]
        assert aucs.loc[(model, name), "AUC"] == pytest.approx(by_hand, rel=1e-12)
        # the original's calc_aucs: trial 1's levels in file order, accuracies sorted by level
        x = group["Level"].to_numpy()
        y = group.groupby("Level")["Accuracy"].mean().to_numpy()
        sign = 1.0 if np.all(np.diff(x) >= 0) else -1.0
        original = sign * float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))
        assert aucs.loc[(model, name), "OriginalAUC"] == pytest.approx(original, rel=1e-12)
    ratio = aucs["OriginalAUC"] / aucs["AUC"]
    high_pass = ratio.xs("high_pass", level="Noise")
    assert 0.38 < high_pass.min() and high_pass.max() < 0.48  # the audit measured 0.39-0.47x
    assert set(data.generalisation["Model"]) == MODELS
    assert set(data.history["Model"]) == {"Baseline", "RIB (N=4)", "Recurrent"}


@needs_results
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)")
def test_the_published_report_renders_in_chromium_without_a_console_error(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extras")
    out = tmp_path / "r.html"
    args = ["report", "--published", str(RESULTS), "--out", str(out), "--zoo", str(tmp_path / "no_zoo")]
    for old, new in RENAMES.items():
        args += ["--published-name", f"{old}={new}"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "Report of 0 entries and 1 published folder" in result.output
    console, errors = [], []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_context(offline=True).new_page()
            page.on("console", lambda m: console.append((m.type, m.text)))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(out.as_uri())
            charts = page.locator(".chart").count()
            page.wait_for_function(f"document.querySelectorAll('.chart svg.marks').length >= {charts}",
                                   timeout=60_000)
            text = page.inner_text("body")
        finally:
            browser.close()
    assert errors == [] and [m for m in console if m[0] == "error"] == [], (errors, console)
    assert all(m in text for m in MODELS) and "AUC (original calc_aucs)" in text


ROW = "Baseline,Gabor,VGG16,None,1,42,CIFAR10,{noise},{li},{level},0.5,{accuracy}\n"
HEADER = "Model,Convolution,Base,Weights,Trial,Seed,Set,Noise,LI,Level,Loss,Accuracy\n"


def write(folder, name, text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder


def test_an_unknown_noise_names_the_file_the_row_and_the_known_names(tmp_path):
    folder = write(tmp_path / "pub", "p.csv", HEADER + ROW.format(noise="Uniform", li=0, level=0, accuracy=0.9)
                   + ROW.format(noise="Fog", li=1, level=0.5, accuracy=0.5))
    with pytest.raises(BioflowError, match=r"p.csv, row 3: unknown noise 'Fog'; the known noises are 'Brighten', "):
        published.read([folder])


def test_hostile_published_files_are_bounded_named_and_escaped(tmp_path):
    script = "<script>window.__pwned=1</script>"
    rows = [ROW.format(noise="Uniform", li=i, level=lv, accuracy=acc)
            for i, (lv, acc) in enumerate([(0, 0.9), (0.5, "abc"), (1.0, 0.2)])]
    text = HEADER + "".join(rows).replace("Baseline", script)
    folder = write(tmp_path / "pub", "p.csv", text)
    write(folder, "other.csv", "a,b\n1,2\n")
    (folder / "link.csv").symlink_to(folder / "p.csv")
    found = published.read([folder])
    assert any("p.csv, row 3: Level, LI, Accuracy, Loss, Trial must be numbers" in p for p in found.problems)
    assert any("other.csv: its columns (a, b) are none of the original's layouts" in p for p in found.problems)
    assert any("link.csv: not a regular file" in p for p in found.problems)
    assert len(found.perturbation) == 2 and found.models[0]["CleanAccuracy"] == 0.9
    out = tmp_path / "r.html"
    result = CliRunner().invoke(main, ["report", "--published", str(folder), "--out", str(out), "--zoo",
                                       str(tmp_path / "no_zoo")])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert script not in page and "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page
    result = CliRunner().invoke(main, ["report", "--published", str(tmp_path / "nowhere"), "--out", str(out)])
    assert result.exit_code == 2 and "is not a folder of published results" in result.output
    result = CliRunner().invoke(main, ["report", "--published", str(folder), "--published-name", "x", "--out",
                                       str(out)])
    assert result.exit_code == 2 and "--published-name 'x' must be OLD=NEW" in result.output


def test_published_models_stand_beside_zoo_entries(tiny_entry, tmp_path):
    folder = write(tmp_path / "pub", "p.csv", HEADER + "".join(
        ROW.format(noise="Contrast", li=i, level=lv, accuracy=acc)
        for i, (lv, acc) in enumerate([(1.0, 0.9), (0.1, 0.5), (0.01, 0.1)])))
    data = collect.collect(tiny_entry[1], all_entries=True, published=[folder])
    assert list(data.models["Name"]) == ["tiny", "published"]
    assert {"vgg16_gabor", "Baseline"} <= set(data.aucs["Model"])
    row = data.aucs.set_index(["Model", "Noise"]).loc[("Baseline", "contrast")]
    # bioflow: levels sorted 0.01, 0.1, 1.0; the original: file order 1.0, 0.1, 0.01 against accuracies
    # sorted by level (0.1, 0.5, 0.9), integrated with the sign of a decreasing x
    assert row["AUC"] == pytest.approx(0.09 * 0.3 + 0.9 * 0.7)
    assert row["OriginalAUC"] == pytest.approx(0.9 * 0.3 + 0.09 * 0.7)


def test_results_written_in_the_original_layout_read_back_as_the_same_tables(tiny_run):
    """bioflow's results → the original's layout (``evaluate --layout bionet``) → ``--published``:
    the same perturbation curves, AUCs and learning curves as the run's own tables."""
    from bioflow import metrics

    result = CliRunner().invoke(main, ["evaluate", str(tiny_run), "--layout", "bionet", "--gin-param",
                                       "NoiseSuite.noises = ['uniform', 'contrast', 'high_pass']"])
    assert result.exit_code == 0, result.output
    folder = tiny_run / "results" / "bionet"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.csv")) == [
        "logs/vgg16_gabor_1.csv", "metrics/vgg16_gabor_1_perturb_cifar10_s42.csv"]
    written = pd.read_csv(folder / "metrics" / "vgg16_gabor_1_perturb_cifar10_s42.csv")
    assert list(written.columns) == list(published.KINDS["perturbation"])
    assert set(written["Noise"]) == {"Uniform", "Contrast", "High Pass"} and set(written["Set"]) == {"CIFAR10"}
    assert set(written["Convolution"]) == {"Gabor"} and set(written["Base"]) == {"VGG16"}
    data = collect.collect(published=[folder])
    ours = pd.read_csv(tiny_run / "results" / "perturbation.csv")
    expected = metrics.auc_table(ours).set_index("Noise")["AUC"]
    got = data.aucs.set_index("Noise")["AUC"]
    for noise, value in expected.items():
        assert got[noise] == pytest.approx(value, rel=1e-12)
    assert data.models.loc[0, "Model"] == "vgg16_gabor" and data.models.loc[0, "Convolution"] == "gabor"
    history = pd.read_csv(tiny_run / "history.csv")
    np.testing.assert_allclose(data.history["val_accuracy"], history["val_accuracy"])
    assert set(data.history["Model"]) == {"vgg16_gabor"}
