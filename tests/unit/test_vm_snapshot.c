/* Whole-VM snapshots of small machines (vm/snapshot.h) without a guest
 * kernel: a bare-metal program counts in a register and stores the count
 * into RAM, on every hart. Each machine is saved while it runs (full, then
 * a diff, then compressed), restored from each of those (lazy and eager),
 * and the restored machine's harts, its RAM and a second save must be the
 * saved ones. Guest time stands still while the machine is paused: the
 * saves of a paused machine, its restore and the save of that restore all
 * carry the mtime of the pause.
 *
 * `test_vm_snapshot --write-seeds DIR` also writes the vm.state files as
 * the fuzz seeds of tests/fuzz/corpus/snapshot/ (fuzz_snapshot.c). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "machine/virt.h"
#include "machine/virt_state.h"
#include "state/state.h"
#include "vm/snapshot.h"

#include "check.h"
#include "vm_threads.h"

static const char *seed_dir;

static void sleep_ms(long ms)
{
    /* Pacing only: lets the harts run; nothing waits on it. */
    struct timespec ts = { 0, ms * 1000000 };
    nanosleep(&ts, NULL);
}

static uint8_t *read_all(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    uint8_t *b = malloc((size_t)st.st_size + 1);
    if (b && read(fd, b, (size_t)st.st_size) != st.st_size) {
        free(b);
        b = NULL;
    }
    close(fd);
    *len = (size_t)st.st_size;
    return b;
}

static void write_seed(const char *name, const char *snap)
{
    if (!seed_dir)
        return;
    char src[512], dst[512];
    size_t len;
    snprintf(src, sizeof(src), "%s/vm.state", snap);
    snprintf(dst, sizeof(dst), "%s/%s", seed_dir, name);
    uint8_t *b = read_all(src, &len);
    CHECK(b != NULL);
    FILE *f = b ? fopen(dst, "wb") : NULL;
    CHECK(f != NULL);
    if (f) {
        CHECK_EQ(fwrite(b, 1, len, f), len);
        fclose(f);
    }
    free(b);
}

/* The payload of tag[inst] in a snapshot's vm.state (a copy), or NULL. */
static uint8_t *section_of(const char *snap, const char *tag, uint32_t inst, uint32_t *len)
{
    char path[512], err[256];
    size_t n;
    snprintf(path, sizeof(path), "%s/vm.state", snap);
    uint8_t *b = read_all(path, &n);
    struct state_reader r;
    struct state_section s;
    uint8_t *out = NULL;
    if (b && state_reader_open_mem(&r, b, n, err, sizeof(err)) == 0) {
        if (state_reader_section(&r, tag, inst, UINT16_MAX, &s, err, sizeof(err)) == 0 &&
            (out = malloc(s.len + 1))) {
            memcpy(out, s.data, s.len);
            *len = s.len;
        }
        state_reader_free(&r);
    }
    free(b);
    return out;
}

static bool same_section(const char *a, const char *b, const char *tag, uint32_t inst)
{
    uint32_t la = 0, lb = 0;
    uint8_t *x = section_of(a, tag, inst, &la), *y = section_of(b, tag, inst, &lb);
    bool same = x && y && la == lb && !memcmp(x, y, la);
    free(x);
    free(y);
    return same;
}

/* What the machine was at the save. */
struct saved {
    uint8_t *ram;
    uint64_t ram_size;
    unsigned nharts;
    uint64_t pc[4], a0[4];
    uint64_t mtime;   /* guest time at the pause */
    bool watchdog;
    enum guest_action watchdog_action, panic_action;
};

/* Restores `snap` (eager or lazy) and checks it against `sv`, and a second
 * save of it against the first. (Not the harts' or the PLIC's sections: a
 * restore raises the VM generation ID's interrupt.) */
