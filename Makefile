# Two commands do all the set-up:  `make lab` opens the course, `make test` runs the tests.
# Both create .venv/ and install requirements.txt and this package (editable) the first time.

VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
# Colab's versions (requirements-colab.txt), for the slow tier's Colab runs.
COLAB_VENV := $(CURDIR)/.venv-colab
export PATH := $(VENV)/bin:$(PATH)

.PHONY: lab test test-all system-packages grade-example figures release lint clean-notebooks slides exercises
.DEFAULT_GOAL := lab

$(VENV)/installed: requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -e .
	-git config core.hooksPath .githooks  # pre-commit: clean notebooks
	touch $@

# As the notebooks' setup cell does on Colab: the helper package over Colab's own versions.
$(COLAB_VENV)/installed: requirements-colab.txt pyproject.toml
	python3 -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/python -m pip install --quiet -r requirements-colab.txt
	$(COLAB_VENV)/bin/python -m pip install --quiet --no-deps -e .
	touch $@

lab: $(VENV)/installed          ## open the course in JupyterLab
	jupyter lab

test: $(VENV)/installed system-packages  ## the fast tier, about 4 min: package, sandbox, release, one real grading
	$(PY) -m pytest -ra -m "not slow"

test-all: $(VENV)/installed $(COLAB_VENV)/installed system-packages  ## the slow tier: fixture classes, lectures (also in Colab's versions), interruptions, online
	$(PY) -m pytest -ra -m slow --durations=15 --course-cache-of-last-run

system-packages:                ## the sandbox's bubblewrap and the deck test's chromium (apt, as root)
	@command -v bwrap >/dev/null && command -v chromium >/dev/null \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get install -y -qq bubblewrap chromium >/dev/null; } \
	  || echo "The tests need bubblewrap and chromium: sudo apt install bubblewrap chromium"

grade-example: $(VENV)/installed  ## grade the example class into build/example_grades/
	$(PY) -m tests.submissions.build build/example_class cats_vs_dogs fine_tuning
	for lab in cats_vs_dogs fine_tuning; do \
	  $(PY) -m grader grade build/example_class/$$lab --out build/example_grades --cell-timeout 30; done

figures: $(VENV)/installed      ## redraw every diagram inside the notebooks
	$(PY) -m course_tools.notebooks figures

release: $(VENV)/installed      ## regenerate labs/ and solutions/ from the master notebook
	$(PY) -m grader release

clean-notebooks: $(VENV)/installed  ## strip outputs, normalise JSON, write Colab buttons
	$(PY) -m course_tools.notebooks clean

slides: $(VENV)/installed       ## run every lecture, write offline reveal.js decks to build/slides/
	$(PY) -m course_tools.slides

exercises: $(VENV)/installed    ## run every lecture, then its exercise solutions in order; print what each prints
	$(PY) -m course_tools.exercises

lint: $(VENV)/installed         ## what CI checks besides the tests
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m course_tools.notebooks clean --check
