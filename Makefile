# Two entry points: `make demo` (install, get Fashion-MNIST, run the default study) and
# `make test`. Both create/refresh a virtual environment in .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" -ne 0 ] && command -v sudo)
STUDY_ARGS ?=

.PHONY: demo test install data lint docs bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# --no-cache-dir: torch and its CUDA libraries are 5.6 GB installed; a wheel cache would double that
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --no-cache-dir -e ".[test]"
	touch $@

install: $(VENV)/.installed

# Fashion-MNIST: Debian's package where apt is available, else the usual download (checksummed)
data: install
	@if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then \
	  echo "Fashion-MNIST: /usr/share/datasets/fashion-mnist"; \
	elif command -v apt-get >/dev/null 2>&1 && $(SUDO) apt-get update -qq && \
	     $(SUDO) apt-get install -y -qq dataset-fashion-mnist; then \
	  echo "Fashion-MNIST installed with apt"; \
	else \
	  $(BIN)/classwise datasets --download fashion-mnist; \
	fi

demo: data
	$(BIN)/classwise study $(STUDY_ARGS)

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .

# the docs site (MkDocs Material + mkdocstrings) into site/; --strict: any warning fails the build.
# NO_MKDOCS_2_WARNING: Material's start-up banner about MkDocs 2.0 (not a build warning)
$(VENV)/.docs-installed: $(VENV)/.installed
	$(BIN)/python -m pip install --no-cache-dir -e ".[docs]"
	touch $@

docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# the benchmarks' baselines: a DataLoader + torchattacks loop (--no-deps: torchattacks' own
# requirements would replace the installed torch) and the published per-image corruption code
# (imagecorruptions-imaug, with its OpenCV, scikit-image and numba; it also ships the frost photos)
$(VENV)/.bench-installed: $(VENV)/.installed
	$(BIN)/python -m pip install --no-deps "torchattacks>=3.5,<4"
	# torchattacks' wheel carries an old robustbench/ that overwrites the robustbench extra's files: put them back
	$(BIN)/python -m pip install --no-deps --force-reinstall "robustbench>=1.1.1,<1.2"
	$(BIN)/python -m pip install "imagecorruptions-imaug>=1.1.5,<2"
	$(BIN)/python -c "import torchattacks, imagecorruptions"
	touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python benchmarks/run.py

bench-quick: $(VENV)/.bench-installed
	$(BIN)/python benchmarks/run.py --quick

clean:
	rm -rf $(VENV) runs .pytest_cache
