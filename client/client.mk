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
# The Linux readers (btf, kimage, linux) are also tested on the real kernel
# of test/linux (Debian's package, downloaded once by mkguest.sh: linux.mk
# adds it to this target's prerequisites).
test-client: | $(DEPS_STAMP)
	KVMI_LINUX_KERNEL=$(B)/linux/vmlinuz.efi $(PYTEST) client/python/tests

test-e2e: $(B)/kvmi-sim | $(DEPS_STAMP)
	KVMI_SIM=$(B)/kvmi-sim $(PYTEST) test/e2e

# The benchmark needs kvmi-sim without the sanitizers (valgrind cannot run
# ASan binaries, and ASan would dominate the figures): same sources, -O2.
BENCH_CFLAGS := $(WARN) -O2 -g -Iinclude -DHV_HOST
$(B)/bench/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(HOST_CC) $(BENCH_CFLAGS) -MMD -MP -c $< -o $@
$(B)/bench/kvmi-sim: $(addprefix $(B)/bench/,$(KVMI_SIM_SRCS:.c=.o))
	$(HOST_CC) $(BENCH_CFLAGS) -o $@ $^ -lpthread

bench-kvmi: $(B)/bench/kvmi-sim | $(DEPS_STAMP)
	$(PYTHON) test/bench/kvmi_bench.py --sim $(B)/bench/kvmi-sim --doc docs/benchmarks.md
