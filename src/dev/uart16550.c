/* NS16550A UART. See uart16550.h for the threading contract.
 *
 * Lock order: uart->lock -> (irq line) PLIC lock -> hart callbacks.
 * Every function named *_locked expects uart->lock held. */
#include "dev/uart16550.h"

#include <errno.h>
#include <libfdt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/state.h"

/* Register offsets (reg-shift 0). */
enum {
    REG_RBR_THR_DLL = 0,
    REG_IER_DLM     = 1,
    REG_IIR_FCR     = 2,
    REG_LCR         = 3,
    REG_MCR         = 4,
    REG_LSR         = 5,
    REG_MSR         = 6,
    REG_SCR         = 7,
};

#define IER_ERBFI  0x01 /* received data available */
#define IER_ETBEI  0x02 /* THR empty */
#define IER_ELSI   0x04 /* receiver line status */
#define IER_EDSSI  0x08 /* modem status */

#define IIR_NO_INT 0x01
#define IIR_MSI    0x00
#define IIR_THRI   0x02
#define IIR_RDI    0x04
#define IIR_RLSI   0x06
#define IIR_CTI    0x0c
#define IIR_FIFO   0xc0

#define FCR_FIFOE  0x01
#define FCR_CLR_RX 0x02
#define FCR_CLR_TX 0x04
#define FCR_DMA    0x08
#define FCR_TRIG   0xc0

#define LCR_DLAB   0x80

#define MCR_DTR    0x01
#define MCR_RTS    0x02
#define MCR_OUT1   0x04
#define MCR_OUT2   0x08
#define MCR_LOOP   0x10

#define LSR_DR     0x01
#define LSR_OE     0x02
#define LSR_BI     0x10
#define LSR_THRE   0x20
#define LSR_TEMT   0x40

#define MSR_DCTS   0x01
#define MSR_DDSR   0x02
#define MSR_TERI   0x04
#define MSR_DDCD   0x08
#define MSR_CTS    0x10
#define MSR_DSR    0x20
#define MSR_RI     0x40
#define MSR_DCD    0x80
#define MSR_DELTAS 0x0f

struct uart16550 {
    pthread_mutex_t lock;
    uint64_t base;
    struct irq_line irq;
    struct uart16550_host host;

    uint8_t ier, fcr, lcr, mcr, scr;
    uint8_t msr;        /* status bits (7:4) and deltas (3:0) */
    uint8_t lsr_err;    /* sticky error bits (OE), cleared by reading LSR */
    uint8_t rbr;        /* last byte read, returned again when empty */
    uint16_t divisor;

    uint8_t rx[UART16550_FIFO_SIZE];
    unsigned rx_head, rx_count;

    bool thr_ipending;  /* THRE interrupt latched, see update_irq_locked() */
    bool irq_level;     /* what we last drove on the line */
    bool rx_blocked;    /* receive() refused bytes: owe the host rx_ready */
};

static unsigned rx_capacity_locked(const struct uart16550 *u)
{
    return (u->fcr & FCR_FIFOE) ? UART16550_FIFO_SIZE : 1;
}

static unsigned rx_trigger_locked(const struct uart16550 *u)
{
    static const unsigned trig[4] = { 1, 4, 8, 14 };
    return trig[u->fcr >> 6];
}

/* The highest-priority pending interrupt, as IIR bits 3:0. Without a
 * character timer, data below the FIFO trigger level is reported at once as a
 * character timeout (Linux treats RDI and CTI alike). */
static uint8_t iir_id_locked(const struct uart16550 *u)
{
    if ((u->ier & IER_ELSI) && (u->lsr_err & (LSR_OE | LSR_BI)))
        return IIR_RLSI;
    if ((u->ier & IER_ERBFI) && u->rx_count) {
        if (!(u->fcr & FCR_FIFOE) || u->rx_count >= rx_trigger_locked(u))
            return IIR_RDI;
        return IIR_CTI;
    }
    if ((u->ier & IER_ETBEI) && u->thr_ipending)
        return IIR_THRI;
    if ((u->ier & IER_EDSSI) && (u->msr & MSR_DELTAS))
        return IIR_MSI;
    return IIR_NO_INT;
}

