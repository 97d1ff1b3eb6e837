/* A cgroup v2 per VM, for nimbusd (Documentation/admin-guide/cgroup-v2.rst):
 * `ROOT/nimbus/NAME`, where ROOT is a cgroup v2 directory this process may
 * manage (the whole hierarchy as root, or the subtree systemd delegates
 * with Delegate=yes), with the VM process in it and its limits set:
 * cpu.weight, cpu.max and memory.max.
 *
 * Every function takes ROOT, so the unit test runs them on a plain
 * directory tree standing in for cgroupfs; nothing here assumes a mount
 * point. Interface files are written with O_CREAT | O_TRUNC: cgroupfs
 * makes its files itself and ignores both, a plain tree gets the value.
 *
 * Where a host has no usable v2 hierarchy (v1 only, or hybrid with the cpu
 * and memory controllers bound to v1 as on Debian 12's test machine:
 * /sys/fs/cgroup/unified holds only hugetlb), cgroup_probe says so and the
 * daemon runs VMs without limits (docs/security.md).
 *
 * Errors: -errno with a one-line message. Threads: any; no state. */
#ifndef NIMBUS_DAEMON_CGROUP_H
#define NIMBUS_DAEMON_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CGROUP_SUBTREE "nimbus"   /* ROOT/nimbus holds one cgroup per VM */
#define CGROUP_NAME_MAX 64u

/* What cgroup_probe found at ROOT. */
struct cgroup_probe {
    bool v2;          /* ROOT is a cgroup v2 directory (it has cgroup.controllers) */
    bool cpu;         /* the controllers ROOT offers its children (cgroup.controllers) */
    bool memory;
    bool writable;    /* this process may make cgroups there and enable controllers */
    bool usable;      /* all of the above: limits can be applied */
    char why[256];    /* when not usable: what is missing, one line */
};

/* Looks at ROOT. Returns 0 with `p` filled in whatever it found (usable or
 * not: p->why says why not), or -errno with a message when ROOT itself
 * cannot be read. */
int cgroup_probe(const char *root, struct cgroup_probe *p, char *err, size_t errlen);

/* The cgroup v2 directory a daemon would use by default: this process's
 * own cgroup in the cgroup2 mount (/proc/self/mountinfo, /proc/self/cgroup),
 * which is what systemd delegates to a service. Returns 0, or -ENOENT
 * with a message when no cgroup2 file system is mounted. */
int cgroup_default_root(char *root, size_t len, char *err, size_t errlen);

struct cgroup_limits {
    unsigned cpu_weight;      /* cpu.weight 1..10000 (100 is the default share); 0: unset */
    uint64_t cpu_quota_us;    /* cpu.max: this much CPU time per period (>= 1000);
                                 0: "max", no cap */
    uint64_t cpu_period_us;   /* its period, 1000..1000000; 0: 100000 */
    uint64_t memory_max;      /* memory.max in bytes (>= 1 MiB); 0: "max" */
};

/* Checks limits without touching anything: 0, or -EINVAL with a message
 * naming the field. */
int cgroup_check_limits(const struct cgroup_limits *l, char *err, size_t errlen);

/* Makes ROOT/nimbus/NAME (NAME: 1..64 of [A-Za-z0-9_.-], not "." or ".."),
 * enabling the cpu and memory controllers in ROOT's and ROOT/nimbus's
 * cgroup.subtree_control where they are not already, and writes the limits
 * (every one: unset ones as the kernel's defaults, so a reused cgroup
 * holds no stale value). A controller the limits need but ROOT does not
 * offer is -ENOTSUP; an existing NAME is reused. */
int cgroup_create(const char *root, const char *name, const struct cgroup_limits *l, char *err,
                  size_t errlen);

/* Moves process `pid` (0: the caller) into ROOT/nimbus/NAME. */
int cgroup_attach(const char *root, const char *name, pid_t pid, char *err, size_t errlen);

struct cgroup_stats {
    uint64_t cpu_usage_usec;      /* cpu.stat usage_usec: CPU time of its processes */
    uint64_t cpu_throttled_usec;  /* cpu.stat throttled_usec (0 without the cpu controller) */
    bool has_memory;              /* memory.current was there */
    uint64_t memory_current;      /* bytes charged: RSS, page cache, kernel memory */
};

/* Reads the cgroup's figures. */
int cgroup_stats(const char *root, const char *name, struct cgroup_stats *st, char *err,
                 size_t errlen);

/* Removes ROOT/nimbus/NAME: 0 (also when it is gone already), -EBUSY when
 * processes are still in it. */
int cgroup_remove(const char *root, const char *name, char *err, size_t errlen);

#endif
