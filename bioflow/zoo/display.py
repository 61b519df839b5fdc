"""Text views of zoo cards for ``bioflow zoo list`` and ``bioflow zoo show``.

Every string of a card came from an entry, so control characters (terminal escape sequences,
carriage returns, newlines) are shown escaped (``\\x1b``), never sent to the terminal raw.
"""
import unicodedata


def terminal_safe(text):
    """``text`` with every control or format character written as a Python escape (``\\x1b``, ``\\n``)."""
    return "".join(repr(c)[1:-1] if unicodedata.category(c)[0] == "C" else c for c in str(text))


def _fmt(value, spec=".4f"):
    return "-" if value is None else format(value, spec)


def listing(cards, latest):
    """One row per entry version; ``latest`` maps names to their latest version."""
    rows = [("NAME", "VERSION", "MODEL", "BANK", "BASE", "CLEAN ACC", "PARAMS", "CREATED")]
    for c in cards:
        arch, metrics = c.get("architecture", {}), c.get("metrics", {})
        tag = " (latest)" if latest.get(c["name"]) == c["version"] else ""
        rows.append(tuple(terminal_safe(v) for v in (
            c["name"], c["version"] + tag, c.get("run", {}).get("model"), arch.get("convolution"), arch.get("base"),
            _fmt(metrics.get("clean_accuracy")), f"{c.get('parameters', {}).get('total_params', 0):,}",
            c.get("created"))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)


def describe_card(card, folder):
    """A readable summary of one card."""
    arch, metrics, data = card.get("architecture", {}), card.get("metrics", {}), card.get("data", {})
    params = card.get("parameters", {})
    run = card.get("run", {})
    lines = [
        f"{card['name']}@{card['version']}  ({folder})",
        f"  created      {card.get('created')}  git {card.get('git_commit') or 'unknown'}",
        "  versions     " + ", ".join(f"{k} {v}" for k, v in card.get("versions", {}).items()),
        f"  model        {run.get('model')} (trial {run.get('trial')}, seed {run.get('seed')}, "
        f"{run.get('epochs')} epochs, weights {run.get('weights') or 'none'})",
        f"  architecture base {arch.get('base')}, convolution {arch.get('convolution')}, bottleneck "
        f"{arch.get('bottleneck') or 'none'}, recurrence {arch.get('recurrence') or 'none'}",
        f"  parameters   {params.get('total_params', 0):,} total, {params.get('trainable_params', 0):,} trainable",
        f"  data         {data.get('dataset')} at {data.get('image_size')}px, mean {_fmt(data.get('mean'), '.3f')}, "
        f"std {_fmt(data.get('std'), '.3f')}",
        f"  clean acc    {_fmt(metrics.get('clean_accuracy'))}"
        + (f" on {metrics['n_images']} test images" if metrics.get("n_images") else " (not evaluated)"),
    ]
    if metrics.get("auc"):
        lines.append("  AUC          " + ", ".join(f"{k} {v:.3f}" for k, v in metrics["auc"].items()))
    if metrics.get("generalisation"):
        lines.append("  CIFAR-10G    " + ", ".join(f"{k} {v:.3f}" for k, v in metrics["generalisation"].items()))
    lines.append(f"  files        {', '.join(sorted(card.get('files', {})))}")
    return "\n".join(terminal_safe(line) for line in lines)
