# test/emu/net.mk: network scenarios and benchmark (test/emu/net_run.py),
# included from net/net.mk.  One Bochs at a time.
# bench-net measures the hypervisor's stack and then, with the same host
# measurement, a bare Linux guest serving the same protocol on the same
# emulated e1000 (docs/benchmarks.md); without the Linux guest (make
# linux-guest needs apt to fetch the kernel) that column is skipped and says why.

.PHONY: test-emu-net bench-net
test-emu-net: $(B)/hv.efi $(B)/agent.efi
	python3 test/emu/net_run.py $(NET_EMU_ARGS)

bench-net: $(B)/hv.efi $(B)/agent.efi
	@$(MAKE) --no-print-directory linux-guest || \
		echo "bench-net: make linux-guest failed; the Linux peer will be skipped"
	python3 test/emu/net_run.py --bench $(NET_BENCH_ARGS)

TEST_TARGETS += test-emu-net
BENCH_TARGETS += bench-net
