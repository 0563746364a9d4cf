# solar-enhance: `make demo` and `make test` are all a new user needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The Keras/TensorFlow timing peer of `make bench` lives in a venv of its own; never a dependency.
KERAS_VENV  := benchmarks/.venv-keras
KERAS_STAMP := $(KERAS_VENV)/.installed

.PHONY: install lock demo test test-notorch bench lint clean web web-test dist dist-check

install: $(STAMP)

# The development environment is locked: requirements/dev.lock (every package pinned with its hashes,
# the CPU build of torch included) is what `make install` installs, and `make lock` refreshes it from
# pyproject.toml. tests/test_lock.py fails when the two disagree.
LOCK := requirements/dev.lock
UV   := uv==0.13.9

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip check
	touch $(STAMP)

# uv lives in a venv of its own (never a dependency); the lock is for CPython 3.11 on x86-64 Linux.
LOCK_VENV := .venv-lock
lock:
	test -x $(LOCK_VENV)/bin/uv || ($(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install --quiet "$(UV)")
	$(LOCK_VENV)/bin/uv pip compile pyproject.toml --extra dev --extra docs --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --find-links /opt/wheels -c requirements/torch-cpu.txt \
		--generate-hashes --custom-compile-command "make lock" --upgrade -o $(LOCK)

demo: $(STAMP)
	$(PY) -m enhance.demo demo_output --overwrite

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

# The browser page: the page's sources, onnxruntime-web's WebAssembly runtime (npm, pinned in
# web/package-lock.json), the default light models and the paper's light networks exported to ONNX, with
# models/index.json (what each graph needs, from its metadata: margin, noise unit and nodes; its registry name and
# the sha256 of its weights, from src/enhance/data/models.json, for the ENH_REG and ENH_SHA cards), and the packaged
# sample cut-outs, in web/dist (any static file server serves it; `enhance web` adds the headers for
# WebAssembly threads).
WEB_DIST := web/dist
ORT_DIST := web/node_modules/onnxruntime-web/dist

web: $(STAMP) web/node_modules/.package-lock.json
	rm -rf $(WEB_DIST).tmp
	mkdir -p $(WEB_DIST).tmp/ort $(WEB_DIST).tmp/models $(WEB_DIST).tmp/samples
	cp web/index.html web/style.css web/src/*.js $(WEB_DIST).tmp/
	cp $(ORT_DIST)/ort.wasm.min.mjs $(ORT_DIST)/ort-wasm-simd-threaded.mjs $(ORT_DIST)/ort-wasm-simd-threaded.wasm \
		$(WEB_DIST).tmp/ort/
	$(VENV)/bin/enhance export --model light -o $(WEB_DIST).tmp/models
	$(VENV)/bin/enhance export --model paper-light -o $(WEB_DIST).tmp/models
	# onnxruntime-web reads ONNX IR versions up to 13; opset 17 graphs need IR 8 (the file is otherwise unchanged).
	$(PY) -c 'import glob, onnx; from onnx.helper import find_min_ir_version_for; \
		ms = [(p, onnx.load(p)) for p in glob.glob("$(WEB_DIST).tmp/models/*.onnx")]; \
		[setattr(m, "ir_version", find_min_ir_version_for(list(m.opset_import))) or onnx.save(m, p) for p, m in ms]'
	$(PY) -c 'import glob, json, os, onnx; from enhance.models.architecture import receptive_margin; \
		ms = [(os.path.basename(p), {q.key: q.value for q in onnx.load(p).metadata_props}) \
			for p in sorted(glob.glob("$(WEB_DIST).tmp/models/*.onnx"))]; \
		names = {f: m["kind"] + "/" + f.removeprefix("enhance_").removesuffix("_" + m["kind"] + ".onnx") for f, m in ms}; \
		registry = json.load(open("src/enhance/data/models.json")); \
		json.dump({f: {"model": names[f].split("/")[1], "kind": m["kind"], \
			"margin": int(m.get("margin") or receptive_margin(int(m["depth"]))), \
			"noise_unit": float(m["noise_unit"]) if "noise_unit" in m else None, \
			"noise_nodes": json.loads(m.get("noise_nodes", "null")), "symmetric": m.get("symmetric") == "True", \
			"registry": names[f], "sha256": registry[names[f]]["sha256"]} \
			for f, m in ms}, open("$(WEB_DIST).tmp/models/index.json", "w"), indent=1)'
	cp src/enhance/data/hmi_continuum_ar.fits src/enhance/data/hmi_blos_ar.fits $(WEB_DIST).tmp/samples/
	$(PY) -c 'import json, sys; from importlib.metadata import version; from enhance.io import CARD_COMMENTS; \
		ort = json.load(open("web/node_modules/onnxruntime-web/package.json"))["version"]; \
		json.dump({"version": version("solar-enhance"), "onnxruntime_web": ort, "card_comments": CARD_COMMENTS}, \
			sys.stdout)' > $(WEB_DIST).tmp/build.json
	rm -rf $(WEB_DIST)
	mv $(WEB_DIST).tmp $(WEB_DIST)
	@echo "built $(WEB_DIST); serve it with: $(VENV)/bin/enhance web"

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --ignore-scripts --no-audit --no-fund

# Unit tests of the page's JavaScript modules (FITS reading/writing, the ported Python steps).
web-test:
	node --test web/tests/

# The documentation site (Sphinx, numpydoc, sphinx-gallery) in docs/_build/html, built offline with
# warnings as errors; its tools are the `docs` extra, installed into .venv on first use.
DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: docs
docs: $(DOCS_STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -n -b html docs docs/_build/html

$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks training
	$(VENV)/bin/ruff format --check src tests benchmarks training

clean:
	rm -rf $(VENV) $(DIST_VENV) build dist src/*.egg-info docs/_build docs/generated .pytest_cache web/dist web/dist.tmp web/node_modules

# Inference without PyTorch, as `pip install 'solar-enhance[onnx]'` gives it: a venv of its own with the
# package (not editable) and pytest, no torch; tests/test_notorch.py runs `enhance run` and the onnxruntime
# snippet there and checks the numbers the PyTorch path gives.
NOTORCH := .venv-notorch

test-notorch:
	rm -rf $(NOTORCH)
	$(PYTHON) -m venv $(NOTORCH)
	$(NOTORCH)/bin/python -m pip install --quiet --upgrade pip
	$(NOTORCH)/bin/python -m pip install --quiet ".[onnx]" pytest
	@! $(NOTORCH)/bin/python -c "import torch" 2>/dev/null || (echo "torch is installed in $(NOTORCH)"; exit 1)
	$(NOTORCH)/bin/python -m pytest -q -p no:cacheprovider --noconftest --rootdir . tests/test_notorch.py

# Release artifacts: the sdist and, built from it, the wheel in dist/, with the locked setuptools of .venv (no
# download); `twine check` reads their metadata and .ci/check_dist.py checks that both hold every file of the
# package, the samples, weights and model cards included.
dist: $(STAMP)
	rm -rf dist
	$(PY) -m build --no-isolation --outdir dist .
	$(VENV)/bin/twine check --strict dist/*
	$(PY) .ci/check_dist.py dist

# The wheel as a user installs it: with the onnx extra alone, into a clean venv of its own (no torch), run
# from outside the checkout; `enhance demo`, `enhance run` on a sample, then tests/test_notorch.py (the
# shipped models' numbers) against the installed package.
DIST_VENV := .venv-dist

dist-check: dist
	rm -rf $(DIST_VENV)
	$(PYTHON) -m venv $(DIST_VENV)
	$(DIST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(DIST_VENV)/bin/python -m pip install --quiet "$$(ls dist/solar_enhance-*-py3-none-any.whl)[onnx]"
	$(DIST_VENV)/bin/python -m pip check
	@! $(DIST_VENV)/bin/python -c "import torch" 2>/dev/null || (echo "torch is installed in $(DIST_VENV)"; exit 1)
	cd $(DIST_VENV) && rm -rf demo_output && bin/enhance demo demo_output --model light
	cd $(DIST_VENV) && bin/enhance run "$$(bin/python -c 'from enhance.data import sample_path; print(sample_path("blos"))')" \
		-o blos_x2.fits --model light --overwrite
	cd $(DIST_VENV) && bin/python -c 'import enhance, astropy.io.fits as f; d = f.getdata("blos_x2.fits"); \
		assert d.shape == (400, 400), d.shape; assert "site-packages" in enhance.__file__, enhance.__file__; \
		print("smoke test: enhance", enhance.__version__, "from", enhance.__file__, "gives", d.shape)'
	$(DIST_VENV)/bin/python -m pip install --quiet pytest
	cd $(DIST_VENV) && bin/python -m pytest -q -p no:cacheprovider --noconftest --rootdir .. ../tests/test_notorch.py
