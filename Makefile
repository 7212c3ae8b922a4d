# One-command entry points. `make demo` and `make test` work on a fresh machine that has only
# Python 3.10+ (3.11 tested), pip and gcc: they create .venv, install the CPU build of PyTorch,
# then the project with its extras.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# CPU wheel by default; a GPU user sets e.g. TORCH_INDEX=https://download.pytorch.org/whl/cu124 TORCH=torch
TORCH  ?= torch==2.13.0
TORCH_INDEX ?=
EXTRAS ?= dev,depth,video,onnx,hub,tensorboard
# MediaPipe (2D keypoints) pins numpy<2, which the main environment does not allow: its tests run in a
# second environment with torch, numpy<2, mediapipe==0.10.21, scikit-image and auglift[dev,video,mediapipe].
MP_VENV ?= .venv-mediapipe
MP_BIN   = $(MP_VENV)/bin

.PHONY: venv test test-explore test-mediapipe lint demo bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH)"
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	# rtmlib (the detect extra) without its GUI OpenCV builds: the headless OpenCV of the video extra serves it
	$(BIN)/pip install -q --no-deps "rtmlib>=0.0.15"
	touch $@

lint: venv
	$(BIN)/ruff check src tests benchmarks

test: venv lint
	# one BLAS/OpenMP thread per test worker: 2 workers on 2 cores, no oversubscription
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2
	$(MAKE) test-mediapipe

# the property tests with fresh random examples (the default profile repeats the same ones)
test-explore: venv
	HYPOTHESIS_PROFILE=explore OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
		$(BIN)/python -m pytest -q -n 2 $$(grep -rl "from hypothesis" tests)

$(MP_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(MP_VENV)
	$(MP_BIN)/pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH)"
	$(MP_BIN)/pip install -q -e ".[dev,video,mediapipe]" "numpy<2" scikit-image
	touch $@

test-mediapipe: $(MP_VENV)/.installed
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(MP_BIN)/python -m pytest -q -m mediapipe \
		tests/test_mediapipe.py tests/test_detectors_mediapipe.py

demo: venv
	$(BIN)/auglift demo

bench: venv
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(MP_VENV) .pytest_cache .ruff_cache .hypothesis
