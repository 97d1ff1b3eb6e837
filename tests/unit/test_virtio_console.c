/* Unit tests for virtio-console, driven through the transport like the
 * guest's driver: device id and (empty) configuration space; transmit
 * chains reach the output callback in order (writable buffers in them are
 * ignored); a backend that takes only part of a chain holds the chain
 * (not used) until virtio_console_output_ready(), then the rest follows in
 * order (back-pressure, nothing lost); input typed before the driver posts
 * receive buffers waits and
 * is split over small buffers in order; input beyond the bounded buffer is
 * refused, not stored; a receive chain with no writable buffer takes
 * nothing; the input survives a device reset; input typed after the queues
 * are set up but before DRIVER_OK waits for DRIVER_OK. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/console.h"

#include "check.h"
#include "virtio_driver.h"

#define BASE 0x10001000ull
#define RXQ  0u
#define TXQ  1u
#define BUF(i) (DRV_DATA + 0x2000ull * (i))

static struct guest_mem mem;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static char out[8192];
static size_t out_len;
static size_t out_room = SIZE_MAX;   /* bytes the backend takes before it is full */

static void noop_irq(void *c, unsigned irq, bool level)
{
    (void)c, (void)irq, (void)level;
}

static size_t output(void *opaque, const uint8_t *buf, size_t n)
{
    (void)opaque;
    pthread_mutex_lock(&out_lock);
    if (n > out_room)
        n = out_room;
    out_room -= n;
    if (n > sizeof(out) - out_len)
        n = sizeof(out) - out_len;
    memcpy(out + out_len, buf, n);
    out_len += n;
    pthread_mutex_unlock(&out_lock);
    return n;
}

static void setup(struct drv *d)
{
    *d = (struct drv){ .mem = &mem, .base = BASE };
    CHECK(drv_negotiate(d, 1ull << VIRTIO_F_VERSION_1) & VIRTIO_STATUS_FEATURES_OK);
    drv_queue_setup(d, RXQ, 16);
    drv_queue_setup(d, TXQ, 16);
    drv_driver_ok(d);
}

/* Posts one writable receive buffer of `len` bytes in slot i. */
static void rx_post(struct drv *d, unsigned i, uint32_t len)
{
    memset(drv_ram(d, BUF(i)), 0, len);
    struct drv_buf b = { BUF(i), len, true };
    drv_add(d, RXQ, &b, 1);
}

