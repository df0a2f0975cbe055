/*
 * arch/cc.h - lwIP's compiler/platform header for the core (newlib headers,
 * no FILE stdio).  Diagnostics and assertions go to the hypervisor log;
 * randomness comes from RDRAND (TSC-seeded xorshift where RDRAND is
 * absent).  See ../shared/notes/newlib-lwip.md for why each line is here.
 */
#ifndef HV_LWIP_ARCH_CC_H
#define HV_LWIP_ARCH_CC_H

#include <limits.h>
#include <sys/types.h>

/* newlib 3.3.0 never defines SSIZE_MAX; without it lwIP typedefs its own
 * ssize_t as int, which clashes with newlib's long. */
#ifndef SSIZE_MAX
#define SSIZE_MAX LONG_MAX
#endif

/* Only used if SYS_LIGHTWEIGHT_PROT is ever turned on (it is off: lwIP runs
 * under the service lock only). */
typedef unsigned long sys_prot_t;

void hv_lwip_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void hv_lwip_assert(const char *msg, int line, const char *file) __attribute__((noreturn));
unsigned int hv_rand32(void);

#define LWIP_PLATFORM_DIAG(x)                                                                      \
    do {                                                                                           \
        hv_lwip_diag x;                                                                            \
    } while (0)
#define LWIP_PLATFORM_ASSERT(x) hv_lwip_assert((x), __LINE__, __FILE__)
/* Random TCP source ports, ISNs and the DHCP xid. */
#define LWIP_RAND() ((u32_t)hv_rand32())

#endif
