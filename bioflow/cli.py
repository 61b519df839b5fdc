"""The ``bioflow`` command line."""
import contextlib
import json
import os
import pathlib
import sys

import click

from bioflow import flags
from bioflow.errors import BioflowError, os_error_message, user_message

DEFAULT_SUMMARY_GIN = "vgg16_rib_rc"
DEFAULT_TRAIN_GIN = "quickstart"


def gin_options(default_gin=()):
    """Repeatable ``--gin`` and ``--gin-param`` options."""
    def decorate(fn):
        fn = click.option("--gin-param", "gin_params", multiple=True, metavar="BINDING",
                          help="A gin binding, e.g. \"build_model.classes = 100\" (repeatable).")(fn)
        return click.option("--gin", "gin_files", multiple=True, default=default_gin, show_default=True,
                            metavar="FILE", help="A gin file path or name (repeatable).")(fn)
    return decorate


def _entries(n):
    return f"{n} entr{'y' if n == 1 else 'ies'}"


class BioflowCommand(click.Command):
    """A command that loads TensorFlow quietly (:mod:`bioflow.tensorflow_runtime`) before it runs.

    Options are parsed and ``--gin`` names resolved first, so a usage error or a missing gin file
    is reported without waiting for TensorFlow."""

    def invoke(self, ctx):
        from bioflow import config, tensorflow_runtime

        for name in ctx.params.get("gin_files") or ():
            config.resolve_gin_file(name)
        tensorflow_runtime.load()
        return super().invoke(ctx)


