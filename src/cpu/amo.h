/* AMOs on host memory, shared by the interpreter and the binary
 * translator's helpers. Hart's thread. */
#ifndef NIMBUS_CPU_AMO_H
#define NIMBUS_CPU_AMO_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu/decode.h"

/* AMOs on host memory (unprivileged spec 8.4): host atomics where x86 has
 * them, a compare-and-swap loop for min/max. Returns the old value. */
#define DEFINE_AMO(name, type, stype)                                            \
    static inline uint64_t name(void *p, unsigned funct, type src)               \
    {                                                                            \
        type *m = p;                                                             \
        type old, val;                                                           \
        switch (funct) {                                                         \
        case AMO_SWAP: return __atomic_exchange_n(m, src, __ATOMIC_SEQ_CST);     \
        case AMO_ADD: return __atomic_fetch_add(m, src, __ATOMIC_SEQ_CST);       \
        case AMO_XOR: return __atomic_fetch_xor(m, src, __ATOMIC_SEQ_CST);       \
        case AMO_AND: return __atomic_fetch_and(m, src, __ATOMIC_SEQ_CST);       \
        case AMO_OR: return __atomic_fetch_or(m, src, __ATOMIC_SEQ_CST);         \
        }                                                                        \
        old = __atomic_load_n(m, __ATOMIC_RELAXED);                              \
        do {                                                                     \
            switch (funct) {                                                     \
            case AMO_MIN: val = (stype)old < (stype)src ? old : src; break;      \
            case AMO_MAX: val = (stype)old > (stype)src ? old : src; break;      \
            case AMO_MINU: val = old < src ? old : src; break;                   \
            default: val = old > src ? old : src; break;                         \
            }                                                                    \
        } while (!__atomic_compare_exchange_n(m, &old, val, true, __ATOMIC_SEQ_CST, \
                                              __ATOMIC_RELAXED));                \
        return old;                                                              \
    }
DEFINE_AMO(amo32, uint32_t, int32_t)
DEFINE_AMO(amo64, uint64_t, int64_t)
#undef DEFINE_AMO

/* SC.W/SC.D (unprivileged spec 8.2) against the hart's value-based
 * reservation: succeeds with a host compare-and-swap when the reservation
 * covers `addr` and memory still holds the value LR read. The reservation
 * ends either way. Returns true on success (rd = 0). */
static inline bool amo_store_conditional(bool *resv_valid, uint64_t resv_addr, uint64_t resv_value,
                                         uint64_t addr, void *p, uint64_t src, bool word)
{
    bool ok = false;
    if (*resv_valid && resv_addr == addr) {
        if (word) {
            uint32_t expect = (uint32_t)resv_value;
            ok = __atomic_compare_exchange_n((uint32_t *)p, &expect, (uint32_t)src, false,
                                             __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        } else {
            uint64_t expect = resv_value;
            ok = __atomic_compare_exchange_n((uint64_t *)p, &expect, src, false,
                                             __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        }
    }
    *resv_valid = false;
    return ok;
}

#endif
