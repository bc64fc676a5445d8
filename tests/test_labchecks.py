"""The hidden tests' checks (labchecks/): the held-out shortcut of both labs, one mechanism.

A model that provably starts with a lab's frozen prefix (lab 1: the base and its pooling;
lab 2: the base up to CUT) is measured on the prefix's cached output of the held-out
photos. These tests hold it to the full pass, on models whose rest differs from ImageNet's
(a new head; lab 2: a fine-tuned top too), and refuse it for a model whose prefix changed.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow

CUT = "block_15_add"


def model_on(prefix: str, changed: str):
    """Photos -> probability through the ImageNet base with a new head; the weights of the
    ``changed`` side ("rest" or "prefix") moved a little, as training would move them."""
    import keras

    from tlcourse.pretrained import imagenet_base

    base = imagenet_base()
    cut = base.get_layer(CUT).output if prefix == "bottom" else base.output
    bottom = keras.Model(base.input, cut, name="bottom")
    top = keras.Model(cut, base.output, name="top") if prefix == "bottom" else None
    moved = bottom if changed == "prefix" else top
    rng = np.random.default_rng(0)
    for layer in moved.layers if moved else []:
        if layer.weights and not isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([w + rng.normal(0, 1e-3, w.shape) for w in layer.get_weights()])
    inputs = keras.Input((224, 224, 3))
    x = bottom(keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs))
    x = keras.layers.GlobalAveragePooling2D()(top(x) if top else x)
    keras.utils.set_random_seed(0)
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))


@pytest.mark.parametrize("prefix", ["pooled", "bottom"], ids=["lab 1", "lab 2"])
def test_the_cached_prefix_gives_the_full_pass_outputs_and_only_when_it_is_unchanged(
    prefix, offline_mirror, tmp_path, monkeypatch, report
):
    import tlcourse
    from labchecks import holdout
    from labchecks.mobilenet import bottom_extractor, pooled_extractor

    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    folder = offline_mirror / "holdout"
    extractor = bottom_extractor(CUT) if prefix == "bottom" else pooled_extractor()
    tlcourse.cached_features(extractor, folder, verbose=False)  # what the grader prepares
    model = model_on(prefix, changed="rest")
    started = time.perf_counter()
    fast, labels, how = holdout.holdout_predictions(model, extractor, folder)
    fast_seconds = time.perf_counter() - started
    started = time.perf_counter()
    full, full_labels, _ = holdout.holdout_predictions(model, extractor, folder, reuse=False)
    full_seconds = time.perf_counter() - started
    assert how == holdout.REUSED
    assert np.array_equal(labels, full_labels)
    assert np.allclose(fast, full, atol=1e-4)
    report(
        f"           {prefix} prefix: {fast_seconds:.1f} s on its cached output, "
        f"{full_seconds:.1f} s in full, the same outputs"
    )
    assert holdout.rest_after(model_on(prefix, changed="prefix"), extractor) is None
