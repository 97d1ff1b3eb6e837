/* Unit tests for the split virtqueue: a fake driver lays out rings in a small
 * guest RAM (heap memory, so the ASan build catches any access outside it)
 * and checks normal and indirect chains, used-ring updates, EVENT_IDX
 * interrupt suppression, that every hostile layout is refused with -EPROTO
 * (the transport turns that into DEVICE_NEEDS_RESET), and random rings. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/virtqueue.h"

#include "check.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE 0x10000ull
#define DESC     (RAM_BASE + 0x1000)
#define AVAIL    (RAM_BASE + 0x2000)
#define USED     (RAM_BASE + 0x3000)
#define INDIRECT (RAM_BASE + 0x4000)
#define DATA     (RAM_BASE + 0x8000)
#define NUM      8

static struct guest_mem mem;

static void *ram(uint64_t pa)
{
    return mem.ram + (pa - RAM_BASE);
}

static void set_desc_at(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                        uint16_t next)
{
    uint8_t *d = ram(table + 16 * i);
    memcpy(d, &addr, 8);
    memcpy(d + 8, &len, 4);
    memcpy(d + 12, &flags, 2);
    memcpy(d + 14, &next, 2);
}

static void set_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    set_desc_at(DESC, i, addr, len, flags, next);
}

static uint16_t *avail16(unsigned off)
{
    return ram(AVAIL + off);
}

static uint16_t *used16(unsigned off)
{
    return ram(USED + off);
}

static void avail_add(uint16_t head)
{
    uint16_t idx = *avail16(2);
    *avail16(4 + 2 * (idx % NUM)) = head;
    *avail16(2) = (uint16_t)(idx + 1);
}

/* A fresh queue of NUM entries over zeroed rings. */
static void setup(struct virtqueue *vq, bool event_idx, bool indirect)
{
    memset(mem.ram, 0, RAM_SIZE);
    vq_reset(vq, &mem);
    vq->num = NUM;
    vq->desc_addr = DESC;
    vq->avail_addr = AVAIL;
    vq->used_addr = USED;
    CHECK_EQ(vq_start(vq, event_idx, indirect), 0);
}

static void test_normal_chain(void)
{
    struct virtqueue vq;
    static struct vq_elem e;
    setup(&vq, false, false);
    CHECK_EQ(vq_pop(&vq, &e), 0);   /* empty */

    set_desc(3, DATA, 16, VRING_DESC_F_NEXT, 5);
    set_desc(5, DATA + 0x100, 100, VRING_DESC_F_NEXT, 1);
    set_desc(1, DATA + 0x200, 1, VRING_DESC_F_WRITE, 0);
    CHECK(!vq_has_avail(&vq));
    avail_add(3);
    CHECK(vq_has_avail(&vq));
    CHECK_EQ(vq_pop(&vq, &e), 1);
    CHECK(!vq_has_avail(&vq));
    CHECK_EQ(e.head, 3);
    CHECK_EQ(e.out_num, 2);
    CHECK_EQ(e.in_num, 1);
    CHECK_EQ(e.out_len, 116);
    CHECK_EQ(e.in_len, 1);
    CHECK(e.iov[0].iov_base == ram(DATA) && e.iov[0].iov_len == 16);
    CHECK(e.iov[1].iov_base == ram(DATA + 0x100) && e.iov[1].iov_len == 100);
    CHECK(e.iov[2].iov_base == ram(DATA + 0x200) && e.iov[2].iov_len == 1);
    CHECK_EQ(vq_pop(&vq, &e), 0);

    CHECK(vq_push(&vq, 3, 1));   /* no NO_INTERRUPT flag: interrupt */
    CHECK_EQ(*used16(2), 1);
    uint32_t id, len;
    memcpy(&id, ram(USED + 4), 4);
    memcpy(&len, ram(USED + 8), 4);
    CHECK_EQ(id, 3);
    CHECK_EQ(len, 1);

    /* The driver turns interrupts off. */
    *avail16(0) = VRING_AVAIL_F_NO_INTERRUPT;
    set_desc(0, DATA, 8, 0, 0);
    avail_add(0);
    CHECK_EQ(vq_pop(&vq, &e), 1);
    CHECK(!vq_push(&vq, 0, 0));
    CHECK_EQ(*used16(2), 2);

    /* Ring indexes wrap around 2^16 and the ring size. */
    setup(&vq, false, false);
    *avail16(2) = 65534;
    vq.last_avail = 65534;
    vq.used_idx = 65534;
    for (int i = 0; i < 4; i++) {
        set_desc((unsigned)i, DATA + 64 * (unsigned)i, 64, VRING_DESC_F_WRITE, 0);
        avail_add((uint16_t)i);
    }
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(vq_pop(&vq, &e), 1);
        CHECK_EQ(e.head, i);
        vq_push(&vq, e.head, 64);
    }
    CHECK_EQ(vq_pop(&vq, &e), 0);
    CHECK_EQ(*used16(2), 2);
}

