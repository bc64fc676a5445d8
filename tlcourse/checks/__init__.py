"""Self-checks, hints and a self-score for the labs, as a learner alone needs them.

A lab's module (:mod:`tlcourse.checks.cats_vs_dogs`) holds what each graded part must
satisfy, as functions of the objects the part defines; the hidden tests call the same
functions, so a self-check and the grader cannot disagree on what is wrong. In the notebook::

    lab = tlcourse.checks.lab("cats_vs_dogs", globals())
    lab.check("B")   # says what is wrong with Part B, or that it looks right
    lab.hint("B")    # a nudge; call again for the next tier (never the answer)
    lab.score()      # the points every part would get: an estimate

The score is an estimate: the grader runs the hidden tests on your notebook and again in a
clean Python, and measures the accuracy on held-out photos you never see.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field


class NotAttempted(Exception):
    """A part whose objects are not defined yet."""


class Partial(AssertionError):
    """Some of a part's points, not all: ``points`` and what keeps the rest away."""

    def __init__(self, points: float, why: str):
        super().__init__(why)
        self.points = points


@dataclass(frozen=True)
class Part:
    """One graded part: its points, the names it defines, the check (a function of those
    objects that raises AssertionError saying what is wrong, or Partial), and its hints,
    from a nudge to the API to use."""

    title: str
    points: float
    names: tuple[str, ...]
    check: Callable[..., None]
    hints: tuple[str, ...]
    note: str = ""  # said with the result (e.g. what the grader measures elsewhere)
    # (name, function of the part's objects): its value, kept in the namespace under that
    # name before the check runs, is passed to the check and to later parts (what a later
    # part compares with, before that part changes the objects).
    keeps: tuple[str, Callable[..., object]] | None = None


@dataclass
class Lab:
    """A lab's parts, checked on the objects of ``namespace`` (the notebook's globals)."""

    name: str
    parts: dict[str, Part]
    namespace: dict = field(repr=False)
    hints_given: dict[str, int] = field(default_factory=dict, repr=False)
    # What each part's self-check found when it ran: the grader too scores each part where
    # its tests run, so a later change to an earlier part's objects does not move its points.
    found: dict[str, tuple[float, str]] = field(default_factory=dict, repr=False)

    def check(self, part: str) -> None:
        """Say what is wrong with ``part`` (an AssertionError), or that it looks right."""
        key = self._key(part)
        spec = self.parts[key]
        points, why = self.found[key] = self._result(key)
        if points < spec.points:
            raise AssertionError(f"{spec.title}: {why}. {spec.note}".rstrip())
        print(f"{spec.title}: looks right. {spec.note}".rstrip())

    def points(self, part: str) -> float:
        """The points ``part`` would get on the current objects (raises NotAttempted, or
        AssertionError saying what is wrong; Partial: some points)."""
        spec = self.parts[self._key(part)]
        kept_by = {other.keeps[0]: other.title for other in self.parts.values() if other.keeps}
        missing = [name for name in spec.names if name not in self.namespace]
        if missing:
            first = kept_by.get(missing[0])
            run = f"{first}'s self-check" if first else "the part's answer cell"
            raise NotAttempted(f"{', '.join(missing)} not defined: run {run}")
        objects = [self.namespace[name] for name in spec.names]
        if spec.keeps:
            name, keep = spec.keeps
            self.namespace[name] = keep(*objects)
            objects.append(self.namespace[name])
        spec.check(*objects)
        return spec.points

    def hint(self, part: str) -> None:
        """Print the next hint for ``part`` (a nudge first, then the API to use)."""
        key = self._key(part)
        spec = self.parts[key]
        given = self.hints_given.get(key, 0)
        tier = min(given, len(spec.hints) - 1)
        self.hints_given[key] = given + 1
        more = " (call again for more)" if tier + 1 < len(spec.hints) else " (the last hint)"
        print(f"{spec.title}, hint {tier + 1} of {len(spec.hints)}{more}:\n{spec.hints[tier]}")

    def score(self) -> float:
        """Print the points each part would get, and their total: an estimate. A part counts
        as its self-check found it when that ran, else as its objects are now."""
        total, lines = 0.0, []
        for key, spec in self.parts.items():
            points, why = self.found.get(key) or self._result(key)
            total += points
            lines.append(f"  {spec.title:8} {points:g} of {spec.points:g}  {why}".rstrip())
        maximum = sum(spec.points for spec in self.parts.values())
        print(f"Estimated score: {total:g} of {maximum:g} points")
        print("\n".join(lines))
        print(
            "An estimate: each part as its self-check found it, Part E on the validation "
            "photos. The instructor's grader decides: it runs hidden tests, again in a clean "
            "Python, and measures accuracy on held-out photos."
        )
        return total

    def _result(self, key: str) -> tuple[float, str]:
        """(points, why not all) of part ``key`` on the current objects."""
        try:
            return self.points(key), ""
        except Partial as partial:
            return partial.points, str(partial)
        except NotAttempted as missing:
            return 0.0, f"not attempted yet ({missing})"
        except AssertionError as wrong:
            return 0.0, str(wrong)
        except Exception as error:  # noqa: BLE001 - the learner's objects: say, go on
            return 0.0, f"{type(error).__name__}: {error}"

    def _key(self, part: str) -> str:
        key = part.upper().removeprefix("PART_").removeprefix("PART ")
        if key not in self.parts:
            raise KeyError(f"{self.name} has parts {', '.join(self.parts)}, not {part!r}")
        return key


def band_points(accuracy: float, bands, measured_on: str = "held-out") -> float:
    """The points of the first of ``bands`` ((threshold, points), highest first) that
    ``accuracy`` reaches; raises below the lowest."""
    for threshold, points in bands:
        if accuracy >= threshold:
            return points
    raise AssertionError(f"{measured_on} accuracy {accuracy:.2%} is below {bands[-1][0]:.0%}")


def check_validation_band(accuracy: float, bands) -> None:
    """A self-check's verdict on a validation accuracy: Partial below the band of full marks."""
    points = band_points(accuracy, bands, "validation")
    if points < bands[0][1]:
        raise Partial(
            points,
            f"validation accuracy {accuracy:.2%}: {points:g} of {bands[0][1]:g} points "
            f"at this level (full marks from {bands[0][0]:.0%})",
        )


def held_out_note(bands) -> str:
    """What a self-check of the accuracy adds: the held-out photos decide, with ``bands``."""
    return (
        "The grader measures model on held-out photos you never see: they decide "
        f"({bands[0][1]:g} points from {bands[0][0]:.0%}, {bands[1][1]:g} from {bands[1][0]:.0%})."
    )


def lab(name: str, namespace: dict) -> Lab:
    """The checks of lab ``name`` on the objects in ``namespace`` (pass ``globals()``)."""
    module = importlib.import_module(f"{__name__}.{name}")
    return Lab(name, module.PARTS, namespace)
