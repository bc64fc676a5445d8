"""Look inside a Keras model: which layers train, how many parameters each has, and where in
an image the evidence for its output lies (Grad-CAM)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

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


def grad_cam(
    conv: keras.Model, head: Callable, images: np.ndarray, sign: float = 1.0
) -> np.ndarray:
    """Grad-CAM heat maps (Selvaraju et al., 2017): where in each image the evidence for the
    score lies, at the resolution of ``conv``'s feature maps.

    ``conv`` maps ``images`` to feature maps (n, h, w, channels); ``head`` maps those maps to
    one score per image. Each channel is weighted by the mean gradient of the score with
    respect to it; the weighted sum over channels, negative parts set to 0, is scaled so
    that each map's peak is 1. ``sign=-1`` looks for the evidence against the score (for a
    sigmoid "dog" unit: the evidence for "cat"). Returns an array (n, h, w).
    """
    import tensorflow as tf

    maps = tf.convert_to_tensor(conv(images, training=False))
    with tf.GradientTape() as tape:
        tape.watch(maps)
        score = sign * tf.reduce_sum(head(maps))  # each image's gradient is its own
    weights = tf.reduce_mean(tape.gradient(score, maps), axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1)).numpy()
    peak = cam.max(axis=(1, 2), keepdims=True)
    return cam / np.where(peak > 0, peak, 1.0)
