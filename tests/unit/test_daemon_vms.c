/* Unit test of nimbusd's table of VM entries (src/daemon/lifecycle.c:
 * nd_get, nd_find, nd_forget). An operation keeps its VM's entry while it
 * waits for the VM without the lock (a start until the VM serves its API),
 * and meanwhile other requests add entries (the first operation on another
 * VM) and remove them (undefine): the entry must stay where it is.
 *  - an entry's pointer and contents survive the table growing from 1 to
 *    200 entries;
 *  - removing other entries (the first, the last, one in the middle) leaves
 *    the kept pointers valid and findable; a removed name is not found. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"

#include "check.h"

#define N 200

int main(void)
{
    struct nimbusd *d = calloc(1, sizeof(*d));
    CHECK(d != NULL);
    struct dvm *a = nd_get(d, "a");
    CHECK(a != NULL && a->pidfd == -1 && !strcmp(a->name, "a"));
    a->busy = "start";   /* as begin() leaves it while the start waits */
    CHECK(nd_get(d, "a") == a);

    /* Other allocations between, as in the daemon: the table cannot grow
     * where it is. */
    struct dvm *vm[N];
    void *other[N];
    char name[16];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "vm%d", i);
        vm[i] = nd_get(d, name);
        CHECK(vm[i] != NULL);
        other[i] = malloc(64);
    }
    CHECK(d->nvms == N + 1);
    CHECK(nd_find(d, "a") == a);
    CHECK(a->busy && !strcmp(a->busy, "start") && !strcmp(a->name, "a"));

    /* Undefine others: a (the first), the last one and one in between. */
    struct dvm *last = vm[N - 1];
    nd_forget(d, "vm7");
    nd_forget(d, "a");
    CHECK(nd_find(d, "a") == NULL && nd_find(d, "vm7") == NULL);
    CHECK(nd_find(d, "vm0") == vm[0] && nd_find(d, "vm100") == vm[100]);
    CHECK(nd_find(d, last->name) == last && !strcmp(last->name, "vm199"));
    nd_forget(d, "vm199");
    nd_forget(d, "nonexistent");
    CHECK(d->nvms == N - 2);
    for (int i = 0; i < N - 1; i++) {
        if (i == 7)
            continue;
        snprintf(name, sizeof(name), "vm%d", i);
        CHECK_MSG(nd_find(d, name) == vm[i], "%s moved", name);
    }

    for (int i = 0; i < N - 1; i++) {
        snprintf(name, sizeof(name), "vm%d", i);
        nd_forget(d, name);
    }
    CHECK(d->nvms == 0);
    for (int i = 0; i < N; i++)
        free(other[i]);
    free(d->vms);
    free(d);
    return check_summary("test_daemon_vms");
}
