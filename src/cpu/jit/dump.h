/* What the translator emitted, for people debugging it (never on the hot
 * path unless asked for):
 *  - `--jit-dump FILE`: each unit as it is translated - its guest code
 *    (address, instruction word, the decoder's reading) and the x86-64 code
 *    emitted for it, disassembled by libcapstone (Debian's libcapstone4,
 *    loaded with dlopen when a dump is asked for);
 *  - `--jit-perf-map`: /tmp/perf-PID.map, the convention through which
 *    `perf report` names code without a symbol table: one line per unit,
 *    "nimbus-jit pc ADDR".
 * A dump is the VM's, shared by its harts: each unit is written whole under
 * a lock, so units of several harts do not interleave.
 *
 * Threads: open and close while no hart runs; jit_dump_unit from any hart's
 * thread. */
#ifndef NIMBUS_CPU_JIT_DUMP_H
#define NIMBUS_CPU_JIT_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jit_dump;

/* Opens the dump: `path` (NULL: none) for the listing, and the perf map when
 * `perf_map`. Returns 0 or -errno with a one-line message. */
int jit_dump_open(const char *path, bool perf_map, struct jit_dump **out, char *err,
                  size_t errlen);
void jit_dump_close(struct jit_dump *d);

/* A unit of hart `hart` translated for guest pc `vpc` from `guest` (its
 * `guest_len` bytes of RISC-V code), emitted as `host_len` bytes at `host`
 * (the executable view). */
void jit_dump_unit(struct jit_dump *d, unsigned hart, uint64_t vpc, const uint8_t *guest,
                   unsigned guest_len, const void *host, size_t host_len);

#endif
