"""Lab 2 (fine_tuning): what each graded part must satisfy.

The hidden tests call :func:`part_a` to :func:`part_d`, :func:`part_e_model` and
:func:`held_out_points` on the objects handed in; the self-checks (:data:`PARTS`, through
:func:`tlcourse.checks.lab`) call the same functions on the notebook's objects. Part D
compares the fine-tuned head with the probe as Part C's check found it (:func:`probe_state`),
since fine-tuning changes the probe's layers. Part E's self-check measures the validation
photos as the grader measures the held-out ones, with the same thresholds.
"""

from __future__ import annotations

import functools

import keras
import numpy as np

from ..data import labelled_files, load_images, split_dir
from ..features import feature_file
from ..pretrained import all_layers, bottom_extractor, changed_layers, imagenet_digests, split_at
from . import Part, band_points, check_validation_band, held_out_note

# The held-out accuracy from which each score is given (Part E), highest first.
HELD_OUT_BANDS = ((0.98, 2.0), (0.97, 1.0))
SAMPLE_EVERY = 10  # Parts C and D sample every 10th validation photo (100, half of them dogs)


def _weighted(model) -> dict:
    """``{name: layer}`` of ``model``'s layers with weights, nested models' included."""
    return {
        layer.name: layer
        for layer in all_layers(model)
        if layer.weights and not isinstance(layer, keras.Model)
    }


def _outputs(model, inputs, batch_size: int = 100) -> np.ndarray:
    """``model``'s outputs for ``inputs`` in inference mode, as float64: called directly, a
    batch at a time (``predict`` would first build a function, slower for a few batches)."""
    inputs = np.asarray(inputs, dtype="float32")
    return np.concatenate(
        [
            np.asarray(model(inputs[start : start + batch_size], training=False), dtype="float64")
            for start in range(0, len(inputs), batch_size)
        ]
    )


def part_a(bottom, top, cut: str) -> None:
    """The base cut at ``cut``: a frozen bottom and a top, both with ImageNet's weights."""
    assert isinstance(bottom, keras.Model) and isinstance(top, keras.Model), (
        "bottom and top should both be keras.Model objects"
    )
    below, above = split_at(cut)
    cut_shape = tuple(bottom_extractor(cut).output_shape)
    assert tuple(bottom.input_shape) == (None, 224, 224, 3), (
        f"bottom's input shape is {bottom.input_shape}, expected (None, 224, 224, 3): start at "
        "the base's input"
    )
    assert tuple(bottom.output_shape) == cut_shape, (
        f"bottom's output shape is {bottom.output_shape}, but the output of {cut} is "
        f"{cut_shape}: end the bottom at layer {cut}"
    )
    b = _weighted(bottom)
    assert set(b) == set(below), (
        f"bottom should hold exactly MobileNetV2's layers up to {cut}: unexpected "
        f"{[n for n in b if n not in below][:3]}, missing {[n for n in below if n not in b][:3]}"
    )
    changed = changed_layers(b.values(), names=below)
    assert not changed, (
        f"layer {changed[0]} of bottom does not hold the ImageNet weights (load the base with "
        "weights='imagenet')"
    )
    assert not any(layer.trainable for layer in b.values()), (
        "freeze the bottom: set its trainable attribute to False"
    )
    t = _weighted(top)
    assert set(t) == set(above), (
        f"top should hold exactly MobileNetV2's layers after {cut}: unexpected "
        f"{[n for n in t if n not in above][:3]}, missing {[n for n in above if n not in t][:3]}"
    )
    assert tuple(top.input_shape) == cut_shape, (
        f"top's input shape is {top.input_shape}, expected {cut_shape}: start the top at the "
        f"output of {cut}"
    )
    assert tuple(top.output_shape) == (None, 7, 7, 1280), (
        f"top's output shape is {top.output_shape}, expected (None, 7, 7, 1280): end it at "
        "the base's output"
    )
    changed = changed_layers(t.values(), names=above)
    assert not changed, f"layer {changed[0]} of top does not hold the ImageNet weights"


def part_b_summary(train_x, train_y, val_x, val_y) -> dict:
    """What Part B is checked on: the cached arrays' shapes, labels and the mean of their
    first and last rows (small enough to hand in instead of the arrays)."""

    def summary(x, y) -> dict:
        x, y = np.asarray(x), np.asarray(y)
        rows = x.ndim == 4 and len(x) > 0
        return {
            "x_shape": list(x.shape),
            "y_shape": list(y.shape),
            "dogs": float(y.sum()),
            "end_labels": [float(v) for v in y.reshape(-1)[[0, -1]]] if y.size else [],
            "end_means": [x[i].mean(axis=(0, 1)).tolist() for i in (0, -1)] if rows else [],
        }

    return {"train": summary(train_x, train_y), "validation": summary(val_x, val_y)}


