"""Zoo entries → the tidy tables behind every chart of a report.

Each entry is one trained run (one trial). Entries with the same experiment label and network
(``card["run"]["label"]``, ``card["run"]["model"]``) are trials of one *model*; the report shows
their mean with a 95% confidence band. Everything that is missing (an entry without results, a
history or a filter bank) is recorded in ``problems`` and left out, and the rest still renders.
"""
import dataclasses
import json
import pathlib

import numpy as np
import pandas as pd

from bioflow import bionet_layout, metrics
from bioflow.data.sources import CIFAR10_CLASSES
from bioflow.errors import BioflowError, choices
from bioflow.zoo import Zoo

CHANCE = 0.1


@dataclasses.dataclass
class Entry:
    """One selected zoo entry: its card, folder and the report's model name."""

    card: dict
    folder: pathlib.Path
    model: str = ""

    @property
    def spec(self):
        return f"{self.card['name']}@{self.card['version']}"


@dataclasses.dataclass
class ReportData:
    """The tidy tables of a report (one per chart) and what could not be shown."""

    entries: list
    models: pd.DataFrame
    perturbation: pd.DataFrame
    curves: pd.DataFrame
    aucs: pd.DataFrame
    ratios: pd.DataFrame
    generalisation: pd.DataFrame
    history: pd.DataFrame
    problems: list
    reference: dict
    explain: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    adversarial: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    masking_checks: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    steps: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    corruptions: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    mce: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)

    def tables(self):
        """``{file stem: table}`` of the data saved beside the HTML."""
        return dict(models=self.models, perturbation=self.perturbation, perturbation_curves=self.curves,
                    auc=self.aucs, auc_ratio=self.ratios, generalisation=self.generalisation, history=self.history,
                    explain_centre_mass=self.explain, adversarial_curves=self.adversarial,
                    masking_checks=self.masking_checks, step_curves=self.steps, corruption_curves=self.corruptions,
                    mce=self.mce)


def select(zoo, specs=(), label=None, all_entries=False, problems=None):
    """The entries named by ``specs``, or with run label ``label``, or the latest of every name.

    With ``label`` alone, every trial counts: of each name, the latest version of each trial (a sweep
    publishes one version per trial). An entry whose card cannot be read is skipped and named in
    ``problems``.
    """
    if not (specs or label or all_entries):
        raise BioflowError("Choose the entries to report: NAME[@VERSION]…, --label LABEL or --all.")
    if specs:
        pairs = [zoo.resolve(s) for s in specs]
    elif label is not None:
        pairs = [(n, v) for n in zoo.names() for v in zoo.versions(n)]
    else:
        pairs = [(n, zoo.versions(n)[-1]) for n in zoo.names()]
    entries = []
    for n, v in dict.fromkeys(pairs):
        try:
            entries.append(Entry(zoo.card(f"{n}@{v}"), zoo.path(n, v)))
        except BioflowError as err:
            (problems if problems is not None else []).append(f"{n}@{v} is skipped: {err}")
    if label is not None:
        labels = sorted({str(e.card.get("run", {}).get("label")) for e in entries})
        entries = [e for e in entries if e.card.get("run", {}).get("label") == label]
        if not entries:
            raise BioflowError(f"No entry in the zoo at {zoo.root} has the label {label!r}; labels are "
                               f"{choices(labels) if labels else 'none (the zoo is empty)'}.")
        if not specs:  # a trial published again (a retrained run): its latest version
            entries = list({(e.card["name"], e.card.get("run", {}).get("trial")): e for e in entries}.values())
    if not entries:
        raise BioflowError(f"The zoo at {zoo.root} has no entries to report.")
    labels = {e.card.get("run", {}).get("label") for e in entries}
    for e in entries:
        run = e.card.get("run", {})
        e.model = run.get("model") or e.card["name"]
        if len(labels) > 1:
            e.model = f"{run.get('label')}/{e.model}"
    return entries


