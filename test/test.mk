# test: fragment of the top-level Makefile (see its header).

include test/guest/guest.mk
include test/emu/emu.mk
include test/fuzz/fuzz.mk
include test/linux/linux.mk
include test/wake/wake.mk
include test/hooks/hooks.mk
