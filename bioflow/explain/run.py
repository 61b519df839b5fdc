"""``bioflow explain``: what the front end sees and what the network attends to, for a finished run.

explain (gin root) → load the run → test images → methods (Grad-CAM, occlusion, activations, top-k,
kernels; with an attack, the attacked images) → PNGs and CSVs in a temporary folder → renamed to
``explain/``.
"""
import contextlib
import dataclasses
import json
import pathlib
import tempfile

import gin
import numpy as np
import pandas as pd
import tensorflow as tf

from bioflow import architecture, noise
from bioflow.data import DataPipeline
from bioflow.data.preprocessing import normaliser, resize
from bioflow.errors import BioflowError
from bioflow.evaluate import evaluation_sets
from bioflow.explain import methods, pictures
from bioflow.io import replace_dir
from bioflow.settings import ExplainMethods
from bioflow.training import rundir
from bioflow.validation import MAX_BATCH, MAX_IMAGES, check_int, check_number, check_positive_int

#: Layer-name prefixes of the biological front end, in the order data flows through them.
FRONT_END = ("retina_", "v1_", "recurrent_")
#: At most this many channels (or kernels) of a layer are drawn per picture; the CSVs hold them all.
MAX_CHANNELS = 64


@dataclasses.dataclass
class Explained:
    """What :func:`explain` computed: the tables behind every picture, and the pictures."""

    tables: dict  # file stem → DataFrame
    pictures: dict  # file stem → uint8 RGB image
    summary: dict


@gin.configurable(module="bioflow", denylist=["loaded"])
def explain(run_dir, out=None, n_images=8, noise_name=None, level=None, attack=None, epsilon=None, options=None,
            batch_size=64, seed=0, data=None, force=False, loaded=None):
    """Explain a finished run; writes ``RUN_DIR/results/explain/`` (or ``OUT/explain/``).

    Args:
        run_dir: the run directory (``model.keras``, ``run.json``).
        out: write ``OUT/explain/`` instead.
        n_images: the test images to explain (clipped to the test set, with a message).
        noise_name, level: also explain the images under this perturbation at ``level`` (default: its
            middle level); Grad-CAM's centre mass is computed at every level of the noise.
        attack, epsilon: also explain the images attacked by this :class:`~bioflow.attacks.Attack`
            (``--attack fgsm|pgd``) at budget ``epsilon`` (default: the attack's largest), in the space and
            with the EOT samples of ``AttackSuite`` as bound in gin: ``attack.png`` shows each image,
            attacked, the perturbation and Grad-CAM clean and attacked; ``attack.csv`` the numbers.
        options: an :class:`~bioflow.settings.ExplainMethods`: the Grad-CAM layers, the top-k units
            and k, the occlusion patch and stride (default: ``ExplainMethods()`` through gin).
        loaded: ``(model, run_info)`` to explain instead of the run's own (a zoo entry).
    """
    n_images = check_positive_int(n_images, "explain.n_images", maximum=MAX_IMAGES)  # clipped to the test set
    check_positive_int(batch_size, "explain.batch_size", maximum=MAX_BATCH)
    check_int(seed, "explain.seed")
    options = options if options is not None else gin.get_configurable(ExplainMethods)()
    run = pathlib.Path(run_dir)
    model, info = loaded if loaded is not None else rundir.load_run(run, force)
    target = (pathlib.Path(out) if out is not None else run / "results") / "explain"
    options = dataclasses.replace(options, layers=tuple(options.layers or [methods.last_conv_layer(model)]))
    for name in options.layers:
        methods.check_layer(model, name)
    if noise_name is not None:
        levels = noise.get(noise_name).levels  # an unknown name lists the registered noises
        level = levels[len(levels) // 2] if level is None else float(level)
    elif level is not None:
        raise BioflowError("explain.level needs explain.noise_name (--noise NAME).")
    plan = _attack_plan(attack, epsilon, n_images)
    pipeline = data if data is not None else gin.get_configurable(DataPipeline)()
    result = compute(model, info, pipeline, n_images=n_images, options=options, noise_name=noise_name, level=level,
                     batch_size=batch_size, seed=seed, attack=plan)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A run directory is locked while its results change, as evaluation locks it; an OUT folder is not a run.
    with rundir.locked(run, action="explain") if loaded is None and out is None else contextlib.nullcontext():
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".explain.") as tmp:
            folder = pathlib.Path(tmp) / "explain"
            write(folder, result)
            replace_dir(folder, target)
    print(f"Explanations written to {target}: " + ", ".join(sorted(f"{s}.png" for s in result.pictures)), flush=True)
    return target


