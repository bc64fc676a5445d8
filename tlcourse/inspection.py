"""Look inside a Keras model: which layers train, and how many parameters each has."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Keras is imported when a model is inspected, not with tlcourse
    import keras


def count_params(model: keras.Model) -> dict[str, int]:
    """Trainable, non-trainable and total parameter counts of ``model``."""
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    frozen = sum(int(w.numpy().size) for w in model.non_trainable_weights)
    return {"trainable": trainable, "non_trainable": frozen, "total": trainable + frozen}


def layer_rows(model: keras.Model, expand_nested: bool = False) -> list[dict]:
    """One row per layer: name, type, output shape, parameters, trainable flag."""
    import keras

    rows = []
    for layer in model.layers:
        try:
            shape = str(layer.output.shape)
        except (AttributeError, ValueError):
            shape = "?"
        rows.append(
            {
                "name": layer.name,
                "type": type(layer).__name__,
                "output_shape": shape,
                "params": int(sum(w.numpy().size for w in layer.weights)),
                "trainable": bool(layer.trainable),
            }
        )
        if expand_nested and isinstance(layer, keras.Model):
            for row in layer_rows(layer, expand_nested=True):
                rows.append({**row, "name": f"{layer.name}/{row['name']}"})
    return rows


def layer_table(model: keras.Model, expand_nested: bool = False, limit: int | None = None) -> str:
    """A plain-text table of the layers and the parameter totals."""
    rows = layer_rows(model, expand_nested)
    shown = (
        rows if limit is None or len(rows) <= limit else rows[: limit // 2] + rows[-limit // 2 :]
    )
    widths = {key: max(len(key), *(len(str(r[key])) for r in shown)) for key in shown[0]}
    line = "  ".join(f"{key:<{widths[key]}}" for key in widths)
    out = [line, "-" * len(line)]
    for index, row in enumerate(shown):
        if limit is not None and len(rows) > limit and index == limit // 2:
            out.append(f"... {len(rows) - len(shown)} more layers ...")
        out.append("  ".join(f"{row[key]!s:<{widths[key]}}" for key in widths))
    counts = count_params(model)
    out.append("-" * len(line))
    out.append(
        f"trainable params: {counts['trainable']:,}   non-trainable params: "
        f"{counts['non_trainable']:,}   total: {counts['total']:,}"
    )
    return "\n".join(out)
