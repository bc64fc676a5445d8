"""Downloads: the offline mirror, the online path (against a local server) and their errors."""

import functools
import http.server
import shutil
import sys
import threading
import zipfile
from pathlib import Path

import keras
import pytest

from tests.conftest import run_as_user, user_environment
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


@pytest.fixture
def download_server(tmp_path, offline_mirror):
    """A local HTTP server with storage.googleapis.com's paths: the photos' zip (a few photos
    of the mirror per folder, laid out as the official zip) and the MobileNetV2 weights."""
    root = tmp_path / "server"
    archive = root / "mledu-datasets" / "cats_and_dogs_filtered.zip"
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as zipped:
        for split in ("train", "validation"):
            for label in ("cats", "dogs"):
                folder = offline_mirror / "cats_and_dogs_filtered" / split / label
                for photo in sorted(folder.iterdir())[:3]:
                    zipped.write(photo, f"cats_and_dogs_filtered/{split}/{label}/{photo.name}")
    models = root / "tensorflow" / "keras-applications" / "mobilenet_v2"
    models.mkdir(parents=True)
    shutil.copyfile(offline_mirror / "keras" / "models" / WEIGHTS, models / WEIGHTS)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.mark.parametrize("versions", ["pinned", pytest.param("colab", marks=pytest.mark.slow)])
def test_the_online_path_downloads_extracts_and_loads(download_server, tmp_path, versions, request):
    """What a student online runs: the zip downloaded and extracted by keras.utils.get_file
    (whatever folder this Keras extracts into), the weights into Keras' cache, where
    keras.applications finds them; in a new home, without the offline mirror; in the pinned
    versions and in Colab's."""
    check = """
import keras, tlcourse
counts = [tlcourse.class_counts(tlcourse.split_dir(split)) for split in ("train", "validation")]
print("COUNTS", *counts)
print("WEIGHTS", tlcourse.mobilenet_v2_weights().parent)
base = keras.applications.MobileNetV2(input_shape=(224, 224, 3), include_top=False, weights="imagenet")
print("SHAPE", base.output_shape)
"""
    home = tmp_path / "home"
    home.mkdir()
    env = user_environment(home, COURSE_DOWNLOAD_BASE=download_server)
    python = request.getfixturevalue("colab_python") if versions == "colab" else sys.executable
    run = run_as_user(["-c", check], env=env, python=python)
    assert run.returncode == 0, run.stderr[-3000:]
    said = dict(line.split(" ", 1) for line in run.stdout.splitlines() if line[:1].isupper())
    assert said["COUNTS"] == "{'cats': 3, 'dogs': 3} {'cats': 3, 'dogs': 3}"
    assert Path(said["WEIGHTS"]) == home / ".keras" / "models"
    assert said["SHAPE"] == "(None, 7, 7, 1280)"