class BioflowGroup(click.Group):
    """Turns :class:`BioflowError` and ``OSError`` (a full disk, a read-only folder, a permission) into one
    paragraph on stderr and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BioflowError as err:
            click.echo(f"Error: {user_message(err)}", err=True)
            sys.exit(2)
        except OSError as err:  # a read-only folder, a permission, a full disk: one line, never a traceback
            click.echo(f"Error: {os_error_message(err)}", err=True)
            sys.exit(2)
        except RecursionError:  # config.check_no_cycles names the usual causes; this is the last guard
            click.echo("Error: resolving the configuration recursed without end: a reference (@X()) or macro (%M) "
                       "leads back to itself. Check the gin files' references.", err=True)
            sys.exit(2)


BioflowGroup.command_class = BioflowCommand
BioflowGroup.group_class = BioflowGroup


@click.group(cls=BioflowGroup)
@click.version_option(package_name="bioflow")
@click.option("--verbose", is_flag=True, help="Show TensorFlow's C++ start-up log [$BIOFLOW_VERBOSE=1].")
def main(verbose):
    """bioflow: gin-configured bio-inspired CNNs on TensorFlow/Keras."""
    if verbose:
        os.environ["BIOFLOW_VERBOSE"] = "1"


@main.command()
@gin_options(default_gin=(DEFAULT_SUMMARY_GIN,))
@flags.options("summary")
def summary(gin_files, gin_params, as_json):
    """Build the network from gin, without training, and print its layers and parameter counts."""
    from bioflow import config, model, summary as summary_lib

    config.parse(gin_files, gin_params)
    net = model.build_model()
    info = summary_lib.model_summary(net)
    click.echo(json.dumps(info, indent=2) if as_json else summary_lib.format_summary(info))


@main.command()
@gin_options(default_gin=(DEFAULT_TRAIN_GIN,))
@flags.options("train")
def train(gin_files, gin_params, **given):
    """Train a network declared in gin (default: the offline quickstart) into a run directory.

    Interrupted runs resume from their last completed epoch when the same command is rerun.
    """
    from bioflow import config, runner

    config.parse(gin_files, [*gin_params, *flags.gin_bindings("train", given)])
    try:
        runner.train()
    except runner.Interrupted as err:
        click.echo(f"{user_message(err)} Rerun the same command to resume from the last completed epoch.", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("Interrupted. Rerun the same command to resume from the last completed epoch.", err=True)
        sys.exit(130)


def _entry_and_root(command, entry, zoo_root, old_zoo_root):
    """``(entry, zoo root)`` from --entry and --zoo, keeping the old spellings for one release: --zoo NAME
    (an entry, when no folder has that name) and --zoo-root ROOT."""
    if old_zoo_root is not None:
        click.echo(f"Note: {command} --zoo-root is deprecated; use --zoo ROOT.", err=True)
    if zoo_root is not None and entry is None and not pathlib.Path(zoo_root).is_dir() and "/" not in zoo_root \
            and os.sep not in zoo_root:
        click.echo(f"Note: {command} --zoo {zoo_root} names an entry, which is deprecated: use --entry {zoo_root}. "
                   "--zoo is the zoo's folder, as in every other command.", err=True)
        entry, zoo_root = zoo_root, None
    if zoo_root is not None and old_zoo_root is not None:
        raise BioflowError(f"Give the zoo's folder once: --zoo {zoo_root} or --zoo-root {old_zoo_root}.")
    return entry, zoo_root if zoo_root is not None else old_zoo_root


def _load_run_or_entry(run_dir, entry, zoo_root, out, gin_files, gin_params):
    """Parse the configuration for evaluating or explaining a run directory or a zoo entry.

    A run directory is the user's own: its ``operative_config.gin`` comes first, then ``--gin`` and
    ``--gin-param``. A zoo entry configures nothing: it gives the network (``model.keras``) and the
    card's preprocessing record, and every setting (the data source, the suite, sizes, paths) comes
    from the user's ``--gin``/``--gin-param`` and bioflow's defaults; no line of the entry's
    ``operative_config.gin`` reaches gin. Returns ``(folder for the outputs, (model, run info) or
    None, card or None)``."""
    from bioflow import config
    from bioflow.zoo.local import refuse_inside_entry

    if (run_dir is None) == (entry is None):
        raise BioflowError("Give either a run directory or --entry NAME[@VERSION], not both and not neither.")
    loaded, card, files = None, None, list(gin_files)
    for where, path in (("--out", out), ("The run directory", run_dir)):
        if path is not None:
            refuse_inside_entry(path, where)
    if entry is not None:
        from bioflow import zoo

        model, card = zoo.load(entry, root=zoo_root)
        run_dir = out or str(pathlib.Path("runs") / "zoo" / f"{card['name']}_{card['version']}")
        loaded = (model, zoo.loading.run_info(card))
    else:
        operative = pathlib.Path(run_dir) / "operative_config.gin"
        if not operative.is_file():
            raise BioflowError(f"{run_dir} has no operative_config.gin: it is not a bioflow run directory.")
        files = [str(operative)] + files  # the user's own run: trusted, as any gin file they pass
    config.parse(files, gin_params)
    return run_dir, loaded, card


@main.command("evaluate")
@click.argument("run_dir", type=click.Path(file_okay=False), required=False)
@gin_options()
@flags.options("evaluate")
def evaluate_command(run_dir, gin_files, gin_params, entry, zoo_root, old_zoo_root, out, **given):
    """Evaluate a trained run (RUN_DIR) or a zoo entry (--entry NAME[@VERSION]): clean accuracy, the
    noise suite and CIFAR-10G, into RUN_DIR/results/ (or OUT/results/).

    A zoo entry gives only its network and its card's preprocessing; the data, the suite and every
    other setting come from --gin/--gin-param (as for a run of your own), never from the entry.
    """
    from bioflow import evaluate

    entry, zoo_root = _entry_and_root("evaluate", entry, zoo_root, old_zoo_root)
    run_dir, loaded, card = _load_run_or_entry(run_dir, entry, zoo_root, out, gin_files,
                                               [*gin_params, *flags.gin_bindings("evaluate", given)])
    try:
        summary = evaluate.evaluate(run_dir, loaded=loaded)
    except KeyboardInterrupt:
        click.echo("Interrupted: the evaluation stopped and wrote nothing.", err=True)
        sys.exit(130)
    if entry is not None:
        metrics = card.get("metrics") or {}
        published, images = metrics.get("clean_accuracy"), metrics.get("n_images")
        click.echo(f"{card['name']}@{card['version']}: clean accuracy {summary['clean_accuracy']:.4f} on "
                   f"{summary['n_images']} images" + (f" (published: {published:.4f}" + (
                       f" on {images} images)" if images else ")") if published is not None else ""))


@main.command("explain")
@click.argument("run_dir", type=click.Path(file_okay=False), required=False)
@gin_options()
@flags.options("explain")
def explain_command(run_dir, gin_files, gin_params, entry, zoo_root, old_zoo_root, out, **given):
    """Explain a trained run (RUN_DIR) or a zoo entry (--entry NAME[@VERSION]): Grad-CAM, occlusion,
    front-end activation maps, the most-activating test images and the kernels used, as PNGs and CSVs
    in RUN_DIR/results/explain/ (or OUT/explain/)."""
    from bioflow import explain

    entry, zoo_root = _entry_and_root("explain", entry, zoo_root, old_zoo_root)
    target, loaded, _ = _load_run_or_entry(run_dir, entry, zoo_root, out, gin_files,
                                           [*gin_params, *flags.gin_bindings("explain", given)])
    explain.explain(target, loaded=loaded, out=out if entry is None else target)


@main.command("sweep")
@gin_options()
@flags.options("sweep")
def sweep_command(gin_files, gin_params, workdir, label, address, publish, dry_run, show, **resources):
    """Run an experiment grid (a gin file declaring Sweep.axes and Sweep.trials) on Ray: every cell is the
    `bioflow train` run of the sweep's gin files plus its axis bindings and trial."""
    from bioflow.sweep import cells

    if show:
        if label is None:
            from bioflow import bindings

            cells.load(gin_files, gin_params)
            label = bindings.query("train.label", "default")
        cells.show_status(workdir, label, echo=click.echo)
        return
    if not gin_files:
        raise BioflowError("Give the sweep's gin file: bioflow sweep --gin evans2022/sweep (see `bioflow configs`).")
    resources = cells.Resources(**resources)  # checked before anything is read
    if dry_run:
        sweep, _ = cells.load(gin_files, gin_params)
        grid = sweep.cells()
        click.echo(f"{len(grid)} cells ({len(sweep.trials)} trials x "
                   f"{len(grid) // len(sweep.trials)} combinations):")
        for cell in grid:
            click.echo(f"  {cell.id}  " + "  ".join(f'--gin-param "{p}"' for p in cell.gin_params()))
        return
    cells.run(gin_files, gin_params, workdir=workdir, label=label, address=address, resources=resources,
              publish=publish, echo=click.echo)


