/* Shared check macros for the unit tests (one test program per file).
 *
 *   CHECK(cond)          counts a pass, or a failure printed to stderr
 *   CHECK_EQ(a, b)       the same for a == b, printing both values in hex
 *   CHECK_MSG(cond, ...) a failure also prints a printf-style context
 *                        message; the line goes to stdout, as "FAIL ..."
 *   check_summary(name)  prints "<name>: N passed, N failed" and returns the
 *                        exit status (1 if anything failed) */
#ifndef NIMBUS_TESTS_UNIT_CHECK_H
#define NIMBUS_TESTS_UNIT_CHECK_H

#include <stdio.h>

static int check_passed, check_failed;

#define CHECK(cond) do { \
    if (cond) check_passed++; \
    else { check_failed++; fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define CHECK_EQ(a, b) do { \
    unsigned long long _a = (unsigned long long)(a), _b = (unsigned long long)(b); \
    if (_a == _b) check_passed++; \
    else { check_failed++; fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (0x%llx vs 0x%llx)\n", \
                                   __FILE__, __LINE__, #a, #b, _a, _b); } \
} while (0)

#define CHECK_MSG(cond, ...) do {                                          \
        if (cond) {                                                        \
            check_passed++;                                                \
        } else {                                                           \
            check_failed++;                                                \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);         \
            printf(__VA_ARGS__);                                           \
            printf("\n");                                                  \
        }                                                                  \
    } while (0)

static inline int check_summary(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#endif
