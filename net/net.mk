# net: the dedicated NIC (PCI, e1000), lwIP 2.1.3 and the TCP transport.
# Fragment of the top-level Makefile (see its header).

# lwIP from Debian's source package (build/third_party/lwip, never
# committed): core, IPv4 and Ethernet only; no sockets, no apps.
LWIP_SRC  := $(LWIP_DIR)/src
# LWIP_SRCS comes from the generated build/third_party-srcs.mk (see the
# top-level Makefile): the source tree is not there yet when a fresh clone's
# first make reads this file.
LWIP_OBJS := $(LWIP_SRCS:%.c=$(B)/core/%.o)

# Pure modules: also built for host tests.
NET_PURE_SRCS := net/pci.c net/pci_guard.c net/nic_ids.c net/e1000.c net/txring.c net/diag.c
NET_CORE_SRCS := $(NET_PURE_SRCS) net/pci_io.c net/netif.c net/stream.c net/service.c \
	net/port/sys_arch.c
NET_OBJS := $(NET_CORE_SRCS:%.c=$(B)/core/%.o)

NET_INC := -Inet -Inet/port -I$(LWIP_SRC)/include
$(LWIP_OBJS) $(NET_OBJS): CORE_CFLAGS += $(NET_INC)

CORE_OBJS += $(LWIP_OBJS) $(NET_OBJS)
# core.mk names its prerequisites before this fragment is read.
$(CORE_ELF): $(LWIP_OBJS) $(NET_OBJS)

UNIT_TESTS += net_pci net_pci_guard net_txring net_diag net_stack net_e1000 net_kvmi
net_pci_SRCS    := test/unit/test_net_pci.c net/pci.c net/nic_ids.c core/config.c
net_pci_guard_SRCS := test/unit/test_net_pci_guard.c test/unit/pci_model.c net/pci_guard.c net/pci.c
net_txring_SRCS := test/unit/test_net_txring.c net/txring.c
net_diag_SRCS   := test/unit/test_net_diag.c net/diag.c net/txring.c
net_e1000_SRCS  := test/unit/test_net_e1000.c net/e1000.c net/nic_ids.c
net_kvmi_SRCS   := test/unit/test_net_kvmi.c kvmi_hv/link.c
# The personality over the real lwIP core (host build) and a fake NIC.
net_stack_SRCS  := test/unit/test_net_stack.c net/netif.c core/config.c $(LWIP_SRCS)
$(addprefix $(B)/host/,$(foreach t,net_pci net_pci_guard net_txring net_diag net_stack net_e1000 net_kvmi,$($(t)_SRCS:.c=.o))): \
	HOST_CFLAGS += $(NET_INC)

include test/emu/net.mk

# The loader's NIC claim (boot/nic_claim.c) shares the selection rule.
NET_BOOT_OBJS := $(B)/efi/boot/nic_claim.o $(B)/efi/net/pci.o $(B)/efi/net/nic_ids.o
BOOT_OBJS += $(NET_BOOT_OBJS)
$(B)/hv.so: $(NET_BOOT_OBJS)
