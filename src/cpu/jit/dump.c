/* The translator's dump and perf map. See dump.h. */
#include "cpu/jit/dump.h"

#include <capstone/capstone.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/dynlib.h"
#include "base/errmsg.h"
#include "cpu/decode.h"

/* libcapstone's functions, loaded with the first dump. */
struct capstone_lib {
    __typeof__(&cs_open) open;
    __typeof__(&cs_close) close;
    __typeof__(&cs_disasm) disasm;
    __typeof__(&cs_free) free;
    __typeof__(&cs_strerror) strerror;
};

struct jit_dump {
    pthread_mutex_t lock;       /* the files and the capstone handle */
    FILE *listing;              /* --jit-dump FILE, or NULL */
    FILE *perf_map;             /* /tmp/perf-PID.map, or NULL */
    struct capstone_lib cs;
    csh handle;
};

static int capstone_open(struct jit_dump *d, char *err, size_t errlen)
{
    static const struct dynlib_sym syms[] = {
        DYNLIB_SYM(struct capstone_lib, open, "cs_open"),
        DYNLIB_SYM(struct capstone_lib, close, "cs_close"),
        DYNLIB_SYM(struct capstone_lib, disasm, "cs_disasm"),
        DYNLIB_SYM(struct capstone_lib, free, "cs_free"),
        DYNLIB_SYM(struct capstone_lib, strerror, "cs_strerror"),
    };
    int r = dynlib_load("libcapstone.so.4", "libcapstone4", syms, sizeof(syms) / sizeof(syms[0]),
                        &d->cs, err, errlen);
    if (r)
        return r;
    cs_err e = d->cs.open(CS_ARCH_X86, CS_MODE_64, &d->handle);
    if (e != CS_ERR_OK)
        return errmsg(err, errlen, -EINVAL, "libcapstone: %s", d->cs.strerror(e));
    return 0;
}

int jit_dump_open(const char *path, bool perf_map, struct jit_dump **out, char *err,
                  size_t errlen)
{
    *out = NULL;
    struct jit_dump *d = calloc(1, sizeof(*d));
    if (!d)
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    pthread_mutex_init(&d->lock, NULL);
    int r = 0;
    if (path) {
        if ((r = capstone_open(d, err, errlen)))
            goto fail;
        d->listing = fopen(path, "we");
        if (!d->listing) {
            r = -errno;
            errmsg(err, errlen, r, "cannot write the translator's dump to %s: %s", path,
                   strerror(-r));
            goto fail;
        }
    }
    if (perf_map) {
        char map[64];
        snprintf(map, sizeof(map), "/tmp/perf-%d.map", (int)getpid());
        d->perf_map = fopen(map, "we");
        if (!d->perf_map) {
            r = -errno;
            errmsg(err, errlen, r, "cannot write the perf map %s: %s", map, strerror(-r));
            goto fail;
        }
    }
    *out = d;
    return 0;
fail:
    jit_dump_close(d);
    return r;
}

void jit_dump_close(struct jit_dump *d)
{
    if (!d)
        return;
    if (d->listing)
        fclose(d->listing);
    if (d->perf_map)
        fclose(d->perf_map);
    if (d->handle)
        d->cs.close(&d->handle);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

static void dump_guest(FILE *f, uint64_t vpc, const uint8_t *guest, unsigned len)
{
    for (unsigned off = 0; off < len;) {
        uint32_t raw = guest[off] | (uint32_t)guest[off + 1] << 8;
        unsigned n = (raw & 3) == 3 && off + 4 <= len ? 4 : 2;
        if (n == 4)
            raw |= (uint32_t)guest[off + 2] << 16 | (uint32_t)guest[off + 3] << 24;
        struct decoded_insn d;
        decode_insn(raw, &d);
        fprintf(f, "  %016" PRIx64 "  %0*" PRIx32 "%*s  %-10s rd %u rs1 %u rs2 %u imm %" PRId64 "\n",
                vpc + off, n * 2, raw, n == 2 ? 4 : 0, "", decode_op_name(d.op), d.rd, d.rs1,
                d.rs2, d.imm);
        off += n;
    }
}

void jit_dump_unit(struct jit_dump *d, unsigned hart, uint64_t vpc, const uint8_t *guest,
                   unsigned guest_len, const void *host, size_t host_len)
{
    pthread_mutex_lock(&d->lock);
    if (d->perf_map) {
        fprintf(d->perf_map, "%" PRIxPTR " %zx nimbus-jit pc %" PRIx64 "\n", (uintptr_t)host,
                host_len, vpc);
        fflush(d->perf_map);   /* perf reads it after the process is gone */
    }
    if (d->listing) {
        FILE *f = d->listing;
        fprintf(f, "unit: hart %u, pc %" PRIx64 ", %u bytes of guest code, %zu bytes of x86-64 at %p\n",
                hart, vpc, guest_len, host_len, host);
        dump_guest(f, vpc, guest, guest_len);
        cs_insn *insn = NULL;
        size_t n = d->cs.disasm(d->handle, host, host_len, (uint64_t)(uintptr_t)host, 0, &insn);
        for (size_t i = 0; i < n; i++)
            fprintf(f, "    %" PRIx64 ":  %-8s %s\n", insn[i].address, insn[i].mnemonic,
                    insn[i].op_str);
        if (n && insn[n - 1].address + insn[n - 1].size < (uint64_t)(uintptr_t)host + host_len)
            fprintf(f, "    (the rest is not x86-64 code capstone reads: data or padding)\n");
        if (insn)
            d->cs.free(insn, n);
        fputc('\n', f);
    }
    pthread_mutex_unlock(&d->lock);
}
