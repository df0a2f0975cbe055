# test/guest: the guest test agent, build/agent.efi (GNU-EFI, see agent.h).
# Included from test/test.mk.

AGENT_SRCS := $(wildcard test/guest/*.c)
AGENT_OBJS := $(patsubst %.c,$(B)/efi/%.o,$(AGENT_SRCS))

$(B)/agent.so: $(AGENT_OBJS)
	ld $(EFI_LDFLAGS) $^ -o $@ $(EFI_LIBS)

ALL_TARGETS += $(B)/agent.efi
