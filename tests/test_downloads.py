"""Offline mirror and download errors."""

from pathlib import Path

import keras
import pytest

from tlcourse import downloads
from tlcourse.downloads import CourseDataError, fetch, seed_keras_cache

WEIGHTS = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"


def test_offline_fetch_serves_the_mirror_file(offline_mirror):
    path = fetch(
        "cats_and_dogs_filtered.zip",
        "https://example.invalid/x.zip",
        "cats_and_dogs_filtered",
        extract=True,
    )
    assert path == offline_mirror.resolve() / "cats_and_dogs_filtered"


def test_offline_fetch_of_a_missing_file_names_path_and_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE_DIR", str(tmp_path))
    with pytest.raises(CourseDataError) as error:
        fetch("data.zip", "https://example.invalid/data.zip", "data")
    message = str(error.value)
    assert str(tmp_path / "data") in message
    assert "https://example.invalid/data.zip" in message
    assert "unset COURSE_OFFLINE_DIR" in message


def test_offline_dir_that_is_not_a_folder_is_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(CourseDataError, match="is not a folder"):
        downloads.offline_dir()


def test_online_download_failure_is_explained(monkeypatch):
    monkeypatch.delenv("COURSE_OFFLINE_DIR", raising=False)

    def no_network(*args, **kwargs):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", no_network)
    with pytest.raises(CourseDataError) as error:
        fetch("data.zip", "https://example.invalid/data.zip", "data")
    assert "Could not download data.zip from https://example.invalid/data.zip" in str(error.value)
    assert "COURSE_OFFLINE_DIR" in str(error.value)


def test_seed_keras_cache_lets_imagenet_weights_load_without_download(offline_mirror):
    placed = seed_keras_cache()
    assert [p.name for p in placed] == [WEIGHTS]
    mirror_bytes = (offline_mirror / "keras" / "models" / WEIGHTS).read_bytes()
    assert placed[0].read_bytes() == mirror_bytes
    model = keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), include_top=False, weights="imagenet"
    )
    assert model.output_shape == (None, 7, 7, 1280)


def test_seed_keras_cache_does_nothing_online(monkeypatch):
    monkeypatch.delenv("COURSE_OFFLINE_DIR", raising=False)
    assert seed_keras_cache() == []


def test_cache_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "c"))
    assert downloads.cache_dir() == Path(tmp_path / "c")
    assert (tmp_path / "c").is_dir()
