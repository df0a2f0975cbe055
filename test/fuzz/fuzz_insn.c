/*
 * fuzz_insn.c - libFuzzer target over the store decoder (vmx/insn.c), which
 * reads instruction bytes the guest chose.  Byte 0 picks the code size; the
 * rest are the instruction.  A decoded store must lie within the bytes and
 * the architectural limits.
 */
#include <stdlib.h>

#include "vmx/insn.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static const enum insn_mode modes[] = {INSN_16, INSN_32, INSN_64};
    if (n < 1)
        return 0;
    struct insn_store s;
    if (insn_decode_store(d + 1, n - 1, modes[d[0] % 3], &s))
        return 0;
    if (s.len < 2 || s.len > 15 || s.len > n - 1)
        abort();
    if (s.size != 1 && s.size != 2 && s.size != 4 && s.size != 8)
        abort();
    if (s.src == INSN_SRC_REG && s.reg > 15)
        abort();
    (void)insn_store_value(&s, 0x8877665544332211ull);
    return 0;
}
