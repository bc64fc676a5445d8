"""Lab 1 (cats_vs_dogs): what each graded part must satisfy.

The hidden tests call :func:`part_a` to :func:`part_d` and :func:`held_out_points` on the
objects handed in; the self-checks (:data:`PARTS`, through :func:`tlcourse.checks.lab`) call
the same functions on the notebook's objects. Part E's self-check measures the validation
photos as the grader measures the held-out ones, with the same thresholds.
"""

from __future__ import annotations

import keras
import numpy as np

from ..data import CLASS_NAMES, image_files, labelled_files, load_images, split_dir
from ..pretrained import all_layers, changed_layers, imagenet_digests
from . import Part, band_points, check_validation_band, held_out_note

# The held-out accuracy from which each score is given (Part E), highest first.
HELD_OUT_BANDS = ((0.95, 2.0), (0.90, 1.0))


def part_a(class_counts) -> None:
    """The number of training photos of each class."""
    expected = {name: len(image_files(split_dir("train") / name)) for name in CLASS_NAMES}
    given = {str(key): int(value) for key, value in dict(class_counts).items()}
    assert given == expected, f"class_counts should be {expected}, got {given}"


def part_b(base_model) -> None:
    """MobileNetV2 without its top, with ImageNet's weights, every layer frozen."""
    assert isinstance(base_model, keras.Model), "base_model should be a keras.Model"
    assert tuple(base_model.input_shape) == (None, 224, 224, 3), (
        f"input shape {base_model.input_shape}, expected (None, 224, 224, 3)"
    )
    assert tuple(base_model.output_shape) == (None, 7, 7, 1280), (
        f"output shape {base_model.output_shape}: load it without the top (include_top=False)"
    )
    weighted = {layer.name: layer for layer in base_model.layers if layer.weights}
    assert set(weighted) == set(imagenet_digests()), "base_model is not MobileNetV2 without its top"
    changed = changed_layers(weighted.values())
    assert not changed, f"layer {changed[0]} does not hold the ImageNet weights"
    assert all(not layer.trainable for layer in weighted.values()), (
        "every layer of base_model must have trainable == False"
    )


def _last_activation(model):
    """The activation of the last layer that computes something (Dropout passes values on)."""
    for layer in reversed(model.layers):
        if isinstance(layer, keras.Model):
            return _last_activation(layer)
        if not isinstance(layer, keras.layers.Dropout):
            return getattr(layer, "activation", None)
    return None


def part_c(model) -> None:
    """Photos in [0, 255] to one dog probability: the base, pooling, a sigmoid head, a
    binary cross-entropy that agrees with it."""
    assert isinstance(model, keras.Model), "model should be a keras.Model"
    every = list(all_layers(model))
    assert tuple(model.input_shape) == (None, 224, 224, 3), (
        f"model input shape {model.input_shape}, expected (None, 224, 224, 3)"
    )
    assert tuple(model.output_shape) in {(None, 1), (None,)}, (
        f"model output shape {model.output_shape}: it should return one number per image, "
        "shape (None, 1)"
    )
    assert not any(
        layer.name == "predictions"
        or (isinstance(layer, keras.layers.Dense) and layer.units == 1000)
        for layer in every
    ), (
        "the ImageNet classifier (1000 classes) is still in the model: load the base with "
        "include_top=False"
    )
    assert not any(isinstance(layer, keras.layers.Flatten) for layer in every), (
        "use global average pooling, not Flatten"
    )
    assert any(isinstance(layer, keras.layers.GlobalAveragePooling2D) for layer in every), (
        "the head should start with GlobalAveragePooling2D"
    )
    sigmoid = getattr(_last_activation(model), "__name__", "") == "sigmoid"
    loss = model.loss
    assert loss is not None, "compile the model"
    if isinstance(loss, str):
        name, from_logits = loss, False
    else:
        name = str(getattr(loss, "name", getattr(loss, "__name__", "")))
        from_logits = bool(getattr(loss, "from_logits", False))
    assert "binary_crossentropy" in name, f"use a binary cross-entropy loss, not {name or loss!r}"
    assert sigmoid != from_logits, (
        "output activation and loss disagree: a sigmoid output needs from_logits=False, a "
        "linear output from_logits=True"
    )
    assert sigmoid, (
        "the contract asks for a probability: end the model with a sigmoid "
        "(activation='sigmoid' on the last Dense layer, or an Activation('sigmoid') layer "
        "after it)"
    )


def part_d(model) -> None:
    """After training: the base frozen and exactly as loaded, only the head trainable."""
    names = set(imagenet_digests())
    base, head = {}, []
    for layer in model.layers:
        if isinstance(layer, keras.Model) and any(s.name == "out_relu" for s in layer.layers):
            base.update({sub.name: sub for sub in layer.layers})
        elif layer.name in names:
            base[layer.name] = layer
        else:
            head.append(layer)
    missing = sorted(names - set(base))
    assert not missing, f"model does not contain MobileNetV2 (missing layers such as {missing[:3]})"
    assert all(not base[name].trainable for name in names), (
        "after training, every layer of the base must still have trainable == False"
    )
    changed = changed_layers(base[name] for name in names)
    assert not changed, (
        f"the base changed during training (layer {changed[0]}): it must stay exactly as loaded"
    )
    head_weights = {id(weight) for layer in head for weight in layer.weights}
    assert {id(weight) for weight in model.trainable_weights} == head_weights, (
        "the model's trainable parameters must be exactly the head's"
    )


