/* The live migration stream (docs/migration.md): frames over one connected
 * socket (TCP, or a unix socket for same-host moves), both ways.
 *
 *   frame    u8 type, u8 flags, u16 reserved (0), u32 length, payload[length]
 *
 * All integers little-endian. Frames, in the order a migration sends them
 * (S = source, D = destination):
 *
 *   S HELLO      "NIMBUSMG", u16 major, u16 minor, u32 features, u32 mode,
 *                u64 RAM size, u32 page size (4096), then a whole state
 *                stream (src/state/state.h) holding the "board" section and
 *                the "disk" sections: the destination builds the machine
 *                from it and checks it can hold the VM before any page moves
 *   D ACCEPT     u32 features the destination takes (a subset)
 *   S PAGES      u32 count (1..MIGRATE_BATCH_PAGES), u32 reserved (0),
 *                count x u64 entry (bits 0-47 page number, bit 63 ZERO: an
 *                all-zero page with no data; other bits 0), then the data of
 *                each non-zero page in entry order, 4 KiB each. With frame
 *                flag MIGRATE_FRAME_ZSTD (feature MIGRATE_F_ZSTD) the payload
 *                is u32 raw length + one zstd frame of the above
 *   S DISCARD    u64 number of pages, then a bitmap of them (u64 words):
 *                pages the destination holds that changed since they were
 *                sent (hybrid: the switch to post-copy)
 *   S STATE      a whole state stream: every component's sections
 *   S END        u32 flags (MIGRATE_END_*), u64 pages sent so far
 *   D READY      empty: everything loaded, the destination can run
 *   S GO         empty: the source will never run again; run
 *   D PAGE_REQ   u32 count (1..MIGRATE_MAX_REQ), u32 0, count x u64 page
 *                number (post-copy: pages the guest touched)
 *   S PAGES_DONE u64 pages sent in all (post-copy: every page is sent)
 *   D COMPLETE   empty: every page is in place; the source may end
 *   S DISK       mode COPY_STORAGE, any time before STATE: u32 disk slot,
 *                u32 flags (MIGRATE_DISK_ZERO: the range reads as zeros,
 *                no data), u64 offset, u64 length, then `length` bytes of
 *                the disk unless ZERO (1..MIGRATE_DISK_CHUNK_MAX). Offset
 *                and length are multiples of 512 (the length may end at
 *                the disk's end instead) and lie inside the disk
 *   S DISK_SYNC  empty, mode COPY_STORAGE, before STATE: make the disks
 *                durable, then say
 *   D DISK_SYNCED empty
 *   S SYNC       empty, feature MIGRATE_F_SYNC, before STATE: the end of a
 *                pre-copy round; answered once every frame before it is
 *                in place
 *   D SYNCED     empty
 *   * ERROR      i32 -errno, u16 length, message (either side gives up)
 *
 * Post-copy recovery (docs/migration.md): after GO a broken stream pauses
 * both sides; the source connects again (the destination listens again)
 * and the new connection starts with
 *
 *   S RESUME     u64 session (a hash of the STATE payload: which migration),
 *                u64 RAM size, u64 pages the source counts as sent
 *   D RECEIVED   u64 number of pages, then a bitmap of them (u64 words, no
 *                bit at or beyond the number): the pages the destination
 *                has; the source sends the others (PAGE_REQ first, which
 *                follow for the pages harts wait on) and never these
 *
 * then PAGES, PAGE_REQ, PAGES_DONE and COMPLETE as before.
 *
 * A frame that is not allowed where it comes, a length over the type's
 * limit, an unknown flag or feature, a page number outside RAM, a count
 * that does not match the length, a damaged zstd frame: each is refused
 * with -EBADMSG (-ENOTSUP for another major version) and a one-line
 * message; nothing is trusted from the network.
 *
 * Threads: a connection's reads belong to one thread at a time; writes
 * take the connection's lock, so two threads may write frames. */
