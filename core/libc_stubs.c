/*
 * libc_stubs.c - the few system hooks newlib's libc.a wants.  The core has
 * no heap through sbrk (pages come from page_alloc) and never uses FILE
 * stdio, so these only turn accidental use into a clean failure.
 */
#include <errno.h>
#include <stddef.h>

void *sbrk(ptrdiff_t incr);

void *sbrk(ptrdiff_t incr)
{
    (void)incr;
    errno = ENOMEM;
    return (void *)-1;
}
