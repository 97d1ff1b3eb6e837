/* The state format (src/state): writer/reader round trips from memory and
 * through fds (a file and a pipe), the getters' bounds, versioning, and the
 * damaged streams a loader must refuse without crashing: every truncation,
 * every flipped bit, a newer major, a section of the wrong size, duplicates,
 * garbage after the end, misuse of the writer. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "state/state.h"

#include "check.h"

/* A small stream: two sections and an empty one. */
static void write_sample(struct state_writer *w)
{
    state_begin(w, "alpha", 0, 1, 2);
    state_put_u8(w, 0xa5);
    state_put_u16(w, 0xbeef);
    state_put_u32(w, 0xdeadbeef);
    state_put_u64(w, 0x0123456789abcdefull);
    state_put_bytes(w, "xyz", 3);
    CHECK_EQ(state_end(w), 0);
    state_begin(w, "alpha", 7, 1, 0);
    state_put_u8(w, 1);
    CHECK_EQ(state_end(w), 0);
    state_begin(w, "empty_one", 0, 3, 9);
    CHECK_EQ(state_end(w), 0);
}

static uint8_t *sample(size_t *len)
{
    struct state_writer w;
    CHECK_EQ(state_writer_init_mem(&w), 0);
    write_sample(&w);
    CHECK_EQ(state_writer_finish(&w, NULL, 0), 0);
    const uint8_t *d = state_writer_data(&w, len);
    uint8_t *copy = malloc(*len);
    memcpy(copy, d, *len);
    state_writer_free(&w);
    return copy;
}

static void check_sample(const struct state_reader *r)
{
    char err[256] = "";
    struct state_section s;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    char b[3];
    bool f;


    CHECK_EQ(state_reader_section(r, "alpha", 0, 1, &s, err, sizeof(err)), 0);
    CHECK_EQ(s.info->major, 1);
    CHECK_EQ(s.info->minor, 2);
    CHECK(state_get_u8(&s, &u8) && u8 == 0xa5);
    CHECK(state_get_u16(&s, &u16) && u16 == 0xbeef);
    CHECK(state_get_u32(&s, &u32) && u32 == 0xdeadbeef);
    CHECK(state_get_u64(&s, &u64) && u64 == 0x0123456789abcdefull);
    CHECK(state_get_bytes(&s, b, 3) && !memcmp(b, "xyz", 3));
    CHECK_EQ(state_section_done(&s, err, sizeof(err)), 0);

    CHECK_EQ(state_reader_section(r, "alpha", 7, 1, &s, err, sizeof(err)), 0);
    CHECK(state_get_bool(&s, &f) && f);
    CHECK_EQ(state_section_done(&s, err, sizeof(err)), 0);
    CHECK_EQ(state_reader_section(r, "empty_one", 0, 3, &s, err, sizeof(err)), 0);
    CHECK_EQ(s.len, 0);
    CHECK_EQ(state_section_done(&s, err, sizeof(err)), 0);
}

static void test_round_trip(void)
{
    char err[256] = "";
    size_t len;
    uint8_t *d = sample(&len);
    struct state_reader r;

    CHECK(!memcmp(d, STATE_MAGIC, STATE_MAGIC_LEN));
    CHECK_EQ(state_reader_open_mem(&r, d, len, err, sizeof(err)), 0);
    check_sample(&r);
    state_reader_free(&r);
    free(d);
}

/* The fd writer flushes as it goes: write a large stream to a file and read
 * it back, then through a pipe (a reader on a pipe sees short reads). */
struct pipe_job { int fd; uint8_t *data; size_t len; };

static void *pipe_writer(void *arg)
{
    struct pipe_job *j = arg;
    size_t off = 0;
    while (off < j->len) {
        size_t n = j->len - off < 1000 ? j->len - off : 1000;
        ssize_t k = write(j->fd, j->data + off, n);
        if (k <= 0)
            break;
        off += (size_t)k;
    }
    close(j->fd);
    return NULL;
}

