"""The labs' self-checks, hints and self-score (tlcourse.checks), without grading: each part's
check and its points are the hidden tests' own, what a check says on objects built here,
the hints' tiers. (What they say on every fixture, graded: tests/test_grading_class.py.)"""

from __future__ import annotations

import re

import nbformat
import pytest

from grader.master import SOURCE, load_master
from tlcourse import checks
from tlcourse.checks import cats_vs_dogs, fine_tuning

LAB = "cats_vs_dogs"
LABS = {"cats_vs_dogs": cats_vs_dogs, "fine_tuning": fine_tuning}
MASTERS = {lab: load_master(SOURCE / lab) for lab in LABS}
NOTEBOOKS = {lab: nbformat.read(MASTERS[lab].path, as_version=4) for lab in LABS}
each_lab = pytest.mark.parametrize("lab_name", list(LABS))


def cell(grade_id: str, lab: str = LAB) -> str:
    return next(
        c.source
        for c in NOTEBOOKS[lab].cells
        if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id
    )


@each_lab
def test_each_graded_part_has_a_check_with_the_hidden_tests_points_and_function(lab_name):
    lab = checks.lab(lab_name, {})
    assert {f"part_{key.lower()}": part.points for key, part in lab.parts.items()} == dict(
        MASTERS[lab_name].parts
    )
    assert f'checks.lab("{lab_name}", globals())' in cell("setup", lab_name)
    for key, part in lab.parts.items():
        name = f"part_{key.lower()}"
        assert part.title == f"Part {key}" and len(part.hints) >= 2
        assert f'lab.check("{key}")' in cell(f"{name}_check", lab_name)  # the self-check runs it
        hidden = cell(f"{name}_tests", lab_name)
        called = "held_out_points" if key == "E" else name  # E: measured on held-out photos
        assert f"_lab.{called}(" in hidden, f"{name}'s hidden test does not call the check"
        assert f"from tlcourse.checks import {lab_name} as _lab" in hidden
    assert "lab.score()" in cell("self_score", lab_name)


@each_lab
def test_part_e_counts_the_bands_its_text_states(lab_name):
    text = next(c.source for c in NOTEBOOKS[lab_name].cells if c.source.startswith("## Part E"))
    said = re.search(r"(\d) points at (\d+) % accuracy or more, (\d) point from (\d+) %", text)
    assert said, "Part E's text no longer states its bands"
    high, high_at, low, low_at = (int(value) for value in said.groups())
    bands = ((high_at / 100, float(high)), (low_at / 100, float(low)))
    assert LABS[lab_name].HELD_OUT_BANDS == bands
    points = LABS[lab_name].held_out_points
    assert points(high_at / 100) == high and points(high_at / 100 - 1e-4) == low
    assert points(low_at / 100) == low
    with pytest.raises(AssertionError, match=f"below {low_at}%"):
        points(low_at / 100 - 1e-4)


@each_lab
def test_hints_come_in_tiers_and_never_give_the_answer(lab_name, capsys):
    solution = [
        line.strip()
        for c in NOTEBOOKS[lab_name].cells
        for block in re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", c.source, re.DOTALL)
        for line in block.splitlines()
        if len(line.strip()) >= 12
    ]
    assert len(solution) > 10
    lab = checks.lab(lab_name, {})
    for key, part in lab.parts.items():
        for tier, hint in enumerate([*part.hints, part.hints[-1]]):  # then the last again
            lab.hint(key)
            said = capsys.readouterr().out
            assert hint in said and f"hint {min(tier, len(part.hints) - 1) + 1} of" in said
        for hint in part.hints:
            given = [line for line in solution if line in hint]
            assert not given, f"Part {key}'s hint gives the answer: {given[0]}"


@each_lab
def test_an_empty_notebook_is_not_attempted_and_scores_zero(lab_name, capsys):
    lab = checks.lab(lab_name, {})
    for key in lab.parts:
        with pytest.raises(AssertionError, match=f"Part {key}: not attempted yet"):
            lab.check(key)
    assert lab.score() == 0
    said = capsys.readouterr().out
    assert f"Estimated score: 0 of {MASTERS[lab_name].max_score:g} points" in said
    assert "estimate" in said and "grader decides" in said


def test_a_later_part_asks_for_the_self_check_that_keeps_what_it_compares_with():
    """Lab 2's Part D compares the fine-tuned head with the probe as Part C's check found it
    (fine-tuning changes the probe's layers): without that check, it says to run it."""
    lab = checks.lab(
        "fine_tuning", {"fine_tuned_model": 0, "bottom": 0, "CUT": "", "FINE_TUNE_RATE_MAX": 1}
    )
    with pytest.raises(
        AssertionError, match="probe_at_part_c not defined: run Part C's self-check"
    ):
        lab.check("D")


def test_part_a_passes_the_counts_and_says_what_is_wrong(offline_mirror, capsys):
    import tlcourse

    counts = {
        name: len(list((tlcourse.split_dir("train") / name).glob("*.jpg")))
        for name in tlcourse.CLASS_NAMES
    }
    notebook = {"class_counts": counts}
    lab = checks.lab(LAB, notebook)
    lab.check("a")
    assert capsys.readouterr().out == "Part A: looks right.\n"
    notebook["class_counts"] = {**counts, "dogs": counts["dogs"] - 1}
    assert lab.score() == 1  # as its self-check found it when that ran (the grader's way)
    with pytest.raises(AssertionError, match="Part A: class_counts should be"):
        lab.check("A")
    assert lab.score() == 0  # checked again: now wrong
    assert checks.lab(LAB, notebook).score() == 0  # never self-checked: checked as it is now


def small_model(head: str = "pooling", activation: str = "sigmoid", from_logits: bool = False):
    """A photo model with a small convolution for a base and a head written as Part C's."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(224, 224, 3))
    x = layers.Conv2D(4, 3, strides=32)(layers.Rescaling(1 / 127.5, offset=-1)(inputs))
    x = layers.GlobalAveragePooling2D()(x) if head == "pooling" else layers.Flatten()(x)
    model = keras.Model(inputs, layers.Dense(1, activation=activation)(layers.Dropout(0.2)(x)))
    model.compile(loss=keras.losses.BinaryCrossentropy(from_logits=from_logits))
    return model


@pytest.mark.parametrize(
    "model, problem",
    [
        ({}, None),
        ({"head": "flatten"}, "use global average pooling, not Flatten"),
        ({"from_logits": True}, "output activation and loss disagree"),
        ({"activation": None, "from_logits": True}, "the contract asks for a probability"),
    ],
    ids=["right", "flatten", "logits_loss", "no_sigmoid"],
)
def test_part_c_says_what_is_wrong_with_the_model(model, problem, capsys):
    lab = checks.lab(LAB, {"model": small_model(**model)})
    if problem is None:
        lab.check("C")
        assert "Part C: looks right" in capsys.readouterr().out
    else:
        with pytest.raises(AssertionError, match=f"Part C: {problem}"):
            lab.check("C")
