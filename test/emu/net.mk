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

# Host tests (no emulator, seconds): the Linux peer's diagd, built as for the
# guest, against the bench's client; the serial sink's --input.
$(B)/linux-host/diagd: test/linux/diagd.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(HOST_CC) $(WARN) -O2 -static -o $@ $<

.PHONY: test-net-host
test-net-host: $(B)/linux-host/diagd | $(DEPS_STAMP)
	DIAGD=$(B)/linux-host/diagd $(PYTEST) test/linux/test_diagd.py test/emu/test_serial_sink.py

TEST_TARGETS += test-net-host test-emu-net
BENCH_TARGETS += bench-net
