"""The versioned model zoo: publish runs, list and verify entries, export, pull and load.

    model, card = bioflow.zoo.load("quickstart@1.0.0")

Modules, in the order data flows: ``naming`` (safe names and versions), ``checks`` (what an
entry must hold: a typed card, a config without code, a model without Lambda layers), ``local``
(the zoo folder, its lock and catalogue), ``card`` (publishing a run), ``remote`` (export and
verified pull), ``loading`` (entry → model).
"""
from bioflow.zoo import loading
from bioflow.zoo.card import check_publishable, publish, publish_once, published_as
from bioflow.zoo.display import describe_card, listing
from bioflow.zoo.loading import load
from bioflow.zoo.local import Zoo, default_root
from bioflow.zoo.remote import export, pull

__all__ = ["Zoo", "check_publishable", "default_root", "describe_card", "export", "listing", "load", "loading",
           "publish", "publish_once", "published_as", "pull"]
