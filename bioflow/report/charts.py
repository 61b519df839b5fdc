"""Altair charts of a report, one function per chart, each fed by one tidy table.

Colour is the filter bank (``Convolution``), stroke dash the base network. A click on the
``Model`` legend highlights that model in the perturbation curves.
"""
import altair as alt
import pandas as pd

from bioflow.learning_curves import learning_curves
from bioflow.report.collect import CHANCE

#: Noises whose level axis is logarithmic, and those whose axis runs from high to low.
LOG_LEVELS = ("high_pass", "low_pass", "contrast")
REVERSED_LEVELS = ("high_pass", "contrast", "darken")
WIDTH, HEIGHT = 220, 160


def _colour():
    return alt.Color("Convolution:N", title="filter bank", scale=alt.Scale(scheme="category10"),
                     legend=alt.Legend(symbolOpacity=1))


def _dash():
    return alt.StrokeDash("Base:N", title="base")


def perturbation_chart(curves):
    """Accuracy against level, one panel per noise: mean over trials, 95% band, chance line."""
    if curves.empty:
        return None
    highlight = alt.selection_point(fields=["Model"], bind="legend", name="model")
    panels = []
    for noise in curves["Noise"].drop_duplicates():
        data = curves[curves["Noise"] == noise]
        log = noise in LOG_LEVELS
        if log:
            data = data[data["Level"] > 0]  # a log axis cannot show level 0
        x = alt.X("Level:Q", title=f"{noise} level",
                  scale=alt.Scale(type="log" if log else "linear", reverse=noise in REVERSED_LEVELS, nice=False))
        base = alt.Chart(data).encode(x=x)
        tooltip = ["Model:N", "Convolution:N", "Base:N", alt.Tooltip("Level:Q", format=".4g"),
                   alt.Tooltip("Accuracy:Q", format=".3f"), alt.Tooltip("Lower:Q", format=".3f"),
                   alt.Tooltip("Upper:Q", format=".3f"), "Trials:Q"]
        opacity = alt.condition(highlight, alt.value(1.0), alt.value(0.15))
        y = alt.Y("Accuracy:Q", title="accuracy", scale=alt.Scale(domain=[0, 1]))
        band = base.mark_area(opacity=0.2).encode(y=alt.Y("Lower:Q", title="accuracy"), y2="Upper:Q",
                                                   color=_colour(), detail="Model:N")
        line = base.mark_line().encode(y=y, color=_colour(), strokeDash=_dash(), detail="Model:N", opacity=opacity)
        # Points carry the model legend: Vega-Lite binds legend clicks on a point layer, not on a line.
        points = base.mark_point(filled=True, size=30).encode(
            y=y, color=_colour(), shape=alt.Shape("Model:N", title="model (click to highlight)"), opacity=opacity,
            tooltip=tooltip)
        if not panels:
            points = points.add_params(highlight)
        chance = alt.Chart(pd.DataFrame({"chance": [CHANCE]})).mark_rule(color="grey", strokeDash=[2, 2]).encode(
            y="chance:Q", tooltip=alt.Tooltip("chance:Q", title="chance"))
        panels.append(alt.layer(band, line, points, chance).properties(title=noise, width=WIDTH, height=HEIGHT))
    return alt.concat(*panels, columns=4)


def auc_heatmap(aucs):
    """Mean AUC per model and noise as a heat-map table; colour is the AUC relative to the best model."""
    if aucs.empty:
        return None
    mean = aucs.groupby(["Model", "Noise"], sort=False)["AUC"].mean().reset_index()
    mean["Relative"] = mean["AUC"] / mean.groupby("Noise")["AUC"].transform("max")
    base = alt.Chart(mean).encode(x=alt.X("Noise:N", title=None, sort=None), y=alt.Y("Model:N", title=None))
    cells = base.mark_rect().encode(
        color=alt.Color("Relative:Q", title="AUC / best", scale=alt.Scale(scheme="viridis", domain=[0, 1])),
        tooltip=["Model:N", "Noise:N", alt.Tooltip("AUC:Q", format=".4g"), alt.Tooltip("Relative:Q", format=".2f")])
    text = base.mark_text(fontSize=10).encode(
        text=alt.Text("AUC:Q", format=".3g"),
        color=alt.condition(alt.datum.Relative > 0.5, alt.value("black"), alt.value("white")))
    return alt.layer(cells, text).properties(width=alt.Step(70), height=alt.Step(24), title="AUC per noise")


