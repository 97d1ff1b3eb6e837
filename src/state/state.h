/* The one persistence format (STYLE.md principle 6): snapshots and the
 * migration stream carry every component's state as tagged, versioned,
 * checksummed sections. Guest RAM is not in it. Layout (little-endian,
 * docs/architecture.md "State format"):
 *
 *   header   "NIMBUSST", u16 major, u16 minor, u32 flags (0)
 *   section  char tag[16] (NUL-padded [a-z0-9_-]), u32 instance,
 *            u16 major, u16 minor, u32 length, payload[length],
 *            u32 crc32 (zlib) of the section's header and payload
 *   ...
 *   end      a section with an all-zero tag, instance 0, version 0.0 and an
 *            8-byte payload: u32 number of sections, u32 crc32 of every byte
 *            before the end record; then its own crc32 like any section.
 *
 * Writer: state_begin(), state_put_*(), state_end() per section, then
 * state_writer_finish(). Errors are sticky: a failed put or a misuse is
 * remembered and returned by state_end() and state_writer_finish(), so
 * save functions need not check every put.
 *
 * Reader: state_reader_open_*() checks the whole stream before anything is
 * loaded (magic, versions, lengths against the size, every CRC, the end
 * record, no duplicate tag+instance), so a load never sees damaged bytes.
 * A component then takes its section with state_reader_section(), reads
 * fields with the getters (which fail, never read past the section) and
 * calls state_section_done() to check that the size was exactly right.
 *
 * Threads: a writer or reader is used by one thread at a time. No global
 * state. */
#ifndef NIMBUS_STATE_STATE_H
#define NIMBUS_STATE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATE_MAGIC         "NIMBUSST"
#define STATE_MAGIC_LEN     8
#define STATE_FORMAT_MAJOR  1
#define STATE_FORMAT_MINOR  0
#define STATE_HEADER_SIZE   16
#define STATE_TAG_LEN       16      /* bytes on disk; a tag has 1..15 chars */
#define STATE_SECTION_HDR   28      /* tag, instance, major, minor, length */
#define STATE_SECTION_MIN   (STATE_SECTION_HDR + 4)
/* A whole stream (the sections, not guest RAM) must fit in this: a reader
 * never allocates more, whatever the file claims. */
#define STATE_MAX_SIZE      (256u << 20)

struct state_writer {
    uint8_t *buf;        /* pending bytes (the open section and what precedes it) */
    size_t len, cap;
    int fd;              /* -1: memory writer, everything stays in buf */
    size_t sec_start;    /* offset in buf of the open section, SIZE_MAX if none */
    uint32_t stream_crc; /* crc32 of every byte already flushed */
    uint32_t nsections;
    int error;           /* sticky -errno */
    bool finished;
};

/* A writer to `fd` (buffered; sections are written whole) or to memory.
 * Both write the stream header at once. Return 0 or -errno. */
int state_writer_init_fd(struct state_writer *w, int fd);
int state_writer_init_mem(struct state_writer *w);
/* Frees the buffer (does not close the fd). */
void state_writer_free(struct state_writer *w);

/* Opens a section; `tag` is 1..15 characters of [a-z0-9_-]; majors start
 * at 1 (0 marks the end record). */
void state_begin(struct state_writer *w, const char *tag, uint32_t instance,
                 uint16_t major, uint16_t minor);
void state_put_u8(struct state_writer *w, uint8_t v);
void state_put_u16(struct state_writer *w, uint16_t v);
void state_put_u32(struct state_writer *w, uint32_t v);
void state_put_u64(struct state_writer *w, uint64_t v);
void state_put_bytes(struct state_writer *w, const void *p, size_t n);
/* Closes the section (length and CRC). Returns the sticky error: 0 or -errno. */
int state_end(struct state_writer *w);
/* Writes the end record and flushes. Returns 0 or -errno with a message. */
int state_writer_finish(struct state_writer *w, char *err, size_t errlen);
/* Memory writer after finish: the stream. */
const uint8_t *state_writer_data(const struct state_writer *w, size_t *len);

struct state_section_info {
    char tag[STATE_TAG_LEN];  /* NUL-terminated */
    uint32_t instance;
    uint16_t major, minor;
    uint32_t offset;          /* of the payload in the stream */
    uint32_t len;
};

struct state_reader {
    uint8_t *data;            /* the whole stream (owned) */
    size_t size;
    uint16_t major, minor;
    struct state_section_info *sections;
    uint32_t nsections;
};

/* One section being read: a cursor over its payload. */
struct state_section {
    const struct state_section_info *info;
    const uint8_t *data;
    uint32_t len, pos;
    bool overrun;             /* a getter wanted more than was left */
    bool bad_bool;            /* state_get_bool() read neither 0 nor 1 */
};

/* Open and check a stream from memory (copied) or from fd (read to EOF;
 * works on pipes and sockets). Errors: -EBADMSG for a damaged or truncated
 * stream, -ENOTSUP for a newer format major, -EFBIG over STATE_MAX_SIZE,
 * -ENOMEM, or a read error; `err` gets one line saying what and where. */
int state_reader_open_mem(struct state_reader *r, const void *data, size_t size,
                          char *err, size_t errlen);
int state_reader_open_fd(struct state_reader *r, int fd, char *err, size_t errlen);
void state_reader_free(struct state_reader *r);

/* Finds section tag[instance] and checks its version: -ENOENT if absent,
 * -ENOTSUP if its major is above `max_major` (the newest this build reads),
 * each with a one-line message naming the section. An older major or any
 * minor is the caller's choice (s->info->major/minor). */
int state_reader_section(const struct state_reader *r, const char *tag, uint32_t instance,
                         uint16_t max_major, struct state_section *s, char *err, size_t errlen);
/* The i-th section in stream order, for listing (i < r->nsections). */
void state_reader_section_at(const struct state_reader *r, uint32_t i, struct state_section *s);

/* Getters: false (and *v = 0, s->overrun set) past the end of the section. */
bool state_get_u8(struct state_section *s, uint8_t *v);
bool state_get_u16(struct state_section *s, uint16_t *v);
bool state_get_u32(struct state_section *s, uint32_t *v);
bool state_get_u64(struct state_section *s, uint64_t *v);
bool state_get_bool(struct state_section *s, bool *v); /* a u8 that must be 0 or 1 */
bool state_get_bytes(struct state_section *s, void *p, size_t n);
/* 0 if every getter succeeded and the payload was consumed exactly;
 * otherwise -EBADMSG, "section TAG[N]: ..." (too short / N bytes too many /
 * a bool that is not 0 or 1). */
int state_section_done(struct state_section *s, char *err, size_t errlen);
/* Formats "section TAG[N] vMAJ.MIN: <msg>" into err and returns rc
 * (-EINVAL by convention for a field a load refuses). */
__attribute__((format(printf, 5, 6)))
int state_section_error(const struct state_section *s, char *err, size_t errlen, int rc,
                        const char *fmt, ...);

#endif
