/* nimbusd's figures: per VM from the host's view of its process (procfs:
 * CPU time of the hart threads, the time they waited for a host CPU - the
 * guest's steal - and RSS) and from the VM's own API (disk and network
 * counters, the balloon); per host from /proc/meminfo and the definitions.
 * GET /vms/NAME/stats serves one VM as JSON, GET /metrics everything in
 * the Prometheus text format (version 0.0.4). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/api_client.h"
#include "daemon/daemon.h"

static ssize_t read_small(const char *path, char *buf, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t k = read(fd, buf, n - 1);
    close(fd);
    if (k >= 0)
        buf[k] = '\0';
    return k;
}

/* utime + stime (fields 14, 15) of a /proc stat file, in seconds. */
static double stat_cpu_seconds(const char *path)
{
    char buf[1024];
    if (read_small(path, buf, sizeof(buf)) <= 0)
        return 0;
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                     &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The hart threads' CPU time and run-queue wait (schedstat's second field,
 * ns): the guest's vCPU time and steal. */
static void hart_times(pid_t pid, double *vcpu, double *steal)
{
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
    DIR *dp = opendir(dir);
    *vcpu = *steal = 0;
    if (!dp)
        return;
    struct dirent *de;
    while ((de = readdir(dp))) {
        if (de->d_name[0] == '.')
            continue;
        char path[384], comm[32];
        snprintf(path, sizeof(path), "%s/%s/comm", dir, de->d_name);
        if (read_small(path, comm, sizeof(comm)) <= 0 || strncmp(comm, "hart", 4))
            continue;
        snprintf(path, sizeof(path), "%s/%s/stat", dir, de->d_name);
        *vcpu += stat_cpu_seconds(path);
        char sched[128];
        unsigned long long run = 0, wait = 0;
        snprintf(path, sizeof(path), "%s/%s/schedstat", dir, de->d_name);
        if (read_small(path, sched, sizeof(sched)) > 0 &&
            sscanf(sched, "%llu %llu", &run, &wait) == 2)
            *steal += (double)wait / 1e9;
    }
    closedir(dp);
}

static uint64_t rss_bytes(pid_t pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (read_small(path, buf, sizeof(buf)) <= 0)
        return 0;
    const char *p = strstr(buf, "VmRSS:");
    return p ? strtoull(p + 6, NULL, 10) * 1024 : 0;
}

/* Seconds since the process started: its start time is in clock ticks
 * since boot, as /proc/uptime counts. */
static double uptime_of(uint64_t start_ticks)
{
    char buf[64];
    if (read_small("/proc/uptime", buf, sizeof(buf)) <= 0)
        return 0;
    double up = strtod(buf, NULL) - (double)start_ticks / (double)sysconf(_SC_CLK_TCK);
    return up > 0 ? up : 0;
}

