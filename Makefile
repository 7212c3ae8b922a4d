# One-command entry points. `make demo` and `make test` work on a fresh machine that has only
# Python 3.10+ (3.11 tested), pip and gcc: they create .venv, install the CPU build of PyTorch,
# then the project with its extras.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# CPU wheel by default; a GPU user sets e.g. TORCH_INDEX=https://download.pytorch.org/whl/cu124 TORCH=torch
TORCH  ?= torch==2.13.0
TORCH_INDEX ?=
EXTRAS ?= dev,depth,video,onnx

.PHONY: venv test lint demo bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH)"
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	touch $@

lint: venv
	$(BIN)/ruff check src tests benchmarks

test: venv lint
	# one BLAS/OpenMP thread per test worker: 2 workers on 2 cores, no oversubscription
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadgroup

demo: venv
	$(BIN)/auglift demo

bench: venv
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
