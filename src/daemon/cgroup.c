/* A cgroup v2 per VM. See cgroup.h. */
#include "daemon/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/errmsg.h"

#define CPU_WEIGHT_MAX   10000u
#define CPU_PERIOD_MIN   1000u      /* cpu.max's period bounds (kernel/sched/core.c) */
#define CPU_PERIOD_MAX   1000000u
#define CPU_PERIOD_DEF   100000u
#define CPU_QUOTA_MIN    1000u
#define CPU_QUOTA_MAX    (1000000ull * 1024)   /* 1024 CPUs' worth of the longest period */
#define MEMORY_MAX_MIN   (1ull << 20)

/* dir/name into buf; -ENAMETOOLONG when it does not fit. */
static int join(char *buf, size_t len, const char *dir, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* The whole (small) file, NUL-terminated. Returns 0 or -errno. */
static int read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, len - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = -errno;
            close(fd);
            return e;
        }
        if (n == 0 || (got += (size_t)n) == len - 1)
            break;
    }
    close(fd);
    buf[got] = '\0';
    return 0;
}

/* Writes `s` as one write(2): cgroupfs takes each write as one command. */
static int write_small(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    size_t len = strlen(s);
    ssize_t n = write(fd, s, len);
    int e = n < 0 ? -errno : (size_t)n != len ? -EIO : 0;
    if (close(fd) && !e)
        e = -errno;
    return e;
}

/* Whether the space-separated list holds `word` (a leading '+' aside, as
 * written to cgroup.subtree_control). */
static bool has_word(const char *list, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == '\n' || *p == '\t')
            p++;
        if (*p == '+')
            p++;
        size_t n = strcspn(p, " \n\t");
        if (n == wl && !strncmp(p, word, wl))
            return true;
        p += n;
    }
    return false;
}

