"""A model's layer table and parameter totals, as text or as a JSON-ready dict."""
from bioflow.architecture import count_weights, parameter_counts


def _shape(layer):
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError):
        return None
    return [None if d is None else int(d) for d in shape]


def model_summary(model):
    """``{'name', 'total_params', 'trainable_params', 'non_trainable_params', 'layers': [...]}``.

    Each layer row has ``name``, ``class``, ``output_shape``, ``params`` and ``trainable``.
    """
    layers = [dict(name=layer.name, **{"class": type(layer).__name__}, output_shape=_shape(layer),
                   params=count_weights(layer.weights), trainable=bool(layer.trainable))
              for layer in model.layers]
    return dict(name=model.name, **parameter_counts(model), layers=layers)


def format_summary(summary):
    """Render :func:`model_summary` as a fixed-width table with totals."""
    rows = [("Layer", "Class", "Output shape", "Params", "Trainable")]
    for layer in summary["layers"]:
        shape = "(" + ", ".join("None" if d is None else str(d) for d in layer["output_shape"] or []) + ")"
        trainable = "yes" if layer["trainable"] else "no"
        rows.append((layer["name"], layer["class"], shape, f"{layer['params']:,}", trainable))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    line = "  ".join("-" * w for w in widths)
    out = [f"Model: {summary['name']}", line]
    for n, row in enumerate(rows):
        cells = (c.rjust(w) if i == 3 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append(line)
    out += [line,
            f"Total params:         {summary['total_params']:,}",
            f"Trainable params:     {summary['trainable_params']:,}",
            f"Non-trainable params: {summary['non_trainable_params']:,}"]
    return "\n".join(out)