#ifndef NIMBUS_VM_MIGRATE_STREAM_H
#define NIMBUS_VM_MIGRATE_STREAM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define MIGRATE_MAGIC       "NIMBUSMG"
#define MIGRATE_MAJOR       1
#define MIGRATE_MINOR       1
#define MIGRATE_FRAME_HDR   8
#define MIGRATE_PAGE_SIZE   4096u
#define MIGRATE_BATCH_PAGES 256u
#define MIGRATE_MAX_REQ     64u
#define MIGRATE_PFN_MASK    ((1ull << 48) - 1)
#define MIGRATE_PAGE_ZERO   (1ull << 63)
#define MIGRATE_PAGES_MAX   (8u + MIGRATE_BATCH_PAGES * (8u + MIGRATE_PAGE_SIZE))
#define MIGRATE_HELLO_FIXED 32u
#define MIGRATE_MAX_MSG     512u
#define MIGRATE_TCP_TIMEOUT_MS 15000u
#define MIGRATE_DISK_HDR    24u
#define MIGRATE_DISK_CHUNK_MAX (1u << 20)
#define MIGRATE_DISK_ZERO   1u          /* DISK flag: zeros, no data */

enum migrate_frame_type {
    MIGRATE_HELLO = 1,
    MIGRATE_ACCEPT,
    MIGRATE_ERROR,
    MIGRATE_PAGES,
    MIGRATE_DISCARD,
    MIGRATE_STATE,
    MIGRATE_END,
    MIGRATE_READY,
    MIGRATE_GO,
    MIGRATE_PAGE_REQ,
    MIGRATE_PAGES_DONE,
    MIGRATE_COMPLETE,
    MIGRATE_RESUME,
    MIGRATE_RECEIVED,
    MIGRATE_DISK,
    MIGRATE_DISK_SYNC,
    MIGRATE_DISK_SYNCED,
    MIGRATE_SYNC,
    MIGRATE_SYNCED,
    MIGRATE_FRAME_TYPES,
};

#define MIGRATE_FRAME_ZSTD 1u           /* frame flag: PAGES payload compressed */

/* Features (HELLO/ACCEPT). */
#define MIGRATE_F_ZSTD     (1u << 0)    /* PAGES frames may be zstd-compressed */
#define MIGRATE_F_SYNC     (1u << 1)    /* SYNC/SYNCED ends pre-copy rounds */
#define MIGRATE_F_ALL      (MIGRATE_F_ZSTD | MIGRATE_F_SYNC)

/* HELLO mode: what the destination must be able to do. */
#define MIGRATE_MODE_POSTCOPY (1u << 0) /* pages may come on demand (userfaultfd) */
#define MIGRATE_MODE_COPY_STORAGE (1u << 1) /* the writable disks come as DISK frames */
#define MIGRATE_MODE_ALL      (MIGRATE_MODE_POSTCOPY | MIGRATE_MODE_COPY_STORAGE)

/* END flags. */
#define MIGRATE_END_POSTCOPY (1u << 0)  /* the pages not sent yet come after GO */
#define MIGRATE_END_PAUSED   (1u << 1)  /* the VM was paused: stay paused */
#define MIGRATE_END_ALL      (MIGRATE_END_POSTCOPY | MIGRATE_END_PAUSED)

/* "unix:PATH" or "tcp:HOST:PORT" ("tcp:[V6ADDR]:PORT"). */
struct migrate_addr {
    bool tcp;
    char path[108];         /* unix */
    char host[256];         /* tcp */
    char port[8];
};

int migrate_addr_parse(const char *s, struct migrate_addr *a, char *err, size_t errlen);
/* Connects (at most timeout_ms for TCP); returns the fd or -errno. */
int migrate_connect(const struct migrate_addr *a, int timeout_ms, char *err, size_t errlen);
/* Listens (a unix socket file in the way that nobody serves is replaced);
 * returns the fd or -errno. `bound` (may be NULL) gets the address really
 * bound: tcp port 0 becomes the port the kernel chose. */
