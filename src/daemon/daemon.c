/* nimbusd's start-up and shutdown, and where its files live. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/errmsg.h"
#include "daemon/cgroup.h"
#include "daemon/daemon.h"

/* As root: the FHS places (the systemd unit's). Otherwise the XDG ones of
 * the user, so that anyone can run a daemon of their own. */
int nimbusd_default_config(struct daemon_config *cfg, char *err, size_t errlen)
{
    *cfg = (struct daemon_config){ .sandbox = true, .autostart = true };
    if (geteuid() == 0) {
        cfg->vm_uid_base = ND_VM_UID_BASE;
        snprintf(cfg->run_dir, sizeof(cfg->run_dir), "/run/nimbus");
        snprintf(cfg->data_dir, sizeof(cfg->data_dir), "/var/lib/nimbus");
    } else {
        const char *rt = getenv("XDG_RUNTIME_DIR");
        const char *data = getenv("XDG_DATA_HOME");
        const char *home = getenv("HOME");
        if (rt && *rt)
            snprintf(cfg->run_dir, sizeof(cfg->run_dir), "%s/nimbus", rt);
        else
            snprintf(cfg->run_dir, sizeof(cfg->run_dir), "/tmp/nimbus-%u", (unsigned)getuid());
        if (data && *data)
            snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s/nimbus", data);
        else if (home && *home)
            snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s/.local/share/nimbus", home);
        else
            return errmsg(err, errlen, -EINVAL, "no HOME: give --data-dir");
    }
    if (strlen(cfg->run_dir) + sizeof("/nimbusd.sock") > sizeof(cfg->socket_path))
        return errmsg(err, errlen, -ENAMETOOLONG, "%s: too long for a socket path",
                      cfg->run_dir);
    snprintf(cfg->socket_path, sizeof(cfg->socket_path), "%.90s/nimbusd.sock", cfg->run_dir);
    /* The VM binary sits beside nimbusd (build/ or the install's bin/). */
    ssize_t n = readlink("/proc/self/exe", cfg->self_bin, sizeof(cfg->self_bin) - 1);
    if (n <= 0)
        return errmsg(err, errlen, -errno, "/proc/self/exe: %s", strerror(errno));
    cfg->self_bin[n] = '\0';
    char *slash = strrchr(cfg->self_bin, '/');
    snprintf(cfg->nimbus_bin, sizeof(cfg->nimbus_bin), "%.*s/nimbus",
             (int)(slash - cfg->self_bin), cfg->self_bin);
    return 0;
}

int nd_mkdir_p(const char *path, mode_t mode, char *err, size_t errlen)
{
    char tmp[ND_PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1;; p++) {
        if (*p != '/' && *p)
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(tmp, mode) && errno != EEXIST)
            return errmsg(err, errlen, -errno, "%s: %s", tmp, strerror(errno));
        if (!c)
            return 0;
        *p = c;
    }
}

/* Writes this process into DIR/cgroup.procs. */
static int move_self(const char *dir, char *err, size_t errlen)
{
    char procs[ND_PATH_MAX + 64];
    snprintf(procs, sizeof(procs), "%.*s/cgroup.procs", ND_PATH_MAX, dir);
    FILE *f = fopen(procs, "we");
    if (!f || fprintf(f, "0\n") < 0 || fclose(f)) {
        int e = errno;
        if (f)
            fclose(f);
        return errmsg(err, errlen, -e, "%s: %s", procs, strerror(e));
    }
    return 0;
}

/* Finds the cgroup v2 hierarchy to put VMs in: the daemon's own cgroup
 * (what systemd's Delegate=yes hands a service). cgroup v2 lets only leaf
 * cgroups hold processes once controllers are enabled below them, so the
 * daemon moves itself into ROOT/nimbusd first (not needed at the real
 * root). Without a usable hierarchy VMs run without limits (docs/daemon.md). */
