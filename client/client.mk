# client: fragment of the top-level Makefile (see its header).
#
# The Python introspector (client/python/kvmi), its CLI (client/kvmictl),
# their unit tests, the end-to-end tests against kvmi-sim (test/e2e) and
# the engine benchmark (test/bench/kvmi_bench.py).  Python 3.11, standard
# library only; pytest comes from Debian's python3-pytest, hence the
# system interpreter rather than whatever python3 is first on PATH.

PYTHON ?= /usr/bin/python3
PYTEST := $(PYTHON) -m pytest -q -p no:cacheprovider

TEST_TARGETS  += test-client test-e2e
BENCH_TARGETS += bench-kvmi

.PHONY: test-client test-e2e bench-kvmi
test-client: | $(DEPS_STAMP)
	$(PYTEST) client/python/tests

test-e2e: $(B)/kvmi-sim | $(DEPS_STAMP)
	KVMI_SIM=$(B)/kvmi-sim $(PYTEST) test/e2e

bench-kvmi: $(B)/kvmi-sim | $(DEPS_STAMP)
	$(PYTHON) test/bench/kvmi_bench.py --sim $(B)/kvmi-sim --doc docs/benchmarks.md