def auc_ratio_bars(ratios):
    """AUC ratio to the reference model, per noise, with the 1.0 line."""
    if ratios.empty:
        return None
    bars = alt.Chart().mark_bar().encode(
        x=alt.X("Model:N", title=None, axis=alt.Axis(labelAngle=-40)), y=alt.Y("Ratio:Q", title="AUC / reference"),
        color=_colour(),
        tooltip=["Model:N", "Noise:N", "ReferenceModel:N", alt.Tooltip("Ratio:Q", format=".3f"),
                 alt.Tooltip("AUC:Q", format=".4g"), alt.Tooltip("Reference:Q", format=".4g")])
    one = alt.Chart().mark_rule(color="black", strokeDash=[4, 3]).encode(y=alt.datum(1.0))
    return alt.layer(bars, one, data=ratios).properties(width=alt.Step(22), height=HEIGHT).facet(
        facet=alt.Facet("Noise:N", title=None, sort=None), columns=5)


def generalisation_chart(generalisation):
    """Accuracy per CIFAR-10G set, normal and inverted, with 95% error bars over trials."""
    if generalisation.empty:
        return None
    data = generalisation.assign(Images=generalisation["Inverted"].map({True: "inverted", False: "normal"}))
    base = alt.Chart().encode(x=alt.X("Type:N", title=None), xOffset="Model:N")
    bars = base.mark_bar().encode(
        y=alt.Y("Accuracy:Q", scale=alt.Scale(domain=[0, 1])), color=_colour(),
        tooltip=["Model:N", "Type:N", "Images:N", alt.Tooltip("Accuracy:Q", format=".3f"),
                 alt.Tooltip("Lower:Q", format=".3f"), alt.Tooltip("Upper:Q", format=".3f"), "Trials:Q"])
    errors = base.mark_errorbar(ticks=True).encode(y="Lower:Q", y2="Upper:Q")
    chance = alt.Chart().mark_rule(color="grey", strokeDash=[2, 2]).encode(y=alt.datum(CHANCE))
    return alt.layer(bars, errors, chance, data=data).properties(width=260, height=HEIGHT).facet(
        column=alt.Column("Images:N", title=None))


def explain_centre_mass(explain):
    """Grad-CAM centre mass against noise level, one panel per noise: where the network looks as noise grows."""
    if explain.empty:
        return None
    return alt.Chart(explain).mark_line(point=True).encode(
        x=alt.X("Level:Q"),
        y=alt.Y("CentreMass:Q", title="Grad-CAM mass in the centre", scale=alt.Scale(domain=[0, 1])),
        color=_colour(), strokeDash=_dash(), detail="Model:N",
        tooltip=["Model:N", "Noise:N", "Level:Q", alt.Tooltip("CentreMass:Q", format=".3f")],
    ).properties(width=WIDTH, height=HEIGHT).facet(column=alt.Column("Noise:N", title=None)).resolve_scale(
        x="independent")


def adversarial_chart(curves):
    """Accuracy against ε, one panel per attack and norm: mean over trials, 95% band, chance line."""
    if curves.empty:
        return None
    panels = []
    for (attack, norm), data in curves.groupby(["Attack", "Norm"], sort=False):
        base = alt.Chart(data).encode(x=alt.X("Epsilon:Q", title=f"ε ({norm})"))
        y = alt.Y("Accuracy:Q", title="accuracy", scale=alt.Scale(domain=[0, 1]))
        band = base.mark_area(opacity=0.2).encode(y=alt.Y("Lower:Q", title="accuracy"), y2="Upper:Q",
                                                   color=_colour(), detail="Model:N")
        line = base.mark_line(point=True).encode(
            y=y, color=_colour(), strokeDash=_dash(), detail="Model:N",
            tooltip=["Model:N", alt.Tooltip("Epsilon:Q", format=".4g"), alt.Tooltip("Accuracy:Q", format=".3f"),
                     alt.Tooltip("Lower:Q", format=".3f"), alt.Tooltip("Upper:Q", format=".3f"), "Trials:Q"])
        chance = alt.Chart(pd.DataFrame({"chance": [CHANCE]})).mark_rule(color="grey", strokeDash=[2, 2]).encode(
            y="chance:Q")
        panels.append(alt.layer(band, line, chance).properties(title=f"{str(attack).upper()} in {norm}", width=WIDTH,
                                                               height=HEIGHT))
    return alt.concat(*panels, columns=4)