static void update_irq_locked(struct uart16550 *u)
{
    bool level = iir_id_locked(u) != IIR_NO_INT;
    if (level != u->irq_level) {
        u->irq_level = level;
        irq_line_set(&u->irq, level);
    }
}

static void notify_rx_room_locked(struct uart16550 *u)
{
    if (u->rx_blocked && !(u->mcr & MCR_LOOP) && u->rx_count < rx_capacity_locked(u)) {
        u->rx_blocked = false;
        if (u->host.rx_ready)
            u->host.rx_ready(u->host.opaque);
    }
}

static void rx_clear_locked(struct uart16550 *u)
{
    u->rx_head = 0;
    u->rx_count = 0;
}

/* Returns false when the FIFO is full. */
static bool rx_push_locked(struct uart16550 *u, uint8_t b)
{
    if (u->rx_count >= rx_capacity_locked(u))
        return false;
    u->rx[(u->rx_head + u->rx_count) % UART16550_FIFO_SIZE] = b;
    u->rx_count++;
    return true;
}

/* Modem status lines: in loopback they follow MCR, otherwise a connected
 * null-modem terminal (DCD, DSR, CTS asserted, as QEMU reports). */
static uint8_t msr_lines_locked(const struct uart16550 *u)
{
    if (!(u->mcr & MCR_LOOP))
        return MSR_DCD | MSR_DSR | MSR_CTS;
    uint8_t m = 0;
    if (u->mcr & MCR_DTR)  m |= MSR_DSR;
    if (u->mcr & MCR_RTS)  m |= MSR_CTS;
    if (u->mcr & MCR_OUT1) m |= MSR_RI;
    if (u->mcr & MCR_OUT2) m |= MSR_DCD;
    return m;
}

static void msr_refresh_locked(struct uart16550 *u)
{
    uint8_t old = u->msr & 0xf0, now = msr_lines_locked(u);
    uint8_t changed = old ^ now, delta = 0;
    if (changed & MSR_CTS) delta |= MSR_DCTS;
    if (changed & MSR_DSR) delta |= MSR_DDSR;
    if (changed & MSR_DCD) delta |= MSR_DDCD;
    if ((old & MSR_RI) && !(now & MSR_RI)) delta |= MSR_TERI;
    u->msr = now | (u->msr & MSR_DELTAS) | delta;
}

static void reset_locked(struct uart16550 *u)
{
    u->ier = 0;
    u->fcr = 0;
    u->lcr = 0;
    u->mcr = 0;
    u->scr = 0;
    u->lsr_err = 0;
    u->rbr = 0;
    u->divisor = 0;
    u->thr_ipending = false;
    rx_clear_locked(u);
    u->msr = msr_lines_locked(u);
    update_irq_locked(u);
    notify_rx_room_locked(u);
}

/* The transmitter is "busy" while the host's output is backed up (never in
 * loopback, where bytes go to our own receiver). */
static bool tx_busy_locked(const struct uart16550 *u)
{
    return !(u->mcr & MCR_LOOP) && u->host.tx_busy && u->host.tx_busy(u->host.opaque);
}

static void thr_write_locked(struct uart16550 *u, uint8_t b)
{
    if (u->mcr & MCR_LOOP) {
        if (!rx_push_locked(u, b))
            u->lsr_err |= LSR_OE;
    } else {
        u->host.tx(u->host.opaque, &b, 1);
    }
    /* Sent at once: the holding register is empty again - unless the host
     * is backed up, and then THRE waits for uart16550_tx_ready(). */
    u->thr_ipending = !tx_busy_locked(u);
}

static uint8_t rbr_read_locked(struct uart16550 *u)
{
    if (u->rx_count) {
        u->rbr = u->rx[u->rx_head];
        u->rx_head = (u->rx_head + 1) % UART16550_FIFO_SIZE;
        u->rx_count--;
        notify_rx_room_locked(u);
    }
    return u->rbr;
}

