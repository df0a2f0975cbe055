# test/emu: emulator scenarios (test/emu/run.py).  Included from test/test.mk.
# EMU_ARGS passes options to the runner, e.g. make test-emu EMU_ARGS="-k qemu".

.PHONY: test-emu
test-emu: $(B)/hv.efi $(B)/agent.efi
	python3 test/emu/run.py $(EMU_ARGS)

TEST_TARGETS += test-emu
