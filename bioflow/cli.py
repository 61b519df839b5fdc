"""The ``bioflow`` command line."""
import json
import sys

import click

from bioflow.errors import BioflowError

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


class BioflowGroup(click.Group):
    """Turns :class:`BioflowError` into one paragraph on stderr and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BioflowError as err:
            click.echo(f"Error: {err}", err=True)
            sys.exit(2)


@click.group(cls=BioflowGroup)
@click.version_option(package_name="bioflow")
def main():
    """bioflow: gin-configured bio-inspired CNNs on TensorFlow/Keras."""


@main.command()
@gin_options(default_gin=(DEFAULT_SUMMARY_GIN,))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def summary(gin_files, gin_params, as_json):
    """Build the network from gin, without training, and print its layers and parameter counts."""
    from bioflow import config, model, summary as summary_lib

    config.parse(gin_files, gin_params)
    net = model.build_model()
    info = summary_lib.model_summary(net)
    click.echo(json.dumps(info, indent=2) if as_json else summary_lib.format_summary(info))


@main.command()
@gin_options(default_gin=(DEFAULT_TRAIN_GIN,))
@click.option("--workdir", help="Root of the run directories [train.workdir, default ./runs].")
@click.option("--label", help="Experiment label: the run goes to WORKDIR/LABEL/ [train.label].")
@click.option("--trial", type=int, help="Trial number (an independent replicate) [train.trial].")
@click.option("--seed", type=int, help="Random seed [train.seed].")
@click.option("--data-dir", help="TFDS data directory for CIFAR-10 [CIFAR10.data_dir].")
@click.option("--resume", is_flag=True, default=None, help="Continue a finished run up to a larger train.epochs.")
@click.option("--clean", is_flag=True, default=None, help="Delete the run directory and start over.")
def train(gin_files, gin_params, workdir, label, trial, seed, data_dir, resume, clean):
    """Train a network declared in gin (default: the offline quickstart) into a run directory.

    Interrupted runs resume from their last completed epoch when the same command is rerun.
    """
    from bioflow import config, runner

    bindings = list(gin_params)
    if data_dir is not None:
        bindings.append(f"CIFAR10.data_dir = {data_dir!r}")
    config.parse(gin_files, bindings)
    given = dict(workdir=workdir, label=label, trial=trial, seed=seed, resume=resume, clean=clean)
    try:
        runner.train(**{k: v for k, v in given.items() if v is not None})
    except runner.Interrupted as err:
        click.echo(f"{err} Rerun the same command to resume from the last completed epoch.", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("Interrupted. Rerun the same command to resume from the last completed epoch.", err=True)
        sys.exit(130)


@main.command()
def configs():
    """List the shipped gin files (usable as --gin NAME)."""
    from bioflow import config

    for name in config.list_gin_files():
        click.echo(name)


if __name__ == "__main__":
    main()
