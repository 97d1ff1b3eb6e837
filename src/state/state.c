/* The state format's writer and reader. See state.h for the layout. */
#include "state/state.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "base/errmsg.h"

/* A fd writer flushes whole sections once this much is pending. */
#define FLUSH_THRESHOLD (64u << 10)
#define END_PAYLOAD 8

static uint32_t crc(uint32_t c, const uint8_t *p, size_t n)
{
    while (n) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = (uint32_t)crc32(c, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return c;
}

static void le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void le32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bool tag_valid(const char *tag)
{
    size_t n = strnlen(tag, STATE_TAG_LEN);
    if (n == 0 || n >= STATE_TAG_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = tag[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* ---- writer ---- */

static void fail(struct state_writer *w, int rc)
{
    if (!w->error)
        w->error = rc;
}

static uint8_t *reserve(struct state_writer *w, size_t n)
{
    if (w->error)
        return NULL;
    if (n > STATE_MAX_SIZE || w->len > STATE_MAX_SIZE - n) {
        fail(w, -EFBIG);
        return NULL;
    }
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *b = realloc(w->buf, cap);
        if (!b) {
            fail(w, -ENOMEM);
            return NULL;
        }
        w->buf = b;
        w->cap = cap;
    }
    uint8_t *p = w->buf + w->len;
    w->len += n;
    return p;
}

/* Writes out buf[0, n) (complete records) and keeps the rest. */
static void flush(struct state_writer *w, size_t n)
{
    if (w->fd < 0 || w->error || n == 0)
        return;
    size_t off = 0;
    while (off < n) {
        ssize_t k = write(w->fd, w->buf + off, n - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            fail(w, k < 0 ? -errno : -EIO);
            return;
        }
        off += (size_t)k;
    }
    w->stream_crc = crc(w->stream_crc, w->buf, n);
    memmove(w->buf, w->buf + n, w->len - n);
    w->len -= n;
    if (w->sec_start != SIZE_MAX)
        w->sec_start -= n;
}

static int writer_init(struct state_writer *w, int fd)
{
    memset(w, 0, sizeof(*w));
    w->fd = fd;
    w->sec_start = SIZE_MAX;
    w->stream_crc = (uint32_t)crc32(0, Z_NULL, 0);
    uint8_t *p = reserve(w, STATE_HEADER_SIZE);
    if (!p)
        return w->error;
    memcpy(p, STATE_MAGIC, STATE_MAGIC_LEN);
    le16(p + 8, STATE_FORMAT_MAJOR);
    le16(p + 10, STATE_FORMAT_MINOR);
    le32(p + 12, 0);
    return 0;
}

int state_writer_init_fd(struct state_writer *w, int fd)
{
    if (fd < 0)
        return -EBADF;
    return writer_init(w, fd);
}

int state_writer_init_mem(struct state_writer *w)
{
    return writer_init(w, -1);
}

void state_writer_free(struct state_writer *w)
{
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}

static void begin_raw(struct state_writer *w, const char tag[STATE_TAG_LEN], uint32_t instance,
                      uint16_t major, uint16_t minor)
{
    if (w->sec_start != SIZE_MAX || w->finished) {
        fail(w, -EINVAL); /* nested section, or after finish */
        return;
    }
    size_t start = w->len;
    uint8_t *p = reserve(w, STATE_SECTION_HDR);
    if (!p)
        return;
    memcpy(p, tag, STATE_TAG_LEN);
    le32(p + 16, instance);
    le16(p + 20, major);
    le16(p + 22, minor);
    le32(p + 24, 0); /* length, patched by state_end() */
    w->sec_start = start;
}

void state_begin(struct state_writer *w, const char *tag, uint32_t instance,
                 uint16_t major, uint16_t minor)
{
    char t[STATE_TAG_LEN] = { 0 };
    if (!tag_valid(tag) || major == 0) {
        fail(w, -EINVAL);
        return;
    }
    memcpy(t, tag, strlen(tag));
    begin_raw(w, t, instance, major, minor);
}

void state_put_bytes(struct state_writer *w, const void *src, size_t n)
{
    if (w->sec_start == SIZE_MAX) {
        fail(w, -EINVAL); /* outside a section */
        return;
    }
    uint8_t *p = reserve(w, n);
    if (p && n)
        memcpy(p, src, n);
}

void state_put_u8(struct state_writer *w, uint8_t v) { state_put_bytes(w, &v, 1); }

void state_put_u16(struct state_writer *w, uint16_t v)
{
    uint8_t b[2];
    le16(b, v);
    state_put_bytes(w, b, 2);
}

void state_put_u32(struct state_writer *w, uint32_t v)
{
    uint8_t b[4];
    le32(b, v);
    state_put_bytes(w, b, 4);
}

void state_put_u64(struct state_writer *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    state_put_bytes(w, b, 8);
}

int state_end(struct state_writer *w)
{
    if (w->sec_start == SIZE_MAX) {
        fail(w, -EINVAL);
        return w->error;
    }
    size_t start = w->sec_start;
    w->sec_start = SIZE_MAX;
    if (w->error)
        return w->error;
    size_t plen = w->len - start - STATE_SECTION_HDR;
    if (plen > UINT32_MAX) {
        fail(w, -EFBIG);
        return w->error;
    }
    le32(w->buf + start + 24, (uint32_t)plen);
    uint32_t c = crc((uint32_t)crc32(0, Z_NULL, 0), w->buf + start, w->len - start);
    uint8_t *p = reserve(w, 4);
    if (!p)
        return w->error;
    le32(p, c);
    w->nsections++;
    if (w->len >= FLUSH_THRESHOLD)
        flush(w, w->len);
    return w->error;
}

int state_writer_finish(struct state_writer *w, char *err, size_t errlen)
{
    static const char zero_tag[STATE_TAG_LEN];

    if (w->sec_start != SIZE_MAX)
        fail(w, -EINVAL); /* a section was left open */
    if (!w->error && !w->finished) {
        /* The end record's payload covers every byte before the record. */
        uint32_t total = crc(w->stream_crc, w->buf, w->len);
        uint32_t n = w->nsections;
        begin_raw(w, zero_tag, 0, 0, 0);
        state_put_u32(w, n);
        state_put_u32(w, total);
        state_end(w);
        w->nsections = n;
        flush(w, w->len);
        w->finished = true;
    }
    if (w->error)
        return errmsg(err, errlen, w->error, "state: cannot write the state stream: %s",
                      strerror(-w->error));
    return 0;
}

const uint8_t *state_writer_data(const struct state_writer *w, size_t *len)
{
    *len = w->len;
    return w->buf;
}

/* ---- reader ---- */

static int info_cmp(const void *a, const void *b)
{
    const struct state_section_info *x = a, *y = b;
    int c = strcmp(x->tag, y->tag);
    if (c)
        return c;
    return x->instance < y->instance ? -1 : x->instance > y->instance;
}

/* No tag+instance twice (sorted copy: hostile streams may hold millions). */
static int check_unique(const struct state_reader *r, char *err, size_t errlen)
{
    if (r->nsections < 2)
        return 0;
    struct state_section_info *s = malloc(r->nsections * sizeof(*s));
    if (!s)
        return errmsg(err, errlen, -ENOMEM, "state: out of memory");
    memcpy(s, r->sections, r->nsections * sizeof(*s));
    qsort(s, r->nsections, sizeof(*s), info_cmp);
    int ret = 0;
    for (uint32_t i = 1; i < r->nsections && !ret; i++)
        if (!info_cmp(&s[i - 1], &s[i]))
            ret = errmsg(err, errlen, -EBADMSG, "state: section %s[%u] appears twice",
                         s[i].tag, s[i].instance);
    free(s);
    return ret;
}

static int parse(struct state_reader *r, char *err, size_t errlen)
{
    const uint8_t *d = r->data;
    size_t size = r->size;

    if (size < STATE_HEADER_SIZE || memcmp(d, STATE_MAGIC, STATE_MAGIC_LEN))
        return errmsg(err, errlen, -EBADMSG, "state: not a Nimbus state stream (bad magic or shorter than the header)");
    r->major = rd16(d + 8);
    r->minor = rd16(d + 10);
    if (r->major > STATE_FORMAT_MAJOR)
        return errmsg(err, errlen, -ENOTSUP, "state: format version %u.%u is newer than this build's %u.%u",
                      r->major, r->minor, STATE_FORMAT_MAJOR, STATE_FORMAT_MINOR);
    if (r->major < STATE_FORMAT_MAJOR)
        return errmsg(err, errlen, -ENOTSUP, "state: format version %u.%u is older than this build reads (%u.x)",
                      r->major, r->minor, STATE_FORMAT_MAJOR);
    if (rd32(d + 12) != 0)
        return errmsg(err, errlen, -EBADMSG, "state: unknown header flags 0x%x", rd32(d + 12));

    /* Every section is at least STATE_SECTION_MIN bytes: this bounds the index. */
    size_t max_sections = (size - STATE_HEADER_SIZE) / STATE_SECTION_MIN;
    r->sections = calloc(max_sections ? max_sections : 1, sizeof(*r->sections));
    if (!r->sections)
        return errmsg(err, errlen, -ENOMEM, "state: out of memory");

    size_t off = STATE_HEADER_SIZE;
    for (;;) {
        if (size - off < STATE_SECTION_MIN)
            return errmsg(err, errlen, -EBADMSG, "state: truncated at offset %zu: no end record", off);
        const uint8_t *h = d + off;
        uint32_t len = rd32(h + 24);
        if (len > size - off - STATE_SECTION_MIN)
            return errmsg(err, errlen, -EBADMSG,
                          "state: truncated: the section at offset %zu claims %u bytes, the stream has %zu left",
                          off, len, size - off - STATE_SECTION_MIN);
        size_t rec = STATE_SECTION_HDR + (size_t)len;
        uint32_t c = crc((uint32_t)crc32(0, Z_NULL, 0), h, rec);
        bool end = true;
        for (int i = 0; i < STATE_TAG_LEN; i++)
            end = end && h[i] == 0;
        char name[STATE_TAG_LEN + 1];
        memcpy(name, h, STATE_TAG_LEN);
        name[STATE_TAG_LEN] = 0;
        if (c != rd32(h + rec))
            return errmsg(err, errlen, -EBADMSG, "state: section %s[%u] at offset %zu: CRC mismatch",
                          end ? "(end)" : tag_valid(name) ? name : "?", rd32(h + 16), off);
        if (end) {
            if (rd32(h + 16) != 0 || rd16(h + 20) != 0 || rd16(h + 22) != 0 || len != END_PAYLOAD)
                return errmsg(err, errlen, -EBADMSG, "state: malformed end record at offset %zu", off);
            if (rd32(h + STATE_SECTION_HDR) != r->nsections)
                return errmsg(err, errlen, -EBADMSG, "state: the end record counts %u sections, the stream has %u",
                              rd32(h + STATE_SECTION_HDR), r->nsections);
            uint32_t total = crc((uint32_t)crc32(0, Z_NULL, 0), d, off);
            if (rd32(h + STATE_SECTION_HDR + 4) != total)
                return errmsg(err, errlen, -EBADMSG, "state: stream CRC mismatch");
            off += rec + 4;
            if (off != size)
                return errmsg(err, errlen, -EBADMSG, "state: %zu bytes after the end record", size - off);
            return check_unique(r, err, errlen);
        }
        /* A valid tag is NUL-padded: the bytes after the first NUL are 0. */
        bool padded = true;
        for (size_t i = strnlen(name, STATE_TAG_LEN); i < STATE_TAG_LEN; i++)
            padded = padded && h[i] == 0;
        if (!tag_valid(name) || !padded)
            return errmsg(err, errlen, -EBADMSG, "state: section at offset %zu has an invalid tag", off);
        if (rd16(h + 20) == 0)
            return errmsg(err, errlen, -EBADMSG, "state: section %s[%u] has major version 0 (majors start at 1)",
                          name, rd32(h + 16));
        struct state_section_info *s = &r->sections[r->nsections];
        memcpy(s->tag, name, STATE_TAG_LEN);
        s->instance = rd32(h + 16);
        s->major = rd16(h + 20);
        s->minor = rd16(h + 22);
        s->offset = (uint32_t)(off + STATE_SECTION_HDR);
        s->len = len;
        r->nsections++;
        off += rec + 4;
    }
}

static int open_owned(struct state_reader *r, char *err, size_t errlen)
{
    int ret = parse(r, err, errlen);
    if (ret)
        state_reader_free(r);
    return ret;
}

int state_reader_open_mem(struct state_reader *r, const void *data, size_t size,
                          char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    if (size > STATE_MAX_SIZE)
        return errmsg(err, errlen, -EFBIG, "state: stream of %zu bytes exceeds the limit of %u",
                      size, STATE_MAX_SIZE);
    r->data = malloc(size ? size : 1);
    if (!r->data)
        return errmsg(err, errlen, -ENOMEM, "state: out of memory");
    if (size)
        memcpy(r->data, data, size);
    r->size = size;
    return open_owned(r, err, errlen);
}

int state_reader_open_fd(struct state_reader *r, int fd, char *err, size_t errlen)
{
    size_t cap = 64u << 10;

    memset(r, 0, sizeof(*r));
    r->data = malloc(cap);
    if (!r->data)
        return errmsg(err, errlen, -ENOMEM, "state: out of memory");
    /* Read to EOF; the buffer only grows with bytes actually read. */
    for (;;) {
        if (r->size == cap) {
            if (cap >= STATE_MAX_SIZE + 1ull) {
                state_reader_free(r);
                return errmsg(err, errlen, -EFBIG, "state: stream exceeds the limit of %u bytes",
                              STATE_MAX_SIZE);
            }
            cap *= 2;
            if (cap > STATE_MAX_SIZE + 1ull)
                cap = STATE_MAX_SIZE + 1ull;
            uint8_t *b = realloc(r->data, cap);
            if (!b) {
                state_reader_free(r);
                return errmsg(err, errlen, -ENOMEM, "state: out of memory");
            }
            r->data = b;
        }
        ssize_t k = read(fd, r->data + r->size, cap - r->size);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            int e = errno;
            state_reader_free(r);
            return errmsg(err, errlen, -e, "state: read failed: %s", strerror(e));
        }
        if (k == 0)
            break;
        r->size += (size_t)k;
    }
    if (r->size > STATE_MAX_SIZE) {
        state_reader_free(r);
        return errmsg(err, errlen, -EFBIG, "state: stream exceeds the limit of %u bytes", STATE_MAX_SIZE);
    }
    return open_owned(r, err, errlen);
}

void state_reader_free(struct state_reader *r)
{
    free(r->data);
    free(r->sections);
    memset(r, 0, sizeof(*r));
}

void state_reader_section_at(const struct state_reader *r, uint32_t i, struct state_section *s)
{
    memset(s, 0, sizeof(*s));
    s->info = &r->sections[i];
    s->data = r->data + s->info->offset;
    s->len = s->info->len;
}

int state_reader_section(const struct state_reader *r, const char *tag, uint32_t instance,
                         uint16_t max_major, struct state_section *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    for (uint32_t i = 0; i < r->nsections; i++) {
        const struct state_section_info *info = &r->sections[i];
        if (info->instance != instance || strcmp(info->tag, tag))
            continue;
        if (info->major > max_major)
            return errmsg(err, errlen, -ENOTSUP,
                          "state: section %s[%u] has version %u.%u, newer than this build reads (%u.x)",
                          tag, instance, info->major, info->minor, max_major);
        state_reader_section_at(r, i, s);
        return 0;
    }
    return errmsg(err, errlen, -ENOENT, "state: no section %s[%u]", tag, instance);
}

bool state_get_bytes(struct state_section *s, void *p, size_t n)
{
    if (s->overrun || n > s->len - s->pos) {
        s->overrun = true;
        memset(p, 0, n);
        return false;
    }
    memcpy(p, s->data + s->pos, n);
    s->pos += (uint32_t)n;
    return true;
}

bool state_get_u8(struct state_section *s, uint8_t *v)
{
    return state_get_bytes(s, v, 1);
}

bool state_get_u16(struct state_section *s, uint16_t *v)
{
    uint8_t b[2];
    bool ok = state_get_bytes(s, b, 2);
    *v = rd16(b);
    return ok;
}

bool state_get_u32(struct state_section *s, uint32_t *v)
{
    uint8_t b[4];
    bool ok = state_get_bytes(s, b, 4);
    *v = rd32(b);
    return ok;
}

bool state_get_u64(struct state_section *s, uint64_t *v)
{
    uint8_t b[8];
    bool ok = state_get_bytes(s, b, 8);
    *v = 0;
    for (int i = 0; i < 8; i++)
        *v |= (uint64_t)b[i] << (8 * i);
    return ok;
}

bool state_get_bool(struct state_section *s, bool *v)
{
    uint8_t b;
    bool ok = state_get_u8(s, &b);
    if (b > 1)
        s->bad_bool = true;
    *v = b == 1;
    return ok && b <= 1;
}

int state_section_error(const struct state_section *s, char *err, size_t errlen, int rc,
                        const char *fmt, ...)
{
    if (err && errlen) {
        int n = s->info ? snprintf(err, errlen, "state: section %s[%u] v%u.%u: ", s->info->tag,
                                   s->info->instance, s->info->major, s->info->minor)
                        : snprintf(err, errlen, "state: ");
        if (n >= 0 && (size_t)n < errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return rc;
}

int state_section_done(struct state_section *s, char *err, size_t errlen)
{
    if (s->overrun)
        return state_section_error(s, err, errlen, -EBADMSG, "too short (%u bytes)", s->len);
    if (s->pos != s->len)
        return state_section_error(s, err, errlen, -EBADMSG, "%u bytes too many (%u bytes)",
                                   s->len - s->pos, s->len);
    if (s->bad_bool)
        return state_section_error(s, err, errlen, -EBADMSG, "a flag is neither 0 nor 1");
    return 0;
}
