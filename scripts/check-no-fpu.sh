#!/usr/bin/env bash
# Fails if an ELF that runs in VMX root contains SSE/x87/MMX/AVX
# instructions: the hypervisor never saves the guest's FPU state, so one
# such instruction would corrupt the guest (method from shared/notes).
# Exception: XSAVE/FXSAVE only store the (guest's) state to memory and change
# no register; KVMI_GET_XSAVE uses them (kvmi_hv/vcpu_state.c, kvmi_arch_get_xsave).
set -euo pipefail
elf=$1
hits=$(objdump -d --no-show-raw-insn "$elf" |
    grep -E '%xmm|%ymm|%zmm|%st\b|%st\(|%mm[0-7]|movap|movup|movdq|pxor|mxcsr|xsave|xrstor|fxsave|fxrstor|emms|vmov|\bfld|\bfst|\bfild|\bfistp|fnstcw|fldcw' |
    grep -vE '\s(xsave|fxsave)\s|<[a-z_]*xsave[a-z_0-9+x]*>' || true)
if [ -n "$hits" ]; then
    echo "check-no-fpu: $elf has FPU/SIMD instructions:" >&2
    echo "$hits" | head -20 >&2
    exit 1
fi