static json_int_t num(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

/* The VM process's own counters (lock not held). */
static void api_figures(struct nimbusd *d, const char *name, struct nd_vm_stats *s)
{
    char sock[ND_PATH_MAX], err[256];
    nd_vm_run_path(d, name, "api.sock", sock, sizeof(sock));
    long status;
    json_t *rep = NULL;
    if (api_call_timeout(sock, "GET", "/vm/counters", NULL, ND_QUERY_TIMEOUT_MS, &status,
                         &rep, err, sizeof(err)) == 0 && status == 200) {
        size_t i;
        json_t *dev;
        json_array_foreach(json_object_get(rep, "devices"), i, dev) {
            const char *kind = json_string_value(json_object_get(dev, "kind"));
            if (kind && !strcmp(kind, "blk")) {
                s->disk_read_bytes += (uint64_t)num(dev, "read_bytes");
                s->disk_write_bytes += (uint64_t)num(dev, "written_bytes");
                s->disk_read_ops += (uint64_t)num(dev, "reads");
                s->disk_write_ops += (uint64_t)num(dev, "writes");
            } else if (kind && !strcmp(kind, "net")) {
                s->net_rx_bytes += (uint64_t)num(dev, "rx_bytes");
                s->net_tx_bytes += (uint64_t)num(dev, "tx_bytes");
                s->net_rx_frames += (uint64_t)num(dev, "rx_frames");
                s->net_tx_frames += (uint64_t)num(dev, "tx_frames");
            }
        }
    }
    json_decref(rep);
    rep = NULL;
    if (api_call_timeout(sock, "GET", "/vm/balloon/stats", NULL, ND_QUERY_TIMEOUT_MS, &status,
                         &rep, err, sizeof(err)) == 0 && status == 200)
        s->balloon_mib = (uint64_t)num(rep, "actual_mib");
    json_decref(rep);
}

/* A VM's figures, from its row as read from the store; false if it has
 * no process. */
static bool collect(struct nimbusd *d, const struct store_vm *vm, struct nd_vm_stats *s)
{
    *s = (struct nd_vm_stats){ 0 };
    pid_t pid = (pid_t)vm->pid;
    if (!pid || !supervisor_alive(pid, vm->pid_start))
        return false;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    s->cpu_seconds = stat_cpu_seconds(path);
    hart_times(pid, &s->vcpu_seconds, &s->steal_seconds);
    s->rss_bytes = rss_bytes(pid);
    s->uptime_s = uptime_of(vm->pid_start);
    api_figures(d, vm->name, s);
    return true;
}

/* Seconds to the millisecond: what the figures are good for. */
static double ms(double seconds)
{
    return (double)(int64_t)(seconds * 1000 + 0.5) / 1000;
}

int nd_vm_stats(struct nimbusd *d, const char *name, json_t **stats, struct nd_err *e)
{
    struct nd_vm_stats s;
    struct store_vm vm;
    char err[256], state[32];
    pthread_mutex_lock(&d->lock);
    int r = store_vm_get(d->store, name, &vm, err, sizeof(err));
    pthread_mutex_unlock(&d->lock);
    if (r)
        return nd_fail(e, r, r == -ENOENT ? "not_found" : "failed", "%s", err);
    snprintf(state, sizeof(state), "%s", vm.state);
    collect(d, &vm, &s);
    store_vm_free(&vm);
    *stats = json_pack("{s:s, s:s, s:f, s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
                       "s:I, s:f}",
                       "name", name, "state", state, "vcpu_seconds", ms(s.vcpu_seconds),
                       "steal_seconds", ms(s.steal_seconds), "cpu_seconds", ms(s.cpu_seconds),
                       "rss_bytes", (json_int_t)s.rss_bytes,
                       "balloon_mib", (json_int_t)s.balloon_mib,
                       "disk_read_bytes", (json_int_t)s.disk_read_bytes,
                       "disk_write_bytes", (json_int_t)s.disk_write_bytes,
                       "disk_read_ops", (json_int_t)s.disk_read_ops,
                       "disk_write_ops", (json_int_t)s.disk_write_ops,
                       "net_rx_bytes", (json_int_t)s.net_rx_bytes,
                       "net_tx_bytes", (json_int_t)s.net_tx_bytes,
                       "net_rx_frames", (json_int_t)s.net_rx_frames,
                       "net_tx_frames", (json_int_t)s.net_tx_frames, "uptime_s", ms(s.uptime_s));
    return *stats ? 0 : nd_fail(e, -ENOMEM, "failed", "out of memory");
}

static uint64_t meminfo_kib(const char *key)
{
    char buf[8192];
    if (read_small("/proc/meminfo", buf, sizeof(buf)) <= 0)
        return 0;
    const char *p = strstr(buf, key);
    return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static const char *const states[] = { "defined", "running", "paused",   "saved",
                                      "shutdown", "crashed", "migrating" };
#define NSTATES (sizeof(states) / sizeof(states[0]))

struct host_figures {
    unsigned by_state[NSTATES];
    uint64_t committed_mib, vcpus_committed;
};

/* VMs by state; memory and vCPUs of those that run (lock not held). */
static int host_figures(struct nimbusd *d, struct host_figures *h, struct store_vm **vms,
                        size_t *n, struct nd_err *e)
{
    char err[256];
    *h = (struct host_figures){ 0 };
    pthread_mutex_lock(&d->lock);
    int r = store_vm_list(d->store, vms, n, err, sizeof(err));
    pthread_mutex_unlock(&d->lock);
    if (r)
        return nd_fail(e, r, "failed", "%s", err);
    for (size_t i = 0; i < *n; i++) {
        for (size_t s = 0; s < NSTATES; s++)
            if (!strcmp((*vms)[i].state, states[s]))
                h->by_state[s]++;
        if (strcmp((*vms)[i].state, "running") && strcmp((*vms)[i].state, "paused"))
            continue;
        json_t *def = json_loads((*vms)[i].definition, 0, NULL);
        h->committed_mib += (uint64_t)num(def, "memory_mib");
        h->vcpus_committed += (uint64_t)num(def, "vcpus");
        json_decref(def);
    }
    return 0;
}

int nd_host(struct nimbusd *d, json_t **host, struct nd_err *e)
{
    struct host_figures h;
    struct store_vm *vms;
    size_t n;
    int r = host_figures(d, &h, &vms, &n, e);
    if (r)
        return r;
    store_vm_list_free(vms, n);
    json_t *by = json_object();
    for (size_t s = 0; s < NSTATES; s++)
        json_object_set_new(by, states[s], json_integer(h.by_state[s]));
    *host = json_pack("{s:o, s:I, s:I, s:I, s:I, s:I, s:b}", "vms", by, "memory_total_mib",
                      (json_int_t)(meminfo_kib("MemTotal:") / 1024), "memory_available_mib",
                      (json_int_t)(meminfo_kib("MemAvailable:") / 1024), "memory_committed_mib",
                      (json_int_t)h.committed_mib, "vcpus_committed",
                      (json_int_t)h.vcpus_committed, "host_cpus",
                      (json_int_t)sysconf(_SC_NPROCESSORS_ONLN), "sandbox", d->cfg.sandbox);
    if (*host) {
        json_object_set_new(*host, "cgroups", json_boolean(d->cgroups));
        json_object_set_new(*host, "cgroups_why",
                            d->cgroups ? json_null() : json_string(d->cgroup_why));
        json_object_set_new(*host, "vm_users", json_boolean(d->cfg.vm_uid_base != 0));
    }
    return *host ? 0 : nd_fail(e, -ENOMEM, "failed", "out of memory");
}

/* ---- Prometheus text ---- */

struct text {
    char *buf;
    size_t len, cap;
    bool failed;
};

__attribute__((format(printf, 2, 3)))
static void put(struct text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            t->failed = true;
            return;
        }
        if (t->buf && t->len + (size_t)k < t->cap) {
            t->len += (size_t)k;
            return;
        }
        size_t cap = (t->cap ? 2 * t->cap : 8192) + (size_t)k;
        char *nb = realloc(t->buf, cap);
        if (!nb) {
            t->failed = true;
            return;
        }
        t->buf = nb;
        t->cap = cap;
    }
}

