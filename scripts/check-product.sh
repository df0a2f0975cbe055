#!/bin/bash
# check-product.sh PRODUCT_CORE TEST_CORE PRODUCT_EFI: the product's core
# image carries none of the test hooks (include/test_hooks.h), and the test
# build's carries every one, so that the check can tell; the product's
# loader (which parses hv.conf) refuses their keys.  A hook is known by a
# line it logs.
set -u
product=$1 test=$2 product_efi=$3
hooks=(
    "debug hypercall from vCPU"             # vmx/exit_vmcall.c: the debug hypercalls
    "guest shutdown through port"           # vmx/exit_io.c: Bochs's port 0x8900 watcher
    "S3 (simulated)"                        # vmx/sleep.c: the simulated power loss
    "a test hook, only in the test build"   # core/config.c: the product's refusal (product only)
)
fail=0
for h in "${hooks[@]:0:3}"; do
    if strings -a "$product" | grep -qF "$h"; then
        echo "product-check: $product carries a test hook (\"$h\")"; fail=1
    fi
    if ! strings -a "$test" | grep -qF "$h"; then
        echo "product-check: $test lacks the hook \"$h\" (the check could not see it)"; fail=1
    fi
done
if ! strings -a "$product_efi" | grep -qF "${hooks[3]}"; then
    echo "product-check: $product_efi does not refuse the test keys"; fail=1
fi
if [ $fail = 0 ]; then
    echo "product-check: $product has none of the 3 test hooks, $test has all 3; $product_efi refuses their keys"
fi
exit $fail