static void check_restore(const char *snap, const struct saved *sv, enum vm_restore_memory how,
                          const char *tmp)
{
    static unsigned nagain;
    struct vm_restore_options o = { .path = snap, .memory = how, .console_kind = CONSOLE_FILE };
    strcpy(o.console_path, "/dev/null");
    struct virt_machine *m;
    struct virt_config_strings strs;
    char err[512] = "";
    int r = vm_snapshot_restore(&o, &m, &strs, err, sizeof(err));
    CHECK_MSG(r == 0, "restore %s: %s", snap, err);
    if (r)
        return;
    CHECK(virt_is_paused(m));
    CHECK_EQ(timebase_now(&m->timebase), sv->mtime);   /* stands until the resume */
    CHECK_EQ(m->nharts, sv->nharts);
    CHECK_EQ(m->mem.ram_size, sv->ram_size);
    /* The board section (v1.1) brings the watchdog and the actions back. */
    CHECK_EQ(m->config.watchdog, sv->watchdog);
    CHECK_EQ(m->wdt != NULL, sv->watchdog);
    CHECK_EQ(m->config.watchdog_action, sv->watchdog_action);
    CHECK_EQ(m->config.panic_action, sv->panic_action);
    CHECK_MSG(!memcmp(m->mem.ram, sv->ram, sv->ram_size), "%s: RAM differs after the restore", snap);
    for (unsigned i = 0; i < m->nharts && i < sv->nharts; i++) {
        CHECK_EQ(m->harts[i]->arch.pc, sv->pc[i]);
        CHECK_EQ(m->harts[i]->arch.x[10], sv->a0[i]);
    }
    /* Saved again while paused (hart threads waiting at their pause point,
     * as in a real restore): the devices' sections are the same bytes. */
    struct vm_thread t[4];
    CHECK_EQ(vm_threads_start(m, t), 0);
    char again[512];
    snprintf(again, sizeof(again), "%s/again-%u", tmp, nagain++);
    struct vm_snapshot_options so = { .path = again };
    struct vm_snapshot_result res;
    CHECK_MSG(vm_snapshot_save(m, &so, &res, err, sizeof(err)) == 0, "save again: %s", err);
    CHECK(same_section(snap, again, "uart16550", 0));
    CHECK(same_section(snap, again, "goldfish_rtc", 0));
    CHECK(same_section(snap, again, "board", 0));
    CHECK(same_section(snap, again, "aclint", 0));   /* mtime too */
    CHECK_EQ(same_section(snap, again, "sunxi_wdt", 0), sv->watchdog);
    CHECK(res.save_us < 10 * 1000000);
    vm_threads_stop(m, t);
    virt_destroy(m);
    virt_config_strings_free(&strs);
}

/* M-mode or S-mode, bare: t0 = pc + 4 KiB; loop { a0++; *(u64 *)t0 = a0; } */
static const uint32_t program[] = {
    0x00001297,   /* auipc t0, 1 */
    0x00150513,   /* addi a0, a0, 1 */
    0x00a2b023,   /* sd a0, 0(t0) */
    0xff9ff06f,   /* j -8 */
};

