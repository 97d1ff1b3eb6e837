/* Libraries loaded when needed. See dynlib.h. */
#include "base/dynlib.h"

#include <dlfcn.h>
#include <errno.h>
#include <string.h>

#include "base/errmsg.h"

int dynlib_load(const char *soname, const char *package, const struct dynlib_sym *syms, size_t n,
                void *table, char *err, size_t errlen)
{
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return errmsg(err, errlen, -ENOENT, "cannot load %s (Debian package %s): %s", soname,
                      package, dlerror());
    for (size_t i = 0; i < n; i++) {
        void *sym = dlsym(h, syms[i].name);
        if (!sym)
            return errmsg(err, errlen, -ENOENT, "%s has no %s (too old? Debian package %s)",
                          soname, syms[i].name, package);
        /* POSIX: a function pointer goes through dlsym's void * (dlsym(3)). */
        memcpy((char *)table + syms[i].offset, &sym, sizeof(sym));
    }
    return 0;
}