int main(void)
{
    drv_mem_init(&mem);
    struct irq_line line = { .set_level = noop_irq, .irq = 1 };
    struct virtio_console_host host = { .output = output };
    struct virtio_dev *dev;
    struct virtio_console *con;
    CHECK_EQ(virtio_console_create(&mem, BASE, line, &host, &dev, &con), 0);
    struct drv d = { .mem = &mem, .base = BASE };
    CHECK_EQ(drv_rd(&d, R_DEVICE_ID), VIRTIO_ID_CONSOLE);
    uint64_t v = 1;
    CHECK(guest_mem_mmio_read(&mem, BASE + R_CONFIG, 4, &v));
    CHECK_EQ(v, 0);   /* cols/rows: no F_SIZE */
    CHECK_EQ(drv_device_features(&d) & 0xffffff, 0);   /* no SIZE, MULTIPORT, EMERG_WRITE */

    /* Input before the driver is even there: kept. */
    CHECK_EQ(virtio_console_input(con, (const uint8_t *)"abcdef", 6), 6);
    setup(&d);

    /* Output: two readable buffers, then one with a writable buffer too. */
    memcpy(drv_ram(&d, BUF(20)), "hello ", 6);
    memcpy(drv_ram(&d, BUF(21)), "world", 5);
    struct drv_buf t[2] = { { BUF(20), 6, false }, { BUF(21), 5, false } };
    drv_add(&d, TXQ, t, 2);
    CHECK(drv_wait_used(&d, TXQ, 1));
    memcpy(drv_ram(&d, BUF(22)), "!", 1);
    struct drv_buf t2[2] = { { BUF(22), 1, false }, { BUF(23), 64, true } };
    drv_add(&d, TXQ, t2, 2);
    CHECK(drv_wait_used(&d, TXQ, 2));
    uint32_t id, len;
    drv_used_entry(&d, TXQ, 1, &id, &len);
    CHECK_EQ(len, 0);
    pthread_mutex_lock(&out_lock);
    CHECK(out_len == 12 && !memcmp(out, "hello world!", 12));
    pthread_mutex_unlock(&out_lock);

    /* Back-pressure: the backend takes 3 bytes, then is full. The chain is
     * held (not used), and so is the one after it; output_ready resumes. */
    pthread_mutex_lock(&out_lock);
    out_room = 3;
    pthread_mutex_unlock(&out_lock);
    memcpy(drv_ram(&d, BUF(24)), "slow ", 5);
    memcpy(drv_ram(&d, BUF(25)), "reader", 6);
    struct drv_buf t3[2] = { { BUF(24), 5, false }, { BUF(25), 6, false } };
    drv_add(&d, TXQ, t3, 2);
    memcpy(drv_ram(&d, BUF(26)), ".", 1);
    struct drv_buf t4 = { BUF(26), 1, false };
    drv_add(&d, TXQ, &t4, 1);
    drv_sleep_ms(50);
    CHECK_EQ(drv_used_idx(&d, TXQ), 2);
    pthread_mutex_lock(&out_lock);
    CHECK(out_len == 15 && !memcmp(out + 12, "slo", 3));
    out_room = 4;   /* room again, but not for all of it */
    pthread_mutex_unlock(&out_lock);
    virtio_console_output_ready(con);
    drv_sleep_ms(50);
    CHECK_EQ(drv_used_idx(&d, TXQ), 2);
    pthread_mutex_lock(&out_lock);
    out_room = SIZE_MAX;
    pthread_mutex_unlock(&out_lock);
    virtio_console_output_ready(con);
    CHECK(drv_wait_used(&d, TXQ, 4));
    pthread_mutex_lock(&out_lock);
    CHECK(out_len == 24 && !memcmp(out, "hello world!slow reader.", 24));
    pthread_mutex_unlock(&out_lock);

    /* The typed bytes fill small buffers in order. */
    rx_post(&d, 0, 4);
    rx_post(&d, 1, 4);
    CHECK(drv_wait_used(&d, RXQ, 2));
    drv_used_entry(&d, RXQ, 0, &id, &len);
    CHECK_EQ(len, 4);
    CHECK(!memcmp(drv_ram(&d, BUF(0)), "abcd", 4));
    drv_used_entry(&d, RXQ, 1, &id, &len);
    CHECK_EQ(len, 2);
    CHECK(!memcmp(drv_ram(&d, BUF(1)), "ef", 2));

    /* Buffers wait for input; input wakes them. */
    rx_post(&d, 2, 64);
    drv_sleep_ms(50);
    CHECK_EQ(drv_used_idx(&d, RXQ), 2);
    CHECK_EQ(virtio_console_input(con, (const uint8_t *)"ls\r", 3), 3);
    CHECK(drv_wait_used(&d, RXQ, 3));
    drv_used_entry(&d, RXQ, 2, &id, &len);
    CHECK(len == 3 && !memcmp(drv_ram(&d, BUF(2)), "ls\r", 3));

    /* More than the buffer holds, no receive buffers: bounded. */
    static uint8_t big[VIRTIO_CONSOLE_INPUT_MAX + 1000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)('a' + i % 26);
    CHECK_EQ(virtio_console_input(con, big, sizeof(big)), VIRTIO_CONSOLE_INPUT_MAX);
    CHECK_EQ(virtio_console_input(con, big, 10), 0);

    /* A receive chain with nothing writable takes nothing. */
    struct drv_buf ro = { BUF(3), 16, false };
    drv_add(&d, RXQ, &ro, 1);
    CHECK(drv_wait_used(&d, RXQ, 4));
    drv_used_entry(&d, RXQ, 3, &id, &len);
    CHECK_EQ(len, 0);

    /* A reset keeps what was typed; after it, all of it arrives in order. */
    setup(&d);
    for (unsigned i = 0; i < 2; i++)
        rx_post(&d, 4 + i, 4096);
    CHECK(drv_wait_used(&d, RXQ, 1));
    drv_sleep_ms(50);
    CHECK_EQ(drv_used_idx(&d, RXQ), 1);
    drv_used_entry(&d, RXQ, 0, &id, &len);
    CHECK_EQ(len, VIRTIO_CONSOLE_INPUT_MAX);
    CHECK(!memcmp(drv_ram(&d, BUF(4)), big, VIRTIO_CONSOLE_INPUT_MAX));
    CHECK(!(drv_rd(&d, R_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET));

    /* Typed input while the queues are set up but DRIVER_OK is not: no
     * buffer is used before DRIVER_OK (§3.1), then the input arrives. */
    d = (struct drv){ .mem = &mem, .base = BASE };
    CHECK(drv_negotiate(&d, 1ull << VIRTIO_F_VERSION_1) & VIRTIO_STATUS_FEATURES_OK);
    drv_queue_setup(&d, RXQ, 16);
    drv_queue_setup(&d, TXQ, 16);
    rx_post(&d, 6, 64);
    CHECK_EQ(virtio_console_input(con, (const uint8_t *)"early", 5), 5);
    drv_sleep_ms(50);
    CHECK_EQ(drv_used_idx(&d, RXQ), 0);
    drv_driver_ok(&d);
    CHECK(drv_wait_used(&d, RXQ, 1));
    drv_used_entry(&d, RXQ, 0, &id, &len);
    CHECK(len == 5 && !memcmp(drv_ram(&d, BUF(6)), "early", 5));

    virtio_mmio_destroy(dev);
    drv_mem_free(&mem);
    return check_summary("test_virtio_console");
}