static void help(struct text *t, const char *name, const char *type, const char *what)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, what, name, type);
}

int nd_metrics(struct nimbusd *d, char **text, struct nd_err *e)
{
    struct host_figures h;
    struct store_vm *vms;
    size_t n;
    int r = host_figures(d, &h, &vms, &n, e);
    if (r)
        return r;
    struct text t = { 0 };
    help(&t, "nimbus_host_vms", "gauge", "VMs defined on this host, by state.");
    for (size_t s = 0; s < NSTATES; s++)
        put(&t, "nimbus_host_vms{state=\"%s\"} %u\n", states[s], h.by_state[s]);
    help(&t, "nimbus_host_memory_bytes", "gauge", "Host memory: total and available.");
    put(&t, "nimbus_host_memory_bytes{kind=\"total\"} %llu\n",
        (unsigned long long)meminfo_kib("MemTotal:") * 1024);
    put(&t, "nimbus_host_memory_bytes{kind=\"available\"} %llu\n",
        (unsigned long long)meminfo_kib("MemAvailable:") * 1024);
    help(&t, "nimbus_host_memory_committed_bytes", "gauge",
         "Guest RAM of the VMs that run or are paused.");
    put(&t, "nimbus_host_memory_committed_bytes %llu\n",
        (unsigned long long)h.committed_mib << 20);
    help(&t, "nimbus_host_vcpus_committed", "gauge", "vCPUs of the VMs that run or are paused.");
    put(&t, "nimbus_host_vcpus_committed %llu\n", (unsigned long long)h.vcpus_committed);

    help(&t, "nimbus_vm_state", "gauge", "1 for the state the VM is in.");
    for (size_t i = 0; i < n; i++)
        put(&t, "nimbus_vm_state{vm=\"%s\",state=\"%s\"} 1\n", vms[i].name, vms[i].state);
    static const struct {
        const char *name, *type, *help;
    } series[] = {
        { "nimbus_vm_vcpu_seconds_total", "counter", "CPU time of the VM's hart threads." },
        { "nimbus_vm_steal_seconds_total", "counter",
          "Time the VM's hart threads were runnable but waited for a host CPU." },
        { "nimbus_vm_cpu_seconds_total", "counter", "CPU time of the whole VM process." },
        { "nimbus_vm_rss_bytes", "gauge", "Resident memory of the VM process." },
        { "nimbus_vm_balloon_bytes", "gauge", "Memory the guest gave back through its balloon." },
        { "nimbus_vm_disk_read_bytes_total", "counter", "Bytes read by the VM's disks." },
        { "nimbus_vm_disk_write_bytes_total", "counter", "Bytes written by the VM's disks." },
        { "nimbus_vm_disk_read_ops_total", "counter", "Read requests of the VM's disks." },
        { "nimbus_vm_disk_write_ops_total", "counter", "Write requests of the VM's disks." },
        { "nimbus_vm_net_receive_bytes_total", "counter", "Bytes the VM's cards received." },
        { "nimbus_vm_net_transmit_bytes_total", "counter", "Bytes the VM's cards sent." },
    };
    size_t nlive = 0;
    struct nd_vm_stats *st = calloc(n ? n : 1, sizeof(*st));
    char (*names)[64] = calloc(n ? n : 1, sizeof(*names));
    for (size_t i = 0; st && names && i < n; i++)
        if (collect(d, &vms[i], &st[nlive]))
            snprintf(names[nlive++], sizeof(names[0]), "%s", vms[i].name);
    for (size_t k = 0; k < sizeof(series) / sizeof(series[0]); k++) {
        help(&t, series[k].name, series[k].type, series[k].help);
        for (size_t i = 0; i < nlive; i++) {
            const struct nd_vm_stats *s = &st[i];
            double v[] = { s->vcpu_seconds,
                           s->steal_seconds,
                           s->cpu_seconds,
                           (double)s->rss_bytes,
                           (double)(s->balloon_mib << 20),
                           (double)s->disk_read_bytes,
                           (double)s->disk_write_bytes,
                           (double)s->disk_read_ops,
                           (double)s->disk_write_ops,
                           (double)s->net_rx_bytes,
                           (double)s->net_tx_bytes };
            put(&t, "%s{vm=\"%s\"} %.9g\n", series[k].name, names[i], v[k]);
        }
    }
    free(st);
    free(names);
    store_vm_list_free(vms, n);
    if (t.failed || !t.buf) {
        free(t.buf);
        return nd_fail(e, -ENOMEM, "failed", "out of memory");
    }
    *text = t.buf;
    return 0;
}
