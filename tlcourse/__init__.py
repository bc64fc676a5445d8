"""Helpers for the transfer-learning course: data, feature cache, plots, inspection."""

import os

# TensorFlow's C++ start-up messages go to stderr; keep them out of the notebooks.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from . import checks
from .data import (
    CLASS_NAMES,
    IMAGE_SIZE,
    cats_and_dogs_dir,
    class_counts,
    holdout_dir,
    image_dataset,
    labelled_files,
    load_images,
    split_dir,
)
from .downloads import (
    CourseDataError,
    fetch,
    mobilenet_v2_weights,
    offline_dir,
    seed_keras_cache,
)
from .environment import SetupError, in_colab, setup_notebook
from .features import cached_features
from .handin import hand_in
from .inspection import count_params, layer_table
from .plots import (
    plot_confusion_matrix,
    plot_history,
    show_images,
    show_misclassified,
)

__version__ = "0.1.0"
__all__ = [
    "CLASS_NAMES",
    "IMAGE_SIZE",
    "CourseDataError",
    "SetupError",
    "cached_features",
    "cats_and_dogs_dir",
    "checks",
    "class_counts",
    "count_params",
    "fetch",
    "hand_in",
    "holdout_dir",
    "image_dataset",
    "in_colab",
    "labelled_files",
    "layer_table",
    "load_images",
    "mobilenet_v2_weights",
    "offline_dir",
    "plot_confusion_matrix",
    "plot_history",
    "seed_keras_cache",
    "setup_notebook",
    "show_images",
    "show_misclassified",
    "split_dir",
]