static int check_name(const char *name, char *err, size_t errlen)
{
    size_t n = strlen(name);
    bool ok = n >= 1 && n <= CGROUP_NAME_MAX && strcmp(name, ".") && strcmp(name, "..");
    for (size_t i = 0; ok && i < n; i++) {
        char c = name[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '.' || c == '-';
    }
    return ok ? 0 : errmsg(err, errlen, -EINVAL, "cgroup name '%.80s': 1 to %u of A-Z a-z 0-9 "
                           "_ . -", name, CGROUP_NAME_MAX);
}

/* ROOT/nimbus/NAME (NAME checked) into buf. */
static int vm_dir(char *buf, size_t len, const char *root, const char *name, char *err,
                  size_t errlen)
{
    int r = check_name(name, err, errlen);
    if (r)
        return r;
    int n = snprintf(buf, len, "%s/" CGROUP_SUBTREE "/%s", root, name);
    if (n < 0 || (size_t)n >= len)
        return errmsg(err, errlen, -ENAMETOOLONG, "cgroup path too long: %s", root);
    return 0;
}

int cgroup_probe(const char *root, struct cgroup_probe *p, char *err, size_t errlen)
{
    *p = (struct cgroup_probe){ 0 };
    struct stat st;
    if (stat(root, &st))
        return errmsg(err, errlen, -errno, "cgroup root %s: %s", root, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return errmsg(err, errlen, -ENOTDIR, "cgroup root %s is not a directory", root);
    char path[PATH_MAX], ctl[256];
    int r = join(path, sizeof(path), root, "cgroup.controllers");
    if (r)
        return errmsg(err, errlen, r, "cgroup root path too long: %s", root);
    if ((r = read_small(path, ctl, sizeof(ctl)))) {
        snprintf(p->why, sizeof(p->why), "%s is not a cgroup v2 directory (no cgroup.controllers: "
                 "cgroup v1, or a hybrid layout whose v2 part is elsewhere)", root);
        return 0;
    }
    p->v2 = true;
    p->cpu = has_word(ctl, "cpu");
    p->memory = has_word(ctl, "memory");
    char sub[PATH_MAX];
    p->writable = !join(sub, sizeof(sub), root, "cgroup.subtree_control") &&
                  !access(root, W_OK | X_OK) && !access(sub, W_OK);
    p->usable = p->cpu && p->memory && p->writable;
    if (!p->usable) {
        ctl[strcspn(ctl, "\n")] = '\0';
        const char *missing = !p->cpu && !p->memory ? "no cpu or memory controller"
                              : !p->cpu             ? "no cpu controller"
                              : !p->memory          ? "no memory controller" : NULL;
        if (missing)
            snprintf(p->why, sizeof(p->why), "%s offers %s (cgroup.controllers: \"%.80s\")%s",
                     root, missing, ctl, p->writable ? "" : ", nor is it writable by this process");
        else
            snprintf(p->why, sizeof(p->why), "%s is not writable by this process (not delegated "
                     "to it)", root);
    }
    return 0;
}

int cgroup_default_root(char *root, size_t len, char *err, size_t errlen)
{
    /* mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS] - FSTYPE SOURCE SUPEROPTS */
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return errmsg(err, errlen, -errno, "/proc/self/mountinfo: %s", strerror(errno));
    char line[4096], mnt[PATH_MAX] = "";
    while (!mnt[0] && fgets(line, sizeof(line), f)) {
        const char *dash = strstr(line, " - cgroup2 ");
        char point[PATH_MAX];
        if (dash && sscanf(line, "%*s %*s %*s %*s %4095s", point) == 1)
            snprintf(mnt, sizeof(mnt), "%s", point);
    }
    fclose(f);
    if (!mnt[0])
        return errmsg(err, errlen, -ENOENT, "no cgroup2 file system is mounted");
    /* The v2 line of /proc/self/cgroup: "0::/PATH". */
    char self[PATH_MAX] = "/";
    if ((f = fopen("/proc/self/cgroup", "re"))) {
        while (fgets(line, sizeof(line), f))
            if (!strncmp(line, "0::", 3)) {
                line[strcspn(line, "\n")] = '\0';
                snprintf(self, sizeof(self), "%s", line + 3);
            }
        fclose(f);
    }
    int n = snprintf(root, len, "%s%s", mnt, strcmp(self, "/") ? self : "");
    if (n < 0 || (size_t)n >= len)
        return errmsg(err, errlen, -ENAMETOOLONG, "cgroup path too long: %s%s", mnt, self);
    return 0;
}

int cgroup_check_limits(const struct cgroup_limits *l, char *err, size_t errlen)
{
    if (l->cpu_weight > CPU_WEIGHT_MAX)
        return errmsg(err, errlen, -EINVAL, "cpu weight %u: 1 to %u", l->cpu_weight, CPU_WEIGHT_MAX);
    if (l->cpu_period_us && (l->cpu_period_us < CPU_PERIOD_MIN || l->cpu_period_us > CPU_PERIOD_MAX))
        return errmsg(err, errlen, -EINVAL, "cpu period %" PRIu64 " us: %u to %u us",
                      l->cpu_period_us, CPU_PERIOD_MIN, CPU_PERIOD_MAX);
    if (l->cpu_quota_us && (l->cpu_quota_us < CPU_QUOTA_MIN || l->cpu_quota_us > CPU_QUOTA_MAX))
        return errmsg(err, errlen, -EINVAL, "cpu quota %" PRIu64 " us: %u us to %llu us, or none",
                      l->cpu_quota_us, CPU_QUOTA_MIN, CPU_QUOTA_MAX);
    if (!l->cpu_quota_us && l->cpu_period_us)
        return errmsg(err, errlen, -EINVAL, "a cpu period without a quota");
    if (l->memory_max && l->memory_max < MEMORY_MAX_MIN)
        return errmsg(err, errlen, -EINVAL, "memory limit %" PRIu64 " bytes: at least 1 MiB, "
                      "or none", l->memory_max);
    return 0;
}

/* Enables the cpu and/or memory controllers for dir's children, those not
 * enabled already. */
static int enable(const char *dir, bool cpu, bool memory, char *err, size_t errlen)
{
    char path[PATH_MAX], cur[256] = "", cmd[32] = "";
    int r = join(path, sizeof(path), dir, "cgroup.subtree_control");
    if (r)
        return errmsg(err, errlen, r, "cgroup path too long: %s", dir);
    if ((r = read_small(path, cur, sizeof(cur))) && r != -ENOENT)
        return errmsg(err, errlen, r, "%s: %s", path, strerror(-r));
    if (cpu && !has_word(cur, "cpu"))
        strcat(cmd, "+cpu ");
    if (memory && !has_word(cur, "memory"))
        strcat(cmd, "+memory ");
    if (!cmd[0])
        return 0;
    cmd[strlen(cmd) - 1] = '\0';
    /* Only what is missing: the kernel adds it to what is there. */
    r = write_small(path, cmd);
    if (r)
        return errmsg(err, errlen, r, "enabling %s in %s: %s%s", cmd, path, strerror(-r),
                      r == -EBUSY ? " (processes in that cgroup: cgroup v2 enables controllers "
                                    "only for a cgroup without processes of its own)" : "");
    return 0;
}

int cgroup_create(const char *root, const char *name, const struct cgroup_limits *l, char *err,
                  size_t errlen)
{
    char dir[PATH_MAX], sub[PATH_MAX], path[PATH_MAX], val[64];
    int r = vm_dir(dir, sizeof(dir), root, name, err, errlen);
    if (r || (r = cgroup_check_limits(l, err, errlen)))
        return r;
    struct cgroup_probe p;
    if ((r = cgroup_probe(root, &p, err, errlen)))
        return r;
    if (!p.v2)
        return errmsg(err, errlen, -ENOTSUP, "%s", p.why);
    bool need_cpu = l->cpu_weight || l->cpu_quota_us, need_mem = l->memory_max != 0;
    if ((need_cpu && !p.cpu) || (need_mem && !p.memory))
        return errmsg(err, errlen, -ENOTSUP, "cgroup %s: the %s controller is not available in %s",
                      name, need_cpu && !p.cpu ? "cpu" : "memory", root);
    if ((r = join(sub, sizeof(sub), root, CGROUP_SUBTREE)))
        return errmsg(err, errlen, r, "cgroup path too long: %s", root);
    if (mkdir(sub, 0755) && errno != EEXIST)
        return errmsg(err, errlen, -errno, "mkdir %s: %s", sub, strerror(errno));
    if ((r = enable(root, p.cpu, p.memory, err, errlen)) ||
        (r = enable(sub, p.cpu, p.memory, err, errlen)))
        return r;
    if (mkdir(dir, 0755) && errno != EEXIST)
        return errmsg(err, errlen, -errno, "mkdir %s: %s", dir, strerror(errno));
    struct { bool on; const char *file; } files[3] = {
        { p.cpu, "cpu.weight" }, { p.cpu, "cpu.max" }, { p.memory, "memory.max" },
    };
    for (unsigned i = 0; i < 3; i++) {
        if (!files[i].on)
            continue;
        if (i == 0)
            snprintf(val, sizeof(val), "%u", l->cpu_weight ? l->cpu_weight : 100);
        else if (i == 1 && l->cpu_quota_us)
            snprintf(val, sizeof(val), "%" PRIu64 " %" PRIu64, l->cpu_quota_us,
                     l->cpu_period_us ? l->cpu_period_us : CPU_PERIOD_DEF);
        else if (i == 1)
            snprintf(val, sizeof(val), "max %u", CPU_PERIOD_DEF);
        else if (l->memory_max)
            snprintf(val, sizeof(val), "%" PRIu64, l->memory_max);
        else
            snprintf(val, sizeof(val), "max");
        if ((r = join(path, sizeof(path), dir, files[i].file)) || (r = write_small(path, val)))
            return errmsg(err, errlen, r, "writing '%s' to %s/%s: %s", val, dir, files[i].file,
                          strerror(-r));
    }
    return 0;
}

int cgroup_attach(const char *root, const char *name, pid_t pid, char *err, size_t errlen)
{
    char dir[PATH_MAX], path[PATH_MAX], val[24];
    int r = vm_dir(dir, sizeof(dir), root, name, err, errlen);
    if (r)
        return r;
    if (pid < 0)
        return errmsg(err, errlen, -EINVAL, "cgroup %s: no process %d", name, (int)pid);
    snprintf(val, sizeof(val), "%d", (int)pid);   /* "0": the writer itself */
    if ((r = join(path, sizeof(path), dir, "cgroup.procs")) || (r = write_small(path, val)))
        return errmsg(err, errlen, r, "moving process %d into %s: %s", (int)pid, dir,
                      strerror(-r));
    return 0;
}

/* The number after "key " in a flat-keyed file (cpu.stat). */
static bool keyed(const char *text, const char *key, uint64_t *v)
{
    size_t kl = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, key, kl) && p[kl] == ' ')
            return sscanf(p + kl + 1, "%" SCNu64, v) == 1;
    return false;
}

