"""Figures for the notebooks, drawn with matplotlib.

Each function returns a ``matplotlib.figure.Figure`` (built without pyplot, so a
notebook shows it once, as the cell's value, and a script can ``savefig`` it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .data import CLASS_NAMES


def _grid(n: int, ncols: int, cell: float = 2.2) -> tuple[Figure, np.ndarray]:
    nrows = max(1, -(-n // ncols))
    fig = Figure(figsize=(cell * ncols, cell * nrows + 0.3), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax in axes:
        ax.axis("off")
    return fig, axes


def show_images(
    images: np.ndarray,
    labels: Sequence[int],
    class_names: Sequence[str] = CLASS_NAMES,
    ncols: int = 4,
    title: str | None = None,
) -> Figure:
    """A grid of photos (values in [0, 255]), each titled with its class name."""
    fig, axes = _grid(len(images), ncols)
    for ax, image, label in zip(axes, images, labels):
        ax.imshow(np.clip(np.asarray(image) / 255.0, 0, 1))
        ax.set_title(class_names[int(label)])
    if title:
        fig.suptitle(title)
    return fig


def _as_history(history) -> dict[str, list[float]]:
    return dict(getattr(history, "history", history))


def plot_history(
    history, fine_tune_history=None, metrics: Sequence[str] = ("loss", "accuracy")
) -> Figure:
    """Learning curves (training and validation) for each metric.

    With ``fine_tune_history``, its epochs are appended and a dashed line marks where
    fine-tuning starts.
    """
    curves = _as_history(history)
    start = len(next(iter(curves.values())))
    if fine_tune_history is not None:
        extra = _as_history(fine_tune_history)
        curves = {key: list(curves[key]) + list(extra.get(key, [])) for key in curves}
    fig = Figure(figsize=(5 * len(metrics), 3.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    for ax, metric in zip(axes, metrics):
        for key, style in ((metric, "-"), (f"val_{metric}", "--")):
            if key in curves:
                epochs = np.arange(1, len(curves[key]) + 1)
                ax.plot(
                    epochs,
                    curves[key],
                    style,
                    marker="o",
                    markersize=3,
                    label="validation" if key.startswith("val_") else "training",
                )
        if fine_tune_history is not None:
            ax.axvline(start + 0.5, color="grey", linestyle=":", label="fine-tuning starts")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend()
    return fig


def confusion_matrix(
    y_true: Sequence[int], y_pred: Sequence[int], n_classes: int = 2
) -> np.ndarray:
    """Counts ``matrix[true, predicted]``."""
    matrix = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(matrix, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return matrix


def plot_confusion_matrix(
    y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str] = CLASS_NAMES
) -> Figure:
    """A labelled confusion matrix with the count in each cell."""
    matrix = confusion_matrix(y_true, y_pred, len(class_names))
    fig = Figure(figsize=(3.8, 3.4), layout="constrained")
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    for (row, col), count in np.ndenumerate(matrix):
        ax.text(
            col,
            row,
            str(count),
            ha="center",
            va="center",
            color="white" if count > matrix.max() / 2 else "black",
        )
    ax.set_xticks(range(len(class_names)), class_names)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return fig


def show_misclassified(
    paths: Sequence[Path],
    y_true: Sequence[int],
    dog_probability: Sequence[float],
    class_names: Sequence[str] = CLASS_NAMES,
    limit: int = 12,
    ncols: int = 4,
) -> Figure:
    """The wrongly classified photos, most confident mistakes first.

    Each title gives the true class, the predicted class and the model's confidence.
    """
    from .data import load_images

    y_true = np.asarray(y_true, int)
    probability = np.asarray(dog_probability, float).reshape(-1)
    predicted = (probability >= 0.5).astype(int)
    wrong = np.flatnonzero(predicted != y_true)
    confidence = np.where(predicted == 1, probability, 1 - probability)
    wrong = wrong[np.argsort(-confidence[wrong])][:limit]
    if len(wrong) == 0:
        fig = Figure(figsize=(4, 1))
        fig.text(0.5, 0.5, "No misclassified photos.", ha="center", va="center")
        return fig
    images = load_images([paths[i] for i in wrong], image_size=(160, 160))
    fig, axes = _grid(len(wrong), ncols, cell=2.4)
    for ax, image, index in zip(axes, images, wrong):
        ax.imshow(image / 255.0)
        ax.set_title(
            f"true {class_names[y_true[index]]}\nsaid {class_names[predicted[index]]} "
            f"({confidence[index]:.0%})",
            fontsize=9,
        )
    return fig
