/*
 * spinlock.h - header-only spinlock on C11 atomics.
 *
 * Offers: spinlock_t, SPINLOCK_INIT, spin_init(), spin_lock(), spin_trylock(),
 * spin_unlock(), cpu_relax().
 *
 * Uses the C11 memory model through the compiler's __atomic builtins rather
 * than <stdatomic.h>: newlib's stdatomic.h does not build under the core's
 * -nostdinc/-isystem mix (its atomic_flag is not a struct there).
 *
 * The same lock must work in VMX root on bare metal (no scheduler, no
 * blocking primitive: a core that waits can only spin) and in the hosted
 * simulator (pthreads).  Hold times are therefore kept to a few hundred
 * instructions by every user: nothing that waits for the network or for
 * another vCPU may run under a spinlock.
 */
#ifndef HV_SPINLOCK_H
#define HV_SPINLOCK_H

#include <stdbool.h>

typedef struct {
    unsigned char locked;
} spinlock_t;

#define SPINLOCK_INIT                                                                              \
    {                                                                                              \
        0                                                                                          \
    }

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    /* PAUSE: lets the sibling hyper-thread run and avoids the memory-order
     * machine clear when the lock is released (SDM Vol. 2B, PAUSE). */
    __asm__ volatile("pause" ::: "memory");
#endif
}

static inline void spin_init(spinlock_t *l)
{
    __atomic_clear(&l->locked, __ATOMIC_RELEASE);
}

static inline bool spin_trylock(spinlock_t *l)
{
    return !__atomic_test_and_set(&l->locked, __ATOMIC_ACQUIRE);
}

static inline void spin_lock(spinlock_t *l)
{
    while (__atomic_test_and_set(&l->locked, __ATOMIC_ACQUIRE)) {
        /* Spin on a plain load so the cache line stays shared while held. */
        while (__atomic_load_n(&l->locked, __ATOMIC_RELAXED))
            cpu_relax();
    }
}

static inline void spin_unlock(spinlock_t *l)
{
    __atomic_clear(&l->locked, __ATOMIC_RELEASE);
}

#endif