static void test_indirect(void)
{
    struct virtqueue vq;
    static struct vq_elem e;

    /* Not negotiated: refused. */
    setup(&vq, false, false);
    set_desc_at(INDIRECT, 0, DATA, 16, VRING_DESC_F_NEXT, 1);
    set_desc_at(INDIRECT, 1, DATA + 0x100, 0, VRING_DESC_F_NEXT, 2);
    set_desc_at(INDIRECT, 2, DATA + 0x200, 512, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 3);
    set_desc_at(INDIRECT, 3, DATA + 0x400, 1, VRING_DESC_F_WRITE, 0);
    set_desc(2, INDIRECT, 64, VRING_DESC_F_INDIRECT, 0);
    avail_add(2);
    CHECK_EQ(vq_pop(&vq, &e), -EPROTO);
    CHECK(vq.broken);
    CHECK_EQ(vq_pop(&vq, &e), -EPROTO);   /* stays broken */
    CHECK(!vq_push(&vq, 2, 0));
    CHECK_EQ(*used16(2), 0);

    setup(&vq, false, true);
    set_desc_at(INDIRECT, 0, DATA, 16, VRING_DESC_F_NEXT, 1);
    /* Zero-length buffers are allowed and carry nothing. */
    set_desc_at(INDIRECT, 1, DATA + 0x100, 0, VRING_DESC_F_NEXT, 2);
    set_desc_at(INDIRECT, 2, DATA + 0x200, 512, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 3);
    set_desc_at(INDIRECT, 3, DATA + 0x400, 1, VRING_DESC_F_WRITE, 0);
    set_desc(2, INDIRECT, 64, VRING_DESC_F_INDIRECT, 0);
    avail_add(2);
    CHECK_EQ(vq_pop(&vq, &e), 1);
    CHECK_EQ(e.head, 2);
    CHECK_EQ(e.out_num, 1);
    CHECK_EQ(e.in_num, 2);
    CHECK_EQ(e.in_len, 513);
    CHECK(e.iov[1].iov_base == ram(DATA + 0x200));
    CHECK(e.iov[2].iov_base == ram(DATA + 0x400));

    /* An indirect table longer than the queue (NUM) is fine: Linux sizes
     * it by seg_max. */
    setup(&vq, false, true);
    for (unsigned i = 0; i < 3 * NUM; i++)
        set_desc_at(INDIRECT, i, DATA + 16 * i, 16, i + 1 < 3 * NUM ? VRING_DESC_F_NEXT : 0,
                    (uint16_t)(i + 1));
    set_desc(4, INDIRECT, 16 * 3 * NUM, VRING_DESC_F_INDIRECT, 0);
    avail_add(4);
    CHECK_EQ(vq_pop(&vq, &e), 1);
    CHECK_EQ(e.out_num, 3 * NUM);
    CHECK(e.iov[3 * NUM - 1].iov_base == ram(DATA + 16 * (3 * NUM - 1)));

    /* A direct descriptor may lead to the indirect one. */
    setup(&vq, false, true);
    set_desc_at(INDIRECT, 0, DATA + 0x200, 32, VRING_DESC_F_WRITE, 0);
    set_desc(0, DATA, 16, VRING_DESC_F_NEXT, 1);
    set_desc(1, INDIRECT, 16, VRING_DESC_F_INDIRECT, 0);
    avail_add(0);
    CHECK_EQ(vq_pop(&vq, &e), 1);
    CHECK_EQ(e.out_num, 1);
    CHECK_EQ(e.in_num, 1);
}