def _attack_plan(attack, epsilon, n_images):
    """``(attack suite of the one attack, its budget)``, or None without an attack; checked before any work."""
    from bioflow import attacks

    if attack is None:
        if epsilon is not None:
            raise BioflowError("explain.epsilon needs explain.attack (--attack fgsm|pgd).")
        return None
    if not isinstance(attack, attacks.Attack):
        raise BioflowError(f"explain.attack must be an Attack (@Attack(), or --attack fgsm|pgd), got {attack!r}.")
    if attack.kind == "autoattack":
        raise BioflowError("explain.attack: AutoAttack is an evaluation (bioflow evaluate --attacks robustbench); "
                           "explain FGSM or PGD (--attack fgsm|pgd).")
    eps = max(attack.epsilons) if epsilon is None else check_number(epsilon, "explain.epsilon", above=0, maximum=1e4)
    if eps <= 0:
        raise BioflowError("explain.attack: the attack's budgets are all 0; give one with --epsilon.")
    return gin.get_configurable(attacks.AttackSuite)(attacks=(attack,), n_images=n_images), float(eps)


def _attacked(model, info, pipeline, sets, plan, batch_size):
    """``(attacked images at the network's size [0, 1], the attack's record, each perturbation's norm)``."""
    from bioflow import attacks
    from bioflow.evaluate import attack_start_images

    suite, eps = plan
    attack, stats = suite.attacks[0], info["data"]
    start, labels = attack_start_images(pipeline, stats, sets, suite)
    target = attacks.Target(model, stats, suite.space)
    samples = suite.eot_samples if attacks.is_stochastic(target, start) else 1
    adversarial = attacks.adversarial_examples(target, start, labels, attack, eps, samples=samples, seed=suite.seed,
                                               batch_size=batch_size)
    norms = attacks.perturbation_norm(adversarial - start, attack.norm).numpy()
    if suite.space == "source":  # to the network's input, as its clean images were
        adversarial = resize(tf.constant(adversarial * 255.0), model.input_shape[1], stats["interpolation"]).numpy()
        adversarial = adversarial / 255.0
    record = dict(attack=attack.kind, norm=attack.norm, epsilon=eps, steps=attack.steps if attack.kind == "pgd"
                  else 1, space=suite.space, eot_samples=samples)
    return adversarial.astype(np.float32), record, norms


