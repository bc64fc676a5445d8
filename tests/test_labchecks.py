"""The hidden tests' checks (labchecks/): the held-out shortcut of both labs, one mechanism.

A model that provably starts with a lab's frozen prefix is measured on the prefix's cached
output of the held-out photos; these tests hold it to the full pass on models with a changed
top (lab 2's fine-tuning) and refuse it for a model whose prefix was changed.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow

CUT = "block_15_add"


def fine_tuned_like(changed: str):
    """Photos -> probability through the ImageNet base cut at CUT, with the weights of the
    ``changed`` side ("top" or "bottom") moved a little, as training would, and a head."""
    import keras

    from labchecks.mobilenet import imagenet_base

    base = imagenet_base()
    bottom = keras.Model(base.input, base.get_layer(CUT).output, name="bottom")
    top = keras.Model(bottom.output, base.output, name="top")
    moved = top if changed == "top" else bottom
    rng = np.random.default_rng(0)
    for layer in moved.layers:
        if layer.weights and not isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([w + rng.normal(0, 1e-3, w.shape) for w in layer.get_weights()])
    inputs = keras.Input((224, 224, 3))
    x = bottom(keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs))
    x = keras.layers.GlobalAveragePooling2D()(top(x))
    keras.utils.set_random_seed(0)
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))


def test_a_fine_tuned_top_is_measured_on_the_bottoms_cached_output_as_in_full(
    offline_mirror, tmp_path, monkeypatch, report
):
    import time

    import tlcourse
    from labchecks import holdout
    from labchecks.mobilenet import bottom_extractor

    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    folder = offline_mirror / "holdout"
    extractor = bottom_extractor(CUT)
    tlcourse.cached_features(extractor, folder, verbose=False)  # what the grader prepares
    model = fine_tuned_like("top")
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
        f"           lab 2's prefix: {fast_seconds:.1f} s on its cached output, "
        f"{full_seconds:.1f} s in full, same outputs"
    )
    assert holdout.rest_after(fine_tuned_like("bottom"), extractor) is None  # goes in full