int migrate_listen(const struct migrate_addr *a, struct migrate_addr *bound, char *err,
                   size_t errlen);
/* Accepts one connection (TCP_NODELAY for TCP); the fd or -errno. Both
 * ends of a TCP stream also get keepalives and a user timeout
 * (MIGRATE_TCP_TIMEOUT_MS): a peer that vanished without a word (a cut
 * cable) is an error after that long, not a read that waits forever. */
int migrate_accept(int lfd, bool tcp, char *err, size_t errlen);
/* The address as the user would write it. */
void migrate_addr_format(const struct migrate_addr *a, char *buf, size_t len);

struct migrate_conn {
    int rfd, wfd;           /* the same socket, or two ends (tests, fuzzing) */
    pthread_mutex_t wlock;
    uint64_t bytes_in, bytes_out;   /* frames, headers included */
    uint8_t *buf;           /* the last frame's payload (owned) */
    size_t cap;
    void *zctx, *dctx;      /* zstd contexts, made on first use */
    uint8_t *zbuf;          /* compression scratch */
    size_t zcap;
};

/* The connection over rfd/wfd (not owned: the caller closes them). */
int migrate_conn_init(struct migrate_conn *c, int rfd, int wfd);
/* The same connection over other descriptors (-1: none, writes fail with
 * -EBADF): post-copy recovery. Waits for a write in progress (the lock),
 * so the old descriptor may be closed afterwards; the reading thread must
 * be the caller. */
void migrate_conn_rebind(struct migrate_conn *c, int rfd, int wfd);
void migrate_conn_free(struct migrate_conn *c);

struct migrate_frame {
    uint8_t type, flags;
    uint32_t len;
    const uint8_t *data;    /* the payload, in c->buf until the next recv */
};

/* Reads one frame. The allocation grows only with bytes that arrive, whatever
 * the header claims. Returns 0, -EBADMSG (a bad header, a length over the
 * type's limit), -ECONNRESET (end of stream: `err` says where), or a read
 * error. An ERROR frame from the peer is returned as -EREMOTEIO with its
 * message in `err`. */
int migrate_recv(struct migrate_conn *c, struct migrate_frame *f, char *err, size_t errlen);
/* Writes one frame (two parts: a header piece and a body, either may be
 * empty). Any thread (the connection's lock). Returns 0 or -errno. */
int migrate_send(struct migrate_conn *c, uint8_t type, uint8_t flags, const void *a, size_t alen,
                 const void *b, size_t blen);
/* An ERROR frame; best effort. */
void migrate_send_error(struct migrate_conn *c, int r, const char *msg);

/* The name of a frame type, for messages. */
const char *migrate_frame_name(unsigned type);

/* ---- page batches ---- */

struct migrate_batch {
    uint32_t count;
    uint64_t entries[MIGRATE_BATCH_PAGES];
    uint8_t *data;          /* MIGRATE_BATCH_PAGES pages */
    uint32_t ndata;
    uint64_t zero_pages, data_pages;    /* totals over every flush */
};

int migrate_batch_init(struct migrate_batch *b);
void migrate_batch_free(struct migrate_batch *b);
/* Adds page `pfn` with its contents (NULL, or all-zero contents: a ZERO
 * entry). Returns true when the batch is full (flush it). */
bool migrate_batch_add(struct migrate_batch *b, uint64_t pfn, const void *page);
/* Sends the batch as a PAGES frame (compressed with `zstd_level` > 0 when it
 * pays) and empties it. Returns 0 or -errno. */
int migrate_batch_flush(struct migrate_conn *c, struct migrate_batch *b, int zstd_level);

/* True when the 4 KiB page is all zero. */
bool migrate_page_is_zero(const void *page);

/* Parses a PAGES frame for RAM of `npages` pages: calls page(opaque, pfn,
 * data) for each entry in order (data NULL for a ZERO page), runs of
 * consecutive non-zero pages first as one call with n > 1 when `run` is
 * set. Every field is checked before the first call. Returns 0, the
 * callback's error, or -EBADMSG with a message. */