def part_b(summary: dict, cut: str) -> None:
    """The bottom's output of every training and validation photo, in the course's order."""
    extractor = bottom_extractor(cut)
    for split, name in (("train", "train_x"), ("validation", "val_x")):
        given = summary[split]
        paths, labels = labelled_files(split_dir(split))
        expected = [len(paths), *extractor.output_shape[1:]]
        assert given["x_shape"] == expected, (
            f"{name} has shape {tuple(given['x_shape'])}, expected {tuple(expected)}: the "
            f"bottom's output of every {split} photo"
        )
        assert given["y_shape"] in ([len(paths)], [len(paths), 1]), (
            f"the {split} labels have shape {tuple(given['y_shape'])}, expected ({len(paths)},)"
        )
        assert given["dogs"] == sum(labels) and given["end_labels"] == [
            float(labels[0]),
            float(labels[-1]),
        ], (
            f"the {split} labels are not those tlcourse.cached_features returns (0 = cat, "
            "1 = dog, cats first)"
        )
        ends = load_images([paths[0], paths[-1]])
        reference = _outputs(extractor, ends).mean(axis=(1, 2))
        assert np.allclose(given["end_means"], reference, rtol=1e-3, atol=1e-3), (
            f"{name} is not the bottom's output of the {split} photos: preprocess with "
            "Rescaling(1 / 127.5, offset=-1), then bottom, and keep the order of "
            "tlcourse.cached_features"
        )


@functools.cache
def validation_sample(cut: str) -> tuple[np.ndarray, np.ndarray]:
    """``(bottom outputs, labels)`` of every 10th validation photo: from the course's cache
    when the bottom's output of the validation photos is there, else computed; once per
    process."""
    extractor = bottom_extractor(cut)
    folder = split_dir("validation")
    paths, labels = labelled_files(folder)
    pick = list(range(0, len(paths), SAMPLE_EVERY))
    chosen = np.asarray(labels, dtype="float32")[pick]
    store = feature_file(extractor, folder)
    if store.exists():
        with np.load(store) as saved:
            return saved["features"][pick], chosen
    return _outputs(extractor, load_images([paths[i] for i in pick]), 20).astype("float32"), chosen


def last_dense_kernel(model) -> np.ndarray | None:
    """A copy of the kernel of ``model``'s last Dense layer (None when it has none)."""
    dense = [layer for layer in all_layers(model) if isinstance(layer, keras.layers.Dense)]
    return np.array(dense[-1].kernel, dtype="float64") if dense else None


def sample_accuracy(model, cut: str) -> float:
    """The share of the validation sample that ``model`` (of the bottom's output) calls
    right (a dog, label 1, at 0.5 or more)."""
    inputs, labels = validation_sample(cut)
    outputs = _outputs(model, inputs).reshape(-1)
    return float(np.mean((outputs >= 0.5) == (labels == 1)))


def probe_state(probe_model, cut: str) -> dict | None:
    """What Part D compares the fine-tuned model with, kept before fine-tuning changes the
    probe's layers: its last Dense kernel (``head``) and its accuracy on the validation
    sample; None when ``probe_model`` cannot give them."""
    try:
        return {
            "head": last_dense_kernel(probe_model),
            "accuracy": sample_accuracy(probe_model, cut),
        }
    except Exception:  # noqa: BLE001 - not a model of the cached tensors: Part C says why
        return None


