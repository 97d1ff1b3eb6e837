/* Whole-VM snapshots. See snapshot.h. */
#include "vm/snapshot.h"

#include <errno.h>

#include "base/errmsg.h"

int vm_snapshot_save(struct virt_machine *m, const struct vm_snapshot_options *opts,
                     struct vm_snapshot_result *res, char *err, size_t errlen)
{
    (void)m;
    (void)opts;
    (void)res;
    return errmsg(err, errlen, -ENOTSUP, "snapshots are not built yet");
}
