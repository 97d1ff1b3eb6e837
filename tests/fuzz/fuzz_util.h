/* Shared helpers for the libFuzzer targets (tests/fuzz/fuzz_*.c).
 *
 *   FUZZ_CHECK(cond, fmt, ...)  an invariant: when it does not hold, prints
 *                               the message and aborts, which libFuzzer
 *                               reports as a crash and saves the input
 *   FUZZ_CHECK_KNOWN(id, cond, fmt, ...)
 *                               the same for an invariant that a known, still
 *                               open monitor bug breaks (tests/fuzz/known-bugs
 *                               lists them). When the space-separated list in
 *                               $NIMBUS_FUZZ_KNOWN_BUGS names `id`, a failure
 *                               prints "KNOWN BUG id: ..." (once per process)
 *                               and the input goes on; otherwise it prints
 *                               "BUG id" and fails like FUZZ_CHECK.
 *                               The runners always set the list and report
 *                               every known bug hit; replaying
 *                               tests/fuzz/regressions/ they unset it.
 *   struct fuzz_in              reads typed values off the input, then 0s
 *   fuzz_memfd()                a memfd (a regular file) and its /proc path
 *
 * A target runs on libFuzzer's one thread; what it keeps between inputs
 * (guest RAM, a machine) lives in static variables set up on first use. */
#ifndef NIMBUS_TESTS_FUZZ_UTIL_H
#define NIMBUS_TESTS_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FUZZ_CHECK(cond, ...)                                                 \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__,        \
                    __LINE__, #cond);                                         \
            fprintf(stderr, __VA_ARGS__);                                     \
            fprintf(stderr, "\n");                                            \
            abort();                                                          \
        }                                                                     \
    } while (0)

static inline int fuzz_known_bug(const char *id)
{
    const char *list = getenv("NIMBUS_FUZZ_KNOWN_BUGS");
    size_t n = strlen(id);
    for (const char *p = list; p && (p = strstr(p, id)); p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
            return 1;
    return 0;
}

#define FUZZ_CHECK_KNOWN(id, cond, ...)                                       \
    do {                                                                      \
        if (!(cond)) {                                                        \
            static int reported_;                                             \
            if (!fuzz_known_bug(id)) {                                        \
                fprintf(stderr, "BUG %s\n", id);                              \
                FUZZ_CHECK(cond, __VA_ARGS__);                                \
            }                                                                 \
            if (!reported_) {                                                 \
                reported_ = 1;                                                \
                fprintf(stderr, "KNOWN BUG %s: %s:%d: ", id, __FILE__,        \
                        __LINE__);                                            \
                fprintf(stderr, __VA_ARGS__);                                 \
                fprintf(stderr, "\n");                                        \
            }                                                                 \
        }                                                                     \
    } while (0)

/* Setup failures (no memfd, no memory) are not findings: stop loudly. */
#define FUZZ_SETUP(cond)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            perror("fuzz setup: " #cond);                                     \
            abort();                                                          \
        }                                                                     \
    } while (0)

struct fuzz_in {
    const uint8_t *p;
    size_t n;
};

static inline uint64_t fuzz_u64(struct fuzz_in *in, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++) {
        uint8_t b = 0;
        if (in->n) {
            b = *in->p++;
            in->n--;
        }
        v |= (uint64_t)b << (8 * i);
    }
    return v;
}

static inline uint8_t fuzz_u8(struct fuzz_in *in) { return (uint8_t)fuzz_u64(in, 1); }

/* A memfd named `name`; *path gets "/proc/self/fd/N", which open() reopens
 * as the same regular file. */
static inline int fuzz_memfd(const char *name, char *path, size_t pathlen)
{
    int fd = memfd_create(name, MFD_CLOEXEC);
    FUZZ_SETUP(fd >= 0);
    snprintf(path, pathlen, "/proc/self/fd/%d", fd);
    return fd;
}

/* Replaces the memfd's contents with buf. */
static inline void fuzz_memfd_set(int fd, const void *buf, size_t len)
{
    FUZZ_SETUP(ftruncate(fd, 0) == 0);
    const uint8_t *p = buf;
    size_t off = 0;
    while (off < len) {
        ssize_t w = pwrite(fd, p + off, len - off, (off_t)off);
        FUZZ_SETUP(w > 0);
        off += (size_t)w;
    }
}

#endif
