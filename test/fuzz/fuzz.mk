# test/fuzz: the small libFuzzer targets over the parsers of hostile input
# (included from test/test.mk; FUZZ_CC and FUZZ_CFLAGS come from kvmi/kvmi.mk).
#
# Each runs FUZZ_SMALL_TIME seconds inside `make test-fuzz`.  Its corpus
# lives in build/fuzz/TARGET/corpus and is kept between runs, so coverage
# accumulates from one `make test` to the next; the seeds
# (test/fuzz/gen_small_seeds.py) are written only when the corpus is absent
# or empty.  Any crash, leak, abort or hang fails the target.

FUZZ_SMALL := pci_guard config insn gwalk kvmi_handshake
FUZZ_SMALL_TIME ?= 5

fuzz_pci_guard_SRCS      := test/fuzz/fuzz_pci_guard.c test/unit/pci_model.c net/pci_guard.c net/pci.c
fuzz_config_SRCS         := test/fuzz/fuzz_config.c core/config.c
fuzz_insn_SRCS           := test/fuzz/fuzz_insn.c vmx/insn.c
fuzz_gwalk_SRCS          := test/fuzz/fuzz_gwalk.c vmx/gwalk.c core/boot_info.c
fuzz_kvmi_handshake_SRCS := test/fuzz/fuzz_kvmi_handshake.c test/unit/kvmi_fake_arch.c $(KVMI_SRCS)

define fuzz_small_rule
$(B)/fuzz/fuzz_$(1): $$(fuzz_$(1)_SRCS) $$(wildcard include/*.h net/*.h vmx/*.h kvmi/*.h test/unit/*.h)
	@mkdir -p $$(dir $$@)
	$$(FUZZ_CC) $$(FUZZ_CFLAGS) -Itest/unit -Inet -o $$@ $$(fuzz_$(1)_SRCS) -lpthread

.PHONY: test-fuzz-$(1)
test-fuzz-$(1): $(B)/fuzz/fuzz_$(1) | $$(DEPS_STAMP)
	@d=$(B)/fuzz/$(1); mkdir -p $$$$d/corpus; \
	if [ -z "$$$$(ls -A $$$$d/corpus)" ]; then python3 test/fuzz/gen_small_seeds.py $(1) $$$$d/corpus; fi; \
	$(B)/fuzz/fuzz_$(1) -max_total_time=$(FUZZ_SMALL_TIME) -timeout=10 -rss_limit_mb=2048 \
		-max_len=4096 -print_final_stats=1 -artifact_prefix=$$$$d/ $$$$d/corpus >$$$$d/last.log 2>&1; \
	rc=$$$$?; n=$$$$(ls $$$$d/corpus | wc -l); \
	if [ $$$$rc != 0 ]; then tail -20 $$$$d/last.log; echo "test-fuzz-$(1): FAILED (see $$$$d/last.log)"; exit 1; fi; \
	echo "test-fuzz-$(1): no crash, leak or hang in $(FUZZ_SMALL_TIME) s ($$$$(grep -o 'stat::number_of_executed_units: *[0-9]*' $$$$d/last.log | grep -o '[0-9]*$$$$') runs, corpus $$$$n inputs)"
endef
$(foreach t,$(FUZZ_SMALL),$(eval $(call fuzz_small_rule,$(t))))

.PHONY: test-fuzz-small
test-fuzz-small: $(addprefix test-fuzz-,$(FUZZ_SMALL))
test-fuzz: test-fuzz-small
