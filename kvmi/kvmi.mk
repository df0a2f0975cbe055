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
