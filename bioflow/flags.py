"""Every command-line flag, declared once: its name, the gin binding it sets, its type and its help.

A flag with a binding takes one route into the configuration: its value becomes a gin binding
(``--label x`` → ``train.label = 'x'``), applied after the command's ``--gin`` files and
``--gin-param`` bindings, so a flag wins over both. The root (``train``, ``evaluate``, ``explain``,
``pull``) then reads every setting from gin. A flag without a binding is the command's own option
(a folder to write, a Ray address). ``bioflow <command> --help`` and the flag table of
docs/configuration.md are both generated from :data:`FLAGS` (``python tools/flag_table.py``), and
a test checks that they agree.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import click

#: What each ``--zoo``/``--zoo-root`` means (a zoo's folder), wherever it appears.
ZOO_HELP = "The local zoo's folder [$BIOFLOW_ZOO, ./zoo in a checkout, else ~/.cache/bioflow/zoo]."


@dataclasses.dataclass(frozen=True)
class Flag:
    """One flag of one command.

    Attributes:
        name: the flag (``'--n-images'``), or several spellings (``'--entry'``, ``'--zoo-entry'``).
        help: what it does, in one sentence; the binding is appended to it in ``--help``.
        binding: the gin key it sets (``'evaluate.n_images'``), or None for the command's own option.
        kind: ``str``, ``int``, ``float``, ``bool`` (a switch), or a ``click.ParamType``.
        metavar: the value's name in ``--help``.
        multiple: repeatable; the binding gets the list of values.
        default: the option's default (only for flags without a binding: gin has the others').
        dest: the Python name of the value (default: from the first spelling).
        gin: the gin text of a value when it is not ``binding = value`` (``--suite extended`` includes
            ``noise/extended.gin``; ``--save-all-images`` binds ``'all'``).
        required: the command cannot run without it.
    """

    name: str | tuple
    help: str
    binding: str | None = None
    kind: Any = str
    metavar: str | None = None
    multiple: bool = False
    default: Any = None
    dest: str | None = None
    gin: Callable[[Any], str] | None = None
    required: bool = False

    @property
    def spellings(self) -> tuple:
        return (self.name,) if isinstance(self.name, str) else tuple(self.name)

    @property
    def key(self) -> str:
        return self.dest or self.spellings[0].lstrip("-").replace("-", "_")

    @property
    def type_name(self) -> str:
        if self.kind is bool:
            return "switch"
        if isinstance(self.kind, click.Choice):
            return " | ".join(self.kind.choices)
        if isinstance(self.kind, click.ParamType):
            return "folder" if isinstance(self.kind, click.Path) else self.kind.name
        return {str: "text", int: "integer", float: "number"}[self.kind] + (", repeatable" if self.multiple else "")

    def full_help(self) -> str:
        """The help shown by ``--help``: the sentence, then the gin binding the flag sets."""
        if self.binding:
            return f"{self.help} [{self.binding}]"
        return self.help

    def option(self, fn):
        """Add the click option to ``fn``."""
        extra = dict(is_flag=True, default=None) if self.kind is bool else dict(
            type=self.kind, metavar=self.metavar, multiple=self.multiple,
            default=self.default if self.default is not None else (() if self.multiple else None),
            show_default=self.default is not None and not self.multiple)
        return click.option(*self.spellings, self.key, help=self.full_help(), required=self.required, **extra)(fn)

    def gin_text(self, value) -> str | None:
        """The gin text of a given value, or None when the flag was not given."""
        if value is None or (self.multiple and not value):
            return None
        if self.gin is not None:
            return self.gin(value)
        return f"{self.binding} = {_literal(list(value) if self.multiple else value)}"


def _literal(value) -> str:
    """A Python value (str, int, float, bool, list of them) as gin text (Python's literal syntax)."""
    return repr(value)


ROOT = click.Path(file_okay=False)
ENTRY = ("NAME[@VERSION]",)

#: The flags of every command, in ``--help`` order. ``zoo <command>`` commands are named so.
FLAGS: dict[str, tuple[Flag, ...]] = {
    "train": (
        Flag("--workdir", "Root of the run directories.", "train.workdir"),
        Flag("--label", "Experiment label: the run goes to WORKDIR/LABEL/.", "train.label"),
        Flag("--trial", "Trial number (an independent replicate).", "train.trial", int),
        Flag("--seed", "Random seed.", "train.seed", int),
        Flag("--data-dir", "TFDS data directory for CIFAR-10.", "CIFAR10.data_dir"),
        Flag("--cifar10g", "CIFAR-10G for the evaluation after training: a local copy (the folder holding "
             "224x224/) or 'download'.", "CIFAR10G.folder", metavar="DIR|download"),
        Flag("--resume", "Continue a finished run up to a larger Fit.epochs.", "train.resume", bool),
        Flag("--clean", "Delete the run directory and start over.", "train.clean", bool),
        Flag("--skip-test", "Do not evaluate robustness after training.", "train.skip_test", bool),
        Flag("--publish", "Publish the finished run to the zoo.", "train.publish", metavar="NAME[@VERSION]"),
        Flag("--zoo", ZOO_HELP, "train.zoo", ROOT, metavar="ROOT"),
    ),
    "evaluate": (
        Flag(("--entry", "--zoo-entry"), "Evaluate this zoo entry instead of a run; results go to --out.",
             metavar=ENTRY[0], dest="entry"),
        Flag("--zoo", ZOO_HELP + " Deprecated here as --zoo NAME (an entry): use --entry.", metavar="ROOT",
             dest="zoo_root"),
        Flag("--zoo-root", "Deprecated: use --zoo.", kind=ROOT, metavar="ROOT", dest="old_zoo_root"),
        Flag("--out", "With --entry: the folder that receives results/ [runs/zoo/NAME_VERSION].", kind=ROOT),
        Flag("--n-images", "Evaluate on the first N test images.", "evaluate.n_images", int),
        Flag("--suite", "Noise suite: includes gin/noise/<suite>.gin.", kind=click.Choice(["paper", "extended"]),
             gin=lambda suite: f"include 'noise/{suite}.gin'"),
        Flag("--attacks", "Adversarial attacks after the noise suite, into results/adversarial.csv: includes "
             "gin/attack/<suite>.gin.", kind=click.Choice(["quick", "robustbench", "vonenet"]),
             gin=lambda suite: f"include 'attack/{suite}.gin'"),
        Flag("--cifar10g", "A CIFAR-10G copy (the folder holding 224x224/), or 'download'.",
             "CIFAR10G.folder", metavar="DIR|download"),
        Flag("--corruptions", "Common corruptions after the noise suite, into results/corruptions.csv: CIFAR-10-C "
             "through TFDS, or the corruptions computed on the test images.", "evaluate.corruptions",
             kind=click.Choice(["cifar10-c", "computed"]),
             gin=lambda source: f"evaluate.corruptions = @CorruptionSuite()\nCorruptionSuite.source = '{source}'"),
        Flag("--cifar10-c", "A copy of CIFAR-10-C's published arrays (the extracted CIFAR-10-C.tar), prepared "
             "through TFDS instead of a download.", "CorruptionSuite.copy", metavar="DIR", dest="cifar10_c"),
        Flag("--perturb-generalisation", "Run the noise suite on CIFAR-10G too.", "CIFAR10G.perturb",
             bool),
        Flag("--save-predictions", "Write per-image probabilities.", "Outputs.predictions", bool),
        Flag("--save-images", "Write a PNG grid of perturbed images per noise.", "Outputs.images", bool),
        Flag("--save-all-images", "Also write every perturbed image as a PNG (the original's --save_images).",
             "Outputs.images", bool, gin=lambda _: "Outputs.images = 'all'"),
        Flag("--force", "Evaluate a run that is not complete.", "evaluate.force", bool),
        Flag("--layout", "Also write the tables in the original code's CSV layout, under results/bionet/.",
             "Outputs.layout", click.Choice(["bionet"])),
    ),
    "explain": (
        Flag("--entry", "Explain this zoo entry instead of a run directory.", metavar=ENTRY[0]),
        Flag("--zoo", ZOO_HELP + " Deprecated here as --zoo NAME (an entry): use --entry.", metavar="ROOT",
             dest="zoo_root"),
        Flag("--zoo-root", "Deprecated: use --zoo.", kind=ROOT, metavar="ROOT", dest="old_zoo_root"),
        Flag("--out", "Write OUT/explain/ [RUN_DIR/results/explain/; with --entry, runs/zoo/NAME_VERSION/explain/].",
             kind=ROOT),
        Flag("--images", "Test images to explain.", "explain.n_images", int),
        Flag("--noise", "Also explain under this perturbation.", "explain.noise_name"),
        Flag("--level", "The level of --noise shown [its middle level].", "explain.level", float),
        Flag("--attack", "Also explain the test images attacked by FGSM or PGD (in L-infinity; gin binds any "
             "@Attack()).", "explain.attack", kind=click.Choice(["fgsm", "pgd"]),
             gin=lambda kind: f"explain.attack = @explain/Attack()\nexplain/Attack.kind = '{kind}'"),
        Flag("--epsilon", "The budget of --attack [its largest: 8/255].", "explain.epsilon", float),
        Flag("--layer", "A Grad-CAM layer [the last convolution with maps of at least 7x7].", "ExplainMethods.layers",
             multiple=True),
        Flag("--force", "Explain a run that is not complete.", "explain.force", bool),
    ),
    "sweep": (
        Flag("--workdir", "Root of the run directories.", default="runs"),
        Flag("--label", "The sweep's label: its runs go to WORKDIR/LABEL/ [train.label of the sweep's files]."),
        Flag("--address", "Join a Ray cluster: 'auto' (this machine's), HOST:PORT or ray://HOST:PORT; a cluster with "
             "token authentication also needs RAY_AUTH_MODE=token [a new local Ray, in-process]."),
        Flag("--cpus-per-run", "CPUs per cell (its TF threads too).", kind=int, default=1),
        Flag("--gpus-per-run", "GPUs per cell.", kind=float, default=0.0),
        Flag("--workers-per-run", "Workers per cell: above 1, each cell trains with MultiWorkerMirroredStrategy "
             "through Ray Train, and --cpus-per-run/--gpus-per-run are per worker.", kind=int, default=1),
        Flag("--max-failures", "Retries of a cell whose worker died (SIGKILL, lost node); a cell that fails by "
             "itself is not retried.", kind=int, default=2),
        Flag("--publish", "Publish each finished cell as PREFIX-<axis values>, one version per trial.",
             metavar="PREFIX"),
        Flag("--dry-run", "Print the cells and their bindings, then stop.", kind=bool),
        Flag("--status", "Print WORKDIR/LABEL/sweep.csv and stop.", kind=bool, dest="show"),
    ),
    "summary": (
        Flag("--json", "Print one JSON object instead of a table.", kind=bool, dest="as_json"),
    ),
    "config": (
        Flag("--json", "Print the bindings as one JSON object instead.", kind=bool, dest="as_json"),
    ),
    "report": (
        Flag("--label", "Report the entries trained with this experiment label (every trial, each name's versions "
             "included)."),
        Flag("--all", "Report the latest version of every entry.", kind=bool, dest="all_entries"),
        Flag("--reference", "Model or entry the AUC ratios divide by [the 'original' model of each base].",
             metavar="NAME"),
        Flag("--out", "The HTML file (a folder, or a path ending in '/', gets report.html); its tables go to "
             "<stem>_data/ beside it.", kind=click.Path(), default="report.html"),
        Flag("--png", "Also write every chart as PNG here.", kind=ROOT, dest="png_dir"),
        Flag("--published", "A folder of CSV results written by the original code (repeatable): each published "
             "model is shown beside the zoo entries.", kind=ROOT, metavar="DIR", multiple=True),
        Flag("--published-name", "Show the published model OLD as NEW (repeatable), e.g. Gabor_VGG16=Baseline.",
             metavar="OLD=NEW", multiple=True, dest="renames"),
        Flag("--zoo", ZOO_HELP, kind=ROOT, metavar="ROOT", dest="zoo_root"),
    ),
    "zoo publish": (
        Flag("--name", "Entry name (letters, digits, '.', '_', '-').", metavar="NAME", required=True),
        Flag("--version", "Semantic version [next minor version, or 1.0.0].", metavar="VERSION"),
        Flag("--zoo", ZOO_HELP, kind=ROOT, metavar="ROOT", dest="zoo_root"),
    ),
    "zoo list": (
        Flag("--json", "Print the cards as JSON.", kind=bool, dest="as_json"),
        Flag("--zoo", ZOO_HELP, kind=ROOT, metavar="ROOT", dest="zoo_root"),
    ),
    "zoo show": (
        Flag("--json", "Print the whole card as JSON.", kind=bool, dest="as_json"),
        Flag("--zoo", ZOO_HELP, kind=ROOT, metavar="ROOT", dest="zoo_root"),
    ),
    "zoo verify": (
        Flag("--zoo", ZOO_HELP, kind=ROOT, metavar="ROOT", dest="zoo_root"),
    ),
    "zoo export": (
        Flag("--zoo", ZOO_HELP, kind=ROOT, metavar="ROOT", dest="zoo_root"),
    ),
    "zoo pull": (
        Flag("--remote", "Remote zoo: http(s):// URL, gs:// URL or folder [or $BIOFLOW_ZOO_REMOTE].", "pull.remote"),
        Flag("--min-rate", "Slowest transfer accepted: each file gets 60 s + size / rate.", "pull.min_rate", float,
             metavar="BYTES_PER_S"),
        Flag("--timeout", "Deadline of the whole pull, in seconds.", "pull.timeout", float, metavar="SECONDS"),
        Flag("--zoo", ZOO_HELP, kind=ROOT, metavar="ROOT", dest="zoo_root"),
    ),
}


def options(command: str):
    """Decorator: add ``command``'s flags (from :data:`FLAGS`) to a click command, in table order."""
    def decorate(fn):
        for flag in reversed(FLAGS[command]):
            fn = flag.option(fn)
        return fn
    return decorate


def gin_bindings(command: str, given: dict) -> list[str]:
    """The gin text of the flags given to ``command`` (``given``: click's parameters), in table order."""
    out = []
    for flag in FLAGS[command]:
        if flag.binding is not None or flag.gin is not None:
            text = flag.gin_text(given.get(flag.key))
            if text is not None:
                out.append(text)
    return out


def _cell(text: str) -> str:
    """Text safe in a Markdown table cell (no column break, no HTML tag)."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def markdown_table() -> str:
    """docs/configuration.md's flag table: every command's flags, their bindings, types and help."""
    rows = ["| command | flag | sets | value | what it does |", "|---|---|---|---|---|"]
    for command, flags in FLAGS.items():
        for flag in flags:
            name = ", ".join(f"`{s}`" for s in flag.spellings)
            sets = f"`{flag.binding}`" if flag.binding else ("gin file" if flag.gin else "")
            value = flag.metavar or flag.type_name
            rows.append(f"| `{command}` | {name} | {sets} | {_cell(value)} | {_cell(flag.help)} |")
    return "\n".join(rows)