static void test_event_idx(void)
{
    struct virtqueue vq;
    static struct vq_elem e;
    uint16_t *used_event = avail16(4 + 2 * NUM);
    uint16_t *avail_event = used16(4 + 8 * NUM);

    setup(&vq, true, false);
    /* An empty pop asks the driver to notify at the next buffer. */
    *avail_event = 77;
    CHECK_EQ(vq_pop(&vq, &e), 0);
    CHECK_EQ(*avail_event, 0);

    for (unsigned i = 0; i < 4; i++) {
        set_desc(i, DATA + 64 * i, 64, VRING_DESC_F_WRITE, 0);
        avail_add((uint16_t)i);
    }
    /* Popping with buffers left does not move avail_event (no
     * notifications wanted while the device is draining). */
    CHECK_EQ(vq_pop(&vq, &e), 1);
    CHECK_EQ(*avail_event, 0);

    *used_event = 0;            /* interrupt after used entry 0 */
    CHECK(vq_push(&vq, 0, 64)); /* used idx 0 -> 1: crosses event 0 */
    CHECK_EQ(vq_pop(&vq, &e), 1);
    CHECK(!vq_push(&vq, 1, 64)); /* 1 -> 2: event 0 already passed */
    *used_event = 2;
    CHECK_EQ(vq_pop(&vq, &e), 1);
    CHECK(vq_push(&vq, 2, 64));  /* 2 -> 3 crosses 2 */
    *used_event = 10;
    CHECK_EQ(vq_pop(&vq, &e), 1);
    CHECK(!vq_push(&vq, 3, 64));
    CHECK_EQ(vq_pop(&vq, &e), 0);
    CHECK_EQ(*avail_event, 4);
    CHECK_EQ(*used16(2), 4);
}

/* Sets up the queue, adds head 0, expects the pop to be refused. */
#define HOSTILE(name, indirect, body)                                  \
    do {                                                               \
        struct virtqueue vq_;                                          \
        setup(&vq_, false, indirect);                                  \
        body;                                                          \
        avail_add(0);                                                  \
        int r_ = vq_pop(&vq_, &e);                                     \
        CHECK_MSG(r_ == -EPROTO && vq_.broken, "%s: pop gave %d", name, r_); \
        CHECK_MSG(vq_pop(&vq_, &e) == -EPROTO, "%s: second pop", name); \
        CHECK_MSG(*used16(2) == 0, "%s: used ring touched", name);     \
    } while (0)

