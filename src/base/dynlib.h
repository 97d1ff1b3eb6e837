/* Shared libraries loaded with dlopen when a feature first needs them,
 * rather than linked: every library a binary links is loaded, relocated
 * and initialised at the start of every process, with all that it depends
 * on. libcurl (the API commands), libmicrohttpd with gnutls (--api) and
 * libslirp with glib (--net user) are ~20 libraries that cost a process
 * ~10 ms of start-up on a small machine, while `nimbus exec` and most runs
 * use none of them.
 *
 * A user keeps the functions it calls in a table of its own, with each
 * field typed from the library's header (`__typeof__(&name)`), and lists
 * the fields as DYNLIB_SYM entries; dynlib_load fills them all or fails
 * with a message that names the library, its Debian package and what was
 * missing. The library is never unloaded: libcurl, glib and gnutls keep
 * global state, and a second load is a reference count. Any thread. */
#ifndef NIMBUS_BASE_DYNLIB_H
#define NIMBUS_BASE_DYNLIB_H

#include <stddef.h>

struct dynlib_sym {
    const char *name;   /* the symbol */
    size_t offset;      /* of its function-pointer field in the table */
};

#define DYNLIB_SYM(table_type, field, symbol) { (symbol), offsetof(table_type, field) }

/* Loads `soname` (package: the Debian package that ships it, for the
 * message) and stores each of syms[0, n) into `table`. Returns 0, or
 * -ENOENT with a one-line message. */
int dynlib_load(const char *soname, const char *package, const struct dynlib_sym *syms, size_t n,
                void *table, char *err, size_t errlen);

#endif
