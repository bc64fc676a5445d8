"""The setup step checks versions and says plainly what is wrong."""

import pytest

from tlcourse import environment


def test_version_tuple_reads_release_and_dev_versions():
    assert environment._version_tuple("2.21.0") == (2, 21, 0)
    assert environment._version_tuple("3.15.1.dev20260101") == (3, 15, 1)


def test_too_old_versions_name_the_package_and_the_fix(monkeypatch):
    monkeypatch.setitem(environment.MIN_VERSIONS, "keras", "99.0")
    with pytest.raises(environment.SetupError) as error:
        environment.check_versions()
    assert "keras" in str(error.value) and "older than 99.0" in str(error.value)
    assert "pip install" in str(error.value)


def test_setup_reports_offline_mode(offline_mirror, capsys):
    info = environment.setup_notebook(verbose=True)
    assert info["mode"] == "offline (files from $COURSE_OFFLINE_DIR)"
    printed = capsys.readouterr().out
    assert "tensorflow:" in printed and str(offline_mirror) not in printed
