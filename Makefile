# solar-enhance: `make demo` and `make test` are all a new user needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# Pin the CPU build of PyTorch (it lies on disk as torch-2.13.0+cpu); a plain `torch`
# requirement can pull a multi-GB CUDA build.
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.installed
# The Keras/TensorFlow timing peer of `make bench` lives in a venv of its own; never a dependency.
KERAS_VENV  := benchmarks/.venv-keras
KERAS_STAMP := $(KERAS_VENV)/.installed

.PHONY: install demo test bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m enhance.demo demo_output

test: $(STAMP)
	$(PY) -m pytest -q

# The peer's venv is built on the first `make bench`; if TensorFlow cannot be installed the
# table says so (the leading '-' keeps going).
bench: $(STAMP)
	-@$(MAKE) --no-print-directory $(KERAS_STAMP)
	$(PY) benchmarks/run.py
	$(PY) benchmarks/bench_distributed.py

$(KERAS_STAMP):
	$(PYTHON) -m venv $(KERAS_VENV)
	$(KERAS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(KERAS_VENV)/bin/python -m pip install --quiet "tensorflow-cpu>=2.16"
	touch $(KERAS_STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks training
	$(VENV)/bin/ruff format --check src tests benchmarks training

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
