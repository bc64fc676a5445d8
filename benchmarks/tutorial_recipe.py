"""The TensorFlow tutorial's feature-extraction recipe, as a baseline for the lab's speed.

Recipe: 160 px photos, augmentation layers inside the model, MobileNetV2 frozen (ImageNet
weights), global average pooling, dropout, one logit, Adam 1e-4, 10 epochs with validation.
Prints one JSON line: wall time of building + training, and held-out accuracy.
Run by benchmarks/lab_speed.py; usable alone: ``python benchmarks/tutorial_recipe.py``.
"""

from __future__ import annotations

import json
import time

import keras
import numpy as np
from keras import layers

import tlcourse

SIZE = (160, 160)
EPOCHS = 10
WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
WEIGHTS = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"


def main() -> None:
    started = time.perf_counter()
    tlcourse.setup_notebook(verbose=False)
    train = tlcourse.image_dataset("train", image_size=SIZE, shuffle=True)
    validation = tlcourse.image_dataset("validation", image_size=SIZE)
    # The same 224 px ImageNet weights the lab uses: a convolutional base takes them at any
    # input size (no layer's shape depends on it).
    weights = tlcourse.fetch(
        WEIGHTS, WEIGHTS_URL + WEIGHTS, f"keras/models/{WEIGHTS}", cache_subdir="models"
    )
    base = keras.applications.MobileNetV2(
        input_shape=(*SIZE, 3), include_top=False, weights=str(weights)
    )
    base.trainable = False
    inputs = keras.Input((*SIZE, 3))
    x = layers.RandomFlip("horizontal")(inputs)
    x = layers.RandomRotation(0.2)(x)
    x = layers.Rescaling(1 / 127.5, offset=-1)(x)
    x = base(x, training=False)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(1)(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-4),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(threshold=0.0)],
    )
    model.fit(train, validation_data=validation, epochs=EPOCHS, verbose=2)
    seconds = time.perf_counter() - started

    right = seen = 0
    for images, labels in tlcourse.image_dataset("holdout", image_size=SIZE):
        logits = np.asarray(model.predict_on_batch(images)).reshape(-1)
        right += int(np.sum((logits >= 0) == (np.asarray(labels).reshape(-1) >= 0.5)))
        seen += len(images)
    print(
        json.dumps({"recipe_seconds": round(seconds, 1), "recipe_holdout_accuracy": right / seen})
    )


if __name__ == "__main__":
    main()