static void test_fd(void)
{
    char err[256] = "";
    int fd = memfd_create("state", MFD_CLOEXEC);
    CHECK(fd >= 0);
    struct state_writer w;
    CHECK_EQ(state_writer_init_fd(&w, fd), 0);
    write_sample(&w);
    /* 300 sections of 1 KiB: several flushes of 64 KiB. */
    uint8_t blob[1024];
    for (unsigned i = 0; i < sizeof(blob); i++)
        blob[i] = (uint8_t)(i * 7);
    for (uint32_t i = 0; i < 300; i++) {
        state_begin(&w, "blob", i, 1, 0);
        state_put_u32(&w, i);
        state_put_bytes(&w, blob, sizeof(blob));
        CHECK_EQ(state_end(&w), 0);
    }
    CHECK_EQ(state_writer_finish(&w, err, sizeof(err)), 0);
    state_writer_free(&w);

    off_t size = lseek(fd, 0, SEEK_END);
    CHECK(size > 300 * 1024);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    struct state_reader r;
    CHECK_EQ(state_reader_open_fd(&r, fd, err, sizeof(err)), 0);
    CHECK_EQ(r.nsections, 303);
    struct state_section s;
    CHECK_EQ(state_reader_section(&r, "blob", 299, 1, &s, err, sizeof(err)), 0);
    uint32_t n;
    uint8_t got[1024];
    CHECK(state_get_u32(&s, &n) && n == 299);
    CHECK(state_get_bytes(&s, got, sizeof(got)) && !memcmp(got, blob, sizeof(blob)));
    CHECK_EQ(state_section_done(&s, err, sizeof(err)), 0);
    uint8_t *whole = malloc(r.size);
    memcpy(whole, r.data, r.size);
    size_t whole_len = r.size;
    state_reader_free(&r);

    int p[2];
    CHECK_EQ(pipe(p), 0);
    struct pipe_job job = { .fd = p[1], .data = whole, .len = whole_len };
    pthread_t t;
    pthread_create(&t, NULL, pipe_writer, &job);
    CHECK_EQ(state_reader_open_fd(&r, p[0], err, sizeof(err)), 0);
    pthread_join(t, NULL);
    close(p[0]);
    CHECK_EQ(r.nsections, 303);
    check_sample(&r);
    state_reader_free(&r);

    /* A writer on a closed pipe reports the error at the latest at finish. */
    CHECK_EQ(pipe(p), 0);
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    CHECK_EQ(state_writer_init_fd(&w, p[1]), 0);
    write_sample(&w);
    CHECK_EQ(state_writer_finish(&w, err, sizeof(err)), -EPIPE);
    CHECK(strstr(err, "cannot write") != NULL);
    state_writer_free(&w);
    close(p[1]);
    free(whole);
    close(fd);
}

static void test_getters_bounds(void)
{
    char err[256] = "";
    size_t len;
    uint8_t *d = sample(&len);
    struct state_reader r;
    struct state_section s;
    uint64_t v = 1;
    uint32_t v32;
    bool f;

    CHECK_EQ(state_reader_open_mem(&r, d, len, err, sizeof(err)), 0);
    /* Section alpha[7] holds one byte: a u64 fails, returns 0, and done() says why. */
    CHECK_EQ(state_reader_section(&r, "alpha", 7, 1, &s, err, sizeof(err)), 0);
    CHECK(!state_get_u64(&s, &v));
    CHECK_EQ(v, 0);
    CHECK(!state_get_u32(&s, &v32)); /* stays failed */
    CHECK_EQ(state_section_done(&s, err, sizeof(err)), -EBADMSG);
    CHECK(strstr(err, "alpha[7]") && strstr(err, "too short"));
    /* Reading less than the section: "bytes too many". */
    CHECK_EQ(state_reader_section(&r, "alpha", 0, 1, &s, err, sizeof(err)), 0);
    CHECK(state_get_u32(&s, &v32));
    CHECK_EQ(state_section_done(&s, err, sizeof(err)), -EBADMSG);
    CHECK(strstr(err, "too many") != NULL);
    /* A bool that is neither 0 nor 1. */
    CHECK_EQ(state_reader_section(&r, "alpha", 0, 1, &s, err, sizeof(err)), 0);
    CHECK(!state_get_bool(&s, &f)); /* 0xa5 */
    CHECK_EQ(state_section_done(&s, err, sizeof(err)), -EBADMSG);
    /* Missing section, newer section major (one-line message naming it). */
    CHECK_EQ(state_reader_section(&r, "alpha", 1, 1, &s, err, sizeof(err)), -ENOENT);
    CHECK(strstr(err, "alpha[1]") != NULL);
    CHECK_EQ(state_reader_section(&r, "empty_one", 0, 2, &s, err, sizeof(err)), -ENOTSUP);
    CHECK(strstr(err, "empty_one[0]") && strstr(err, "3.9") && !strchr(err, '\n'));
    CHECK_EQ(state_reader_section(&r, "empty_one", 0, 3, &s, err, sizeof(err)), 0);
    CHECK_EQ(state_section_error(&s, err, sizeof(err), -EINVAL, "x %d", 5), -EINVAL);
    CHECK(!strcmp(err, "state: section empty_one[0] v3.9: x 5"));
    state_reader_free(&r);
    free(d);
}