def masking_chart(checks):
    """Each model's gradient-masking checks: a cell per check, red where any trial failed it."""
    if checks.empty:
        return None
    table = checks.groupby(["Model", "Check"], sort=False).agg(
        Passed=("Passed", "all"), Detail=("Detail", lambda d: "; ".join(sorted(set(d))))).reset_index()
    table["Result"] = table["Passed"].map({True: "passed", False: "FAILED"})
    base = alt.Chart(table).encode(x=alt.X("Check:N", title=None, sort=None), y=alt.Y("Model:N", title=None))
    cells = base.mark_rect().encode(
        color=alt.Color("Result:N", title="check", scale=alt.Scale(domain=["passed", "FAILED"],
                                                                   range=["#4c9a2a", "#d62728"])),
        tooltip=["Model:N", "Check:N", "Result:N", "Detail:N"])
    text = base.mark_text(fontSize=10, color="white").encode(text="Result:N")
    return alt.layer(cells, text).properties(width=alt.Step(150), height=alt.Step(24),
                                             title="Gradient-masking checks (Carlini et al. 2019)")


def step_chart(steps):
    """Accuracy against the recurrent block's time step, one panel per condition (clean, each noise over
    its levels, CIFAR-10G): does robustness improve with more steps?"""
    if steps.empty:
        return None
    base = alt.Chart(steps).encode(x=alt.X("Step:O", title="time step"))
    band = base.mark_errorbar(ticks=True).encode(y=alt.Y("Lower:Q", title="accuracy"), y2="Upper:Q", color=_colour())
    line = base.mark_line(point=True).encode(
        y=alt.Y("Accuracy:Q", title="accuracy", scale=alt.Scale(domain=[0, 1])), color=_colour(),
        strokeDash=_dash(), detail="Model:N",
        tooltip=["Model:N", "Condition:N", "Step:O", alt.Tooltip("Accuracy:Q", format=".3f"),
                 alt.Tooltip("Lower:Q", format=".3f"), alt.Tooltip("Upper:Q", format=".3f"), "Trials:Q"])
    return alt.layer(band, line).properties(width=160, height=HEIGHT).facet(
        facet=alt.Facet("Condition:N", title=None, sort=None), columns=6)


def corruption_chart(curves):
    """Error against severity, one panel per corruption: models side by side, 95% bars over trials."""
    if curves.empty:
        return None
    base = alt.Chart(curves).encode(x=alt.X("Severity:O", title="severity"))
    bars = base.mark_errorbar(ticks=True).encode(y=alt.Y("ErrorLower:Q", title="error"), y2="ErrorUpper:Q",
                                                 color=_colour())
    line = base.mark_line(point=True).encode(
        y=alt.Y("Error:Q", title="error (1 − accuracy)", scale=alt.Scale(domain=[0, 1])), color=_colour(),
        strokeDash=_dash(), detail="Model:N",
        tooltip=["Model:N", "Source:N", "Corruption:N", "Severity:O", alt.Tooltip("Error:Q", format=".3f"),
                 "Trials:Q"])
    return alt.layer(bars, line).properties(width=140, height=HEIGHT).facet(
        facet=alt.Facet("Corruption:N", title=None, sort=None), columns=6)


CHARTS = (
    ("perturbation", "Perturbation curves", perturbation_chart, "curves"),
    ("auc_heatmap", "Robustness: AUC per noise", auc_heatmap, "aucs"),
    ("auc_ratio", "Robustness: AUC ratio to the reference", auc_ratio_bars, "ratios"),
    ("generalisation", "Generalisation to CIFAR-10G", generalisation_chart, "generalisation"),
    ("learning_curves", "Learning curves", learning_curves, "history"),
    ("explain", "Explain: Grad-CAM centre mass against noise level", explain_centre_mass, "explain"),
    ("adversarial", "Adversarial: accuracy against ε", adversarial_chart, "adversarial"),
    ("masking", "Adversarial: gradient-masking checks", masking_chart, "masking_checks"),
    ("steps", "Robustness against time step", step_chart, "steps"),
    ("corruptions", "Common corruptions: error per corruption and severity", corruption_chart, "corruptions"),
)
#: Charts of data that only some reports have (``bioflow explain``, ``--attacks``, a readout at every step,
#: ``--corruptions``):
#: not a problem when absent.
OPTIONAL_CHARTS = ("explain", "adversarial", "masking", "steps", "corruptions")