@main.group()
def zoo():
    """The model zoo: publish runs; list, show and verify entries; export; pull from a remote."""


@zoo.command("publish")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@flags.options("zoo publish")
def zoo_publish(run_dir, name, version, zoo_root):
    """Publish a finished run as NAME@VERSION (versions are immutable)."""
    from bioflow import zoo as zoo_lib

    click.echo(f"Published {zoo_lib.publish(run_dir, name, version, zoo_root)}")


@zoo.command("list")
@flags.options("zoo list")
def zoo_list(as_json, zoo_root):
    """List the entries of the local zoo."""
    from bioflow import zoo as zoo_lib

    local = zoo_lib.Zoo(zoo_root)
    cards = local.entries(on_problem=lambda message: click.echo(f"Warning: {message}", err=True))
    if as_json:
        click.echo(json.dumps([{k: c.get(k) for k in ("name", "version", "created", "run", "architecture",
                                                       "parameters", "metrics")} for c in cards], indent=2))
        return
    if not cards:
        click.echo(f"The zoo at {local.root} is empty.")
        return
    click.echo(zoo_lib.listing(cards, {n: local.versions(n)[-1] for n in local.names()}))


@zoo.command("show")
@click.argument("spec", metavar="NAME[@VERSION]")
@flags.options("zoo show")
def zoo_show(spec, as_json, zoo_root):
    """Show an entry's card."""
    from bioflow import zoo as zoo_lib

    local = zoo_lib.Zoo(zoo_root)
    card = local.card(spec)
    click.echo(json.dumps(card, indent=2) if as_json else zoo_lib.describe_card(card, local.path(
        card["name"], card["version"])))