/* Recomputes the CRCs of a stream whose bytes were edited on purpose, so
 * the test reaches the check behind them. */
static void fix_crcs(uint8_t *d, size_t len)
{
    size_t off = STATE_HEADER_SIZE;
    while (off + STATE_SECTION_MIN <= len) {
        uint32_t plen = d[off + 24] | d[off + 25] << 8 | d[off + 26] << 16 | (uint32_t)d[off + 27] << 24;
        size_t rec = STATE_SECTION_HDR + plen;
        if (off + rec + 4 > len)
            return;
        bool end = true;
        for (int i = 0; i < STATE_TAG_LEN; i++)
            end = end && d[off + i] == 0;
        if (end && plen == 8) {
            uint32_t t = (uint32_t)crc32(0, d, (uInt)off);
            for (int i = 0; i < 4; i++)
                d[off + STATE_SECTION_HDR + 4 + i] = (uint8_t)(t >> (8 * i));
        }
        uint32_t c = (uint32_t)crc32(0, d + off, (uInt)rec);
        for (int i = 0; i < 4; i++)
            d[off + rec + i] = (uint8_t)(c >> (8 * i));
        off += rec + 4;
    }
}

static int open_err(const uint8_t *d, size_t len, char *err, size_t errlen)
{
    struct state_reader r;
    err[0] = 0;
    int ret = state_reader_open_mem(&r, d, len, err, errlen);
    if (!ret)
        state_reader_free(&r);
    return ret;
}

static void test_corruption(void)
{
    char err[256];
    size_t len;
    uint8_t *d = sample(&len);
    uint8_t *c = malloc(len + 16);

    /* Every truncation (and one byte appended) is refused with a message. */
    int bad = 0;
    for (size_t n = 0; n < len; n++) {
        int ret = open_err(d, n, err, sizeof(err));
        if (ret != -EBADMSG || !err[0] || strchr(err, '\n'))
            bad++;
    }
    CHECK_EQ(bad, 0);
    memcpy(c, d, len);
    c[len] = 0;
    CHECK_EQ(open_err(c, len + 1, err, sizeof(err)), -EBADMSG);
    CHECK(strstr(err, "after the end") != NULL);

    /* Every single flipped bit is refused: the header by its checks, the
     * rest by a CRC (or the length/tag checks before it). A flip in the
     * major may make it look newer: -ENOTSUP. */
    bad = 0;
    for (size_t bitno = 0; bitno < len * 8; bitno++) {
        memcpy(c, d, len);
        c[bitno / 8] ^= (uint8_t)(1u << (bitno % 8));
        int ret = open_err(c, len, err, sizeof(err));
        if ((ret != -EBADMSG && ret != -ENOTSUP) || !err[0]) {
            bad++;
            printf("bit %zu: %d %s\n", bitno, ret, err);
        }
    }
    CHECK_EQ(bad, 0);

    /* Newer format major: refused naming both versions. */
    memcpy(c, d, len);
    c[8] = STATE_FORMAT_MAJOR + 1;
    CHECK_EQ(open_err(c, len, err, sizeof(err)), -ENOTSUP);
    CHECK(strstr(err, "newer") != NULL);

    /* A section whose length field grew (CRCs fixed): the stream no longer
     * parses - or, if it does, the section is the wrong size for its reader. */
    memcpy(c, d, len);
    c[STATE_HEADER_SIZE + 24] += 1;
    fix_crcs(c, len);
    CHECK_EQ(open_err(c, len, err, sizeof(err)), -EBADMSG);

    /* A section with a valid CRC but an extra payload byte (rebuilt): the
     * stream opens, the component's reader sees the wrong size. */
    struct state_writer w;
    struct state_reader r;
    struct state_section s;
    uint8_t u8;
    state_writer_init_mem(&w);
    state_begin(&w, "alpha", 7, 1, 0);
    state_put_u8(&w, 1);
    state_put_u8(&w, 0);
    state_end(&w);
    CHECK_EQ(state_writer_finish(&w, err, sizeof(err)), 0);
    const uint8_t *wd = state_writer_data(&w, &len);
    CHECK_EQ(state_reader_open_mem(&r, wd, len, err, sizeof(err)), 0);
    CHECK_EQ(state_reader_section(&r, "alpha", 7, 1, &s, err, sizeof(err)), 0);
    state_get_u8(&s, &u8);
    CHECK_EQ(state_section_done(&s, err, sizeof(err)), -EBADMSG);
    CHECK(strstr(err, "1 bytes too many") != NULL);
    state_reader_free(&r);
    state_writer_free(&w);

    /* Duplicate tag+instance; a bad tag (CRCs fixed). */
    state_writer_init_mem(&w);
    state_begin(&w, "dup", 3, 1, 0);
    state_end(&w);
    state_begin(&w, "dup", 3, 1, 0);
    state_end(&w);
    CHECK_EQ(state_writer_finish(&w, err, sizeof(err)), 0);
    wd = state_writer_data(&w, &len);
    CHECK_EQ(open_err(wd, len, err, sizeof(err)), -EBADMSG);
    CHECK(strstr(err, "dup[3] appears twice") != NULL);
    state_writer_free(&w);

    len = 0;
    free(d);
    d = sample(&len);
    memcpy(c, d, len);
    c[STATE_HEADER_SIZE] = 'A'; /* upper case is not a tag */
    fix_crcs(c, len);
    CHECK_EQ(open_err(c, len, err, sizeof(err)), -EBADMSG);
    CHECK(strstr(err, "invalid tag") != NULL);
    memcpy(c, d, len);
    c[STATE_HEADER_SIZE + 20] = 0; /* section major 0 */
    fix_crcs(c, len);
    CHECK_EQ(open_err(c, len, err, sizeof(err)), -EBADMSG);
    CHECK(strstr(err, "alpha[0] has major version 0") != NULL);
    memcpy(c, d, len);
    c[STATE_HEADER_SIZE + 10] = 'x'; /* a byte after the tag's NUL */
    fix_crcs(c, len);
    CHECK_EQ(open_err(c, len, err, sizeof(err)), -EBADMSG);

    /* A length field claiming 4 GiB in a tiny file: no huge allocation,
     * a clear message (ASan would catch an over-read). */
    memcpy(c, d, len);
    c[STATE_HEADER_SIZE + 24] = c[STATE_HEADER_SIZE + 25] = 0xff;
    c[STATE_HEADER_SIZE + 26] = c[STATE_HEADER_SIZE + 27] = 0xff;
    CHECK_EQ(open_err(c, len, err, sizeof(err)), -EBADMSG);
    CHECK(strstr(err, "truncated") != NULL);
    free(c);
    free(d);
}