static void fcr_write_locked(struct uart16550 *u, uint8_t v)
{
    bool was_on = u->fcr & FCR_FIFOE, on = v & FCR_FIFOE;
    /* Toggling FIFO mode resets both FIFOs, as on the real part. */
    if (was_on != on || (v & FCR_CLR_RX))
        rx_clear_locked(u);
    u->fcr = on ? (v & (FCR_FIFOE | FCR_DMA | FCR_TRIG)) : 0;
    notify_rx_room_locked(u);
}

static void ier_write_locked(struct uart16550 *u, uint8_t v)
{
    uint8_t changed = (u->ier ^ v) & IER_ETBEI;
    u->ier = v & 0x0f;
    /* 16550 behaviour Linux relies on (its UART_BUG_THRE probe): enabling
     * ETBEI while THR is empty raises the THRE interrupt at once. */
    if (changed)
        u->thr_ipending = (u->ier & IER_ETBEI) && !tx_busy_locked(u);
}

static bool uart_read(void *opaque, uint64_t offset, unsigned size, uint64_t *value)
{
    struct uart16550 *u = opaque;
    uint8_t v = 0;
    (void)size;

    pthread_mutex_lock(&u->lock);
    switch (offset) {
    case REG_RBR_THR_DLL:
        v = (u->lcr & LCR_DLAB) ? (uint8_t)u->divisor : rbr_read_locked(u);
        break;
    case REG_IER_DLM:
        v = (u->lcr & LCR_DLAB) ? (uint8_t)(u->divisor >> 8) : u->ier;
        break;
    case REG_IIR_FCR: {
        uint8_t id = iir_id_locked(u);
        /* Reading IIR acknowledges a THRE interrupt it reports. */
        if (id == IIR_THRI)
            u->thr_ipending = false;
        v = id | ((u->fcr & FCR_FIFOE) ? IIR_FIFO : 0);
        break;
    }
    case REG_LCR:
        v = u->lcr;
        break;
    case REG_MCR:
        v = u->mcr;
        break;
    case REG_LSR:
        v = (tx_busy_locked(u) ? 0 : LSR_THRE | LSR_TEMT) | u->lsr_err |
            (u->rx_count ? LSR_DR : 0);
        u->lsr_err = 0;
        break;
    case REG_MSR:
        v = u->msr;
        u->msr &= (uint8_t)~MSR_DELTAS;
        break;
    case REG_SCR:
        v = u->scr;
        break;
    default:
        break; /* unimplemented space in the 0x100 window reads 0 */
    }
    update_irq_locked(u);
    pthread_mutex_unlock(&u->lock);
    *value = v;
    return true;
}

static bool uart_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    struct uart16550 *u = opaque;
    uint8_t v = (uint8_t)value;
    (void)size;

    pthread_mutex_lock(&u->lock);
    switch (offset) {
    case REG_RBR_THR_DLL:
        if (u->lcr & LCR_DLAB)
            u->divisor = (uint16_t)((u->divisor & 0xff00) | v);
        else
            thr_write_locked(u, v);
        break;
    case REG_IER_DLM:
        if (u->lcr & LCR_DLAB)
            u->divisor = (uint16_t)((u->divisor & 0x00ff) | (v << 8));
        else
            ier_write_locked(u, v);
        break;
    case REG_IIR_FCR:
        fcr_write_locked(u, v);
        break;
    case REG_LCR:
        u->lcr = v;
        break;
    case REG_MCR: {
        bool was_loop = u->mcr & MCR_LOOP;
        u->mcr = v & 0x1f;
        msr_refresh_locked(u);
        if (was_loop && !(u->mcr & MCR_LOOP))
            notify_rx_room_locked(u);
        break;
    }
    case REG_LSR:
    case REG_MSR:
        break; /* read-only (factory test writes ignored) */
    case REG_SCR:
        u->scr = v;
        break;
    default:
        break;
    }
    update_irq_locked(u);
    pthread_mutex_unlock(&u->lock);
    return true;
}

