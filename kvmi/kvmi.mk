# kvmi: fragment of the top-level Makefile (see its header).
#
# The engine (kvmi/*.c) is freestanding: it is compiled with CORE_CFLAGS so
# that `make` proves it fits VMX root (no libc beyond string.h, no SSE);
# vmx.mk links it into the core with its binding (kvmi_hv/).  kvmi_sim/ is
# the hosted simulator, a second binding of the same engine.

KVMI_SRCS := $(wildcard kvmi/*.c)
KVMI_CORE_OBJS := $(addprefix $(B)/core/,$(KVMI_SRCS:.c=.o))
ALL_TARGETS += kvmi-core-objs $(B)/kvmi-sim

.PHONY: kvmi-core-objs
kvmi-core-objs: $(KVMI_CORE_OBJS)

# ---- kvmi-sim: the engine over POSIX TCP with a fake VM --------------------
KVMI_SIM_SRCS := $(KVMI_SRCS) $(wildcard kvmi_sim/*.c)
KVMI_SIM_OBJS := $(addprefix $(B)/host/,$(KVMI_SIM_SRCS:.c=.o))
$(B)/kvmi-sim: $(KVMI_SIM_OBJS)
	@mkdir -p $(dir $@)
	$(HOST_CC) $(HOST_CFLAGS) -o $@ $^ -lpthread

# ---- unit tests (host, ASan/UBSan, against the fake arch) ------------------
KVMI_ENGINE_SRCS := $(KVMI_SRCS)
UNIT_TESTS += test_kvmi_sha1 test_kvmi_engine test_kvmi_vcpu
test_kvmi_sha1_SRCS := test/unit/test_kvmi_sha1.c kvmi/sha1.c
test_kvmi_engine_SRCS := test/unit/test_kvmi_engine.c test/unit/test_kvmi_fake.c test/unit/kvmi_fake_arch.c $(KVMI_ENGINE_SRCS)
test_kvmi_vcpu_SRCS := test/unit/test_kvmi_vcpu.c test/unit/test_kvmi_fake.c test/unit/kvmi_fake_arch.c $(KVMI_ENGINE_SRCS)

# ---- libFuzzer target over the receive path ---------------------------------
FUZZ_CC := clang
FUZZ_CFLAGS := -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -Iinclude -I. -DHV_HOST
FUZZ_TIME ?= 20
TEST_TARGETS += test-fuzz
# The platform is the unit tests' fake (test/unit/kvmi_fake_arch.c).
FUZZ_SRCS := test/fuzz/fuzz_kvmi_rx.c test/unit/kvmi_fake_arch.c $(KVMI_SRCS)
$(B)/fuzz/fuzz_kvmi_rx: $(FUZZ_SRCS) $(wildcard kvmi/*.h test/unit/test_kvmi_fake.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Itest/unit -o $@ $(FUZZ_SRCS)

# Bounded run; any crash, leak or hang fails.  The corpus is kept between
# runs (build/fuzz/kvmi_rx/corpus) so coverage accumulates; the generated
# seeds are written only when it is absent or empty.
.PHONY: test-fuzz
test-fuzz: $(B)/fuzz/fuzz_kvmi_rx | $(DEPS_STAMP)
	@d=$(B)/fuzz/kvmi_rx; mkdir -p $$d/corpus; \
		if [ -z "$$(ls -A $$d/corpus)" ]; then python3 test/fuzz/gen_seeds.py $$d/corpus; fi
	@$(B)/fuzz/fuzz_kvmi_rx -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=2048 \
		-max_len=20000 -print_final_stats=1 -artifact_prefix=$(B)/fuzz/kvmi_rx/ \
		$(B)/fuzz/kvmi_rx/corpus >$(B)/fuzz/kvmi_rx/last.log 2>&1; \
		rc=$$?; tail -6 $(B)/fuzz/kvmi_rx/last.log; \
		if [ $$rc != 0 ]; then echo "test-fuzz: FAILED (see $(B)/fuzz/kvmi_rx/last.log)"; exit 1; fi
	@echo "test-fuzz: no crash, leak or hang in $(FUZZ_TIME) s"