def part_c(probe_model, probe_val_accuracy, cut: str, state: dict | None) -> None:
    """The linear probe: the frozen top, a new sigmoid head that alone trained, and trained
    (``state``: :func:`probe_state` of it, taken first)."""
    assert isinstance(probe_model, keras.Model), "probe_model should be a keras.Model"
    _, above = split_at(cut)
    cut_shape = tuple(bottom_extractor(cut).output_shape)
    assert tuple(probe_model.input_shape) == cut_shape, (
        f"probe_model's input shape is {probe_model.input_shape}: it should take the cached "
        f"tensors, {cut_shape}"
    )
    assert tuple(probe_model.output_shape) in {(None, 1), (None,)}, (
        f"probe_model's output shape is {probe_model.output_shape}: it should return one "
        "number per photo"
    )
    layers = _weighted(probe_model)
    missing = [n for n in above if n not in layers]
    assert not missing, f"probe_model should run the top (layers such as {missing[:3]} are missing)"
    changed = changed_layers(layers.values(), names=above)
    assert not changed, (
        f"the top changed while the probe trained (layer {changed[0]}): freeze it "
        "(set its trainable attribute to False)"
    )
    head = [layer for name, layer in layers.items() if name not in imagenet_digests()]
    assert any(isinstance(layer, keras.layers.Dense) for layer in head), (
        "probe_model should end with a new Dense head"
    )
    trainable = {id(v) for v in probe_model.trainable_weights}
    assert trainable == {id(v) for layer in head for v in layer.trainable_weights}, (
        "in the probe only the head trains: freeze the top (its trainable attribute)"
    )
    inputs, _ = validation_sample(cut)
    outputs = _outputs(probe_model, inputs).reshape(-1)
    assert np.all((outputs >= 0) & (outputs <= 1)), (
        "probe_model should return probabilities: end the head with a sigmoid"
    )
    accuracy = state["accuracy"] if state else 0.0
    assert accuracy >= 0.9, (
        f"probe_model is right on {accuracy:.0%} of 100 validation photos: train the head (a "
        "trained probe gets about 98 %)"
    )
    assert 0 <= float(probe_val_accuracy) <= 1, (
        "probe_val_accuracy should be the validation accuracy, a fraction between 0 and 1, "
        f"not {probe_val_accuracy!r}"
    )


def _batch_norm_moves(model) -> list[str]:
    """Names of ``model``'s BatchNormalization layers whose statistics a training step on a
    random batch changes (they are restored afterwards)."""
    norms = [
        layer for layer in all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)
    ]
    saved = [layer.get_weights() for layer in norms]
    shape = tuple(size or 1 for size in model.input_shape[1:])
    batch = np.random.default_rng(0).uniform(-1, 1, (2, *shape)).astype("float32")
    model(batch, training=True)
    moved = [
        layer.name
        for layer, weights in zip(norms, saved)
        if not all(np.array_equal(a, b) for a, b in zip(weights, layer.get_weights()))
    ]
    for layer, weights in zip(norms, saved):
        layer.set_weights(weights)
    return moved


def part_d(fine_tuned_model, bottom, probe: dict | None, cut: str, rate_max: float) -> None:
    """LP-FT: the bottom untouched and frozen, exactly the top (BatchNormalization frozen)
    and the head trained, at most at ``rate_max``, starting from the trained probe
    (``probe``: Part C's :func:`probe_state`)."""
    below, above = split_at(cut)
    b = _weighted(bottom)
    changed = changed_layers(b.values(), names=below)
    assert not changed, (
        f"bottom should stay MobileNetV2 up to {cut} with ImageNet's weights (layer "
        f"{changed[0]} is missing or changed)"
    )
    assert not any(layer.trainable for layer in b.values()), (
        "the bottom must stay frozen (its trainable attribute False)"
    )
    assert isinstance(fine_tuned_model, keras.Model), "fine_tuned_model should be a keras.Model"
    layers = _weighted(fine_tuned_model)
    missing = [n for n in above if n not in layers]
    assert not missing, (
        f"fine_tuned_model should run the top (layers such as {missing[:3]} are missing)"
    )
    changed = changed_layers(layers.values(), names=[n for n in below if n in layers])
    assert not changed, (
        f"the bottom's layer {changed[0]} changed: the layers up to {cut} must keep ImageNet's "
        "weights"
    )
    moved = _batch_norm_moves(fine_tuned_model)
    assert not moved, (
        f"BatchNormalization layer {moved[0]} updates its statistics when trained: freeze the "
        "BatchNormalization layers (trainable attribute False) to keep them in inference mode"
    )
    weighted = imagenet_digests()
    head = [layer for name, layer in layers.items() if name not in weighted]
    intended = {n for n in above if not isinstance(layers[n], keras.layers.BatchNormalization)} | {
        layer.name for layer in head
    }
    trainable = {id(v) for v in fine_tuned_model.trainable_weights}
    training = {n for n, layer in layers.items() if any(id(v) in trainable for v in layer.weights)}
    extra = sorted(training - intended)
    norms = [n for n in extra if isinstance(layers[n], keras.layers.BatchNormalization)]
    assert not norms, f"BatchNormalization layers must stay frozen, but {norms[:3]} train"
    assert not extra, f"only the top's layers and the head should train, not {extra[:3]}"
    lacking = sorted(intended - training)
    assert not lacking, (
        "every layer of the top except BatchNormalization should train, and the head: "
        f"{lacking[:3]} do not (make the top trainable, then freeze the BatchNormalization "
        "layers, then compile)"
    )
    assert getattr(fine_tuned_model, "optimizer", None) is not None, "compile fine_tuned_model"
    rate = float(np.asarray(fine_tuned_model.optimizer.learning_rate))
    assert 0 < rate <= rate_max, (
        f"learning rate {rate:g} is too high for fine-tuning: use at most {rate_max:g}"
    )
    tunable = [n for n in above if n in intended]
    assert len(changed_layers(layers.values(), names=tunable)) == len(tunable), (
        "the top has not learned: train fine_tuned_model on the cached tensors"
    )
    assert probe, (
        "probe_model (Part C) should be a Keras model of the cached tensors with a Dense head: "
        "fine-tuning starts from it"
    )
    tuned, probed = last_dense_kernel(fine_tuned_model), probe["head"]
    assert tuned is not None and probed is not None and tuned.shape == probed.shape, (
        "fine_tuned_model and probe_model should end with the same Dense head"
    )
    drift = float(np.linalg.norm(tuned - probed) / np.linalg.norm(probed))
    assert drift < 0.25, (
        "fine-tuning should start from the probe's trained head (the same layers): "
        f"fine_tuned_model's head differs from probe_model's by {drift:.0%}"
    )
    assert probe["accuracy"] >= 0.9, (
        "fine-tuning should start from a trained probe, but probe_model as Part C had it is "
        f"right on only {probe['accuracy']:.0%} of 100 validation photos: train its head "
        "first, with the top frozen"
    )
    accuracy = sample_accuracy(fine_tuned_model, cut)
    assert accuracy >= 0.9, (
        f"fine_tuned_model is right on only {accuracy:.0%} of 100 validation photos: the "
        "fine-tuning damaged the model"
    )