static const struct mmio_ops uart16550_mmio_ops = {
    .read = uart_read,
    .write = uart_write,
};

int uart16550_create(struct guest_mem *mem, uint64_t base, struct irq_line irq,
                     const struct uart16550_host *host, struct uart16550 **out)
{
    int ret;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!host || !host->tx)
        return -EINVAL;
    struct uart16550 *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    ret = -pthread_mutex_init(&u->lock, NULL);
    if (ret)
        goto err_free;
    u->base = base;
    u->irq = irq;
    u->host = *host;
    /* Power-on state without touching the line (it starts low). */
    u->msr = msr_lines_locked(u);

    if (mem) {
        ret = guest_mem_add_mmio(mem, base, UART16550_SIZE, &uart16550_mmio_ops, u, "uart16550");
        if (ret)
            goto err_mutex;
    }
    *out = u;
    return 0;

err_mutex:
    pthread_mutex_destroy(&u->lock);
err_free:
    free(u);
    return ret;
}

void uart16550_destroy(struct uart16550 *u)
{
    if (!u)
        return;
    pthread_mutex_destroy(&u->lock);
    free(u);
}

void uart16550_reset(struct uart16550 *u)
{
    pthread_mutex_lock(&u->lock);
    reset_locked(u);
    pthread_mutex_unlock(&u->lock);
}

int uart16550_receive(struct uart16550 *u, const uint8_t *buf, size_t n)
{
    size_t i = 0;

    pthread_mutex_lock(&u->lock);
    if (!(u->mcr & MCR_LOOP))
        while (i < n && rx_push_locked(u, buf[i]))
            i++;
    if (i < n)
        u->rx_blocked = true;
    update_irq_locked(u);
    pthread_mutex_unlock(&u->lock);
    return (int)i;
}

void uart16550_tx_ready(struct uart16550 *u)
{
    pthread_mutex_lock(&u->lock);
    if ((u->ier & IER_ETBEI) && !tx_busy_locked(u)) {
        u->thr_ipending = true;
        update_irq_locked(u);
    }
    pthread_mutex_unlock(&u->lock);
}

size_t uart16550_can_receive(struct uart16550 *u)
{
    size_t room = 0;

    pthread_mutex_lock(&u->lock);
    if (!(u->mcr & MCR_LOOP))
        room = rx_capacity_locked(u) - u->rx_count;
    pthread_mutex_unlock(&u->lock);
    return room;
}

int uart16550_fdt(struct uart16550 *u, struct fdt_ctx *ctx)
{
    char name[48];
    void *fdt = ctx->fdt;
    int err;

    snprintf(name, sizeof(name), "serial@%llx", (unsigned long long)u->base);
    if ((err = fdt_begin_node(fdt, name)) ||
        (err = fdt_property_string(fdt, "compatible", "ns16550a")) ||
        (err = device_fdt_reg(fdt, u->base, UART16550_SIZE)) ||
        (err = fdt_property_u32(fdt, "clock-frequency", UART16550_CLOCK_HZ)))
        return device_fdt_errno(err);
    if (u->irq.set_level) {
        if ((err = fdt_property_u32(fdt, "interrupt-parent", ctx->plic_phandle)) ||
            (err = fdt_property_u32(fdt, "interrupts", u->irq.irq)))
            return device_fdt_errno(err);
    }
    return device_fdt_errno(fdt_end_node(fdt));
}