def _meta(entry):
    arch = entry.card.get("architecture", {})
    return dict(Model=entry.model, Entry=entry.spec, Convolution=arch.get("convolution"), Base=arch.get("base"),
                Trial=entry.card.get("run", {}).get("trial"))


#: The Grad-CAM table that ``bioflow explain`` writes (optional: only explained entries have it).
EXPLAIN_TABLE = "results/explain/gradcam.csv"
#: The attacks' table of ``bioflow evaluate --attacks`` (optional: only attacked entries have it).
ADVERSARIAL_TABLE = "results/adversarial.csv"
#: Each condition's accuracy per time step (optional: networks read out at every step only).
STEPS_TABLE = "results/steps.csv"
#: Common corruptions' accuracy per corruption and severity (optional: ``--corruptions``).
CORRUPTIONS_TABLE = "results/corruptions.csv"
#: ``file: (required columns, numeric columns)`` of the tables a report reads from an entry.
TABLE_COLUMNS = {
    "results/perturbation.csv": (("Noise", "LI", "Level", "Accuracy"), ("LI", "Level", "Accuracy")),
    "results/generalisation.csv": (("Type", "Inverted", "Accuracy"), ("Accuracy",)),
    "history.csv": (("epoch", "loss", "accuracy", "val_loss", "val_accuracy"),
                    ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")),
    EXPLAIN_TABLE: (("Noise", "Level", "Target", "CentreMass"), ("Level",)),
    ADVERSARIAL_TABLE: (("Attack", "Norm", "Epsilon", "Accuracy"), ("Epsilon", "Accuracy")),
    STEPS_TABLE: (("Set", "Noise", "Level", "Step", "Accuracy"), ("Level", "Step", "Accuracy")),
    CORRUPTIONS_TABLE: (("Source", "Corruption", "Severity", "Accuracy"), ("Severity", "Accuracy")),
}


def _read_csv(entry, rel, problems, why):
    """An entry's table, or None with the reason in ``problems`` (missing, empty or garbage)."""
    path = entry.folder / rel
    if not path.is_file() or path.is_symlink():
        problems.append(f"{entry.spec}: no {rel}, so {why}.")
        return None
    try:
        table = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        problems.append(f"{entry.spec}: {rel} is not a readable table ({type(err).__name__}), so {why}.")
        return None
    if table.empty:
        problems.append(f"{entry.spec}: {rel} is empty, so {why}.")
        return None
    required, numeric = TABLE_COLUMNS[rel]
    missing = [c for c in required if c not in table.columns]
    if missing:
        problems.append(f"{entry.spec}: {rel} lacks the columns {', '.join(missing)}, so {why}.")
        return None
    for column in numeric:
        values = pd.to_numeric(table[column], errors="coerce")
        if values.isna().any():
            problems.append(f"{entry.spec}: {rel} has values that are not numbers in column {column}, so {why}.")
            return None
        table[column] = values
    return table


def models_table(entries):
    """One row per entry: the model table at the top of the report."""
    counts = pd.Series([e.model for e in entries]).value_counts()
    rows = []
    for e in entries:
        arch, card = e.card.get("architecture", {}), e.card
        m = card.get("metrics") or {}
        rows.append(dict(_meta(e), Name=card["name"], Version=card["version"], Bottleneck=arch.get("bottleneck"),
                         Recurrence=arch.get("recurrence"), Trials=int(counts[e.model]),
                         CleanAccuracy=m.get("clean_accuracy"),
                         TotalParams=card.get("parameters", {}).get("total_params"),
                         TrainableParams=card.get("parameters", {}).get("trainable_params")))
    return pd.DataFrame(rows)


def _mean_over_trials(table, keys):
    """Mean ``Accuracy`` per ``keys`` with a 95% Student-t interval (clipped to [0, 1]) and the trial count."""
    rows = []
    for key, group in table.groupby(keys, sort=False, dropna=False):
        mean, half = metrics.mean_ci(group["Accuracy"])
        rows.append(dict(zip(keys, key), Accuracy=mean, Lower=max(0.0, mean - half), Upper=min(1.0, mean + half),
                         Trials=len(group)))
    return pd.DataFrame(rows, columns=keys + ["Accuracy", "Lower", "Upper", "Trials"])


def curves_table(perturbation):
    """Mean accuracy over trials with a 95% confidence band, per model, noise and level."""
    return _mean_over_trials(perturbation, ["Model", "Convolution", "Base", "Noise", "LI", "Level"])


def default_reference(models, reference=None):
    """``{base: reference model}``: ``reference`` for every base, else each base's ``original`` model."""
    if reference is not None:
        by_entry = dict(zip(models["Name"], models["Model"]))
        name = by_entry.get(reference, reference)
        if name not in set(models["Model"]):
            raise BioflowError(f"Reference {reference!r} is not among the reported models "
                               f"({choices(set(models['Model']))}) or entry names ({choices(set(models['Name']))}).")
        return {base: name for base in models["Base"].unique()}
    refs = {}
    for base, group in models.groupby("Base", dropna=False):
        originals = sorted(set(group.loc[group["Convolution"] == "original", "Model"]))
        if originals:
            refs[base] = originals[0]
    return refs


def auc_ratios(aucs, models, refs):
    """AUC ratio of every model to the reference of its base, per noise."""
    frames = []
    base_of = dict(zip(models["Model"], models["Base"]))
    for base, ref in refs.items():
        members = {m for m, b in base_of.items() if b == base}
        subset = aucs[aucs["Model"].isin(members)]
        if subset.empty or ref not in set(subset["Model"]):
            continue
        ratio = metrics.ratio_to_reference(subset, ref)
        ratio.insert(1, "Reference", ratio.pop("Reference"))
        ratio["ReferenceModel"] = ref
        ratio["Base"] = base
        frames.append(ratio)
    columns = ["Model", "Convolution", "Base", "Noise", "AUC", "Reference", "Ratio", "ReferenceModel"]
    if not frames:
        return pd.DataFrame(columns=columns)
    out = pd.concat(frames, ignore_index=True)
    out["Convolution"] = out["Model"].map(dict(zip(models["Model"], models["Convolution"])))
    return out[columns]


def generalisation_table(generalisation):
    """Mean CIFAR-10G accuracy with a 95% interval over trials, per model, set type and inversion."""
    return _mean_over_trials(generalisation, ["Model", "Convolution", "Base", "Type", "Inverted"])


def collect(zoo_root=None, specs=(), label=None, all_entries=False, reference=None, published=(), renames=None):
    """Select entries and build every table of the report (:class:`ReportData`).

    ``published`` folders add the results the original code published (:mod:`bioflow.bionet_layout`)
    as models of their own, marked ``published`` in the model table; ``renames`` maps their names.
    """
    zoo = Zoo(zoo_root)
    problems = []
    entries = select(zoo, specs, label, all_entries, problems) if (specs or label or all_entries or not published) \
        else []
    pert, gen, hist, explained, attacked, checks, stepped, corrupted = [], [], [], [], [], [], [], []
    for e in entries:
        meta = _meta(e)
        if (e.folder / CORRUPTIONS_TABLE).exists():  # entries evaluated with --corruptions only
            table = _read_csv(e, CORRUPTIONS_TABLE, problems, "its common corruptions are not shown")
            if table is not None:
                corrupted.append(table.drop(columns=[c for c in meta if c in table]).assign(**meta))
        if (e.folder / STEPS_TABLE).exists():  # networks read out at every step only
            table = _read_csv(e, STEPS_TABLE, problems, "its robustness against time step is not shown")
            if table is not None:
                stepped.append(table.drop(columns=[c for c in meta if c in table]).assign(**meta))
        if (e.folder / ADVERSARIAL_TABLE).exists():  # attacked entries only
            table = _read_csv(e, ADVERSARIAL_TABLE, problems, "its adversarial curves are not shown")
            if table is not None:
                attacked.append(table.drop(columns=[c for c in meta if c in table]).assign(**meta))
                checks += _masking_checks(e, meta, problems)
        table = _read_csv(e, "results/perturbation.csv", problems, "it has no perturbation curves or AUCs")
        if table is not None:
            table = table[table["Set"] == "test"] if "Set" in table else table
            pert.append(table.drop(columns=[c for c in meta if c in table]).assign(**meta))
        if tuple(e.card.get("data", {}).get("classes", ())) == CIFAR10_CLASSES:
            table = _read_csv(e, "results/generalisation.csv", problems, "it has no CIFAR-10G bars (evaluate "
                              "it with --cifar10g)")
        else:
            table = None
            problems.append(f"{e.spec}: trained on {e.card.get('data', {}).get('dataset')!r}, not the CIFAR-10 "
                            "classes, so it has no CIFAR-10G results.")
        if table is not None:
            gen.append(table.drop(columns=[c for c in meta if c in table]).assign(**meta))
        table = _read_csv(e, "history.csv", problems, "it has no learning curves")
        if table is not None:
            hist.append(table.assign(**meta))
        if (e.folder / EXPLAIN_TABLE).exists():  # explained entries only
            table = _read_csv(e, EXPLAIN_TABLE, problems, "its Grad-CAM centre mass is not shown")
            if table is not None:
                explained.append(table.drop(columns=[c for c in meta if c in table]).assign(**meta))
    models = models_table(entries)
    original_aucs = pd.DataFrame(columns=["Model", "Noise", "OriginalAUC"])
    if published:
        found = bionet_layout.read(published, renames)
        problems += found.problems
        pert.append(found.perturbation[found.perturbation["Set"] == "test"])
        gen.append(found.generalisation)
        hist.append(found.history)
        models = pd.concat([models, pd.DataFrame([dict(row, Name="published", Version="", Entry=row["Source"])
                                                  for row in found.models])], ignore_index=True)
        original_aucs = bionet_layout.original_aucs(found.perturbation)
    pert, gen, hist = ([t for t in tables if not t.empty] for tables in (pert, gen, hist))
    perturbation = pd.concat(pert, ignore_index=True) if pert else pd.DataFrame(
        columns=["Model", "Entry", "Convolution", "Base", "Trial", "Noise", "LI", "Level", "Accuracy"])
    aucs = metrics.auc_table(perturbation) if not perturbation.empty else pd.DataFrame(
        columns=["Model", "Trial", "Noise", "AUC"])
    if not original_aucs.empty:  # the original's calc_aucs beside bioflow's, for the published models
        aucs = aucs.merge(original_aucs, on=["Model", "Noise"], how="left")
    refs = default_reference(models, reference)
    missing = sorted(set(models["Base"].dropna()) - set(refs))
    if missing and not perturbation.empty:
        problems.append(f"No reference model for base {', '.join(map(str, missing))} (no 'original' model among "
                        "the entries, and no --reference), so its AUC ratios are not shown.")
    for base, ref in refs.items():
        if not perturbation.empty and ref not in set(aucs["Model"]):
            problems.append(f"The reference model {ref} (base {base}) has no perturbation results, so the AUC "
                            "ratios of that base are not shown.")
    ratios = auc_ratios(aucs, models, refs)
    generalisation = pd.concat(gen, ignore_index=True) if gen else pd.DataFrame(
        columns=["Model", "Convolution", "Base", "Type", "Inverted", "Accuracy"])
    history = pd.concat(hist, ignore_index=True) if hist else pd.DataFrame(columns=["Model", "Entry", "epoch"])
    return ReportData(entries=entries, models=models, perturbation=perturbation,
                      curves=curves_table(perturbation), aucs=aucs, ratios=ratios,
                      generalisation=generalisation_table(generalisation), history=history, problems=problems,
                      reference=refs, explain=centre_mass_table(explained), adversarial=adversarial_table(attacked),
                      masking_checks=pd.DataFrame(checks, columns=MASKING_COLUMNS), steps=step_curves(stepped),
                      corruptions=corruption_curves(corrupted), mce=mce_table(corrupted, models, refs, problems))


#: The columns of the report's masking-check table: one row per entry and check.
MASKING_COLUMNS = ["Model", "Entry", "Convolution", "Base", "Trial", "Check", "Passed", "Detail"]


def _masking_checks(entry, meta, problems):
    """The gradient-masking checks an entry's evaluation recorded (``robustness.json``), one row each."""
    try:
        summary = json.loads((entry.folder / "results" / "robustness.json").read_text())
        records = summary["adversarial"]["checks"]
        rows = [dict(meta, Check=str(c["name"]), Passed=bool(c["passed"]), Detail=str(c["detail"])[:300])
                for c in records]
    except (OSError, ValueError, KeyError, TypeError):
        problems.append(f"{entry.spec}: results/robustness.json records no gradient-masking checks, so they are "
                        "not shown.")
        return []
    return rows


def adversarial_table(tables):
    """Mean accuracy over trials with a 95% band, per model, attack, norm and ε."""
    if not tables:
        return pd.DataFrame(columns=["Model", "Convolution", "Base", "Attack", "Norm", "Epsilon", "Accuracy", "Lower",
                                     "Upper", "Trials"])
    table = pd.concat(tables, ignore_index=True)
    return _mean_over_trials(table, ["Model", "Convolution", "Base", "Attack", "Norm", "Epsilon"])


def step_curves(tables):
    """Accuracy against time step, per model and condition (mean over trials, 95% band): ``clean``; each
    noise, averaged over its levels; and ``CIFAR-10G``, averaged over its sets."""
    keys = ["Model", "Convolution", "Base", "Condition", "Step"]
    if not tables:
        return pd.DataFrame(columns=keys + ["Accuracy", "Lower", "Upper", "Trials"])
    table = pd.concat(tables, ignore_index=True)
    test = table["Set"] == "test"
    table["Condition"] = np.where(test, table["Noise"].astype(str), "CIFAR-10G")
    table = table[test | (table["Noise"] == "clean")]
    per_trial = (table.groupby(["Model", "Convolution", "Base", "Trial", "Condition", "Step"], sort=False,
                               dropna=False)["Accuracy"].mean().reset_index())
    return _mean_over_trials(per_trial, keys)


def corruption_curves(tables):
    """Error (1 − accuracy) per model, source, corruption and severity: mean over trials, 95% band."""
    keys = ["Model", "Convolution", "Base", "Source", "Corruption", "Severity"]
    if not tables:
        return pd.DataFrame(columns=keys + ["Accuracy", "Lower", "Upper", "Trials", "Error"])
    table = _mean_over_trials(pd.concat(tables, ignore_index=True), keys)
    return table.assign(Error=1 - table["Accuracy"], ErrorLower=1 - table["Upper"], ErrorUpper=1 - table["Lower"])


MCE_COLUMNS = ["Model", "Base", "Source", "Trials", "MeanAccuracy", "MeanCE", "Baseline", "mCE", "RelativeMCE"]


def mce_table(tables, models, refs, problems):
    """Per model and source: the mean accuracy and mean CE, and mCE and relative mCE against the base's
    reference model (its mean over trials; docs/evaluation.md), the way ``metrics.mce`` defines them."""
    if not tables:
        return pd.DataFrame(columns=MCE_COLUMNS)
    table = pd.concat(tables, ignore_index=True)
    means = table.groupby(["Model", "Convolution", "Base", "Source", "Corruption", "Severity"], sort=False,
                          dropna=False)["Accuracy"].mean().reset_index()
    clean = models.groupby("Model")["CleanAccuracy"].mean() if "CleanAccuracy" in models else pd.Series(dtype=float)
    rows = []
    for (model, base, source), group in means.groupby(["Model", "Base", "Source"], sort=False, dropna=False):
        summary = metrics.corruption_summary(group)
        row = dict(Model=model, Base=base, Source=source, Trials=int(table[table["Model"] == model]["Trial"].nunique()),
                   MeanAccuracy=summary["mean_accuracy"], MeanCE=summary["mean_corruption_error"],
                   Baseline=refs.get(base), mCE=None, RelativeMCE=None)
        baseline = means[(means["Model"] == refs.get(base)) & (means["Source"] == source)]
        if not baseline.empty:
            try:
                found = metrics.mce(group, baseline, clean.get(model), clean.get(refs.get(base)))
                row.update(mCE=found["mce"], RelativeMCE=found.get("relative_mce"))
            except BioflowError as err:
                problems.append(f"{model}: no mCE against {refs.get(base)} ({err})")
        rows.append(row)
    return pd.DataFrame(rows, columns=MCE_COLUMNS)


def centre_mass_table(tables):
    """Mean Grad-CAM centre mass (of the predicted class) per model, noise and level, from ``bioflow explain``."""
    if not tables:
        return pd.DataFrame(columns=["Model", "Convolution", "Base", "Noise", "Level", "CentreMass"])
    table = pd.concat(tables, ignore_index=True)
    table["CentreMass"] = pd.to_numeric(table["CentreMass"], errors="coerce")  # NaN: a map without evidence
    table = table[(table["Target"] == "predicted") & (table["Noise"] != "clean")]
    return (table.groupby(["Model", "Convolution", "Base", "Noise", "Level"], sort=False, dropna=False)["CentreMass"]
            .mean().reset_index())


def kernels(entry, problems=None):
    """``{layer name: kernels [k, h, w] (first input channel)}`` of the entry's filter-bank layers.

    Read from the saved model (checked, then loaded in safe mode), so a bank that was trained
    shows its trained kernels. What cannot be shown is named in ``problems``.
    """
    from bioflow.zoo import checks

    problems = problems if problems is not None else []
    names = list(entry.card.get("architecture", {}).get("filter_bank", {}))
    if not names:
        return {}
    try:
        model = checks.load_model(entry.folder / "model.keras", entry.spec)
    except BioflowError as err:
        problems.append(f"{entry.spec}: its kernels are not shown. {err}")
        return {}
    out = {}
    for name in names:
        try:
            kernel = np.asarray(model.get_layer(name).get_weights()[0])  # [h, w, in, k]
        except (ValueError, IndexError):
            problems.append(f"{entry.spec}: the card names a filter-bank layer {name!r} that its model lacks.")
            continue
        if kernel.ndim == 4:
            out[name] = np.transpose(kernel[:, :, 0, :], (2, 0, 1))
    return out


def explain_images(entry):
    """``{picture: PNG bytes}`` of the entry's Grad-CAM and occlusion pictures (``results/explain``)."""
    folder = entry.folder / "results" / "explain"
    if not folder.is_dir() or folder.is_symlink():
        return {}
    return {p.stem: p.read_bytes() for p in sorted(folder.glob("*.png"))
            if p.stem.startswith(("gradcam", "occlusion")) and p.is_file() and not p.is_symlink()}


def example_images(entry):
    """``{noise: PNG bytes}`` of the entry's saved perturbation grids (``results/images``)."""
    folder = entry.folder / "results" / "images"
    if not folder.is_dir() or folder.is_symlink():
        return {}
    return {p.stem: p.read_bytes() for p in sorted(folder.glob("*.png")) if p.is_file() and not p.is_symlink()}


def operative_config(entry):
    """The entry's config as text (shown, escaped, never parsed)."""
    path = entry.folder / "operative_config.gin"
    return path.read_text(errors="replace") if path.is_file() and not path.is_symlink() else ""