typedef int (*migrate_page_fn)(void *opaque, uint64_t pfn, uint64_t n, const void *data);
int migrate_pages_parse(struct migrate_conn *c, const struct migrate_frame *f, uint64_t npages,
                        bool features_zstd, migrate_page_fn page, void *opaque, char *err,
                        size_t errlen);

/* ---- fixed frames ---- */

struct migrate_hello {
    uint16_t major, minor;
    uint32_t features, mode;
    uint64_t ram_size;
    const uint8_t *board;   /* the state stream, inside the frame */
    size_t board_len;
};

/* Checks a HELLO frame's fixed part. -ENOTSUP for another major. */
int migrate_hello_parse(const struct migrate_frame *f, struct migrate_hello *h, char *err,
                        size_t errlen);
/* Sends HELLO with `board` (a state stream). */
int migrate_hello_send(struct migrate_conn *c, uint32_t features, uint32_t mode,
                       uint64_t ram_size, const void *board, size_t board_len);

/* A u32/u64 payload of fixed size (ACCEPT, END, PAGES_DONE): checks the
 * length and that `flags_u32 & ~allowed` is clear. */
int migrate_u32_parse(const struct migrate_frame *f, uint32_t allowed, uint32_t *v, char *err,
                      size_t errlen);
int migrate_end_parse(const struct migrate_frame *f, uint32_t *flags, uint64_t *pages, char *err,
                      size_t errlen);
int migrate_end_send(struct migrate_conn *c, uint32_t flags, uint64_t pages);

/* PAGE_REQ: up to MIGRATE_MAX_REQ page numbers, each < npages. */
int migrate_req_send(struct migrate_conn *c, const uint64_t *pfns, uint32_t n);
int migrate_req_parse(const struct migrate_frame *f, uint64_t npages, uint64_t *pfns,
                      uint32_t *n, char *err, size_t errlen);

/* DISCARD: a bitmap of npages pages; *bitmap points into the frame (the
 * caller copies it; 8-byte aligned copy not guaranteed: use memcpy). */
int migrate_discard_send(struct migrate_conn *c, const uint64_t *bitmap, uint64_t npages);
int migrate_discard_parse(const struct migrate_frame *f, uint64_t npages, uint64_t *bitmap,
                          char *err, size_t errlen);

/* RESUME. */
struct migrate_resume {
    uint64_t session, ram_size, pages_sent;
};
int migrate_resume_send(struct migrate_conn *c, const struct migrate_resume *res);
int migrate_resume_parse(const struct migrate_frame *f, struct migrate_resume *res, char *err,
                         size_t errlen);

/* RECEIVED: a bitmap of exactly npages pages (the words of a bitmap of
 * npages bits); refused when the number differs, the length does not
 * match or a bit beyond npages is set. */
int migrate_received_send(struct migrate_conn *c, const uint64_t *bitmap, uint64_t npages);
int migrate_received_parse(const struct migrate_frame *f, uint64_t npages, uint64_t *bitmap,
                           char *err, size_t errlen);
/* ---- disk chunks (copy-storage) ---- */

struct migrate_disk_chunk {
    uint32_t disk;
    bool zero;              /* the range reads as zeros; data NULL */
    uint64_t offset, len;
    const uint8_t *data;    /* inside the frame */
};

/* A DISK frame: `len` bytes of disk `disk` at `offset`, `data` (NULL: a
 * range of zeros, any length). Returns 0 or -errno. */
int migrate_disk_send(struct migrate_conn *c, uint32_t disk, uint64_t offset, uint64_t len,
                      const void *data);
/* Checks a DISK frame against the destination's disks: sizes[i] is disk i's
 * size in bytes, 0 for a disk that is not copied (read-only, shared).
 * -EBADMSG with a message for anything out of place. */
int migrate_disk_parse(const struct migrate_frame *f, const uint64_t *sizes, unsigned ndisks,
                       struct migrate_disk_chunk *d, char *err, size_t errlen);

#endif