static void test_writer_misuse(void)
{
    struct state_writer w;
    char err[256];

    state_writer_init_mem(&w);
    state_put_u8(&w, 1); /* outside a section */
    CHECK_EQ(state_writer_finish(&w, err, sizeof(err)), -EINVAL);
    state_writer_free(&w);

    state_writer_init_mem(&w);
    state_begin(&w, "Bad", 0, 1, 0);
    CHECK_EQ(state_end(&w), -EINVAL);
    state_writer_free(&w);

    state_writer_init_mem(&w);
    state_begin(&w, "abcdefghijklmnop", 0, 1, 0); /* 16 chars: too long */
    CHECK_EQ(state_end(&w), -EINVAL);
    state_writer_free(&w);

    state_writer_init_mem(&w);
    state_begin(&w, "a", 0, 1, 0);
    state_begin(&w, "b", 0, 1, 0); /* nested */
    CHECK_EQ(state_end(&w), -EINVAL);
    state_writer_free(&w);

    state_writer_init_mem(&w);
    state_begin(&w, "zero", 0, 0, 1); /* major 0 is the end record's */
    CHECK_EQ(state_end(&w), -EINVAL);
    state_writer_free(&w);

    state_writer_init_mem(&w);
    state_begin(&w, "open", 0, 1, 0);
    CHECK_EQ(state_writer_finish(&w, err, sizeof(err)), -EINVAL); /* left open */
    state_writer_free(&w);

    /* An empty stream (no sections) is valid. */
    size_t len;
    struct state_reader r;
    state_writer_init_mem(&w);
    CHECK_EQ(state_writer_finish(&w, err, sizeof(err)), 0);
    const uint8_t *d = state_writer_data(&w, &len);
    CHECK_EQ(len, STATE_HEADER_SIZE + STATE_SECTION_MIN + 8);
    CHECK_EQ(state_reader_open_mem(&r, d, len, err, sizeof(err)), 0);
    CHECK_EQ(r.nsections, 0);
    state_reader_free(&r);
    state_writer_free(&w);
    CHECK_EQ(state_writer_init_fd(&w, -1), -EBADF);
}

int main(void)
{
    test_round_trip();
    test_fd();
    test_getters_bounds();
    test_corruption();
    test_writer_misuse();
    return check_summary("test_state");
}
