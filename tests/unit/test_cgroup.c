/* Unit tests for the daemon's cgroup v2 helper (src/daemon/cgroup.c) on a
 * plain directory tree standing in for cgroupfs: the probe (usable, no v2,
 * missing controllers, not writable), the cgroup made with the limits
 * written as cgroupfs wants them, controllers enabled in both parents,
 * bad names and limits refused with nothing made, attach, stats, remove. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/cgroup.h"

#include "check.h"

static char base[] = "/tmp/nimbus-test-cgroup.XXXXXX";

static void put(const char *dir, const char *file, const char *text)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", dir, file);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* The file's text ("" when missing), newline cut. */
static const char *get(const char *dir, const char *file)
{
    static char buf[256];
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", dir, file);
    buf[0] = '\0';
    FILE *f = fopen(p, "r");
    if (f) {
        if (!fgets(buf, sizeof(buf), f))
            buf[0] = '\0';
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A fake cgroup v2 root offering `controllers`. */
static void make_root(const char *root, const char *controllers)
{
    CHECK(mkdir(root, 0755) == 0);
    put(root, "cgroup.controllers", controllers);
    put(root, "cgroup.subtree_control", "");
    put(root, "cgroup.procs", "");
}

static void test_probe(void)
{
    char root[256], err[256];
    struct cgroup_probe p;

    snprintf(root, sizeof(root), "%s/full", base);
    make_root(root, "cpuset cpu io memory hugetlb pids\n");
    CHECK_EQ(cgroup_probe(root, &p, err, sizeof(err)), 0);
    CHECK(p.v2 && p.cpu && p.memory && p.writable && p.usable);

    /* This test machine's kind of host: a hybrid layout whose v2 part
     * offers only hugetlb. */
    snprintf(root, sizeof(root), "%s/hybrid", base);
    make_root(root, "hugetlb\n");
    CHECK_EQ(cgroup_probe(root, &p, err, sizeof(err)), 0);
    CHECK(p.v2 && !p.cpu && !p.memory && !p.usable);
    CHECK_MSG(strstr(p.why, "no cpu or memory controller") && strstr(p.why, "hugetlb"), "%s", p.why);

    snprintf(root, sizeof(root), "%s/nomem", base);
    make_root(root, "cpu io\n");
    CHECK_EQ(cgroup_probe(root, &p, err, sizeof(err)), 0);
    CHECK(p.cpu && !p.memory && !p.usable);
    CHECK_MSG(strstr(p.why, "no memory controller") != NULL, "%s", p.why);

    /* v1 (or tmpfs holding v1 mounts): no cgroup.controllers. */
    snprintf(root, sizeof(root), "%s/v1", base);
    CHECK(mkdir(root, 0755) == 0);
    CHECK_EQ(cgroup_probe(root, &p, err, sizeof(err)), 0);
    CHECK(!p.v2 && !p.usable);
    CHECK_MSG(strstr(p.why, "not a cgroup v2 directory") != NULL, "%s", p.why);

    snprintf(root, sizeof(root), "%s/missing", base);
    CHECK_EQ(cgroup_probe(root, &p, err, sizeof(err)), -ENOENT);
    CHECK(strstr(err, "missing") != NULL);

    /* Not delegated: only checkable without root's override. */
    if (geteuid() != 0) {
        snprintf(root, sizeof(root), "%s/ro", base);
        make_root(root, "cpu memory\n");
        chmod(root, 0555);
        CHECK_EQ(cgroup_probe(root, &p, err, sizeof(err)), 0);
        CHECK(!p.writable && !p.usable && strstr(p.why, "not writable"));
        chmod(root, 0755);
    }
}

static void test_create(void)
{
    char root[256], dir[400], sub[320], err[256];
    snprintf(root, sizeof(root), "%s/c", base);
    make_root(root, "cpu io memory pids\n");
    snprintf(sub, sizeof(sub), "%s/" CGROUP_SUBTREE, root);
    snprintf(dir, sizeof(dir), "%s/vm-1", sub);

    struct cgroup_limits l = { .cpu_weight = 250, .cpu_quota_us = 50000, .cpu_period_us = 100000,
                               .memory_max = 256ull << 20 };
    CHECK_EQ(cgroup_create(root, "vm-1", &l, err, sizeof(err)), 0);
    CHECK_MSG(!strcmp(get(root, "cgroup.subtree_control"), "+cpu +memory"), "%s",
              get(root, "cgroup.subtree_control"));
    CHECK_MSG(!strcmp(get(sub, "cgroup.subtree_control"), "+cpu +memory"), "%s",
              get(sub, "cgroup.subtree_control"));
    CHECK_MSG(!strcmp(get(dir, "cpu.weight"), "250"), "%s", get(dir, "cpu.weight"));
    CHECK_MSG(!strcmp(get(dir, "cpu.max"), "50000 100000"), "%s", get(dir, "cpu.max"));
    CHECK_MSG(!strcmp(get(dir, "memory.max"), "268435456"), "%s", get(dir, "memory.max"));

    /* Again with no limits: the cgroup is reused, every value reset to the
     * kernel's default, and controllers already on are not written again. */
    put(root, "cgroup.subtree_control", "cpu memory\n");
    struct cgroup_limits none = { 0 };
    CHECK_EQ(cgroup_create(root, "vm-1", &none, err, sizeof(err)), 0);
    CHECK(!strcmp(get(root, "cgroup.subtree_control"), "cpu memory"));
    CHECK(!strcmp(get(dir, "cpu.weight"), "100"));
    CHECK(!strcmp(get(dir, "cpu.max"), "max 100000"));
    CHECK(!strcmp(get(dir, "memory.max"), "max"));

    /* A quota with the default period. */
    struct cgroup_limits q = { .cpu_quota_us = 200000 };
    CHECK_EQ(cgroup_create(root, "vm-2", &q, err, sizeof(err)), 0);
    char dir2[400];
    snprintf(dir2, sizeof(dir2), "%s/vm-2", sub);
    CHECK(!strcmp(get(dir2, "cpu.max"), "200000 100000"));

    /* Attach and stats. */
    CHECK_EQ(cgroup_attach(root, "vm-1", 4242, err, sizeof(err)), 0);
    CHECK(!strcmp(get(dir, "cgroup.procs"), "4242"));
    CHECK_EQ(cgroup_attach(root, "vm-1", -5, err, sizeof(err)), -EINVAL);
    put(dir, "cpu.stat", "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n"
                         "nr_periods 10\nnr_throttled 2\nthrottled_usec 777\n");
    put(dir, "memory.current", "9437184\n");
    struct cgroup_stats st;
    CHECK_EQ(cgroup_stats(root, "vm-1", &st, err, sizeof(err)), 0);
    CHECK_EQ(st.cpu_usage_usec, 123456);
    CHECK_EQ(st.cpu_throttled_usec, 777);
    CHECK(st.has_memory);
    CHECK_EQ(st.memory_current, 9437184);
    /* No memory controller: no memory.current, still figures. */
    put(dir2, "cpu.stat", "usage_usec 5\n");
    CHECK_EQ(cgroup_stats(root, "vm-2", &st, err, sizeof(err)), 0);
    CHECK(!st.has_memory && st.cpu_usage_usec == 5);
    put(dir2, "cpu.stat", "user_usec 5\n");
    CHECK_EQ(cgroup_stats(root, "vm-2", &st, err, sizeof(err)), -EBADMSG);

    /* Remove: cgroupfs removes a cgroup with its interface files; here
     * the files go first. Gone already is fine. */
    const char *files[] = { "cpu.weight", "cpu.max", "memory.max", "cgroup.procs", "cpu.stat",
                            "memory.current" };
    for (unsigned i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        unlink(p);
    }
    CHECK_EQ(cgroup_remove(root, "vm-1", err, sizeof(err)), 0);
    CHECK(!exists(dir));
    CHECK_EQ(cgroup_remove(root, "vm-1", err, sizeof(err)), 0);
    /* Not empty (a plain tree's stand-in for processes still in it). */
    CHECK(cgroup_remove(root, "vm-2", err, sizeof(err)) < 0);
    CHECK(exists(dir2));
}

static void test_refusals(void)
{
    char root[256], err[256];
    snprintf(root, sizeof(root), "%s/r", base);
    make_root(root, "cpu memory\n");
    struct cgroup_limits ok = { .cpu_weight = 100 };
    const char *bad_names[] = { "", ".", "..", "a/b", "../x", "a b", "x\n",
                                "0123456789012345678901234567890123456789012345678901234567890123456789" };
    for (unsigned i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        CHECK_MSG(cgroup_create(root, bad_names[i], &ok, err, sizeof(err)) == -EINVAL, "'%s'",
                  bad_names[i]);
        CHECK(cgroup_attach(root, bad_names[i], 1, err, sizeof(err)) == -EINVAL);
        CHECK(cgroup_remove(root, bad_names[i], err, sizeof(err)) == -EINVAL);
    }
    struct { struct cgroup_limits l; const char *word; } bad[] = {
        { { .cpu_weight = 10001 }, "weight" },
        { { .cpu_quota_us = 999 }, "quota" },
        { { .cpu_quota_us = 1ull << 40 }, "quota" },
        { { .cpu_quota_us = 5000, .cpu_period_us = 999 }, "period" },
        { { .cpu_quota_us = 5000, .cpu_period_us = 1000001 }, "period" },
        { { .cpu_period_us = 10000 }, "period" },
        { { .memory_max = 4096 }, "memory" },
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK_EQ(cgroup_create(root, "vm", &bad[i].l, err, sizeof(err)), -EINVAL);
        CHECK_MSG(strstr(err, bad[i].word) != NULL, "limit %u: %s", i, err);
    }
    /* Nothing was made for the refused requests. */
    char sub[320];
    snprintf(sub, sizeof(sub), "%s/" CGROUP_SUBTREE, root);
    CHECK(!exists(sub));

    /* A limit whose controller the root does not offer. */
    char hy[256];
    snprintf(hy, sizeof(hy), "%s/hy", base);
    make_root(hy, "hugetlb\n");
    struct cgroup_limits mem = { .memory_max = 64ull << 20 };
    CHECK_EQ(cgroup_create(hy, "vm", &mem, err, sizeof(err)), -ENOTSUP);
    CHECK_MSG(strstr(err, "memory controller is not available") != NULL, "%s", err);
    CHECK_EQ(cgroup_create(hy, "vm", &ok, err, sizeof(err)), -ENOTSUP);
    CHECK_MSG(strstr(err, "cpu controller") != NULL, "%s", err);
    /* No limits at all on such a host: a cgroup for accounting only. */
    struct cgroup_limits none = { 0 };
    CHECK_EQ(cgroup_create(hy, "acct", &none, err, sizeof(err)), 0);
    char d[400];
    snprintf(d, sizeof(d), "%s/" CGROUP_SUBTREE "/acct", hy);
    CHECK(exists(d));
    snprintf(d, sizeof(d), "%s/" CGROUP_SUBTREE "/acct/cpu.weight", hy);
    CHECK(!exists(d));
    /* Not v2 at all. */
    char v1[256];
    snprintf(v1, sizeof(v1), "%s/v1only", base);
    CHECK(mkdir(v1, 0755) == 0);
    CHECK_EQ(cgroup_create(v1, "vm", &none, err, sizeof(err)), -ENOTSUP);
    CHECK_MSG(strstr(err, "not a cgroup v2") != NULL, "%s", err);
}

/* On the real host: the default root is found (or its absence reported),
 * and probing it works; the verdict is printed, not checked (hosts differ). */
static void test_host(void)
{
    char root[4096], err[256];
    struct cgroup_probe p;
    int r = cgroup_default_root(root, sizeof(root), err, sizeof(err));
    CHECK(r == 0 || r == -ENOENT);
    if (r) {
        printf("host: %s\n", err);
        return;
    }
    CHECK_EQ(cgroup_probe(root, &p, err, sizeof(err)), 0);
    printf("host: cgroup v2 root %s: %s\n", root, p.usable ? "usable" : p.why);
}

static void rm_tree(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd))
        fprintf(stderr, "could not remove %s\n", path);
}

int main(void)
{
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }
    test_probe();
    test_create();
    test_refusals();
    test_host();
    rm_tree(base);
    return check_summary("test_cgroup");
}
