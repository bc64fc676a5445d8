"""Linear probes: how much of a task a linear classifier can read from a layer's features."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers


def pooled_outputs(base: keras.Model, layer_names: list[str]) -> keras.Model:
    """A model with one output per named layer of ``base``: its feature maps averaged over
    height and width (one number per channel)."""
    outputs = [
        layers.GlobalAveragePooling2D(name=f"pooled_{name}")(base.get_layer(name).output)
        for name in layer_names
    ]
    return keras.Model(base.input, outputs)


def linear_probe_accuracy(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    l2: float = 1.0,
) -> float:
    """Test accuracy of a linear classifier fitted on (``train_x``, ``train_y``).

    The classifier is ridge regression on one-hot targets (one linear score per class, the
    highest wins), on features standardised with the training set's mean and spread: a
    closed-form cousin of a ``Dense`` softmax head, fitted in milliseconds.
    """
    mean, std = train_x.mean(axis=0), train_x.std(axis=0) + 1e-8
    train = np.hstack([(train_x - mean) / std, np.ones((len(train_x), 1))])
    test = np.hstack([(test_x - mean) / std, np.ones((len(test_x), 1))])
    classes = np.unique(train_y)
    targets = (train_y[:, None] == classes[None, :]).astype("float64")
    penalty = l2 * np.eye(train.shape[1])
    penalty[-1, -1] = 0.0  # the bias is not penalised
    weights = np.linalg.solve(train.T @ train + penalty, train.T @ targets)
    predicted = classes[np.argmax(test @ weights, axis=1)]
    return float(np.mean(predicted == test_y))
