/*
 * test_hooks.h - whether this object is built for the test build.  The
 * product (build/hv.efi) carries no test hook: the debug hypercalls, Bochs's
 * shutdown-port watcher and the simulated S3 power loss exist only in
 * build/hv-test.efi, whose few objects that hold them are compiled with
 * HV_TEST_HOOKS (test/hooks/hooks.mk).  Code tests TEST_HOOKS in a plain
 * `if`, so both builds compile every line and the product's optimiser
 * drops the hooks (scripts/check-product.sh proves they are gone).
 */
#ifndef HV_TEST_HOOKS_H
#define HV_TEST_HOOKS_H

#ifdef HV_TEST_HOOKS
#define TEST_HOOKS 1
#else
#define TEST_HOOKS 0
#endif

#endif
