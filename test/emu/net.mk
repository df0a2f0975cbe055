# test/emu/net.mk: network scenarios and benchmark (test/emu/net_run.py),
# included from net/net.mk.  One Bochs at a time.

.PHONY: test-emu-net bench-net
test-emu-net: $(B)/hv.efi $(B)/agent.efi
	python3 test/emu/net_run.py $(NET_EMU_ARGS)

bench-net: $(B)/hv.efi $(B)/agent.efi
	python3 test/emu/net_run.py --bench

TEST_TARGETS += test-emu-net
BENCH_TARGETS += bench-net
