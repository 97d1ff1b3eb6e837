/* Helpers for the targets whose input is a state stream (fuzz_state.c,
 * fuzz_snapshot.c). */
#ifndef NIMBUS_TESTS_FUZZ_STATE_UTIL_H
#define NIMBUS_TESTS_FUZZ_STATE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "state/state.h"

/* Makes every section CRC and the end record of the stream right, as far as
 * the section lengths allow, so that mutated payloads reach the loads past
 * the checksums. */
static inline void fuzz_state_fix_crcs(uint8_t *d, size_t len)
{
    size_t off = STATE_HEADER_SIZE;
    uint32_t n = 0;
    while (off + STATE_SECTION_MIN <= len) {
        uint32_t plen = d[off + 24] | d[off + 25] << 8 | d[off + 26] << 16 | (uint32_t)d[off + 27] << 24;
        if (plen > len - off - STATE_SECTION_MIN)
            return;
        size_t rec = STATE_SECTION_HDR + (size_t)plen;
        bool end = true;
        for (int i = 0; i < STATE_TAG_LEN; i++)
            end = end && d[off + i] == 0;
        if (end && plen == 8) {
            uint32_t t = (uint32_t)crc32(0, d, (uInt)off);
            for (int i = 0; i < 4; i++) {
                d[off + STATE_SECTION_HDR + i] = (uint8_t)(n >> (8 * i));
                d[off + STATE_SECTION_HDR + 4 + i] = (uint8_t)(t >> (8 * i));
            }
        }
        uint32_t c = (uint32_t)crc32(0, d + off, (uInt)rec);
        for (int i = 0; i < 4; i++)
            d[off + rec + i] = (uint8_t)(c >> (8 * i));
        off += rec + 4;
        n++;
    }
}

/* A copy of the input with its CRCs made right (free it), or NULL when that
 * changes nothing (or the input is too short to hold a section). */
static inline uint8_t *fuzz_state_fixed_copy(const uint8_t *data, size_t size)
{
    if (size < STATE_HEADER_SIZE)
        return NULL;
    uint8_t *copy = malloc(size);
    if (!copy)
        abort();
    memcpy(copy, data, size);
    fuzz_state_fix_crcs(copy, size);
    if (!memcmp(copy, data, size)) {
        free(copy);
        return NULL;
    }
    return copy;
}

#endif
