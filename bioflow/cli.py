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
@click.option("--skip-test", is_flag=True, default=None, help="Do not evaluate robustness after training.")
def train(gin_files, gin_params, workdir, label, trial, seed, data_dir, resume, clean, skip_test):
    """Train a network declared in gin (default: the offline quickstart) into a run directory.

    Interrupted runs resume from their last completed epoch when the same command is rerun.
    """
    from bioflow import config, runner

    bindings = list(gin_params)
    if data_dir is not None:
        bindings.append(f"CIFAR10.data_dir = {data_dir!r}")
    config.parse(gin_files, bindings)
    given = dict(workdir=workdir, label=label, trial=trial, seed=seed, resume=resume, clean=clean,
                 skip_test=skip_test)
    try:
        runner.train(**{k: v for k, v in given.items() if v is not None})
    except runner.Interrupted as err:
        click.echo(f"{err} Rerun the same command to resume from the last completed epoch.", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("Interrupted. Rerun the same command to resume from the last completed epoch.", err=True)
        sys.exit(130)


@main.command("evaluate")
@click.argument("run_dir", type=click.Path(file_okay=False))
@gin_options()
@click.option("--n-images", type=int, help="Evaluate on the first N test images [evaluate.n_images].")
@click.option("--suite", type=click.Choice(["paper", "extended"]), help="Noise suite (gin/noise/<suite>.gin).")
@click.option("--cifar10g", "cifar10g", type=click.Path(exists=True, file_okay=False),
              help="A CIFAR-10G copy (the folder holding 224x224/) [evaluate.generalisation_dir].")
@click.option("--perturb-generalisation", is_flag=True, default=None, help="Run the noise suite on CIFAR-10G too.")
@click.option("--save-predictions", is_flag=True, default=None, help="Write per-image probabilities.")
@click.option("--save-images", is_flag=True, default=None, help="Write a PNG grid of perturbed images per noise.")
def evaluate_command(run_dir, gin_files, gin_params, n_images, suite, cifar10g, perturb_generalisation,
                     save_predictions, save_images):
    """Evaluate a trained run: clean accuracy, the noise suite and CIFAR-10G, into RUN_DIR/results/."""
    import pathlib

    from bioflow import config, evaluate

    operative = pathlib.Path(run_dir) / "operative_config.gin"
    if not operative.is_file():
        raise BioflowError(f"{run_dir} has no operative_config.gin: it is not a bioflow run directory.")
    files = [str(operative)] + ([f"noise/{suite}"] if suite else []) + list(gin_files)
    config.parse(files, gin_params)
    given = dict(n_images=n_images, generalisation_dir=cifar10g, perturb_generalisation=perturb_generalisation,
                 save_predictions=save_predictions, save_images=save_images)
    evaluate.evaluate(run_dir, **{k: v for k, v in given.items() if v is not None})


@main.command()
def configs():
    """List the shipped gin files (usable as --gin NAME)."""
    from bioflow import config

    for name in config.list_gin_files():
        click.echo(name)


if __name__ == "__main__":
    main()
