# kgbias: `make paper` regenerates every figure and table; `make test` runs the test suite.
# Both build the virtual environment first when needed.

PYTHON ?= python3
VENV ?= .venv
# Users get the default torch build for their platform; CI pins the local CPU wheel.
TORCH_REQUIREMENT ?= torch
BIN := $(VENV)/bin
STAMP := $(VENV)/.kgbias-installed

NOTEBOOKS := $(sort $(basename $(notdir $(wildcard notebooks/[0-9]*.ipynb))))
# One paper run per parameter file: params/paper/<notebook>.yaml, or <notebook>@<variant>.yaml
# to run the same notebook again with other parameters (e.g. another dataset).
PAPER_RUNS := $(sort $(patsubst params/paper/%.yaml,build/paper/%.ipynb,$(wildcard params/paper/*.yaml)))
PACKAGE := pyproject.toml $(wildcard kgbias/*.py kgbias/*/*.py)
NBVAL := --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg
# The committed notebook outputs were computed with 2 CPU threads and pinned kernels; results depend
# on the thread count (Bose's batch norm and its layers' weight gradients reduce in a thread-dependent
# order) and on which vectorised kernels the CPU selects (AVX512 or AVX2 in torch, Intel or AMD code
# in MKL), so tests and refreshed notebooks run with 2 threads, torch's AVX2 kernels and MKL's
# reproducible branch for every x86 CPU (COMPATIBLE) on every machine.
PINNED_NUMERICS := OMP_NUM_THREADS=2 ATEN_CPU_CAPABILITY=avx2 MKL_CBWR=COMPATIBLE ONEDNN_MAX_CPU_ISA=AVX2
STRIP := $(BIN)/nbstripout --keep-output --keep-count \
	--extra-keys "metadata.papermill cell.metadata.papermill cell.metadata.execution"

.PHONY: setup test paper notebooks lab bench help

help:
	@echo "make setup   build $(VENV) with kgbias and its dependencies"
	@echo "make test    run the test suite (what CI runs)"
	@echo "make paper   regenerate every figure and table into figures/"
	@echo "make notebooks  re-execute the committed notebooks at the quick scale (refreshes outputs)"
	@echo "make lab     open JupyterLab on notebooks/"
	@echo "make bench   speed benchmark (not part of test or CI); BENCH_ARGS="--quick" etc."

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_REQUIREMENT)"
	$(BIN)/python -m pip install --quiet -e ".[notebooks,test]"
	touch $@

# Unit tests, then nbval: every committed notebook re-executed and its checked outputs compared.
test: $(STAMP)
	$(PINNED_NUMERICS) $(BIN)/python -m pytest tests notebooks $(NBVAL)

# Each notebook runs with its paper-scale parameters into build/paper/ and writes figures/.
# Training runs are cached in results/, so a rerun only re-executes what changed; an interrupted
# run resumes from its last checkpoint. Run folders are locked, so `make -j2 paper` is safe.
paper: $(PAPER_RUNS)
	@echo "[paper] figures/ is up to date ($(words $(PAPER_RUNS)) notebooks)"

.SECONDEXPANSION:
build/paper/%.ipynb: notebooks/$$(firstword $$(subst @, ,$$*)).ipynb params/paper/%.yaml $(PACKAGE) | $(STAMP)
	@mkdir -p $(@D)
	@echo "[paper] $* ..."
	@# a temporary name of its own: two makes running one notebook at once must not share it
	@part=$$(mktemp --suffix=.ipynb "build/paper/.$*.XXXXXX") && chmod $$(printf %o $$((0666 & ~$$(umask)))) "$$part" && \
	{ $(BIN)/papermill --no-progress-bar --log-level WARNING --cwd notebooks \
		$< "$$part" -f params/paper/$*.yaml && mv "$$part" $@ || { rm -f "$$part"; exit 1; }; }
	@echo "[paper] $* done"

# 04 measures the model that 02 trains: run 02 first so that its run is there to reuse.
build/paper/04_measuring_bias.ipynb: build/paper/02_link_prediction.ipynb

# Each notebook is executed into build/notebooks/ and moved over the committed one only once it ran
# and was stripped: an interrupted or failed run leaves the committed notebook as it was.
notebooks: $(STAMP)
	@mkdir -p build/notebooks
	@for notebook in $(NOTEBOOKS); do \
		echo "[notebooks] $$notebook"; \
		part=build/notebooks/$$notebook.ipynb; \
		$(PINNED_NUMERICS) $(BIN)/papermill --no-progress-bar --log-level WARNING --cwd notebooks \
			notebooks/$$notebook.ipynb "$$part" && $(STRIP) "$$part" && \
			mv "$$part" notebooks/$$notebook.ipynb || { rm -f "$$part"; exit 1; }; \
	done

# (root, as in containers, needs --allow-root)
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)