@zoo.command("verify")
@click.argument("spec", metavar="NAME[@VERSION]")
@flags.options("zoo verify")
def zoo_verify(spec, zoo_root):
    """Re-hash every file of an entry against its card and check that it holds no code (a config
    the restricted reader accepts, a model without Lambda layers); exit 1 on any problem."""
    from bioflow import zoo as zoo_lib

    local = zoo_lib.Zoo(zoo_root)
    name, version = local.resolve(spec)
    problems = local.verify(f"{name}@{version}")
    for problem in problems:
        click.echo(f"{name}@{version}: {problem}", err=True)
    if problems:
        sys.exit(1)
    files = len(local.card(f"{name}@{version}")["files"]) + 1
    click.echo(f"{name}@{version}: OK ({files} files verified; config and model hold no code)")


@zoo.command("export")
@click.argument("dest")
@click.argument("specs", nargs=-1, metavar="[NAME[@VERSION]]...")
@flags.options("zoo export")
def zoo_export(dest, specs, zoo_root):
    """Write entries (default: all) and an index.json to DEST, a static remote zoo."""
    from bioflow import zoo as zoo_lib

    index = zoo_lib.export(dest, specs, zoo_root)
    count = sum(len(e["versions"]) for e in index["entries"].values())
    click.echo(f"Exported {_entries(count)} to {dest}; serve that folder and pull with --remote.")


@zoo.command("pull")
@click.argument("spec", metavar="NAME[@VERSION]")
@gin_options()
@flags.options("zoo pull")
def zoo_pull(spec, gin_files, gin_params, zoo_root, **given):
    """Download an entry from a remote zoo, verifying every sha256 and checking that it holds no code
    before it appears."""
    from bioflow import config, zoo as zoo_lib

    config.parse(gin_files, [*gin_params, *flags.gin_bindings("zoo pull", given)])
    bars = []
    with contextlib.ExitStack() as stack:
        def on_start(label, total):
            bars.append(stack.enter_context(click.progressbar(length=total, label=f"Pulling {label}",
                                                              file=sys.stderr)))

        zoo_lib.pull(spec, root=zoo_root, on_start=on_start, on_bytes=lambda n: bars[0].update(n) if bars else None)


@main.command()
@click.argument("specs", nargs=-1, metavar="[NAME[@VERSION]]...")
@flags.options("report")
def report(specs, label, all_entries, reference, out, png_dir, published, renames, zoo_root):
    """Build an offline HTML robustness dashboard from zoo entries and published results."""
    from bioflow.report import build_report, data_dir_of

    if out.endswith(("/", os.sep)) or pathlib.Path(out).is_dir():
        out = str(pathlib.Path(out) / "report.html")
    mapping = {}
    for item in renames:
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise BioflowError(f"--published-name {item!r} must be OLD=NEW, e.g. Gabor_VGG16=Baseline.")
        mapping[old.strip()] = new.strip()
    data = build_report(out, zoo_root, specs, label, all_entries, reference, png_dir, published, mapping)
    for problem in data.problems:
        click.echo(f"Note: {problem}", err=True)
    shown = _entries(len(data.entries)) + (f" and {len(published)} published folder{'s' * (len(published) > 1)}"
                                           if published else "")
    click.echo(f"Report of {shown} written to {out} (tables in {data_dir_of(out)}"
               + (f", charts as PNG in {png_dir}" if png_dir else "") + ").")


@main.command("config")
@gin_options()
@flags.options("config")
def config_command(gin_files, gin_params, as_json):
    """Print the configuration that --gin and --gin-param resolve to: each binding once, with the
    file and line it came from, marked * where it differs from the Python default."""
    from bioflow import config_view

    view = config_view.resolved_view(gin_files, gin_params)
    click.echo(json.dumps(view, indent=2) if as_json else config_view.format_view(view, gin_files))


@main.command()
def configs():
    """List the shipped gin files (usable as --gin NAME)."""
    from bioflow import config

    for name in config.list_gin_files():
        click.echo(name)


if __name__ == "__main__":
    main()
