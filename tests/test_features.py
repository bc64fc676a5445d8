"""The feature cache computes once and is keyed by weights, photos and image size."""

import shutil

import keras
import numpy as np
import pytest

import tlcourse


@pytest.fixture()
def tiny_folder(tmp_path, offline_mirror):
    paths, _ = tlcourse.labelled_files(tlcourse.split_dir("validation"))
    folder = tmp_path / "photos"
    for path in paths[:3] + paths[-3:]:
        (folder / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, folder / path.parent.name / path.name)
    return folder


def tiny_extractor(seed: int = 0, size: int | None = None) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3)(keras.layers.Rescaling(1 / 255)(inputs))
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


class CountingExtractor:
    """Wraps a model and counts predict_on_batch calls."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def __call__(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    def predict_on_batch(self, images):
        self.calls += 1
        return self.model.predict_on_batch(images)


def test_features_match_the_extractor_and_are_cached(tiny_folder, tmp_path):
    extractor = CountingExtractor(tiny_extractor())
    features, labels = tlcourse.cached_features(
        extractor, tiny_folder, image_size=(32, 32), cache=tmp_path / "c", verbose=False
    )
    assert features.shape == (6, 4)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]
    images = tlcourse.load_images(tlcourse.labelled_files(tiny_folder)[0], (32, 32))
    np.testing.assert_allclose(features, extractor.model.predict_on_batch(images), atol=1e-4)
    calls = extractor.calls
    again, _ = tlcourse.cached_features(
        extractor, tiny_folder, image_size=(32, 32), cache=tmp_path / "c", verbose=False
    )
    assert extractor.calls == calls  # served from disk
    np.testing.assert_array_equal(features, again)


def test_key_changes_with_weights_photos_and_size(tiny_folder, tmp_path):
    cache = tmp_path / "c"

    def stored() -> int:
        return len(list(cache.glob("*.npz")))

    tlcourse.cached_features(tiny_extractor(0), tiny_folder, (32, 32), cache=cache, verbose=False)
    tlcourse.cached_features(tiny_extractor(0), tiny_folder, (32, 32), cache=cache, verbose=False)
    assert stored() == 1
    tlcourse.cached_features(tiny_extractor(1), tiny_folder, (32, 32), cache=cache, verbose=False)
    assert stored() == 2
    tlcourse.cached_features(tiny_extractor(0), tiny_folder, (40, 40), cache=cache, verbose=False)
    assert stored() == 3
    photo = next((tiny_folder / "dogs").iterdir())
    photo.write_bytes(next((tiny_folder / "cats").iterdir()).read_bytes())
    tlcourse.cached_features(tiny_extractor(0), tiny_folder, (32, 32), cache=cache, verbose=False)
    assert stored() == 4


def test_wrong_input_shape_is_explained(tiny_folder, tmp_path):
    with pytest.raises(
        ValueError, match=r"takes images of 32x32 pixels but image_size is \(224, 224\)"
    ):
        tlcourse.cached_features(
            tiny_extractor(size=32), tiny_folder, cache=tmp_path, verbose=False
        )
