/* One-line error messages: formats into the caller's buffer (which may be
 * NULL when errlen is 0) and returns `rc`, so a failure path reads
 * `return errmsg(err, errlen, -EINVAL, "bad thing: %s", path);`. */
#ifndef NIMBUS_BASE_ERRMSG_H
#define NIMBUS_BASE_ERRMSG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

__attribute__((format(printf, 4, 5)))
static inline int errmsg(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

#endif