def held_out_points(accuracy: float, measured_on: str = "held-out") -> float:
    """Part E's points for an accuracy (raises below the lowest band)."""
    return band_points(accuracy, HELD_OUT_BANDS, measured_on)


def part_e(model, val_probability, val_accuracy) -> None:
    """Self-check: ``val_probability`` is ``model``'s, ``val_accuracy`` follows from it, and
    the validation accuracy is in the band of full marks."""
    paths, labels = labelled_files(split_dir("validation"))
    probability = np.asarray(val_probability, dtype="float64").reshape(-1)
    assert probability.shape == (len(paths),), (
        f"val_probability should hold one number per validation photo ({len(paths)}), not "
        f"{np.size(val_probability)}"
    )
    assert np.all((probability >= 0) & (probability <= 1)), (
        "val_probability should hold probabilities, in [0, 1]"
    )
    sample = [0, 1, len(paths) - 2, len(paths) - 1]  # two cats, two dogs
    photos = load_images([paths[index] for index in sample])
    said = np.asarray(model(photos, training=False), dtype="float64").reshape(-1)
    assert np.allclose(said, probability[sample], atol=0.02), (
        f"val_probability should be what model says for the validation photos: for photos "
        f"{sample} model says {np.round(said, 3).tolist()}, val_probability holds "
        f"{np.round(probability[sample], 3).tolist()}"
    )
    accuracy = float(np.mean((probability >= 0.5) == (np.asarray(labels) == 1)))
    assert abs(float(val_accuracy) - accuracy) < 1e-6, (
        f"val_accuracy is {float(val_accuracy):.4f}, but val_probability is right on "
        f"{accuracy:.4f} of the validation photos (threshold 0.5)"
    )
    check_validation_band(accuracy, HELD_OUT_BANDS)


HELD_OUT = held_out_note(HELD_OUT_BANDS)

PARTS = {
    "A": Part(
        "Part A",
        1,
        ("class_counts",),
        part_a,
        (
            "Each class is a folder of .jpg files under the training folder: count the files.",
            (
                "tlcourse.split_dir('train') / 'cats' is a pathlib.Path; its .glob('*.jpg') lists "
                "the photos. Keys 'cats' and 'dogs' (tlcourse.CLASS_NAMES), values ints."
            ),
        ),
    ),
    "B": Part(
        "Part B",
        2,
        ("base_model",),
        part_b,
        (
            (
                "You want MobileNetV2's convolutional layers only (the bottom), with the weights "
                "learned on ImageNet, and none of them may learn here."
            ),
            (
                "keras.applications.MobileNetV2(input_shape=..., include_top=..., weights=...): "
                "which include_top drops the 1000-class top? Then set the model's .trainable."
            ),
        ),
    ),
    "C": Part(
        "Part C",
        2,
        ("model",),
        part_c,
        (
            (
                "Photos in [0, 255] go in, one dog probability comes out: rescale, run the frozen "
                "base in inference mode, pool, then a one-unit head that gives a probability."
            ),
            (
                "layers.Rescaling(scale, offset) maps [0, 255] to [-1, 1]; call the base with "
                "training=False; layers.GlobalAveragePooling2D, layers.Dropout, "
                "layers.Dense(units, activation=...); keras.Model(inputs, outputs); compile with a "
                "loss that agrees with a sigmoid output."
            ),
            (
                "Check the names: the Dropout layer 'head_dropout', the Dense layer "
                "'dog_probability' (Part D finds them by name), and the pooled tensor kept in "
                "`pooled`."
            ),
        ),
    ),
    "D": Part(
        "Part D",
        2,
        ("model",),
        part_d,
        (
            (
                "The frozen part up to `pooled` gives the same numbers every time: compute them "
                "once, then train only the head on them. Training must not touch the base."
            ),
            (
                "keras.Model(inputs, pooled) is the extractor; tlcourse.cached_features(extractor, "
                "split) gives (features, labels); a keras.Sequential of keras.Input((1280,)) and "
                "model.get_layer(...) for the head's two layers shares them with model; compile it "
                "and fit on the features."
            ),
            (
                "If the base changed: build it again from Part B and train only the small head "
                "model; never set the base trainable in this lab."
            ),
        ),
    ),
    "E": Part(
        "Part E",
        2,
        ("model", "val_probability", "val_accuracy"),
        part_e,
        (
            (
                "The head trained in Part D is model's head: what it says for the validation "
                "features is what model says for the validation photos."
            ),
            (
                "head.predict(features) gives one probability per row; ravel() makes it flat; "
                "compare it with 0.5 and with the labels, and take the mean of the matches."
            ),
        ),
        note=HELD_OUT,
    ),
}
