"""``bioflow config``: the resolved configuration, one line per key, with where it came from."""
from bioflow import config_trace, safe_gin


def resolved_view(gin_files=(), bindings=()):
    """The bindings in force, one per key in order of first appearance, as plain dicts.

    Each has ``key``, ``value`` (gin text), ``source`` (``file:line``, or ``--gin-param:N``),
    ``default`` (the Python default as gin text, or None when there is none), ``differs`` and
    ``overrides`` (where the key was bound before, with the value it had there).
    """
    trace = config_trace.trace(gin_files, bindings)
    rows = []
    for key, bound in trace.resolved().items():
        final = bound[-1]
        default = config_trace.python_default(key)
        has_default = default is not config_trace.NO_DEFAULT
        rows.append({
            "key": key, "value": final.text, "source": final.where,
            "default": safe_gin.gin_text(default) if has_default else None,
            "differs": not config_trace.is_default(final),
            "overrides": [{"source": b.where, "value": b.text} for b in bound[:-1] if b.where != final.where],
        })
    return {"files": [{"file": name, "depth": depth} for name, depth in trace.files], "bindings": rows}


def format_view(view, gin_files=()):
    """The view as text: a header, then ``* key = value   file:line`` (``*``: not the Python default)."""
    rows = view["bindings"]
    files = len({f["file"] for f in view["files"]})
    lines = [f"# {' '.join(gin_files) or '(no --gin files)'}: {len(rows)} bindings from {files} files; "
             "* marks a value that differs from the Python default."]
    width = min(max((len(r["key"]) + len(r["value"]) for r in rows), default=0) + 3, 72)
    for r in rows:
        text = f"{r['key']} = {r['value']}"
        note = r["source"]
        if not r["differs"]:
            note += "  (the Python default)"
        elif r["default"] is not None:
            note += f"  (default {r['default']})"
        for earlier in r["overrides"]:
            note += f"; overrides {earlier['value']} at {earlier['source']}"
        lines.append(f"{'*' if r['differs'] else ' '} {text.ljust(width)}  # {note}")
    return "\n".join(lines)
