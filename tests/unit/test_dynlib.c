/* Libraries loaded when needed (base/dynlib.h):
 *  - a library's functions arrive in the caller's table and work (zlib's
 *    crc32 through the table equals the linked one);
 *  - a missing library, or a symbol it lacks, is -ENOENT with a message
 *    naming the library, the Debian package and the symbol;
 *  - the libraries loaded on demand (libslirp with glib, libmicrohttpd with
 *    gnutls, libcurl) are not linked: a process built like nimbus (this
 *    one, with the Makefile's LDLIBS) starts without them, and
 *    net_user_open loads libslirp when it is first needed. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "check.h"
#include "base/dynlib.h"
#include "net/net.h"

struct zlib_table {
    __typeof__(&crc32) crc32;
    __typeof__(&zlibVersion) version;
};

static const struct dynlib_sym zlib_syms[] = {
    DYNLIB_SYM(struct zlib_table, crc32, "crc32"),
    DYNLIB_SYM(struct zlib_table, version, "zlibVersion"),
};

/* Whether a mapping of this process names `lib`. */
static bool mapped(const char *lib)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return false;
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, lib) != NULL;
    fclose(f);
    return found;
}

int main(void)
{
    static const char *const on_demand[] = { "libslirp", "libglib-2.0", "libmicrohttpd",
                                             "libgnutls", "libcurl" };
    for (size_t i = 0; i < sizeof(on_demand) / sizeof(on_demand[0]); i++)
        CHECK_MSG(!mapped(on_demand[i]), "%s is linked: every process loads it at start",
                  on_demand[i]);

    struct zlib_table z = { 0 };
    char err[256] = "";
    CHECK_EQ(dynlib_load("libz.so.1", "zlib1g", zlib_syms, 2, &z, err, sizeof(err)), 0);
    CHECK(z.crc32 && z.version);
    if (z.crc32 && z.version) {
        const Bytef abc[] = "abc";
        CHECK_EQ(z.crc32(0, abc, 3), crc32(0, abc, 3));
        CHECK(strcmp(z.version(), zlibVersion()) == 0);
    }

    err[0] = '\0';
    CHECK_EQ(dynlib_load("libnimbus-no-such-library.so.7", "nimbus-none", zlib_syms, 2, &z, err,
                         sizeof(err)), -ENOENT);
    CHECK_MSG(strstr(err, "libnimbus-no-such-library.so.7") && strstr(err, "nimbus-none"),
              "message: '%s'", err);

    static const struct dynlib_sym missing[] = {
        DYNLIB_SYM(struct zlib_table, crc32, "crc32"),
        DYNLIB_SYM(struct zlib_table, version, "nimbus_no_such_symbol"),
    };
    err[0] = '\0';
    CHECK_EQ(dynlib_load("libz.so.1", "zlib1g", missing, 2, &z, err, sizeof(err)), -ENOENT);
    CHECK_MSG(strstr(err, "libz.so.1") && strstr(err, "nimbus_no_such_symbol"), "message: '%s'",
              err);

    /* --net user loads libslirp (and glib) when it opens. */
    struct net_user_options uo = { 0 };
    struct net_backend *nb = NULL;
    err[0] = '\0';
    int r = net_user_open(&uo, &nb, err, sizeof(err));
    CHECK_MSG(r == 0, "net_user_open: %s", err);
    CHECK(mapped("libslirp"));
    net_backend_close(nb);
    return check_summary("dynlib");
}