def compute(model, info, pipeline, *, n_images, options, noise_name=None, level=None, batch_size=64,
            seed=0, attack=None) -> Explained:
    """Every explanation of ``model`` on the first ``n_images`` test images, with ``options`` (an
    :class:`~bioflow.settings.ExplainMethods` whose layers are given); ``attack``: ``(AttackSuite, ε)``
    (see :func:`explain`) adds the attacked images; writes nothing."""
    layers, units, k, patch, stride = options.layers, list(options.units), options.k, options.patch, options.stride
    stats = info["data"]
    size = model.input_shape[1]
    background = stats["mean"] / 255.0
    normalise = normaliser(stats)

    def to_input(x01):
        return normalise(tf.convert_to_tensor(x01, tf.float32) * 255.0)

    predict = tf.function(lambda x01: tf.cast(model(to_input(x01), training=False), tf.float32), reduce_retracing=True)
    sets = evaluation_sets(pipeline, stats, size, n_images)
    images, labels = sets["test"]
    if len(labels) < n_images:
        print(f"Explaining {len(labels)} images: the test set has only {len(labels)} (--images {n_images}).")
    arch = architecture.read(info, model)
    model_label = info.get("model", model.name)
    tables, pics = {}, {}

    # Grad-CAM, clean and (with a noise) at every level of the noise.
    levels = sorted({*noise.get(noise_name).levels, level}) if noise_name else []
    conditions = [("clean", 0.0)] + [(noise_name, lv) for lv in levels]
    gradcam_rows, shown = [], {}
    cams = {layer: methods.GradCam(model, layer) for layer in layers}
    for name, lv in conditions:
        x01 = images if name == "clean" else noise.apply(name, images, lv, seed=seed, background=background).numpy()
        predicted = np.asarray(predict(x01)).argmax(axis=1)
        if name == "clean":
            clean_predicted = predicted
        for layer in layers:
            for target_name, classes in (("predicted", predicted), ("true", labels)):
                _, heat = cams[layer](np.asarray(to_input(x01)), classes, batch_size)
                mass = methods.centre_mass(heat)
                gradcam_rows += [dict(Model=model_label, Layer=layer, Image=i, Index=i, Label=int(labels[i]),
                                      Predicted=int(predicted[i]), Target=target_name, Class=int(classes[i]),
                                      Noise=name, Level=float(lv), CentreMass=float(mass[i]))
                                 for i in range(len(labels))]
                if name == "clean" or lv == level:
                    shown[(name, layer, target_name)] = (x01, heat)
    tables["gradcam"] = pd.DataFrame(gradcam_rows)
    for layer in layers:
        rows = []
        for i in range(len(labels)):
            row = []
            for name in ["clean"] + ([noise_name] if noise_name else []):
                x01, heat_pred = shown[(name, layer, "predicted")]
                row += [x01[i, ..., 0], pictures.overlay(x01[i, ..., 0], heat_pred[i]),
                        pictures.overlay(x01[i, ..., 0], shown[(name, layer, "true")][1][i])]
            rows.append(row)
        pics[f"gradcam_{layer}"] = pictures.grid(rows)

    # The attacked images beside the clean ones: the perturbation, and Grad-CAM of the predicted class.
    attack_record = None
    if attack is not None:
        adversarial, attack_record, norms = _attacked(model, info, pipeline, sets, attack, batch_size)
        attacked_pred = np.asarray(predict(adversarial)).argmax(axis=1)
        layer = layers[0]
        heat_clean, clean_pred = shown[("clean", layer, "predicted")][1], clean_predicted  # from Grad-CAM above
        _, heat_attacked = cams[layer](np.asarray(to_input(adversarial)), attacked_pred, batch_size)
        delta = adversarial - images
        spread = max(float(np.abs(delta).max()), 1e-12)
        pics["attack"] = pictures.grid([[images[i, ..., 0], adversarial[i, ..., 0],
                                         0.5 + delta[i, ..., 0] / (2 * spread),  # grey: no change
                                         pictures.overlay(images[i, ..., 0], heat_clean[i]),
                                         pictures.overlay(adversarial[i, ..., 0], heat_attacked[i])]
                                        for i in range(len(labels))])
        mass_clean, mass_attacked = methods.centre_mass(heat_clean), methods.centre_mass(heat_attacked)
        tables["attack"] = pd.DataFrame([dict(Model=model_label, Image=i, Label=int(labels[i]),
                                              Attack=attack_record["attack"], Norm=attack_record["norm"],
                                              Epsilon=attack_record["epsilon"], Space=attack_record["space"],
                                              EOT=attack_record["eot_samples"], PerturbationNorm=float(norms[i]),
                                              CleanPredicted=int(clean_pred[i]),
                                              AttackedPredicted=int(attacked_pred[i]),
                                              Layer=layer, CleanCentreMass=float(mass_clean[i]),
                                              AttackedCentreMass=float(mass_attacked[i]))
                                         for i in range(len(labels))])
        attack_record.update(layer=layer, clean_accuracy=float(np.mean(clean_pred == labels)),
                             attacked_accuracy=float(np.mean(attacked_pred == labels)))

    # Occlusion sensitivity on the clean images.
    drops, base = methods.occlusion(predict, images, labels, patch=patch, stride=stride, fill=background)
    tables["occlusion"] = pd.DataFrame([dict(Model=model_label, Image=i, Label=int(labels[i]), Row=r, Column=c,
                                             Y=r * stride, X=c * stride, Patch=patch, Drop=float(drops[i, r, c]),
                                             BaseProbability=float(base[i]))
                                        for i in range(len(labels)) for r in range(drops.shape[1])
                                        for c in range(drops.shape[2])])
    limit = max(float(np.abs(drops).max()), 1e-12)
    pics["occlusion"] = pictures.grid([[images[i, ..., 0], pictures.heat_colours(np.clip(drops[i] / limit, 0, 1))]
                                       for i in range(len(labels))])

    # Activation maps of the front end (or of the first convolution when there is none).
    front = [n for n in methods.spatial_layers(model) if n.startswith(FRONT_END)
             and not n.endswith("_noise")] or methods.conv_layers(model)[:1]
    maps = methods.activations(model, front, np.asarray(to_input(images[:4])), batch_size)
    act_rows = []
    for layer, values in maps.items():
        channels = min(values.shape[-1], MAX_CHANNELS)
        pics[f"activations_{layer}"] = pictures.grid(
            [[images[i, ..., 0]] + list(pictures.scaled(np.moveaxis(values[i, ..., :channels], -1, 0)))
             for i in range(len(values))])
        act_rows += [dict(Model=model_label, Layer=layer, Image=i, Channel=c, Mean=float(values[i, ..., c].mean()),
                          Max=float(values[i, ..., c].max())) for i in range(len(values))
                     for c in range(values.shape[-1])]
    tables["activations"] = pd.DataFrame(act_rows)

    # The most-activating test images, in one pass over the whole test set.
    topk_layer = layers[0]
    best = methods.top_k(model, topk_layer, _test_batches(pipeline, stats, size, batch_size, to_input), units, k)
    tables["topk"] = pd.DataFrame([dict(Model=model_label, Layer=topk_layer, Unit=u, Rank=r, Index=idx, Activation=a)
                                   for u, items in best.items() for r, (idx, a) in enumerate(items)])
    wanted = sorted({idx for items in best.values() for idx, _ in items})
    by_index = dict(zip(wanted, _images_at(pipeline, stats, size, wanted)))
    pics["topk"] = pictures.grid([[by_index[idx] for idx, _ in best[u]] for u in units])

    # The kernels actually used, and how far a trained bank moved from its initialisation.
    kernel_rows = []
    bank_layers = [n for n in methods.conv_layers(model) if n.startswith("v1_")] or methods.conv_layers(model)[:1]
    for layer in bank_layers:
        shown_kernels, drift = methods.kernel_drift(model.get_layer(layer))
        pics[f"kernels_{layer}"] = pictures.grid([list(pictures.scaled(shown_kernels[:MAX_CHANNELS]))], min_size=32)
        kernel_rows += [dict(Model=model_label, Layer=layer, Kernel=j, Trainable=bool(model.get_layer(layer).trainable),
                             RelativeL2=None if drift is None else float(drift[j])) for j in range(len(shown_kernels))]
    tables["kernels"] = pd.DataFrame(kernel_rows)
    summary = dict(model=model_label, base=arch.base, convolution=arch.convolution, layers=layers,
                   n_images=int(len(labels)), noise=noise_name, level=level, patch=patch, stride=stride,
                   topk_layer=topk_layer, units=list(units), k=k,
                   centre_mass={f"{n}@{lv:g}": float(g["CentreMass"].mean())
                                for (n, lv), g in tables["gradcam"][tables["gradcam"]["Target"] == "predicted"]
                                .groupby(["Noise", "Level"], sort=False)})
    if attack_record is not None:
        summary["attack"] = attack_record
    return Explained(tables, pics, summary)


