# attribmap developer entry points. Every target bootstraps the git-ignored .venv it needs;
# running a target twice does no extra work (the stamp file records the last install).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.attribmap-installed
# CPU threads for tests and the demo on the 2-core CI machine.
export OMP_NUM_THREADS ?= 2
export MPLBACKEND ?= Agg

.PHONY: venv test test-all demo docs bench clean

venv: $(STAMP)

# torch/torchvision are left unpinned on purpose: pip then takes a matching pair from the
# registry (a lone local torch wheel without a torchvision build breaks torchvision.ops).
$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -c "import torch, torchvision.ops, captum; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" --timeout=300

test-all: $(STAMP)
	$(PY) -m pytest -q --timeout=1800

demo: $(STAMP)
	$(VENV)/bin/attribmap demo

docs: $(STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) benchmarks/speed_explain.py
	$(PY) benchmarks/speed_evaluate.py

clean:
	rm -rf $(VENV) docs/_build .pytest_cache
