/* Fuzz target: the split-virtqueue walker (src/virtio/virtqueue.c) through
 * its public API, against the model in fuzz_vq_model.h.
 *
 * Guest RAM is 64 KiB at RAM_BASE, mmap'd between two PROT_NONE guard pages
 * (a stray access just outside faults; ASan sees heap accesses further off).
 *
 * Input:
 *   u8  queue size: 1 << (b % 9), or from 0xf8 on (b & 7) * 3 (0, 3, ...:
 *       not a power of two, refused)
 *   u8  flags: bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2 descriptor table
 *       below RAM, bit 3 used ring past the end of RAM
 *   u16 x3  offsets into RAM of the descriptor table, avail ring, used ring
 *       (any alignment: misaligned ones are refused)
 *   u8  number of operations, then 2 bytes each (kind, parameter):
 *       pop (and consume: read every readable byte, fill every writable
 *       one), push the oldest popped, push several at once, unpop the
 *       newest, vq_has_avail, move the avail index, set avail flags and
 *       used_event, rewrite an avail ring entry
 *   the rest: RAM contents: 16 * size bytes at the descriptor table, the
 *       avail ring's bytes at its offset, the remainder at DATA_OFF
 *       (buffers, indirect tables). Everything else holds a canary pattern.
 *
 * Checks: vq_start accepts exactly the layouts the rules allow; every pop
 * returns what the model says (empty, the chain with exactly the model's
 * buffers as iovecs, or -EPROTO, after which the queue stays broken and
 * pushes do nothing); chain length <= queue size (VQ_MAX_SIZE through an
 * indirect table); has_avail; each push writes exactly its used entry and
 * index and returns the interrupt decision of §2.7.10 (or the NO_INTERRUPT
 * flag); avail_event is written when an EVENT_IDX pop finds the ring empty;
 * after every operation all of RAM equals a shadow copy the target keeps
 * (so nothing is written but the used ring and the writable buffers), and
 * the bytes read through the readable iovecs are those in RAM; vq_iov_slice
 * of the readable part gives the model's pieces (or -1 when they do not
 * fit or the range runs past the end). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "fuzz_util.h"
#include "fuzz_vq_model.h"
#include "mem/guest_mem.h"
#include "virtio/virtqueue.h"

#define RAM_BASE 0x10000ull
#define RAM_SIZE 0x10000ull
#define DATA_OFF 0x8000u
#define PAGE     4096u
#define MAX_HELD VQ_MAX_SIZE

static uint8_t *ram;
static uint8_t shadow[RAM_SIZE];
static struct guest_mem mem;

/* The model's queue. */
static struct {
    bool ready, broken, event_idx, indirect;
    unsigned num;
    uint64_t desc, avail, used;
    uint16_t last_avail, used_idx;
} m;

static struct virtqueue vq;
static struct vq_elem elem;
static struct vqm_chain chain;
static struct {
    uint16_t head;
    uint32_t in_len;
} held[MAX_HELD];
static unsigned nheld;
static uint8_t scratch[PAGE], pattern[PAGE];