static void test_hostile_chains(void)
{
    static struct vq_elem e;

    HOSTILE("address outside RAM", false, set_desc(0, RAM_BASE + RAM_SIZE - 8, 16, 0, 0));
    HOSTILE("address below RAM", false, set_desc(0, RAM_BASE - 16, 16, 0, 0));
    HOSTILE("length overflow", false, set_desc(0, DATA, 0xffffffffu, 0, 0));
    HOSTILE("address wraps", false, set_desc(0, ~0ull - 0xff, 0x200, 0, 0));
    HOSTILE("loop", false, {
        set_desc(0, DATA, 16, VRING_DESC_F_NEXT, 1);
        set_desc(1, DATA, 16, VRING_DESC_F_NEXT, 0);
    });
    HOSTILE("self loop", false, set_desc(0, DATA, 16, VRING_DESC_F_NEXT, 0));
    HOSTILE("next out of the table", false, set_desc(0, DATA, 16, VRING_DESC_F_NEXT, NUM));
    HOSTILE("write before read", false, {
        set_desc(0, DATA, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
        set_desc(1, DATA + 16, 16, 0, 0);
    });
    HOSTILE("indirect not negotiated", false, set_desc(0, INDIRECT, 16, VRING_DESC_F_INDIRECT, 0));
    HOSTILE("nested indirect", true, {
        set_desc_at(INDIRECT, 0, INDIRECT + 0x100, 16, VRING_DESC_F_INDIRECT, 0);
        set_desc(0, INDIRECT, 16, VRING_DESC_F_INDIRECT, 0);
    });
    HOSTILE("indirect with NEXT", true, {
        set_desc_at(INDIRECT, 0, DATA, 16, 0, 0);
        set_desc(0, INDIRECT, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
        set_desc(1, DATA, 16, 0, 0);
    });
    HOSTILE("indirect length not a multiple of 16", true, {
        set_desc_at(INDIRECT, 0, DATA, 16, 0, 0);
        set_desc(0, INDIRECT, 24, VRING_DESC_F_INDIRECT, 0);
    });
    HOSTILE("indirect length 0", true, set_desc(0, INDIRECT, 0, VRING_DESC_F_INDIRECT, 0));
    HOSTILE("indirect table outside RAM", true,
            set_desc(0, RAM_BASE + RAM_SIZE - 16, 32, VRING_DESC_F_INDIRECT, 0));
    HOSTILE("indirect table longer than VQ_MAX_SIZE", true,
            set_desc(0, INDIRECT, 16 * (VQ_MAX_SIZE + 1), VRING_DESC_F_INDIRECT, 0));
    HOSTILE("loop in an indirect table", true, {
        set_desc_at(INDIRECT, 0, DATA, 16, VRING_DESC_F_NEXT, 1);
        set_desc_at(INDIRECT, 1, DATA, 16, VRING_DESC_F_NEXT, 0);
        set_desc(0, INDIRECT, 32, VRING_DESC_F_INDIRECT, 0);
    });
    HOSTILE("indirect next past its table", true, {
        set_desc_at(INDIRECT, 0, DATA, 16, VRING_DESC_F_NEXT, 2);
        set_desc(0, INDIRECT, 32, VRING_DESC_F_INDIRECT, 0);
    });
    HOSTILE("indirect write before read", true, {
        set_desc_at(INDIRECT, 0, DATA, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
        set_desc_at(INDIRECT, 1, DATA, 16, 0, 0);
        set_desc(0, INDIRECT, 32, VRING_DESC_F_INDIRECT, 0);
    });
    /* Head index out of the table (the ring entry, not a descriptor). */
    {
        struct virtqueue vq;
        setup(&vq, false, false);
        avail_add(NUM + 3);
        CHECK_EQ(vq_pop(&vq, &e), -EPROTO);
    }
    /* The driver claims more new buffers than the ring holds. */
    {
        struct virtqueue vq;
        setup(&vq, false, false);
        set_desc(0, DATA, 16, 0, 0);
        *avail16(2) = NUM + 1;
        CHECK_EQ(vq_pop(&vq, &e), -EPROTO);
    }
}

static void test_bad_rings(void)
{
    struct virtqueue vq;
    struct { const char *name; uint16_t num; uint64_t desc, avail, used; } cases[] = {
        { "desc misaligned", NUM, DESC + 8, AVAIL, USED },
        { "avail misaligned", NUM, DESC, AVAIL + 1, USED },
        { "used misaligned", NUM, DESC, AVAIL, USED + 2 },
        { "desc past RAM", NUM, RAM_BASE + RAM_SIZE - 64, AVAIL, USED },
        { "avail past RAM", NUM, DESC, RAM_BASE + RAM_SIZE - 8, USED },
        { "used past RAM", NUM, DESC, AVAIL, RAM_BASE + RAM_SIZE - 32 },
        { "used below RAM", NUM, DESC, AVAIL, 0x1000 },
        { "size 0", 0, DESC, AVAIL, USED },
        { "size not a power of two", 6, DESC, AVAIL, USED },
        { "size too large", VQ_MAX_SIZE * 2, DESC, AVAIL, USED },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        vq_reset(&vq, &mem);
        vq.num = cases[i].num;
        vq.desc_addr = cases[i].desc;
        vq.avail_addr = cases[i].avail;
        vq.used_addr = cases[i].used;
        CHECK_MSG(vq_start(&vq, true, true) == -EPROTO && !vq.ready, "%s", cases[i].name);
    }
}

/* Random descriptor tables, indirect tables and rings: whatever vq_pop
 * returns, every buffer it hands out lies inside guest RAM, and it never
 * reads outside RAM itself (ASan watches the heap-backed RAM). */
static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static uint64_t rnd_addr(void)
{
    switch (rnd() % 6) {
    case 0: return RAM_BASE + rnd() % RAM_SIZE;
    case 1: return RAM_BASE + RAM_SIZE - rnd() % 64;   /* near the end */
    case 2: return RAM_BASE - rnd() % 64;              /* just below */
    case 3: return rnd();                              /* anywhere */
    case 4: return INDIRECT + 16 * (rnd() % 8);
    default: return DATA + rnd() % 0x1000;
    }
}

static void test_random_rings(void)
{
    static struct vq_elem e;
    int popped = 0, refused = 0;
    for (int iter = 0; iter < 20000; iter++) {
        struct virtqueue vq;
        setup(&vq, rnd() & 1, rnd() & 1);
        for (unsigned i = 0; i < NUM; i++)
            set_desc(i, rnd_addr(), (uint32_t)(rnd() % 3 ? rnd() % 0x200 : rnd()),
                     (uint16_t)(rnd() % 8), (uint16_t)(rnd() % (NUM + 2)));
        for (unsigned i = 0; i < 16; i++)
            set_desc_at(INDIRECT, i, rnd_addr(), (uint32_t)(rnd() % 0x300),
                        (uint16_t)(rnd() % 8), (uint16_t)(rnd() % 18));
        unsigned n = (unsigned)(rnd() % (NUM + 2));
        for (unsigned i = 0; i < n; i++)
            avail_add((uint16_t)(rnd() % (NUM + 1)));
        for (int k = 0; k < NUM + 2; k++) {
            int r = vq_pop(&vq, &e);
            if (r <= 0) {
                refused += r < 0;
                break;
            }
            popped++;
            for (unsigned i = 0; i < e.out_num + e.in_num; i++) {
                uint8_t *p = e.iov[i].iov_base;
                CHECK_MSG(p >= mem.ram && e.iov[i].iov_len <= RAM_SIZE &&
                          (size_t)(p - mem.ram) <= RAM_SIZE - e.iov[i].iov_len,
                          "iteration %d: buffer outside RAM", iter);
            }
            vq_push(&vq, e.head, 0);
        }
    }
    /* Both outcomes happened many times. */
    CHECK_MSG(popped > 1000 && refused > 1000, "popped %d, refused %d", popped, refused);
}

static void test_iov_helpers(void)
{
    uint8_t a[4] = { 1, 2, 3, 4 }, b[3] = { 5, 6, 7 }, out[8] = { 0 };
    struct iovec v[2] = { { a, 4 }, { b, 3 } }, s[2];
    CHECK_EQ(vq_iov_read(v, 2, 2, out, 8), 5);
    CHECK(out[0] == 3 && out[2] == 5 && out[4] == 7);
    CHECK_EQ(vq_iov_slice(v, 2, 3, 2, s, 2), 2);
    CHECK(s[0].iov_base == a + 3 && s[0].iov_len == 1 && s[1].iov_base == b && s[1].iov_len == 1);
    CHECK_EQ(vq_iov_slice(v, 2, 3, 5, s, 2), -1);   /* past the end */
    CHECK_EQ(vq_iov_slice(v, 2, 0, 7, s, 1), -1);   /* too many pieces */
    uint8_t x = 9;
    CHECK_EQ(vq_iov_write(v, 2, 6, &x, 1), 1);
    CHECK_EQ(b[2], 9);
}

int main(void)
{
    /* Heap-backed RAM so the sanitizer sees any access outside it. */
    mem.ram_base = RAM_BASE;
    mem.ram_size = RAM_SIZE;
    mem.ram = malloc(RAM_SIZE);
    if (!mem.ram)
        return 1;
    test_normal_chain();
    test_indirect();
    test_event_idx();
    test_hostile_chains();
    test_bad_rings();
    test_random_rings();
    test_iov_helpers();
    free(mem.ram);
    return check_summary("test_virtqueue");
}
