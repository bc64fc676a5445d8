"""Figures and model inspection helpers."""

import keras
import numpy as np
from matplotlib.figure import Figure

import tlcourse
from tlcourse.inspection import grad_cam
from tlcourse.plots import confusion_matrix


def small_model() -> keras.Model:
    inputs = keras.Input((8,))
    frozen = keras.layers.Dense(4, name="frozen")
    frozen.trainable = False
    outputs = keras.layers.Dense(1, name="head")(frozen(inputs))
    return keras.Model(inputs, outputs)


def test_count_params_splits_trainable_and_frozen():
    assert tlcourse.count_params(small_model()) == {
        "trainable": 5,
        "non_trainable": 36,
        "total": 41,
    }


def test_layer_table_lists_layers_flags_and_totals():
    table = tlcourse.layer_table(small_model())
    assert "frozen" in table and "head" in table
    frozen_row = next(line for line in table.splitlines() if line.startswith("frozen"))
    assert "False" in frozen_row and "36" in frozen_row
    assert "trainable params: 5" in table


def test_layer_table_can_expand_nested_models_and_shorten():
    inner = small_model()
    inputs = keras.Input((8,))
    outer = keras.Model(inputs, keras.layers.Dense(2)(inner(inputs)))
    table = tlcourse.layer_table(outer, expand_nested=True)
    assert f"{inner.name}/frozen" in table
    assert "more layers" in tlcourse.layer_table(outer, expand_nested=True, limit=2)


def test_confusion_matrix_counts_true_by_predicted():
    matrix = confusion_matrix([0, 0, 1, 1, 1], [0, 1, 1, 1, 0])
    assert matrix.tolist() == [[1, 1], [1, 2]]


def test_plot_history_marks_fine_tuning_start():
    fig = tlcourse.plot_history(
        {
            "loss": [1, 0.5],
            "val_loss": [1, 0.6],
            "accuracy": [0.5, 0.8],
            "val_accuracy": [0.5, 0.7],
        },
        {"loss": [0.4], "val_loss": [0.5], "accuracy": [0.9], "val_accuracy": [0.8]},
    )
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    loss_axis = fig.axes[0]
    assert len(loss_axis.lines[0].get_xdata()) == 3
    assert "fine-tuning starts" in [t.get_text() for t in loss_axis.get_legend().get_texts()]


def test_show_images_titles_each_photo():
    fig = tlcourse.show_images(np.zeros((3, 8, 8, 3)), [0, 1, 1])
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["cats", "dogs", "dogs"]


def test_show_misclassified_orders_by_confidence(offline_mirror):
    paths, labels = tlcourse.labelled_files(tlcourse.split_dir("validation"))
    paths, labels = paths[:3], labels[:3]  # three cats
    fig = tlcourse.show_misclassified(paths, labels, [0.7, 0.1, 0.95])
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["true cats\nsaid dogs (95%)", "true cats\nsaid dogs (70%)"]


def test_show_misclassified_with_no_mistakes_says_so():
    fig = tlcourse.show_misclassified([], [], [])
    assert "No misclassified" in fig.texts[0].get_text()


def test_grad_cam_points_at_the_evidence_for_and_against_the_score():
    """Channel 0 lights up at the top left, channel 1 at the bottom right; the score is
    channel 0's mean minus channel 1's: the evidence for it is at the top left, against it
    at the bottom right."""
    images = np.zeros((1, 4, 4, 2), dtype="float32")
    images[0, 0, 0, 0] = images[0, 3, 3, 1] = 1.0
    inputs = keras.Input((4, 4, 2))
    conv = keras.Model(inputs, keras.layers.Activation("linear")(inputs))
    weights = np.array([1.0, -1.0], dtype="float32")

    def head(maps):
        return keras.ops.sum(keras.ops.mean(maps, axis=(1, 2)) * weights, axis=-1)

    towards = grad_cam(conv, head, images)
    against = grad_cam(conv, head, images, sign=-1)
    assert towards.shape == (1, 4, 4)
    assert towards[0, 0, 0] == 1.0 and towards.sum() == 1.0
    assert against[0, 3, 3] == 1.0 and against.sum() == 1.0