static void setup_ram(void)
{
    uint8_t *p = mmap(NULL, RAM_SIZE + 2 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    FUZZ_SETUP(p != MAP_FAILED);
    ram = p + PAGE;
    FUZZ_SETUP(mprotect(ram, RAM_SIZE, PROT_READ | PROT_WRITE) == 0);
    mem.ram = ram;
    mem.ram_base = RAM_BASE;
    mem.ram_size = RAM_SIZE;
}

/* Writes guest RAM and the shadow alike (what the driver writes). */
static void drv_write(uint64_t pa, const void *src, size_t len)
{
    if (!vqm_in_ram(&(struct vqm_ram){ ram, RAM_BASE, RAM_SIZE }, pa, len))
        return;
    memcpy(ram + (pa - RAM_BASE), src, len);
    memcpy(shadow + (pa - RAM_BASE), src, len);
}

static uint16_t rd16(uint64_t pa)
{
    uint16_t v;
    memcpy(&v, ram + (pa - RAM_BASE), 2);
    return v;
}

static void shadow16(uint64_t pa, uint16_t v) { memcpy(shadow + (pa - RAM_BASE), &v, 2); }
static void shadow32(uint64_t pa, uint32_t v) { memcpy(shadow + (pa - RAM_BASE), &v, 4); }

static void check_ram(const char *after)
{
    if (memcmp(ram, shadow, RAM_SIZE) == 0)
        return;
    size_t i = 0;
    while (ram[i] == shadow[i])
        i++;
    FUZZ_CHECK(false, "after %s: RAM at 0x%llx is %02x, expected %02x", after,
               (unsigned long long)(RAM_BASE + i), ram[i], shadow[i]);
}

/* Rules of vq_start (virtqueue.h): num a power of two <= VQ_MAX_SIZE,
 * alignment 16/2/4, all three rings with their event words in RAM. */
static bool model_start(void)
{
    const struct vqm_ram r = { ram, RAM_BASE, RAM_SIZE };
    unsigned n = m.num;
    return n && n <= VQ_MAX_SIZE && !(n & (n - 1)) && !(m.desc & 15) && !(m.avail & 1) &&
           !(m.used & 3) && vqm_in_ram(&r, m.desc, 16ull * n) &&
           vqm_in_ram(&r, m.avail, 6 + 2ull * n) && vqm_in_ram(&r, m.used, 6 + 8ull * n);
}

/* Reads the consumed chain's readable bytes (checking them against RAM)
 * and fills its writable ones with `seed`-derived bytes, RAM through the
 * iovecs and the shadow through the model's buffers. */
static void consume(uint8_t seed)
{
    size_t off = 0;
    for (unsigned i = 0; i < chain.nbuf && !chain.buf[i].write; i++) {
        uint32_t done = 0;
        while (done < chain.buf[i].len) {
            size_t k = chain.buf[i].len - done < PAGE ? chain.buf[i].len - done : PAGE;
            size_t got = vq_iov_read(elem.iov, elem.out_num, off, scratch, k);
            FUZZ_CHECK(got == k, "vq_iov_read gave %zu of %zu", got, k);
            FUZZ_CHECK(memcmp(scratch, ram + (chain.buf[i].pa + done - RAM_BASE), k) == 0,
                       "readable bytes differ from RAM at buffer %u", i);
            done += (uint32_t)k;
            off += k;
        }
    }
    FUZZ_CHECK(vq_iov_read(elem.iov, elem.out_num, off, scratch, 1) == 0,
               "readable iovecs longer than out_len");
    for (size_t i = 0; i < PAGE; i++)
        pattern[i] = (uint8_t)(seed + i * 7 + (i >> 8));
    off = 0;
    for (unsigned i = 0; i < chain.nbuf; i++) {
        if (!chain.buf[i].write)
            continue;
        uint32_t done = 0;
        while (done < chain.buf[i].len) {
            size_t k = chain.buf[i].len - done < PAGE ? chain.buf[i].len - done : PAGE;
            size_t put = vq_iov_write(elem.iov + elem.out_num, elem.in_num, off,
                                      pattern + (off % 64), k > PAGE - 64 ? PAGE - 64 : k);
            FUZZ_CHECK(put == (k > PAGE - 64 ? PAGE - 64 : k), "vq_iov_write short");
            memcpy(shadow + (chain.buf[i].pa + done - RAM_BASE), pattern + (off % 64), put);
            done += (uint32_t)put;
            off += put;
        }
    }
}

/* One pop, against the model (virtqueue.h: vq_pop). */
static void do_push(unsigned n, uint8_t param);

/* Guest address of byte `off` of the chain's readable part (the model's). */
static uint64_t model_out_addr(size_t off)
{
    for (unsigned i = 0; i < chain.nbuf && !chain.buf[i].write; i++) {
        if (off < chain.buf[i].len)
            return chain.buf[i].pa + off;
        off -= chain.buf[i].len;
    }
    return 0;
}

/* vq_iov_slice of the readable part from `seed`-chosen offset to the end,
 * into at most `max` pieces: -1 exactly when more are needed or the range
 * runs past the end; else the pieces cover the range in order. */
static void check_slice(uint8_t seed)
{
    static struct iovec sl[VQ_MAX_SIZE];
    size_t from = elem.out_len ? seed % (elem.out_len + 1) : 0, len = elem.out_len - from;
    unsigned max = seed & 0x80 ? 1u + seed % 4 : VQ_MAX_SIZE;
    FUZZ_CHECK(vq_iov_slice(elem.iov, elem.out_num, from, len + 1, sl, VQ_MAX_SIZE) == -1,
               "a slice past the end");
    int cnt = vq_iov_slice(elem.iov, elem.out_num, from, len, sl, max);
    size_t at = from;
    unsigned need = 0;
    /* Pieces needed: the readable buffers the range touches. */
    size_t off = 0;
    for (unsigned i = 0; i < chain.nbuf && !chain.buf[i].write; i++) {
        if (off + chain.buf[i].len > from && len)
            need++;
        off += chain.buf[i].len;
    }
    if (need > max) {
        FUZZ_CHECK(cnt == -1, "slice into %u pieces of %u room gave %d", need, max, cnt);
        return;
    }
    FUZZ_CHECK(cnt == (int)need, "slice gave %d pieces, %u expected", cnt, need);
    for (int k = 0; k < cnt; k++) {
        FUZZ_CHECK(sl[k].iov_len > 0 && (uint8_t *)sl[k].iov_base ==
                                            ram + (model_out_addr(at) - RAM_BASE),
                   "slice piece %d at the wrong place", k);
        at += sl[k].iov_len;
    }
    FUZZ_CHECK(at == from + len, "slice pieces cover %zu bytes, not %zu", at - from, len);
}

static void do_pop(uint8_t seed)
{
    if (nheld == MAX_HELD)
        do_push(1, 1);   /* room to hold one more */
    const struct vqm_ram r = { ram, RAM_BASE, RAM_SIZE };
    int want;

    if (!m.ready) {
        want = 0;
    } else if (m.broken) {
        want = -EPROTO;
    } else {
        uint16_t avail = rd16(m.avail + 2);
        if (avail == m.last_avail) {
            /* §2.7.10: an empty pop with EVENT_IDX asks to be notified. */
            if (m.event_idx)
                shadow16(m.used + 4 + 8ull * m.num, m.last_avail);
            want = 0;
        } else if ((uint16_t)(avail - m.last_avail) > m.num) {
            want = -EPROTO;
        } else {
            uint16_t head = rd16(m.avail + 4 + 2ull * (m.last_avail % m.num));
            vqm_walk(&r, m.desc, m.num, m.indirect, head, &chain);
            want = chain.ok ? 1 : -EPROTO;
        }
        if (want < 0)
            m.broken = true;
    }
    int got = vq_pop(&vq, &elem);
    FUZZ_CHECK(got == want, "vq_pop returned %d, the model %d", got, want);
    FUZZ_CHECK(!vq.broken == !m.broken, "broken flag %d, model %d", vq.broken, m.broken);
    if (got != 1)
        return;
    uint16_t head = rd16(m.avail + 4 + 2ull * (m.last_avail % m.num));
    m.last_avail++;
    FUZZ_CHECK(elem.head == head, "head %u, expected %u", elem.head, head);
    FUZZ_CHECK(elem.out_num == chain.out_num && elem.in_num == chain.in_num,
               "%u+%u buffers, the model %u+%u", elem.out_num, elem.in_num, chain.out_num,
               chain.in_num);
    FUZZ_CHECK(elem.out_len == chain.out_len && elem.in_len == chain.in_len,
               "lengths %zu/%zu, the model %llu/%llu", elem.out_len, elem.in_len,
               (unsigned long long)chain.out_len, (unsigned long long)chain.in_len);
    /* §2.7.4.2 / §2.7.5.3: a chain is no longer than the queue, an
     * indirect table no longer than VQ_MAX_SIZE. */
    FUZZ_CHECK(elem.out_num + elem.in_num <= (chain.used_indirect ? VQ_MAX_SIZE : m.num),
               "chain of %u buffers in a queue of %u", elem.out_num + elem.in_num, m.num);
    for (unsigned i = 0; i < chain.nbuf; i++) {
        FUZZ_CHECK(elem.iov[i].iov_base == ram + (chain.buf[i].pa - RAM_BASE) &&
                       elem.iov[i].iov_len == chain.buf[i].len,
                   "iov %u is %p+%zu, the model 0x%llx+%u", i, elem.iov[i].iov_base,
                   elem.iov[i].iov_len, (unsigned long long)chain.buf[i].pa, chain.buf[i].len);
    }
    check_slice(seed);
    consume(seed);
    held[nheld++] = (typeof(held[0])){ elem.head, (uint32_t)elem.in_len };
}

/* Pushes held[0, n) with one index update (vq_push_many), checked. */
static void do_push(unsigned n, uint8_t param)
{
    struct vq_used used[MAX_HELD];
    if (n > nheld)
        n = nheld;
    for (unsigned i = 0; i < n; i++) {
        /* Any length: the queue does not judge it (the devices' target does). */
        uint32_t len = param & 1 ? held[i].in_len : held[i].in_len / (1u + param % 5);
        used[i] = (struct vq_used){ held[i].head, len };
    }
    bool want = false;
    if (m.ready && !m.broken && n && n <= m.num) {
        uint16_t old = m.used_idx, new = (uint16_t)(old + n);
        for (unsigned i = 0; i < n; i++) {
            uint64_t ent = m.used + 4 + 8ull * ((uint16_t)(old + i) % m.num);
            shadow32(ent, used[i].head);
            shadow32(ent + 4, used[i].len);
        }
        shadow16(m.used + 2, new);
        m.used_idx = new;
        /* Read after the used ring is written (rings may overlap): from the
         * shadow, which RAM must equal then. */
        uint16_t event, flags;
        memcpy(&event, shadow + (m.avail + 4 + 2ull * m.num - RAM_BASE), 2);
        memcpy(&flags, shadow + (m.avail - RAM_BASE), 2);
        if (m.event_idx)
            want = (uint16_t)(new - event - 1) < (uint16_t)(new - old);
        else
            want = !(flags & VRING_AVAIL_F_NO_INTERRUPT);
    }
    bool got = n == 1 && (param & 2) ? vq_push(&vq, used[0].head, used[0].len)
                                     : vq_push_many(&vq, used, n);
    FUZZ_CHECK(got == want, "push of %u: notify %d, expected %d", n, got, want);
    memmove(held, held + n, (nheld - n) * sizeof(held[0]));
    nheld -= n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ram)
        setup_ram();
    struct fuzz_in in = { data, size };
    uint8_t sel = fuzz_u8(&in), flags = fuzz_u8(&in);
    unsigned num = sel < 0xf8 ? 1u << (sel % 9) : (sel & 7u) * 3;
    uint16_t desc_off = (uint16_t)fuzz_u64(&in, 2), avail_off = (uint16_t)fuzz_u64(&in, 2),
             used_off = (uint16_t)fuzz_u64(&in, 2);
    unsigned nops = fuzz_u8(&in);
    const uint8_t *ops = in.p;
    size_t ops_len = in.n < 2 * nops ? in.n : 2 * nops;
    in.p += ops_len;
    in.n -= ops_len;

    /* Canary everywhere, then the driver's rings and data. */
    for (size_t i = 0; i < RAM_SIZE; i++)
        shadow[i] = (uint8_t)(0xa5 ^ (i * 131) ^ (i >> 9));
    memcpy(ram, shadow, RAM_SIZE);
    memset(&m, 0, sizeof(m));
    m.num = num;
    m.event_idx = flags & 1;
    m.indirect = flags & 2;
    m.desc = (flags & 4) ? desc_off : RAM_BASE + desc_off;   /* below RAM_BASE: not RAM */
    m.avail = RAM_BASE + avail_off;
    m.used = RAM_BASE + used_off + ((flags & 8) ? RAM_SIZE - 0x100 : 0);
    size_t k = in.n < 16ull * num ? in.n : 16ull * num;
    drv_write(m.desc, in.p, k);
    in.p += k, in.n -= k;
    k = in.n < 6 + 2ull * num ? in.n : 6 + 2ull * num;
    drv_write(m.avail, in.p, k);
    in.p += k, in.n -= k;
    k = in.n < RAM_SIZE - DATA_OFF ? in.n : RAM_SIZE - DATA_OFF;
    drv_write(RAM_BASE + DATA_OFF, in.p, k);

    vq_reset(&vq, &mem);
    vq.num = (uint16_t)num;
    vq.desc_addr = m.desc;
    vq.avail_addr = m.avail;
    vq.used_addr = m.used;
    bool start_ok = model_start();
    int r = vq_start(&vq, m.event_idx, m.indirect);
    FUZZ_CHECK((r == 0) == start_ok, "vq_start returned %d, the model %s", r,
               start_ok ? "accepts" : "refuses");
    FUZZ_CHECK(r == 0 || r == -EPROTO, "vq_start returned %d", r);
    m.ready = start_ok;
    nheld = 0;
    check_ram("vq_start");

    for (size_t i = 0; i < ops_len; i += 2) {
        uint8_t kind = ops[i], param = i + 1 < ops_len ? ops[i + 1] : 0;
        switch (kind % 8) {
        case 0:
            do_pop(param);
            break;
        case 1:
            do_push(1, param);
            break;
        case 2:
            do_push(1u + param % 8, param);
            break;
        case 3: {
            /* Gives back the newest n popped and not pushed (vq_unpop's contract). */
            unsigned n = param % (nheld + 1);
            vq_unpop(&vq, n);
            m.last_avail = (uint16_t)(m.last_avail - n);
            nheld -= n;
            break;
        }
        case 4: {
            bool want = m.ready && !m.broken && rd16(m.avail + 2) != m.last_avail;
            FUZZ_CHECK(vq_has_avail(&vq) == want, "vq_has_avail, expected %d", want);
            break;
        }
        case 5:
            if (m.ready) {
                /* The driver publishes more (or absurdly many) entries. */
                uint16_t idx = (uint16_t)(rd16(m.avail + 2) + (param < 0xf0 ? param % 4 : param * 64));
                drv_write(m.avail + 2, &idx, 2);
            }
            break;
        case 6:
            if (m.ready) {
                uint16_t fl = param & 1, ev = (uint16_t)(m.used_idx + (param >> 1) - 8);
                drv_write(m.avail, &fl, 2);
                drv_write(m.avail + 4 + 2ull * m.num, &ev, 2);
            }
            break;
        case 7:
            if (m.ready) {
                uint16_t head = param;
                drv_write(m.avail + 4 + 2ull * (rd16(m.avail + 2) % m.num), &head, 2);
            }
            break;
        }
        check_ram("an operation");
    }
    return 0;
}
