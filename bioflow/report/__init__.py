"""Robustness dashboards: zoo entries → one offline HTML file (``bioflow report``).

``collect`` builds the tidy tables, ``charts`` the Altair charts, ``page`` the HTML. The data of
every chart is also written as CSV beside the HTML, and optionally every chart as PNG.
"""
import datetime
import html
import pathlib
import tempfile

import altair as alt
import pandas as pd

from bioflow.io import atomic_write, replace_dir
from bioflow.report import charts, collect as collect_lib, page

#: What a spreadsheet reads as a formula at the start of a cell (OWASP's CSV injection rule).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
DATA_NOTE = ("In the CSV tables beside this page, a text cell that begins with =, +, -, @, a tab or a carriage "
             "return starts with ' instead, so that a spreadsheet shows it rather than running it.")


def spreadsheet_safe(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with every text cell that a spreadsheet would run as a formula prefixed with ``'``."""
    def neutral(value):
        return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value

    out = table.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(neutral)
    return out


def data_dir_of(out):
    """The folder beside the HTML file ``out`` that holds its CSV tables: ``<stem>_data/``."""
    out = pathlib.Path(out)
    return out.parent / f"{out.stem}_data"


def _chart_specs(data):
    """``{chart id: (heading, Vega-Lite dict)}`` of the charts that have data."""
    specs = {}
    with alt.data_transformers.disable_max_rows():
        for cid, heading, build, table in charts.CHARTS:
            chart = build(getattr(data, table))
            if chart is not None:
                specs[cid] = (heading, chart.to_dict())
    return specs


def build_report(out, zoo_root=None, specs=(), label=None, all_entries=False, reference=None, png_dir=None,
                 published=(), renames=None):
    """Write the report of the chosen zoo entries to ``out`` (HTML); returns the :class:`ReportData`.

    Beside ``out``, ``<stem>_data/`` receives one CSV per table. ``png_dir`` also receives every
    chart as PNG. Entries that lack results are named in the page and in the return value's
    ``problems``; the rest still renders. ``published`` folders add the original code's CSV results
    (:mod:`bioflow.bionet_layout`), with ``renames`` of their model names.
    """
    import vl_convert

    from bioflow.zoo.local import refuse_inside_entry

    out = pathlib.Path(out)
    refuse_inside_entry(out, "report --out")
    data = collect_lib.collect(zoo_root, specs, label, all_entries, reference, published, renames)
    chart_specs = _chart_specs(data)
    problems = list(data.problems)
    for cid, heading, _, _ in charts.CHARTS:
        if cid not in chart_specs and cid not in charts.OPTIONAL_CHARTS:
            problems.append(f"{heading}: no entry has the data for this chart.")

    kernels = {}
    for entry in data.entries:
        bank = collect_lib.kernels(entry, problems)
        if bank:
            kernels[entry.spec] = bank
    first_per_model = {}
    for entry in data.entries:
        first_per_model.setdefault(entry.model, entry)
    examples = {e.spec: collect_lib.example_images(e) for e in first_per_model.values()}
    explained = {e.spec: collect_lib.explain_images(e) for e in first_per_model.values()}
    configs = {e.spec: collect_lib.operative_config(e) for e in data.entries}

    sections = [("models", "Models", page.models_table_html(data.models))]
    for cid, (heading, _) in chart_specs.items():
        note = ""
        if cid == "auc_ratio" and data.reference:
            note = ("<p>Reference per base: " + html.escape(", ".join(f"{b}: {r}" for b, r in data.reference.items()))
                    + ".</p>")
        sections.append((f"section-{cid}", heading, f'{note}<div class="chart" id="{cid}"></div>'))
    if not data.mce.empty:
        sections.append(("mce", "Common corruptions: mCE", page.mce_table_html(data.mce)))
    if "OriginalAUC" in data.aucs and data.aucs["OriginalAUC"].notna().any():
        sections.append(("auc-original", "AUC: bioflow's and the original's", page.auc_comparison_html(data.aucs)))
    if any(explained.values()):
        sections.append(("explain-pictures", "Explain: Grad-CAM and occlusion", page.explain_gallery(explained)))
    sections += [("kernels", "Filter-bank kernels", page.kernel_gallery(kernels)),
                 ("examples", "Perturbed examples", page.example_gallery(examples)),
                 ("configs", "Operative configs", page.config_sections(data.entries, configs))]
    entries = ", ".join(e.spec for e in data.entries)
    shown = f"{len(data.entries)} zoo entries ({entries})" if data.entries else "no zoo entries"
    if published:
        shown += "; published results of " + ", ".join(str(p) for p in published)
    subtitle = (f"{shown}; made "
                f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC. "
                f"Chance accuracy is {collect_lib.CHANCE}. {DATA_NOTE}")
    document = page.render("bioflow robustness report", subtitle, sections,
                       {cid: spec for cid, (_, spec) in chart_specs.items()}, problems,
                       vl_convert.javascript_bundle())
    data.problems = problems

    data_dir = data_dir_of(out)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=data_dir.parent, prefix=f".{data_dir.name}.") as tmp:
        staged = pathlib.Path(tmp) / data_dir.name  # the tables appear whole or not at all (a full disk)
        for name, table in data.tables().items():
            atomic_write(staged / f"{name}.csv", spreadsheet_safe(table).to_csv(index=False))
        replace_dir(staged, data_dir)
    if png_dir is not None:
        png_dir = pathlib.Path(png_dir)
        for cid, (_, spec) in chart_specs.items():
            atomic_write(png_dir / f"{cid}.png", vl_convert.vegalite_to_png(spec, scale=2))
    atomic_write(out, document)
    return data