def _test_dataset(pipeline, stats, size):
    splits = pipeline.splits if pipeline.splits is not None else pipeline.source.load()
    interp = stats["interpolation"]
    return splits.test.map(lambda x, y: resize(tf.cast(x, tf.float32), size, interp) / 255.0,
                           num_parallel_calls=tf.data.AUTOTUNE)


def _test_batches(pipeline, stats, size, batch_size, to_input):
    """``(model inputs, indices)`` over the whole test set, batch by batch."""
    start = 0
    for x01 in _test_dataset(pipeline, stats, size).batch(batch_size).prefetch(tf.data.AUTOTUNE):
        n = int(x01.shape[0])
        yield to_input(x01), np.arange(start, start + n)
        start += n


def _images_at(pipeline, stats, size, indices):
    """The [0, 1] test images at ``indices`` (sorted), as ``[H, W]`` arrays."""
    wanted, out = set(indices), {}
    for i, x01 in enumerate(_test_dataset(pipeline, stats, size)):
        if i in wanted:
            out[i] = x01.numpy()[..., 0]
            if len(out) == len(wanted):
                break
    return [out[i] for i in indices]


def write(folder, result: Explained):
    """Write ``result`` into ``folder``: ``<stem>.png``, ``<table>.csv`` and ``explain.json``."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for stem, table in result.tables.items():
        table.to_csv(folder / f"{stem}.csv", index=False)
    for stem, image in result.pictures.items():
        tf.io.write_file(str(folder / f"{stem}.png"), tf.io.encode_png(image))
    (folder / "explain.json").write_text(json.dumps(result.summary, indent=2) + "\n")