static void cgroup_setup(struct nimbusd *d)
{
    char err[256];
    struct cgroup_probe p;
    if (cgroup_default_root(d->cgroup_root, sizeof(d->cgroup_root), err, sizeof(err)) ||
        cgroup_probe(d->cgroup_root, &p, err, sizeof(err))) {
        snprintf(d->cgroup_why, sizeof(d->cgroup_why), "%s", err);
        return;
    }
    if (!p.usable) {
        snprintf(d->cgroup_why, sizeof(d->cgroup_why), "%s", p.why);
        return;
    }
    if (strcmp(d->cgroup_root, "/sys/fs/cgroup")) {
        char leaf[ND_PATH_MAX + 32];
        snprintf(leaf, sizeof(leaf), "%s/nimbusd", d->cgroup_root);
        if (mkdir(leaf, 0755) && errno != EEXIST) {
            snprintf(d->cgroup_why, sizeof(d->cgroup_why), "%.200s: %s", leaf, strerror(errno));
            return;
        }
        if (move_self(leaf, err, sizeof(err))) {
            snprintf(d->cgroup_why, sizeof(d->cgroup_why), "nimbusd into a leaf cgroup: %.200s", err);
            return;
        }
    }
    d->cgroups = true;
}

/* With VM users, the run and data directories and vms/ must let them
 * through (to their vsock sockets and their saved states). */
static int chmod_dirs(const struct daemon_config *cfg, const char *vms, char *err, size_t errlen)
{
    if (!cfg->vm_uid_base)
        return 0;
    const char *dirs[] = { cfg->run_dir, cfg->data_dir, vms };
    for (size_t i = 0; i < 3; i++)
        if (chmod(dirs[i], 0711))
            return errmsg(err, errlen, -errno, "%s: %s", dirs[i], strerror(errno));
    return 0;
}

int nimbusd_open(const struct daemon_config *cfg, struct nimbusd **out, char *err,
                 size_t errlen)
{
    struct nimbusd *d = calloc(1, sizeof(*d));
    if (!d)
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    d->cfg = *cfg;
    d->wake_fd = -1;
    d->http_sock.fd = -1;
    pthread_mutex_init(&d->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&d->changed, &ca);
    pthread_condattr_destroy(&ca);
    char db[ND_PATH_MAX + 16], vms[ND_PATH_MAX + 8];
    snprintf(db, sizeof(db), "%s/nimbus.db", cfg->data_dir);
    snprintf(vms, sizeof(vms), "%s/vms", cfg->data_dir);
    int r;
    /* The data directories: to be crossed, not read, by the VMs' own users
     * on their way to their own directories (their saved states). */
    if ((r = nd_mkdir_p(cfg->run_dir, 0711, err, errlen)) ||
        (r = nd_mkdir_p(vms, 0711, err, errlen)) ||
        (r = chmod_dirs(cfg, vms, err, errlen)) ||
        (r = store_open(db, &d->store, err, errlen)))
        goto fail;
    if ((r = nd_monitor_init(d))) {
        errmsg(err, errlen, r, "eventfd: %s", strerror(-r));
        goto fail;
    }
    if (access(cfg->nimbus_bin, X_OK)) {
        r = errmsg(err, errlen, -errno, "%s: %s (the VM binary; --nimbus PATH)",
                   cfg->nimbus_bin, strerror(errno));
        goto fail;
    }
    cgroup_setup(d);
    if (!d->cgroups)
        fprintf(stderr, "nimbusd: VMs run without cgroup limits: %s\n", d->cgroup_why);
    /* Find the VMs that ran before, then watch them, then serve. */
    nd_reattach(d);
    if ((r = nd_monitor_start(d, err, errlen)) || (r = nd_http_open(d, err, errlen)))
        goto fail;
    *out = d;
    return 0;
fail:
    nimbusd_close(d);
    return r;
}

void nimbusd_close(struct nimbusd *d)
{
    if (!d)
        return;
    nd_http_close(d);
    nd_migration_stop(d);
    nd_monitor_stop(d);
    for (size_t i = 0; i < d->nvms; i++) {
        if (d->vms[i]->pidfd >= 0)
            close(d->vms[i]->pidfd);
        json_decref(d->vms[i]->migration);
        free(d->vms[i]);
    }
    free(d->vms);
    if (d->wake_fd >= 0)
        close(d->wake_fd);
    store_close(d->store);
    pthread_cond_destroy(&d->changed);
    pthread_mutex_destroy(&d->lock);
    free(d);
}