static void test_machine(const char *name, struct virt_config cfg, const char *tmp)
{
    char image[512], full[512], diff[512], zst[512];
    snprintf(image, sizeof(image), "%s/%s.bin", tmp, name);
    snprintf(full, sizeof(full), "%s/%s-full", tmp, name);
    snprintf(diff, sizeof(diff), "%s/%s-diff", tmp, name);
    snprintf(zst, sizeof(zst), "%s/%s-zst", tmp, name);
    FILE *f = fopen(image, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK_EQ(fwrite(program, 1, sizeof(program), f), sizeof(program));
    fclose(f);
    if (cfg.bios)
        cfg.bios = image;
    else
        cfg.kernel = image;
    cfg.console_kind = CONSOLE_FILE;
    strcpy(cfg.console_path, "/dev/null");

    struct virt_machine *m;
    char err[512] = "";
    int r = virt_create(&cfg, &m, err, sizeof(err));
    CHECK_MSG(r == 0, "%s: virt_create: %s", name, err);
    if (r)
        return;
    struct vm_thread t[4];
    CHECK_EQ(vm_threads_start(m, t), 0);
    sleep_ms(20);

    struct vm_snapshot_options o = { .path = full };
    struct vm_snapshot_result res;
    CHECK_MSG(vm_snapshot_save(m, &o, &res, err, sizeof(err)) == 0, "%s: save: %s", name, err);
    CHECK(res.pages_written >= 1);
    sleep_ms(20);
    /* A diff, paused, so the RAM it ends at is known. */
    CHECK_EQ(virt_pause(m, err, sizeof(err)), 0);
    struct saved sv = { .mtime = timebase_now(&m->timebase),
                        .ram = malloc(cfg.ram_size), .ram_size = cfg.ram_size,
                        .nharts = cfg.nharts, .watchdog = cfg.watchdog,
                        .watchdog_action = cfg.watchdog_action,
                        .panic_action = cfg.panic_action };
    if (!sv.ram)
        exit(1);
    memcpy(sv.ram, m->mem.ram, cfg.ram_size);
    for (unsigned i = 0; i < cfg.nharts; i++) {
        sv.pc[i] = m->harts[i]->arch.pc;
        sv.a0[i] = m->harts[i]->arch.x[10];
        CHECK(sv.a0[i] > 0);   /* it ran */
    }
    o = (struct vm_snapshot_options){ .path = diff, .diff = true };
    CHECK_MSG(vm_snapshot_save(m, &o, &res, err, sizeof(err)) == 0, "%s: diff: %s", name, err);
    /* The harts wrote one page each (the program sits on one page). */
    CHECK(res.pages_written >= 1 && res.pages_written <= cfg.nharts * 2u);
    o = (struct vm_snapshot_options){ .path = zst, .compress = true };
    sleep_ms(50);
    CHECK_MSG(vm_snapshot_save(m, &o, &res, err, sizeof(err)) == 0, "%s: zst: %s", name, err);
    CHECK(virt_is_paused(m));
    /* Both saves have the time of the pause (u32 nharts, u64 mtime). */
    CHECK(same_section(diff, zst, "aclint", 0));
    uint32_t alen = 0;
    uint8_t *acl = section_of(zst, "aclint", 0, &alen);
    CHECK(acl && alen >= 12);
    if (acl && alen >= 12) {
        uint64_t mt = 0;
        for (int i = 7; i >= 0; i--)
            mt = mt << 8 | acl[4 + i];
        CHECK_EQ(mt, sv.mtime);
    }
    free(acl);
    CHECK_EQ(timebase_now(&m->timebase), sv.mtime);
    int64_t h0 = timebase_host_ns();
    CHECK_EQ(virt_resume(m, err, sizeof(err)), 0);
    uint64_t t1 = timebase_now(&m->timebase);
    int64_t h1 = timebase_host_ns();
    CHECK_MSG(t1 >= sv.mtime && t1 - sv.mtime <= (uint64_t)(h1 - h0) / TIMEBASE_NS_PER_TICK + 1,
              "%s: guest time %llu after the resume, %llu at the pause", name,
              (unsigned long long)t1, (unsigned long long)sv.mtime);
    vm_threads_stop(m, t);
    virt_destroy(m);

    check_restore(diff, &sv, VM_RESTORE_LAZY, tmp);
    check_restore(diff, &sv, VM_RESTORE_EAGER, tmp);
    check_restore(zst, &sv, VM_RESTORE_EAGER, tmp);
    free(sv.ram);

    char seed[128];
    snprintf(seed, sizeof(seed), "%s-full", name);
    write_seed(seed, full);
    snprintf(seed, sizeof(seed), "%s-diff", name);
    write_seed(seed, diff);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write-seeds"))
        seed_dir = argv[2];
    char tmp[] = "/tmp/nimbus-test-vm-snapshot-XXXXXX";
    CHECK(mkdtemp(tmp) != NULL);

    /* One hart, 16 MiB, the program as M-mode firmware. */
    test_machine("firmware", (struct virt_config){ .bios = "x", .ram_size = 16u << 20, .nharts = 1 },
                 tmp);
    /* Two harts in S-mode under the built-in SBI, with the devices that
     * need no host resource: the virtio console, the balloon, the watchdog. */
    test_machine("sbi", (struct virt_config){
                     .kernel_raw = true, .append = "console=hvc0", .ram_size = 32u << 20,
                     .nharts = 2, .console_virtio = true, .balloon = true,
                     .balloon_opts = { .deflate_on_oom = true, .reporting = true,
                                       .stats_interval_ms = 1000 },
                     .watchdog = true, .watchdog_action = GUEST_ACTION_PAUSE,
                     .panic_action = GUEST_ACTION_POWEROFF },
                 tmp);

    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
    CHECK_EQ(system(cmd), 0);
    return check_summary("vm_snapshot");
}