int uart16550_save(struct uart16550 *u, struct state_writer *w, uint32_t instance)
{
    uint8_t fifo[UART16550_FIFO_SIZE] = { 0 };

    pthread_mutex_lock(&u->lock);
    for (unsigned i = 0; i < u->rx_count; i++)
        fifo[i] = u->rx[(u->rx_head + i) % UART16550_FIFO_SIZE];
    state_begin(w, UART16550_STATE_TAG, instance, UART16550_STATE_MAJOR, UART16550_STATE_MINOR);
    state_put_u8(w, u->ier);
    state_put_u8(w, u->fcr);
    state_put_u8(w, u->lcr);
    state_put_u8(w, u->mcr);
    state_put_u8(w, u->scr);
    state_put_u8(w, u->msr);
    state_put_u8(w, u->lsr_err);
    state_put_u8(w, u->rbr);
    state_put_u16(w, u->divisor);
    state_put_u8(w, u->thr_ipending);
    state_put_u8(w, (uint8_t)u->rx_count);
    state_put_bytes(w, fifo, sizeof(fifo));
    pthread_mutex_unlock(&u->lock);
    return state_end(w);
}

int uart16550_load(struct uart16550 *u, const struct state_reader *r, uint32_t instance,
                   char *err, size_t errlen)
{
    struct state_section s;
    struct uart16550 v; /* the loaded registers, checked before use */
    uint8_t fifo[UART16550_FIFO_SIZE], count;
    bool thr;
    int ret = state_reader_section(r, UART16550_STATE_TAG, instance, UART16550_STATE_MAJOR,
                                   &s, err, errlen);
    if (ret)
        return ret;
    memset(&v, 0, sizeof(v));
    state_get_u8(&s, &v.ier);
    state_get_u8(&s, &v.fcr);
    state_get_u8(&s, &v.lcr);
    state_get_u8(&s, &v.mcr);
    state_get_u8(&s, &v.scr);
    state_get_u8(&s, &v.msr);
    state_get_u8(&s, &v.lsr_err);
    state_get_u8(&s, &v.rbr);
    state_get_u16(&s, &v.divisor);
    state_get_bool(&s, &thr);
    state_get_u8(&s, &count);
    state_get_bytes(&s, fifo, sizeof(fifo));
    if ((ret = state_section_done(&s, err, errlen)))
        return ret;

    /* The values the register writes can produce (uart_write and friends). */
    if (v.ier & ~0x0fu)
        return state_section_error(&s, err, errlen, -EINVAL, "IER 0x%02x has reserved bits", v.ier);
    if (v.fcr & ~(FCR_FIFOE | FCR_DMA | FCR_TRIG) || (v.fcr && !(v.fcr & FCR_FIFOE)))
        return state_section_error(&s, err, errlen, -EINVAL, "FCR 0x%02x is not a stored FCR", v.fcr);
    if (v.mcr & ~0x1fu)
        return state_section_error(&s, err, errlen, -EINVAL, "MCR 0x%02x has reserved bits", v.mcr);
    if ((v.msr & 0xf0) != msr_lines_locked(&v))
        return state_section_error(&s, err, errlen, -EINVAL,
                                   "MSR 0x%02x disagrees with MCR 0x%02x", v.msr, v.mcr);
    if (v.lsr_err & ~LSR_OE)
        return state_section_error(&s, err, errlen, -EINVAL, "LSR errors 0x%02x", v.lsr_err);
    if (count > rx_capacity_locked(&v))
        return state_section_error(&s, err, errlen, -EINVAL, "%u bytes in a %u-byte RX FIFO",
                                   count, rx_capacity_locked(&v));
    for (unsigned i = count; i < UART16550_FIFO_SIZE; i++)
        if (fifo[i])
            return state_section_error(&s, err, errlen, -EINVAL, "data past the RX FIFO's end");

    pthread_mutex_lock(&u->lock);
    u->ier = v.ier;
    u->fcr = v.fcr;
    u->lcr = v.lcr;
    u->mcr = v.mcr;
    u->scr = v.scr;
    u->msr = v.msr;
    u->lsr_err = v.lsr_err;
    u->rbr = v.rbr;
    u->divisor = v.divisor;
    u->thr_ipending = thr;
    memcpy(u->rx, fifo, sizeof(fifo));
    u->rx_head = 0;
    u->rx_count = count;
    update_irq_locked(u);
    /* The new host may hold input it could not give a fresh device. */
    u->rx_blocked = true;
    notify_rx_room_locked(u);
    pthread_mutex_unlock(&u->lock);
    return 0;
}
