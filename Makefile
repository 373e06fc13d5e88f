# Two commands on a fresh machine with python3:  make demo   and   make test
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.zslkit-installed
PIP     := $(BIN)/pip --disable-pip-version-check --no-input -q
PARAMS  ?= params/demo.yaml
ARGS    ?=
PYTEST_ARGS ?=

.PHONY: venv demo banks realmusic smoke test test-fast test-datasets test-browser test-long lint lab bench gpu-check clean-venv

venv: $(STAMP)

# torch first (the local CPU wheel), tinysoundfont and musicnn (pretrained checkpoints only) without their
# dependencies (requirements-nodeps.txt), then the pins.
$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(PIP) install torch==2.13.0
	$(PIP) install --no-deps -r requirements-nodeps.txt
	$(PIP) install -r requirements.txt
	$(PIP) install --no-deps -e .
	touch $(STAMP)

demo: $(STAMP) banks realmusic
	$(BIN)/zslkit run $(PARAMS) $(ARGS)

# $(call apt-install,NAME,FILES,PACKAGES,WITHOUT): PACKAGES installed with apt-get unless FILES are all there, where
# apt-get and root or password-less sudo are; elsewhere it says so, with WITHOUT (what the demo does without them;
# no comma in it) and the command to run. Never fails: `make demo` goes on and says what it lacks.
define apt-install
	@if ls -d $(2) >/dev/null 2>&1; then echo "$(1): installed ($(3))"; \
	elif command -v apt-get >/dev/null 2>&1 && { [ "$$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then \
	  S=$$([ "$$(id -u)" = 0 ] || echo sudo); echo "$(1): installing $(3)"; \
	  $$S apt-get install -y -q $(3) || { $$S apt-get update -q && $$S apt-get install -y -q $(3); } \
	  || echo "$(1): apt-get could not install them: $(4)"; \
	else echo "$(1): cannot install $(3) here (needs apt-get and root or password-less sudo): $(4)."; \
	  echo "$(1): to add them: sudo apt-get install $(3)"; fi
endef

# the Debian General MIDI banks m21 renders with besides the bundled TimGM6mb (docs/datasets.md); without them the
# demo builds with the banks it finds and says which (build_report.json, notebook 01, the report page). `make test`
# never needs them.
M21_BANKS      := fluid-soundfont-gm musescore-general-soundfont-small fluidr3mono-gm-soundfont csound-soundfont
M21_BANK_FILES := /usr/share/sounds/sf2/FluidR3_GM.sf2 /usr/share/sounds/sf3/MuseScore_General.sf3 \
                  /usr/share/sounds/sf3/FluidR3Mono_GM.sf3 /usr/share/sounds/sf2/sf_GMbank.sf2
banks:
	$(call apt-install,banks,$(M21_BANK_FILES),$(M21_BANKS),the demo builds with the banks it finds (the bundled TimGM6mb at least) and says which)

# the real-recordings check's Debian packages (params/realmusic.yaml, docs/transfer.md "Real recordings"): recorded
# music whose tags the packages prove; without them the demo skips its real-recordings check and says so
REAL_PACKAGES := wesnoth-1.16-music fretsonfire-songs-muldjord fretsonfire-songs-sectoid
REAL_FOLDERS  := /usr/share/games/wesnoth/1.16/data/core/music /usr/share/games/fretsonfire/data/songs/muldjord \
                 /usr/share/games/fretsonfire/data/songs/sectoid
realmusic:
	$(call apt-install,realmusic,$(REAL_FOLDERS),$(REAL_PACKAGES),the demo skips its real-recordings check and says so on its page)

smoke: $(STAMP)
	$(BIN)/zslkit run params/smoke.yaml $(ARGS)

# every test but the datasets, browser and long lanes below (10 to 22 min on 2 cores); test-fast: no data build or notebook run
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# the notebook runs on the MTG-Jamendo and GTZAN samples, left out of `make test` to keep CI short
test-datasets: $(STAMP)
	$(BIN)/python -m pytest -m datasets $(PYTEST_ARGS)

# JupyterLab and the HTML reports in Chromium (tests/test_browser.py, 7 to 12 min on 2 cores; CI runs it after
# `make test`, .ci/run): Playwright from PyPI, the browser from apt when missing (Playwright's own browser
# download is never used)
CHROMIUM ?= $(shell command -v chromium || echo /usr/bin/chromium)
SUDO    ?= $(shell [ "$$(id -u)" = 0 ] || echo sudo)
test-browser: $(STAMP)
	test -x $(CHROMIUM) || ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium)
	$(PIP) install playwright==1.65.2
	ZSLKIT_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -m browser $(PYTEST_ARGS)

# runs killed at a random moment of preprocessing, training and embedding and resumed, against an uninterrupted one
# (about 5 min)
test-long: $(STAMP)
	$(BIN)/python -m pytest -m long $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check zslkit tests benchmarks .ci

lab: $(STAMP)
	$(BIN)/jupyter lab --config=jupyter_server_config.py --ServerApp.root_dir=. \
		--LabApp.default_url=/lab/tree/notebooks --allow-root

# every benchmarks/bench_*.py at full size (docs/benchmarks.md; minutes); BENCH_ARGS=--quick: seconds each,
# as `make test` runs them (tests/test_benchmarks.py)
BENCH_ARGS ?=
bench: $(STAMP)
	set -e; for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f $(BENCH_ARGS); done

# one command checks a GPU (docs/benchmarks.md, under 8 min on one): the CUDA tests, bench_train.py --device cuda
# (fp32, bf16), bench_metrics.py --backend torch --device cuda, a smoke run on the GPU and, with two GPUs, a
# two-process NCCL training; every number in reports/gpu-check/report.md. Without CUDA: one line, exit 0
GPU_CHECK_ARGS ?=
gpu-check: $(STAMP)
	$(BIN)/python .ci/gpu_check.py $(GPU_CHECK_ARGS)

clean-venv:
	rm -rf $(VENV)