int cgroup_stats(const char *root, const char *name, struct cgroup_stats *st, char *err,
                 size_t errlen)
{
    *st = (struct cgroup_stats){ 0 };
    char dir[PATH_MAX], path[PATH_MAX], text[2048];
    int r = vm_dir(dir, sizeof(dir), root, name, err, errlen);
    if (r)
        return r;
    if ((r = join(path, sizeof(path), dir, "cpu.stat")) || (r = read_small(path, text, sizeof(text))))
        return errmsg(err, errlen, r, "%s/cpu.stat: %s", dir, strerror(-r));
    if (!keyed(text, "usage_usec", &st->cpu_usage_usec))
        return errmsg(err, errlen, -EBADMSG, "%s/cpu.stat has no usage_usec", dir);
    keyed(text, "throttled_usec", &st->cpu_throttled_usec);
    if ((r = join(path, sizeof(path), dir, "memory.current")))
        return errmsg(err, errlen, r, "cgroup path too long: %s", dir);
    r = read_small(path, text, sizeof(text));
    if (r && r != -ENOENT)
        return errmsg(err, errlen, r, "%s: %s", path, strerror(-r));
    if (!r) {
        if (sscanf(text, "%" SCNu64, &st->memory_current) != 1)
            return errmsg(err, errlen, -EBADMSG, "%s: not a number", path);
        st->has_memory = true;
    }
    return 0;
}

int cgroup_remove(const char *root, const char *name, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    int r = vm_dir(dir, sizeof(dir), root, name, err, errlen);
    if (r)
        return r;
    if (!rmdir(dir) || errno == ENOENT)
        return 0;
    return errmsg(err, errlen, -errno, "removing %s: %s%s", dir, strerror(errno),
                  errno == EBUSY ? " (processes are still in it)" : "");
}
