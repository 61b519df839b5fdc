"""Robustness reports: the tidy tables behind each chart, and the page in a real headless Chromium."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bioflow import config, metrics, zoo
from bioflow.cli import main
from bioflow.components.filterbanks import bank_from_config
from bioflow.errors import BioflowError
from bioflow.report import build_report, collect
from bioflow.runner import train
from helpers import EVALUATE_SMALL, TINY_TRAIN, writable_copy

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHART_IDS = ("perturbation", "auc_heatmap", "auc_ratio", "learning_curves")


@pytest.fixture(scope="module")
def two_models(tiny_entry, tmp_path_factory):
    """A zoo with a tiny Gabor VGG-16 (the session's run) and a tiny Original VGG-16, both evaluated
    on the same small suite and published, as ``gabor`` and ``original``, under the label ``pair``."""
    root = tmp_path_factory.mktemp("zoo")
    zoo.publish(tiny_entry[0], "gabor", root=root)
    # The reference of the AUC ratios must learn: after 2 epochs on 256 images it sits at chance, where
    # its accuracy on 32 images (and so its AUC) can be 0 for every level; 4 epochs on 1,024 reach 0.28.
    config.parse(["quickstart_original"], TINY_TRAIN + EVALUATE_SMALL + [
        "Fit.epochs = 4", "Synthetic.n_train = 1024", "train.publish = 'original'", f"train.zoo = '{root}'"])
    train(workdir=str(tmp_path_factory.mktemp("runs")), label="pair")
    return root


@pytest.fixture
def pair_copy(two_models, tmp_path):
    """A private, writable copy of the two-model zoo."""
    return writable_copy(two_models, tmp_path / "zoo")


def test_tables_behind_the_charts(two_models):
    data = collect.collect(two_models, all_entries=True)
    models = data.models.set_index("Name")
    assert list(models.index) == ["gabor", "original"]
    assert models.loc["gabor", "Convolution"] == "gabor" and models.loc["original", "Convolution"] == "original"
    assert set(models["Base"]) == {"vgg16"} and set(models["Trials"]) == {1}
    card = zoo.Zoo(two_models).card("gabor")
    assert models.loc["gabor", "TotalParams"] == card["parameters"]["total_params"]
    assert models.loc["gabor", "CleanAccuracy"] == card["metrics"]["clean_accuracy"]
    # perturbation curves: one row per model, noise and level; one trial gives a zero-width band
    assert len(data.curves) == 2 * 3 * 3
    assert (data.curves["Lower"] == data.curves["Accuracy"]).all() and (data.curves["Trials"] == 1).all()
    # AUCs equal the entries' robustness.json, and the default reference is the original model
    aucs = data.aucs.set_index(["Model", "Noise"])["AUC"]
    for noise, value in card["metrics"]["auc"].items():
        assert aucs[("vgg16_gabor", noise)] == pytest.approx(value)
    assert data.reference == {"vgg16": "vgg16_original"}
    ratios = data.ratios.set_index(["Model", "Noise"])
    assert ratios.loc[("vgg16_original", "uniform"), "Ratio"] == pytest.approx(1.0)
    assert ratios.loc[("vgg16_gabor", "contrast"), "Ratio"] == pytest.approx(
        aucs[("vgg16_gabor", "contrast")] / aucs[("vgg16_original", "contrast")])
    # learning curves: the history of both entries; CIFAR-10G: absent for synthetic data, and said so
    assert sorted(data.history.groupby("Model")["epoch"].max()) == [1, 3]
    assert data.generalisation.empty
    assert any("not the CIFAR-10 classes" in p for p in data.problems)


def test_trials_give_mean_and_confidence_band(pair_copy):
    """A second trial of the Gabor model (a copy with lower accuracies) is averaged with the first."""
    first, second = pair_copy / "gabor" / "1.0.0", pair_copy / "gabor" / "2.0.0"
    shutil.copytree(first, second)
    card = json.loads((second / "card.json").read_text())
    card["version"], card["run"]["trial"] = "2.0.0", 2
    (second / "card.json").write_text(json.dumps(card))
    table = pd.read_csv(second / "results" / "perturbation.csv")
    table["Accuracy"] = table["Accuracy"] * 0.5
    table["Trial"] = 2
    table.to_csv(second / "results" / "perturbation.csv", index=False)
    data = collect.collect(pair_copy, specs=["gabor@1.0.0", "gabor@2.0.0", "original"])
    assert list(zip(data.models["Name"], data.models["Version"], data.models["Trials"])) == [
        ("gabor", "1.0.0", 2), ("gabor", "2.0.0", 2), ("original", "1.0.0", 1)]
    row = data.curves[(data.curves["Model"] == "vgg16_gabor") & (data.curves["Noise"] == "uniform")
                      & (data.curves["LI"] == 1)].iloc[0]
    accuracies = pd.read_csv(first / "results" / "perturbation.csv")
    acc = accuracies[(accuracies["Noise"] == "uniform") & (accuracies["LI"] == 1)]["Accuracy"].iloc[0]
    mean, half = metrics.mean_ci([acc, acc * 0.5])
    assert row["Trials"] == 2 and row["Accuracy"] == pytest.approx(mean)
    assert row["Upper"] == pytest.approx(min(1.0, mean + half)) and row["Lower"] == pytest.approx(max(0, mean - half))
    assert len(data.aucs[data.aucs["Model"] == "vgg16_gabor"]) == 2 * 3  # per trial and noise
    # --label takes every trial (a sweep publishes one version per trial), and of a trial published
    # again, its latest version.
    shutil.copytree(second, pair_copy / "gabor" / "2.1.0")
    card["version"] = "2.1.0"
    (pair_copy / "gabor" / "2.1.0" / "card.json").write_text(json.dumps(card))
    data = collect.collect(pair_copy, label="pair")
    assert list(zip(data.models["Name"], data.models["Version"], data.models["Trials"])) == [
        ("gabor", "1.0.0", 2), ("gabor", "2.1.0", 2), ("original", "1.0.0", 1)]
    assert collect.collect(pair_copy, all_entries=True).models["Version"].tolist() == ["2.1.0", "1.0.0"]


def test_generalisation_bars_over_trials(pair_copy, tmp_path):
    """CIFAR-10G rows of two trials (written here) give mean bars with 95% error bars, normal and inverted."""
    import vl_convert

    from bioflow.data.sources import CIFAR10_CLASSES
    from bioflow.evaluate import GENERALISATION_COLUMNS

    for version, trial, offset in (("1.0.0", 1, 0.0), ("2.0.0", 2, 0.1)):
        folder = pair_copy / "gabor" / version
        if version != "1.0.0":
            shutil.copytree(pair_copy / "gabor" / "1.0.0", folder)
        card = json.loads((folder / "card.json").read_text())
        card["version"], card["run"]["trial"] = version, trial
        card["data"]["classes"] = list(CIFAR10_CLASSES)
        (folder / "card.json").write_text(json.dumps(card))
        rows = [dict(Model="vgg16_gabor", Convolution="gabor", Base="vgg16", Weights="none", Trial=trial, Seed=42,
                     Set=kind + ("_inverted" if inv else ""), Type=kind, Inverted=inv, Loss=1.0,
                     Accuracy=0.5 + offset - (0.2 if inv else 0.0))
                for kind in ("line_drawings", "silhouettes", "contours") for inv in (False, True)]
        pd.DataFrame(rows, columns=GENERALISATION_COLUMNS).to_csv(folder / "results" / "generalisation.csv",
                                                                  index=False)
    data = collect.collect(pair_copy, specs=["gabor@1.0.0", "gabor@2.0.0"])
    bars = data.generalisation.set_index(["Type", "Inverted"])
    assert len(bars) == 6 and (bars["Trials"] == 2).all()
    mean, half = metrics.mean_ci([0.5, 0.6])
    assert bars.loc[("silhouettes", False), "Accuracy"] == pytest.approx(mean)
    assert bars.loc[("silhouettes", False), "Upper"] == pytest.approx(min(1.0, mean + half))
    assert bars.loc[("contours", True), "Accuracy"] == pytest.approx(mean - 0.2)
    assert not any("CIFAR-10G" in p for p in data.problems)
    from bioflow.report import charts

    svg = vl_convert.vegalite_to_svg(charts.generalisation_chart(data.generalisation).to_dict())
    assert svg.count('aria-roledescription="bar"') == 6 and "inverted" in svg  # 3 sets x normal, inverted


def test_selection_and_its_errors(two_models):
    assert [e.spec for e in collect.collect(two_models, label="pair").entries] == ["gabor@1.0.0", "original@1.0.0"]
    assert [e.spec for e in collect.collect(two_models, specs=["original"]).entries] == ["original@1.0.0"]
    with pytest.raises(BioflowError, match="label 'nope'; labels are 'pair'"):
        collect.collect(two_models, label="nope")
    with pytest.raises(BioflowError, match="Choose the entries"):
        collect.collect(two_models)
    with pytest.raises(BioflowError, match="Reference 'x' is not among"):
        collect.collect(two_models, all_entries=True, reference="x")
    by_entry = collect.collect(two_models, all_entries=True, reference="gabor")
    assert by_entry.reference == {"vgg16": "vgg16_gabor"}
    result = CliRunner().invoke(main, ["report", "--zoo", str(two_models)])
    assert result.exit_code == 2 and "NAME[@VERSION]…, --label LABEL or --all" in result.output


def test_kernels_are_the_banks_the_networks_used(two_models):
    data = collect.collect(two_models, all_entries=True)
    gabor, original = data.entries
    kernels = collect.kernels(gabor)
    bank = bank_from_config(gabor.card["architecture"]["filter_bank"]["v1_gabor"]["filter_bank"])
    expected = np.transpose(bank.kernels(1)[:, :, 0, :], (2, 0, 1))
    assert kernels["v1_gabor"].shape == expected.shape == (24, 63, 63)
    np.testing.assert_allclose(kernels["v1_gabor"], expected, atol=1e-6)
    assert collect.kernels(original) == {}


def test_entry_missing_results_is_named_and_the_rest_renders(pair_copy, tmp_path):
    shutil.rmtree(pair_copy / "original" / "1.0.0" / "results")
    data = build_report(tmp_path / "report.html", pair_copy, all_entries=True)
    assert "original@1.0.0: no results/perturbation.csv, so it has no perturbation curves or AUCs." in data.problems
    assert any("reference model vgg16_original (base vgg16) has no perturbation results" in p
               for p in data.problems)
    html = (tmp_path / "report.html").read_text()
    assert "original@1.0.0: no results/perturbation.csv" in html
    assert 'id="perturbation"' in html and 'id="auc_ratio"' not in html
    curves = pd.read_csv(tmp_path / "report_data" / "perturbation_curves.csv")
    assert set(curves["Model"]) == {"vgg16_gabor"}


def test_html_csv_and_png_outputs(two_models, tmp_path):
    out = tmp_path / "out" / "report.html"
    result = CliRunner().invoke(main, ["report", "--all", "--zoo", str(two_models), "--out", str(out),
                                       "--png", str(tmp_path / "png")])
    assert result.exit_code == 0, result.output
    assert "Report of 2 entries" in result.output
    html = out.read_text()
    for cid in CHART_IDS:
        assert f'id="{cid}"' in html
        assert (tmp_path / "png" / f"{cid}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<script src" not in html and "<link" not in html  # everything is inline
    assert html.count('<figure><img alt="gabor@1.0.0 v1_gabor kernel') == 24
    assert 'href="#config-gabor-1-0-0"' in html and 'id="config-gabor-1-0-0"' in html
    assert "build_model.filter_bank = " in html  # the operative config, shown in the page
    data = collect.collect(two_models, all_entries=True)
    saved = pd.read_csv(out.parent / "report_data" / "auc.csv")
    pd.testing.assert_frame_equal(saved, data.aucs.reset_index(drop=True), check_dtype=False)
    assert sorted(p.name for p in (out.parent / "report_data").iterdir()) == sorted(
        f"{k}.csv" for k in data.tables())


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)")
def test_report_renders_offline_in_headless_chromium(two_models, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extras")
    out = tmp_path / "report.html"
    build_report(out, two_models, all_entries=True)
    requests, console, errors = [], [], []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync", "--proxy-server=http://127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND"])
        try:
            context = browser.new_context(offline=True)
            page = context.new_page()
            page.on("console", lambda m: console.append((m.type, m.text)))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(out.as_uri())
            page.wait_for_function(
                f"document.querySelectorAll('.chart svg.marks').length >= {len(CHART_IDS)}", timeout=60_000)
            rendered = {cid: page.locator(f"#{cid} svg.marks").count() for cid in CHART_IDS}
            marks = page.locator("#perturbation svg .mark-line path, #perturbation svg .mark-symbol path").count()
            faded = "document.querySelectorAll('#perturbation .mark-line path[opacity=\"0.15\"]').length"
            before = page.evaluate(faded)
            legend = page.locator("#perturbation .role-legend-label text", has_text="vgg16_original")
            label = legend.first.bounding_box()
            page.mouse.click(label["x"] + label["width"] / 2, label["y"] + label["height"] / 2)  # a legend click
            page.wait_for_function(f"{faded} > 0", timeout=10_000)
            selected = page.evaluate("JSON.stringify(window.bioflowViews.perturbation.data('model_store'))")
            after = page.evaluate(faded)
            images = page.evaluate("Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length")
            total_images = page.evaluate("document.images.length")
        finally:
            browser.close()
    assert all(n == 1 for n in rendered.values()), rendered
    assert marks > 0
    assert before == 0 and after == 3 and '"values":["vgg16_original"]' in selected  # the Gabor lines fade
    assert images == total_images > 24
    assert errors == []
    assert [m for m in console if m[0] in ("error", "warning")] == []
    assert [u for u in requests if not u.startswith("data:") and u != out.as_uri()] == []


def test_explained_entries_get_an_explain_section(pair_copy, tmp_path):
    for name in ("gabor", "original"):
        out = tmp_path / f"explained_{name}"
        result = CliRunner().invoke(main, ["explain", "--entry", name, "--zoo", str(pair_copy), "--out",
                                           str(out), "--images", "2", "--noise", "contrast"])
        assert result.exit_code == 0, result.output
        # as if published with its explanations (`explain` itself refuses to write into an entry)
        shutil.copytree(out / "explain", pair_copy / name / "1.0.0" / "results" / "explain")
    data = build_report(tmp_path / "report.html", pair_copy, all_entries=True)
    curves = data.explain
    assert set(curves["Model"]) == {"vgg16_gabor", "vgg16_original"} and set(curves["Noise"]) == {"contrast"}
    assert len(curves) == 2 * 11  # two models × the 11 levels of contrast
    rows = pd.read_csv(pair_copy / "gabor" / "1.0.0" / "results" / "explain" / "gradcam.csv")
    rows = rows[(rows["Target"] == "predicted") & (rows["Noise"] == "contrast") & (rows["Level"] == 1.0)]
    got = curves[(curves["Model"] == "vgg16_gabor") & (curves["Level"] == 1.0)]["CentreMass"].iloc[0]
    assert got == pytest.approx(rows["CentreMass"].mean(), nan_ok=True)
    page_html = (tmp_path / "report.html").read_text()
    assert 'id="explain"' in page_html and "Explain: Grad-CAM and occlusion" in page_html
    assert not any("Explain" in p for p in data.problems)
    assert (tmp_path / "report_data" / "explain_centre_mass.csv").is_file()


def test_attacked_entries_get_an_adversarial_section_with_their_masking_checks(pair_copy, tmp_path):
    out = tmp_path / "attacked"
    result = CliRunner().invoke(main, ["evaluate", "--entry", "gabor", "--zoo", str(pair_copy), "--out", str(out),
                                       "--attacks", "quick", "--n-images", "16"])
    assert result.exit_code == 0, result.output
    # as if published with its attacks (an entry's files never change in place)
    entry = pair_copy / "gabor" / "1.0.0" / "results"
    shutil.copy(out / "results" / "adversarial.csv", entry / "adversarial.csv")
    summary = json.loads((entry / "robustness.json").read_text())
    summary["adversarial"] = json.loads((out / "results" / "robustness.json").read_text())["adversarial"]
    (entry / "robustness.json").write_text(json.dumps(summary))
    data = build_report(tmp_path / "report.html", pair_copy, all_entries=True)
    curves = data.adversarial
    assert set(curves["Model"]) == {"vgg16_gabor"} and len(curves) == 10  # 2 attacks × 5 budgets
    measured = pd.read_csv(entry / "adversarial.csv").set_index(["Attack", "Epsilon"])["Accuracy"]
    for row in curves.itertuples():
        assert row.Accuracy == pytest.approx(measured[(row.Attack, row.Epsilon)]) and row.Trials == 1
    checks = data.masking_checks
    assert len(checks) == len(summary["adversarial"]["checks"]) >= 5 and set(checks["Model"]) == {"vgg16_gabor"}
    page_html = (tmp_path / "report.html").read_text()
    assert 'id="adversarial"' in page_html and 'id="masking"' in page_html
    assert not any("Adversarial" in p for p in data.problems)  # the unattacked entry is not a problem
    assert (tmp_path / "report_data" / "adversarial_curves.csv").is_file()
    assert (tmp_path / "report_data" / "masking_checks.csv").is_file()
    del summary["adversarial"]
    (entry / "robustness.json").write_text(json.dumps(summary))
    data = build_report(tmp_path / "again.html", pair_copy, all_entries=True)
    assert any("records no gradient-masking checks" in p for p in data.problems) and data.masking_checks.empty
    # hostile tables from another entry: numbers where names go, text where numbers go
    other = pair_copy / "original" / "1.0.0" / "results"
    (other / "adversarial.csv").write_text("Attack,Norm,Epsilon,Accuracy\n7,=cmd|' /C calc'!A0,0.1,0.5\n"
                                           "7,=cmd|' /C calc'!A0,0.2,0.4\n")
    data = build_report(tmp_path / "hostile.html", pair_copy, all_entries=True)
    assert set(data.adversarial["Model"]) == {"vgg16_gabor", "vgg16_original"}
    assert "'=cmd" in (tmp_path / "hostile_data" / "adversarial_curves.csv").read_text()  # defused for spreadsheets
    (other / "adversarial.csv").write_text("Attack,Norm,Epsilon,Accuracy\npgd,linf,lots,0.5\n")
    data = build_report(tmp_path / "garbage.html", pair_copy, all_entries=True)
    assert any("adversarial.csv has values that are not numbers in column Epsilon" in p for p in data.problems)
    assert set(data.adversarial["Model"]) == {"vgg16_gabor"}


@pytest.mark.slow  # two evaluations and three reports: 27 s
def test_corrupted_entries_get_a_corruption_section_and_an_mce_table(pair_copy, tmp_path):
    for name in ("gabor", "original"):
        out = tmp_path / name
        result = CliRunner().invoke(main, ["evaluate", "--entry", name, "--zoo", str(pair_copy), "--out", str(out),
                                           "--corruptions", "computed", "--n-images", "16", "--gin-param",
                                           "CorruptionSuite.corruptions = ['contrast', 'fog']", "--gin-param",
                                           "NoiseSuite.noises = ['invert']"])
        assert result.exit_code == 0, result.output
        # as if published with its corruptions (an entry's files never change in place)
        shutil.copy(out / "results" / "corruptions.csv", pair_copy / name / "1.0.0" / "results" / "corruptions.csv")
    data = build_report(tmp_path / "report.html", pair_copy, all_entries=True)
    assert len(data.corruptions) == 2 * 2 * 5 and set(data.corruptions["Trials"]) == {1}
    mce = data.mce.set_index("Model")
    assert mce.loc["vgg16_original", "mCE"] == pytest.approx(1.0)  # the reference against itself
    gabor = pd.read_csv(pair_copy / "gabor" / "1.0.0" / "results" / "corruptions.csv")
    original = pd.read_csv(pair_copy / "original" / "1.0.0" / "results" / "corruptions.csv")
    by_hand = np.mean([(1 - gabor[gabor["Corruption"] == c]["Accuracy"]).sum()
                       / (1 - original[original["Corruption"] == c]["Accuracy"]).sum() for c in ("contrast", "fog")])
    assert mce.loc["vgg16_gabor", "mCE"] == pytest.approx(by_hand)
    assert mce.loc["vgg16_gabor", "MeanAccuracy"] == pytest.approx(gabor["Accuracy"].mean())
    assert mce.loc["vgg16_gabor", "Baseline"] == "vgg16_original"
    page_html = (tmp_path / "report.html").read_text()
    assert 'id="corruptions"' in page_html and "Common corruptions: mCE" in page_html
    assert (tmp_path / "report_data" / "mce.csv").is_file()
    assert (tmp_path / "report_data" / "corruption_curves.csv").is_file()
    # hostile tables: a formula where a name goes, text where a severity goes
    hostile = pair_copy / "original" / "1.0.0" / "results" / "corruptions.csv"
    hostile.write_text("Source,Corruption,Severity,Accuracy\ncomputed,=cmd|' /C calc'!A0,1,0.5\n"
                       "<script>alert(1)</script>,fog,1,0.4\n")
    data = build_report(tmp_path / "hostile.html", pair_copy, all_entries=True)
    assert "'=cmd" in (tmp_path / "hostile_data" / "corruption_curves.csv").read_text()  # defused for spreadsheets
    assert "<script>alert(1)</script>" not in (tmp_path / "hostile.html").read_text()
    hostile.write_text("Source,Corruption,Severity,Accuracy\ncomputed,fog,five,0.5\n")
    data = build_report(tmp_path / "garbage.html", pair_copy, all_entries=True)
    assert any("corruptions.csv has values that are not numbers in column Severity" in p for p in data.problems)
    assert set(data.corruptions["Model"]) == {"vgg16_gabor"} and set(data.mce["Model"]) == {"vgg16_gabor"}