def part_e_model(model, fine_tuned_model, cut: str) -> None:
    """``model``: photos in, the frozen bottom, then fine_tuned_model's top and head."""
    assert isinstance(model, keras.Model), "model should be a keras.Model"
    assert tuple(model.input_shape) == (None, 224, 224, 3), (
        f"model's input shape is {model.input_shape}, expected (None, 224, 224, 3)"
    )
    assert tuple(model.output_shape) in {(None, 1), (None,)}, (
        f"model should return one number per image, not outputs of shape {model.output_shape}"
    )
    below, above = split_at(cut)
    layers = _weighted(model)
    changed = changed_layers(layers.values(), names=below)
    assert not changed, (
        f"model should start with the frozen bottom, MobileNetV2 up to {cut} with ImageNet's "
        f"weights (layer {changed[0]} is missing or differs)"
    )
    tuned = _weighted(fine_tuned_model)
    other = [
        n
        for n in above
        if n not in layers
        or n not in tuned
        or not all(
            np.array_equal(a, b) for a, b in zip(layers[n].get_weights(), tuned[n].get_weights())
        )
    ]
    assert not other, (
        f"model should use the fine-tuned top, the layers of fine_tuned_model ({other[0]} differs)"
    )
    heads = [
        [layer for layer in all_layers(m) if isinstance(layer, keras.layers.Dense)]
        for m in (model, fine_tuned_model)
    ]
    assert all(heads) and all(
        np.array_equal(a, b) for a, b in zip(heads[0][-1].get_weights(), heads[1][-1].get_weights())
    ), "model should end with fine_tuned_model's head"


def held_out_points(accuracy: float, measured_on: str = "held-out") -> float:
    """Part E's points for an accuracy (raises below the lowest band)."""
    return band_points(accuracy, HELD_OUT_BANDS, measured_on)


def part_e(model, fine_tuned_model, val_x, cut: str) -> None:
    """Self-check: :func:`part_e_model`, no custom Python layer (the clean kernel could not
    load it), ``model`` gives fine_tuned_model's answers from photos, and the validation
    accuracy is in the band of full marks."""
    part_e_model(model, fine_tuned_model, cut)
    custom = [layer.name for layer in all_layers(model) if isinstance(layer, keras.layers.Lambda)]
    assert not custom, (
        f"model holds a Lambda layer ({custom[0]}): the grader's clean kernel loads model "
        "without running custom Python code, so it cannot load this model (use Keras layers "
        "such as layers.Rescaling)"
    )
    paths, labels = labelled_files(split_dir("validation"))
    cached = np.asarray(val_x)
    assert len(cached) == len(paths), (
        "val_x should hold the bottom's output of every validation photo"
    )
    sample = [0, 1, len(paths) - 2, len(paths) - 1]  # two cats, two dogs
    said = np.asarray(model(load_images([paths[i] for i in sample]), training=False))
    tuned = _outputs(fine_tuned_model, cached).reshape(-1)
    assert np.allclose(said.reshape(-1), tuned[sample], atol=1e-3), (
        f"model should give fine_tuned_model's answers from the photos: for photos {sample} "
        f"model says {np.round(said.reshape(-1), 3).tolist()}, fine_tuned_model "
        f"{np.round(tuned[sample], 3).tolist()}"
    )
    accuracy = float(np.mean((tuned >= 0.5) == (np.asarray(labels) == 1)))
    check_validation_band(accuracy, HELD_OUT_BANDS)


