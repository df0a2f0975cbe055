# kvmi: fragment of the top-level Makefile (see its header).
#
# The engine (kvmi/*.c) is freestanding: it is compiled with CORE_CFLAGS so
# that `make` proves it fits VMX root (no libc beyond string.h, no SSE), but
# is not linked into the core image yet.  kvmi/sim/ is the hosted simulator.

KVMI_SRCS := $(wildcard kvmi/*.c)
KVMI_CORE_OBJS := $(addprefix $(B)/core/,$(KVMI_SRCS:.c=.o))
ALL_TARGETS += kvmi-core-objs $(B)/kvmi-sim

.PHONY: kvmi-core-objs
kvmi-core-objs: $(KVMI_CORE_OBJS)

# ---- kvmi-sim: the engine over POSIX TCP with a fake VM --------------------
KVMI_SIM_SRCS := $(KVMI_SRCS) $(wildcard kvmi/sim/*.c)
KVMI_SIM_OBJS := $(addprefix $(B)/host/,$(KVMI_SIM_SRCS:.c=.o))
$(B)/kvmi-sim: $(KVMI_SIM_OBJS)
	@mkdir -p $(dir $@)
	$(HOST_CC) $(HOST_CFLAGS) -o $@ $^ -lpthread

# ---- unit tests (host, ASan/UBSan, against the fake arch) ------------------
KVMI_ENGINE_SRCS := $(KVMI_SRCS)
UNIT_TESTS += test_kvmi_sha1 test_kvmi_engine test_kvmi_vcpu
test_kvmi_sha1_SRCS := test/unit/test_kvmi_sha1.c kvmi/sha1.c
test_kvmi_engine_SRCS := test/unit/test_kvmi_engine.c test/unit/test_kvmi_fake.c $(KVMI_ENGINE_SRCS)
test_kvmi_vcpu_SRCS := test/unit/test_kvmi_vcpu.c test/unit/test_kvmi_fake.c $(KVMI_ENGINE_SRCS)
