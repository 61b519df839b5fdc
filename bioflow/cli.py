"""The ``bioflow`` command line."""
import json
import sys

import click

from bioflow.errors import BioflowError

DEFAULT_SUMMARY_GIN = "vgg16_rib_rc"


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
def configs():
    """List the shipped gin files (usable as --gin NAME)."""
    from bioflow import config

    for name in config.list_gin_files():
        click.echo(name)


if __name__ == "__main__":
    main()