def _part_b(train_x, train_y, val_x, val_y, cut: str) -> None:
    """Part B's self-check: :func:`part_b` on the arrays' summary, as the grader hands it in."""
    part_b(part_b_summary(train_x, train_y, val_x, val_y), cut)


HELD_OUT = held_out_note(HELD_OUT_BANDS)

PARTS = {
    "A": Part(
        "Part A",
        2,
        ("bottom", "top", "CUT"),
        part_a,
        (
            (
                "Load the whole base once, with ImageNet's weights and without its top, then make "
                "two models that share its layers: one ending at layer CUT, one starting there."
            ),
            (
                "base.get_layer(CUT).output is the tensor where the base is cut; keras.Model(inputs, "
                "outputs, name=...) builds a model between two tensors of the base's graph (the "
                "base's own input and output are base.input and base.output). Freeze the bottom "
                "with its .trainable."
            ),
        ),
    ),
    "B": Part(
        "Part B",
        1,
        ("train_x", "train_y", "val_x", "val_y", "CUT"),
        _part_b,
        (
            (
                "The bottom never changes, so its output for each photo can be computed once: "
                "build a model from raw photos to the bottom's output and let the course cache it."
            ),
            (
                "keras.Input(shape=(224, 224, 3)), then layers.Rescaling(1 / 127.5, offset=-1), then "
                "call bottom on the result; tlcourse.cached_features(extractor, split) returns "
                "(outputs, labels) for 'train' and for 'validation'."
            ),
        ),
    ),
    "C": Part(
        "Part C",
        2,
        ("probe_model", "probe_val_accuracy", "CUT"),
        part_c,
        (
            (
                "A linear probe trains only a new head, on top of layers that stay as they are: "
                "freeze the top before you build and compile the probe."
            ),
            (
                "Set the top's .trainable first; keras.Input(shape=train_x.shape[1:]); call top on it, "
                "then layers.GlobalAveragePooling2D() and layers.Dense(1, activation=...) named "
                "as the text says; compile with keras.optimizers.Adam, fit on (train_x, train_y), "
                "and evaluate on the validation tensors."
            ),
        ),
        keeps=(
            "probe_at_part_c",
            lambda probe_model, _accuracy, cut: probe_state(probe_model, cut),
        ),
    ),
    "D": Part(
        "Part D",
        3,
        ("fine_tuned_model", "bottom", "probe_at_part_c", "CUT", "FINE_TUNE_RATE_MAX"),
        part_d,
        (
            (
                "Fine-tuning continues from the probe: the same layers, the top now trainable "
                "except its BatchNormalization layers, a rate well below the probe's, and a "
                "compile after the change."
            ),
            (
                "Set top.trainable, then loop over top.layers and set trainable on each "
                "isinstance(layer, layers.BatchNormalization); keras.Model(probe_model.input, "
                "probe_model.output) reuses the probe's layers; compile with "
                "keras.optimizers.Adam(learning_rate) at most FINE_TUNE_RATE_MAX, then fit."
            ),
            (
                "If the head drifted or the probe was untrained: run Part C again (its check "
                "too), then Part D once; running Part D twice fine-tunes twice."
            ),
        ),
    ),
    "E": Part(
        "Part E",
        2,
        ("model", "fine_tuned_model", "val_x", "CUT"),
        part_e,
        (
            (
                "No new layers and no training: chain the layers you already have, from photos, "
                "so that model answers as fine_tuned_model does on the cached tensors."
            ),
            (
                "keras.Input(shape=(224, 224, 3)), layers.Rescaling(1 / 127.5, offset=-1), then "
                "call bottom, then top, then layers.GlobalAveragePooling2D(), then "
                "fine_tuned_model.get_layer('dog_probability'); keras.Model(photos, output)."
            ),
        ),
        note=HELD_OUT,
    ),
}
