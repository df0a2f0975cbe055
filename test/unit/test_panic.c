/*
 * Unit tests of core/panic.c: the CPU is marked stopped (the hook) before
 * the PANIC line is logged, since a log line can wait on a UART the guest
 * slows down while other CPUs' kicks wait for this one.  The fake logger
 * records what the hook had done when the line came and jumps out of panic()
 * before its halt loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "log.h"
#include "panic.h"

static jmp_buf out;
static int hook_calls, hook_calls_at_log, log_calls;
static char logged[200];

static void hook(void)
{
    hook_calls++;
}

void log_printf(uint32_t level, const char *fmt, ...)
{
    (void)level;
    va_list ap;
    va_start(ap, fmt);
    const char *msg = va_arg(ap, const char *);
    va_end(ap);
    log_calls++;
    hook_calls_at_log = hook_calls;
    snprintf(logged, sizeof(logged), fmt, msg);
    longjmp(out, 1);
}

static void test_hook_runs_before_the_log_line(void **state)
{
    (void)state;
    panic_set_hook(hook);
    if (!setjmp(out))
        panic("bad %s %d", "thing", 7);
    assert_int_equal(log_calls, 1);
    assert_int_equal(hook_calls_at_log, 1); /* the vCPU was already marked halted */
    assert_string_equal(logged, "PANIC: bad thing 7");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hook_runs_before_the_log_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
