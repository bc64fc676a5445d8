"""Linear probes (tlcourse.probe): they read a linear task, not noise, and pool any layer."""

import keras
import numpy as np
from keras import layers

from tlcourse.probe import linear_probe_accuracy, pooled_outputs


def test_a_linear_probe_reads_a_linear_task_and_not_noise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 20)) * rng.uniform(0.01, 100, 20)  # very different scales
    y = (x @ rng.normal(size=20) > 0).astype(int)
    assert linear_probe_accuracy(x[:200], y[:200], x[200:], y[200:]) > 0.9
    noise = rng.integers(0, 2, 400)
    assert abs(linear_probe_accuracy(x[:200], noise[:200], x[200:], noise[200:]) - 0.5) < 0.1


def test_a_linear_probe_tells_many_classes_by_their_labels():
    rng = np.random.default_rng(1)
    labels = np.repeat([5, 7, 9], 60)
    centres = {5: [3, 0], 7: [0, 3], 9: [-3, -3]}
    x = np.array([centres[label] for label in labels]) + rng.normal(0, 0.5, (180, 2))
    order = rng.permutation(180)
    x, labels = x[order], labels[order]
    assert linear_probe_accuracy(x[:90], labels[:90], x[90:], labels[90:]) == 1.0


def test_pooled_outputs_gives_one_vector_per_named_layer():
    inputs = keras.Input((16, 16, 3))
    a = layers.Conv2D(4, 3, name="a")(inputs)
    b = layers.Conv2D(6, 3, strides=2, name="b")(a)
    model = keras.Model(inputs, b)
    outputs = pooled_outputs(model, ["a", "b"]).predict(np.ones((2, 16, 16, 3)), verbose=0)
    assert [o.shape for o in outputs] == [(2, 4), (2, 6)]
    expected = model.get_layer("a").output
    maps = keras.Model(inputs, expected).predict(np.ones((2, 16, 16, 3)), verbose=0)
    np.testing.assert_allclose(outputs[0], maps.mean(axis=(1, 2)), rtol=1e-5)
