"""The report's single HTML file: inlined Vega libraries, chart specs, tables and image galleries.

Nothing in the page refers to the network: the Vega, Vega-Lite and vega-embed JavaScript comes
from vl-convert-python's bundle, data are inlined in the specs, and images are ``data:`` URIs.

Every string that comes from a zoo entry (names, labels, layer names, configs, CSV cells) is
hostile: it is HTML-escaped in the page and JSON-escaped inside the script. A
Content-Security-Policy ``<meta>`` allows only the page's own two scripts (by sha256), inline
styles and ``data:`` images: no other script, no eval and no request can run, whatever slipped
through.
"""
import base64
import hashlib
import html
import json
import re

import numpy as np

PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1400px; }
h1 { margin-bottom: 0; } h2 { margin-top: 36px; border-bottom: 1px solid #ddd; }
table.models { border-collapse: collapse; font-size: 13px; }
table.models th, table.models td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
table.models td.num { text-align: right; font-variant-numeric: tabular-nums; }
.problems { background: #fff4e5; border: 1px solid #f0b46b; padding: 8px 16px; }
.gallery { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.gallery figure { margin: 0; text-align: center; font-size: 12px; }
.gallery img { image-rendering: pixelated; border: 1px solid #ddd; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; font-size: 12px; }
.chart { margin: 8px 0 16px; }
"""


def slug(text):
    """An HTML id fragment for ``text``."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")


def png_data_uri(png_bytes):
    return "data:image/png;base64," + base64.b64encode(png_bytes).decode("ascii")


def kernel_png(kernel, min_size=64):
    """One kernel ``[h, w]`` as a grey PNG (0 is mid-grey), upscaled to at least ``min_size`` px."""
    import tensorflow as tf

    scale = float(np.max(np.abs(kernel))) or 1.0
    grey = np.clip(127.5 + 127.5 * kernel / scale, 0, 255).round().astype(np.uint8)
    factor = max(1, -(-min_size // max(kernel.shape)))
    grey = np.repeat(np.repeat(grey, factor, axis=0), factor, axis=1)
    return tf.io.encode_png(grey[..., None]).numpy()


def _cell(value):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "<td>-</td>"
    if isinstance(value, (float, np.floating)):
        return f'<td class="num">{value:.4f}</td>'
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f'<td class="num">{value:,}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def models_table_html(models):
    """The model table; each row links to the entry's operative config further down the page."""
    columns = ["Name", "Version", "Model", "Convolution", "Base", "Bottleneck", "Recurrence", "Trial", "Trials",
               "CleanAccuracy", "TotalParams", "TrainableParams"]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "<th>config</th>"
    rows = []
    for _, row in models.iterrows():
        cells = "".join(_cell(row.get(c)) for c in columns)
        if row["Name"] == "published":  # results of the original code: no entry, no config
            link = f"<td>{html.escape(str(row.get('Entry') or ''))}</td>"
        else:
            link = f'<td><a href="#config-{slug(row["Name"] + "-" + row["Version"])}">operative config</a></td>'
        rows.append(f"<tr>{cells}{link}</tr>")
    return f'<table class="models"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def auc_comparison_html(aucs):
    """bioflow's AUC beside the original's ``calc_aucs`` for the published models, with why they differ."""
    table = aucs.dropna(subset=["OriginalAUC"])
    mean = table.groupby(["Model", "Noise"], sort=False)[["AUC", "OriginalAUC"]].mean().reset_index()
    head = "".join(f"<th>{c}</th>" for c in ("Model", "Noise", "AUC (bioflow)", "AUC (original calc_aucs)", "ratio"))
    rows = "".join(f"<tr>{_cell(r['Model'])}{_cell(r['Noise'])}{_cell(r['AUC'])}{_cell(r['OriginalAUC'])}"
                   f"{_cell(r['OriginalAUC'] / r['AUC'] if r['AUC'] else None)}</tr>" for _, r in mean.iterrows())
    note = ("<p>bioflow's AUC integrates each model's accuracy against the levels sorted in increasing order "
            "(the trapezoid rule). The original's <code>utils.calc_aucs</code> paired trial 1's levels, in the "
            "order its file lists them, with the accuracies grouped and sorted by level: for a noise whose levels "
            "are listed in decreasing order (high pass, contrast, darken) the two curves differ, and so do the "
            "areas. Published AUC tables are the original's numbers.</p>")
    return f'{note}<table class="models"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def mce_table_html(mce):
    """The common-corruption summary per model: mean accuracy, mean CE, and mCE against the baseline."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ("model", "source", "trials", "mean accuracy", "mean CE",
                                                           "baseline", "mCE", "relative mCE"))
    rows = "".join("<tr>" + "".join(_cell(row[c]) for c in ("Model", "Source", "Trials", "MeanAccuracy", "MeanCE",
                                                            "Baseline", "mCE", "RelativeMCE")) + "</tr>"
                   for _, row in mce.iterrows())
    note = ("<p>CE per corruption is the mean error over its severities; mCE divides each corruption's summed "
            "errors by the baseline's (the reference model of the same base: CIFAR has no AlexNet) and "
            "averages; relative mCE does the same with the errors above each model's clean error "
            "(docs/evaluation.md).</p>")
    return f'{note}<table class="models"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def config_sections(entries, configs):
    """One collapsible ``<details>`` per entry holding its operative config."""
    out = []
    for entry in entries:
        anchor = slug(entry.card["name"] + "-" + entry.card["version"])
        text = configs.get(entry.spec) or "(this entry has no operative_config.gin)"
        out.append(f'<details id="config-{anchor}"><summary>{html.escape(entry.spec)}</summary>'
                   f"<pre>{html.escape(text)}</pre></details>")
    return "\n".join(out)


def kernel_gallery(entry_kernels):
    """``{entry spec: {layer: kernels [k, h, w]}}`` → figures, one per kernel."""
    parts = []
    for spec, layers in entry_kernels.items():
        for layer, kernels in layers.items():
            figures = "".join(f'<figure><img alt="{html.escape(spec)} {html.escape(layer)} kernel {i}" '
                              f'src="{png_data_uri(kernel_png(k))}"><figcaption>{i}</figcaption></figure>'
                              for i, k in enumerate(kernels))
            parts.append(f"<h3>{html.escape(spec)}: {html.escape(layer)} ({len(kernels)} kernels)</h3>"
                         f'<div class="gallery">{figures}</div>')
    return "\n".join(parts) or "<p>No entry has a fixed filter bank (all use a learned first convolution).</p>"


def example_gallery(entry_images):
    """``{entry spec: {noise: PNG bytes}}`` → a gallery per entry (levels across, images down)."""
    parts = []
    for spec, images in entry_images.items():
        if not images:
            continue
        figures = "".join(f'<figure><img alt="{html.escape(spec)} {html.escape(noise)}" src="{png_data_uri(png)}">'
                          f"<figcaption>{html.escape(noise)}</figcaption></figure>" for noise, png in images.items())
        parts.append(f'<h3>{html.escape(spec)}</h3><div class="gallery">{figures}</div>')
    return "\n".join(parts) or ("<p>No entry saved perturbed examples (evaluate with <code>--save-images</code>).</p>")


def explain_gallery(entry_images):
    """``{entry spec: {picture: PNG bytes}}`` → the models' Grad-CAM and occlusion pictures side by side."""
    columns = []
    for spec, images in entry_images.items():
        if images:
            figures = "".join(f'<figure><img alt="{html.escape(spec)} {html.escape(name)}" src="{png_data_uri(png)}">'
                              f"<figcaption>{html.escape(name)}</figcaption></figure>" for name, png in images.items())
            columns.append(f'<div class="explain-model"><h3>{html.escape(spec)}</h3>{figures}</div>')
    return ('<p>Grad-CAM columns: image, heat map of the predicted class, of the true class (clean, then under '
            'the chosen noise). Occlusion: image, drop in the true class\'s probability per patch.</p>'
            f'<div class="gallery explain">{"".join(columns)}</div>')


_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _script_json(obj):
    """JSON safe inside a ``<script>`` element: no ``<``, ``>`` or ``&`` survives unescaped."""
    return re.sub("[<>&\u2028\u2029]", lambda m: _SCRIPT_ESCAPES[m.group()], json.dumps(obj))


def _csp(*scripts):
    """A Content-Security-Policy that allows exactly ``scripts`` (by hash), inline styles and data: images."""
    hashes = " ".join("'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
                      for s in scripts)
    return (f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; img-src data:; "
            "base-uri 'none'; form-action 'none'")


def render(title, subtitle, sections, specs, problems, javascript):
    """The whole page. ``sections`` are ``(id, heading, html)``; ``specs`` map chart ids to Vega-Lite."""
    problem_html = ""
    if problems:
        items = "".join(f"<li>{html.escape(p)}</li>" for p in problems)
        problem_html = f'<div class="problems" id="problems"><strong>Not shown:</strong><ul>{items}</ul></div>'
    body = "\n".join(f'<section id="{sid}"><h2>{html.escape(heading)}</h2>\n{content}</section>'
                     for sid, heading, content in sections)
    embed = ("const specs = " + _script_json(specs) + ";\n"
             "window.bioflowViews = {};\n"
             "for (const [id, spec] of Object.entries(specs)) {\n"
             "  // ast: Vega interprets its expressions instead of compiling them, so the CSP needs no eval\n"
             "  window.vegaEmbed('#' + id, spec, {renderer: 'svg', actions: false, ast: true})\n"
             "    .then((result) => { window.bioflowViews[id] = result.view; })\n"
             "    .catch((err) => console.error('chart ' + id + ': ' + err));\n"
             "}\n")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{_csp(javascript, embed)}">\n'
            f"<title>{html.escape(title)}</title>\n"
            f"<style>{PAGE_STYLE}</style>\n"
            f'<script type="module">{javascript}</script>\n'
            f'<script type="module">{embed}</script>\n'
            f"</head><body>\n<h1>{html.escape(title)}</h1>\n<p>{html.escape(subtitle)}</p>\n{problem_html}\n{body}\n"
            "</body></html>\n")
