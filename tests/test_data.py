"""Loading the photos: folders, pipelines, held-out set."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

import tlcourse
from tlcourse import data
from tlcourse.downloads import CourseDataError


def test_splits_hold_the_documented_number_of_photos(offline_mirror):
    assert tlcourse.class_counts(tlcourse.split_dir("train")) == {"cats": 1000, "dogs": 1000}
    assert tlcourse.class_counts(tlcourse.split_dir("validation")) == {"cats": 500, "dogs": 500}
    assert tlcourse.class_counts(tlcourse.holdout_dir()) == {"cats": 500, "dogs": 500}


def test_holdout_is_disjoint_from_training_photos(offline_mirror):
    seen = {
        p.name
        for split in ("train", "validation")
        for p in tlcourse.labelled_files(tlcourse.split_dir(split))[0]
    }
    held = {p.name for p in tlcourse.labelled_files(tlcourse.holdout_dir())[0]}
    assert not seen & held


def test_unknown_split_is_refused():
    with pytest.raises(ValueError, match="split must be"):
        tlcourse.split_dir("test")


def test_folder_without_class_subfolders_is_explained(tmp_path):
    (tmp_path / "cats").mkdir()
    with pytest.raises(CourseDataError, match="missing: dogs"):
        data.check_image_folder(tmp_path)


def test_holdout_env_variable_wins(tmp_path, monkeypatch, offline_mirror):
    for name in ("cats", "dogs"):
        (tmp_path / name).mkdir()
        source = tlcourse.labelled_files(tlcourse.split_dir("validation"))[0][0]
        (tmp_path / name / "one.jpg").write_bytes(source.read_bytes())
    monkeypatch.setenv("COURSE_HOLDOUT_DIR", str(tmp_path))
    assert tlcourse.holdout_dir() == tmp_path


def test_image_dataset_gives_raw_rgb_batches_and_dog_labels(offline_mirror):
    images, labels = next(iter(tlcourse.image_dataset("validation", batch_size=4)))
    assert images.shape == (4, 224, 224, 3)
    assert float(np.min(images)) >= 0 and float(np.max(images)) > 1  # [0, 255], not rescaled
    assert labels.numpy().ravel().tolist() == [0, 0, 0, 0]  # cats first, label 0


def test_load_images_matches_the_pipeline(offline_mirror):
    paths, _ = tlcourse.labelled_files(tlcourse.split_dir("validation"))
    images, _ = next(iter(tlcourse.image_dataset("validation", batch_size=3)))
    np.testing.assert_allclose(tlcourse.load_images(paths[:3]), images.numpy(), atol=1e-3)


def test_pet_holdout_export_writes_balanced_jpegs(tmp_path):
    with tfds.testing.mock_data(num_examples=40):
        folder = data.export_pet_holdout(tmp_path / "holdout", per_class=3)
    assert tlcourse.class_counts(folder) == {"cats": 3, "dogs": 3}
    assert tlcourse.load_images(data.image_files(folder / "dogs")[:1]).shape == (1, 224, 224, 3)
