/* Unit tests for nimbusd's VM definitions (src/daemon/vmdef):
 *  - good definitions: defaults filled, the normalized JSON exactly as
 *    expected, and parse(to_json(d)) giving the same JSON back;
 *  - every kind of bad field refused, with the field named (vmdef_err_field)
 *    and nothing leaked (the ASan build);
 *  - the files: missing, a directory, unreadable, formats probed;
 *  - host-wide conflicts (name, UUID, MAC, CID, disks, host ports) and the
 *    generated UUID and MACs;
 *  - the argv of the VM process, exactly. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/vmdef.h"

#include "check.h"

static char dir[64];
static char kernel[128], raw_disk[128], qcow_disk[128], ro_disk[128];

static void write_file(const char *path, const void *data, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    CHECK(fd >= 0);
    CHECK(write(fd, data, n) == (ssize_t)n);
    close(fd);
}

static void make_files(void)
{
    snprintf(dir, sizeof(dir), "/tmp/nimbus-vmdef.XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(kernel, sizeof(kernel), "%s/vmlinux", dir);
    snprintf(raw_disk, sizeof(raw_disk), "%s/raw.img", dir);
    snprintf(qcow_disk, sizeof(qcow_disk), "%s/disk.qcow2", dir);
    snprintf(ro_disk, sizeof(ro_disk), "%s/ro.img", dir);
    static const char zeros[512];
    write_file(kernel, "\x7f" "ELF", 4, 0644);
    write_file(raw_disk, zeros, sizeof(zeros), 0644);
    write_file(qcow_disk, "QFI\xfb\0\0\0\3", 8, 0644);
    write_file(ro_disk, zeros, sizeof(zeros), 0444);
}

static void remove_files(void)
{
    const char *files[] = { kernel, raw_disk, qcow_disk, ro_disk };
    for (size_t i = 0; i < 4; i++)
        unlink(files[i]);
    rmdir(dir);
}

/* The text with every "@K", "@R", "@Q", "@O" replaced by the file paths. */
static char *expand(const char *text)
{
    static char out[8192];
    size_t n = 0;
    for (const char *p = text; *p && n + 200 < sizeof(out); p++) {
        const char *rep = NULL;
        if (p[0] == '@')
            rep = p[1] == 'K' ? kernel : p[1] == 'R' ? raw_disk : p[1] == 'Q' ? qcow_disk
                  : p[1] == 'O' ? ro_disk : NULL;
        if (rep) {
            n += (size_t)snprintf(out + n, sizeof(out) - n, "%s", rep);
            p++;
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
    return out;
}

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(expand(text), JSON_ALLOW_NUL, &e);
    CHECK_MSG(j != NULL, "bad test JSON: %s: %s", e.text, text);
    return j;
}

static char *dump(const json_t *j)
{
    return json_dumps(j, JSON_COMPACT);
}

/* Parses text, which must be good; *d is the result (free it). */
static int parse_text(const char *text, struct vmdef *d, char *err, size_t errlen)
{
    json_t *j = load(text);
    int r = j ? vmdef_parse(j, d, err, errlen) : -EINVAL;
    json_decref(j);
    return r;
}

/* ---- good definitions ---- */

static void check_normalized(const char *in, const char *want, bool files)
{
    struct vmdef d;
    char err[256] = "";
    int r = parse_text(in, &d, err, sizeof(err));
    CHECK_MSG(r == 0, "%s: %s", in, err);
    if (r)
        return;
    if (files)
        CHECK_MSG(vmdef_check_files(&d, err, sizeof(err)) == 0, "%s", err);
    json_t *j = vmdef_to_json(&d);
    char *s = dump(j);
    char expected[8192];
    snprintf(expected, sizeof(expected), "%s", expand(want));
    CHECK_MSG(s && !strcmp(s, expected), "\n got  %s\n want %s", s, expected);
    /* Round trip: the normalized form parses to the same definition. */
    struct vmdef d2;
    CHECK_MSG(vmdef_parse(j, &d2, err, sizeof(err)) == 0, "%s", err);
    json_t *j2 = vmdef_to_json(&d2);
    char *s2 = dump(j2);
    CHECK_MSG(s && s2 && !strcmp(s, s2), "\n once  %s\n twice %s", s, s2);
    free(s);
    free(s2);
    json_decref(j);
    json_decref(j2);
    vmdef_free(&d);
    vmdef_free(&d2);
}

static void test_good(void)
{
    /* The smallest: every default. */
    check_normalized(
        "{\"name\":\"web1\",\"kernel\":\"@K\"}",
        "{\"name\":\"web1\",\"vcpus\":1,\"memory_mib\":512,\"kernel\":\"@K\",\"disks\":[],"
        "\"nets\":[],\"balloon\":false,\"console\":\"serial\",\"on_panic\":\"none\","
        "\"autostart\":false,\"cpu_weight\":100,\"cpu_max_percent\":0,\"memory_max_mib\":0}", false);
    /* Everything given (field order shuffled, upper-case UUID, nulls). */
    check_normalized(
        "{\"memory_max_mib\":2048,\"name\":\"db-2.x_y\",\"uuid\":\"0F8FAD5B-D9CB-469F-A165-70867728950E\","
        "\"vcpus\":4,\"memory_mib\":1024,\"kernel\":\"@K\",\"initrd\":\"@R\",\"cmdline\":\"console=hvc0 quiet\","
        "\"disks\":[{\"path\":\"@Q\",\"cache\":\"none\"},{\"path\":\"@O\",\"readonly\":true,\"format\":\"raw\"}],"
        "\"nets\":[{\"type\":\"user\",\"hostfwd\":[\"tcp::2222-:22\",\"udp:127.0.0.1:5353-10.0.2.15:53\"]},"
        "{\"type\":\"tap\",\"ifname\":\"tap0\",\"mac\":\"52:54:00:AB:cd:01\"}],"
        "\"vsock\":{\"cid\":7},\"balloon\":true,\"console\":\"virtio\",\"jit\":true,"
        "\"watchdog\":\"pause\",\"on_panic\":\"poweroff\",\"autostart\":true,"
        "\"cpu_weight\":500,\"cpu_max_percent\":250,\"bios\":null}",
        "{\"name\":\"db-2.x_y\",\"uuid\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"vcpus\":4,"
        "\"memory_mib\":1024,\"kernel\":\"@K\",\"initrd\":\"@R\",\"cmdline\":\"console=hvc0 quiet\","
        "\"disks\":[{\"path\":\"@Q\",\"format\":\"qcow2\",\"readonly\":false,\"cache\":\"none\"},"
        "{\"path\":\"@O\",\"format\":\"raw\",\"readonly\":true,\"cache\":\"writeback\"}],"
        "\"nets\":[{\"type\":\"user\",\"hostfwd\":[\"tcp::2222-:22\",\"udp:127.0.0.1:5353-10.0.2.15:53\"]},"
        "{\"type\":\"tap\",\"mac\":\"52:54:00:ab:cd:01\",\"ifname\":\"tap0\"}],"
        "\"vsock\":{\"cid\":7},\"balloon\":true,\"console\":\"virtio\",\"jit\":true,\"watchdog\":\"pause\","
        "\"on_panic\":\"poweroff\",\"autostart\":true,"
        "\"cpu_weight\":500,\"cpu_max_percent\":250,\"memory_max_mib\":2048}", true);
    /* A bare-metal program: bios without kernel; the limits' edges. */
    check_normalized(
        "{\"name\":\"0\",\"bios\":\"@K\",\"vcpus\":64,\"memory_mib\":16,\"jit\":false,"
        "\"cpu_weight\":10000,\"cpu_max_percent\":6400}",
        "{\"name\":\"0\",\"vcpus\":64,\"memory_mib\":16,\"bios\":\"@K\",\"disks\":[],\"nets\":[],"
        "\"balloon\":false,\"console\":\"serial\",\"jit\":false,\"on_panic\":\"none\",\"autostart\":false,"
        "\"cpu_weight\":10000,\"cpu_max_percent\":6400,\"memory_max_mib\":0}", false);
    /* Seven devices exactly: 5 disks, a card and vsock. */
    check_normalized(
        "{\"name\":\"full\",\"kernel\":\"@K\",\"memory_mib\":1048576,\"disks\":[{\"path\":\"/a\"},"
        "{\"path\":\"/b\"},{\"path\":\"/c\"},{\"path\":\"/d\"},{\"path\":\"/e\"}],"
        "\"nets\":[{\"type\":\"user\"}],\"vsock\":{\"cid\":4294967294}}",
        "{\"name\":\"full\",\"vcpus\":1,\"memory_mib\":1048576,\"kernel\":\"@K\",\"disks\":["
        "{\"path\":\"/a\",\"readonly\":false,\"cache\":\"writeback\"},"
        "{\"path\":\"/b\",\"readonly\":false,\"cache\":\"writeback\"},"
        "{\"path\":\"/c\",\"readonly\":false,\"cache\":\"writeback\"},"
        "{\"path\":\"/d\",\"readonly\":false,\"cache\":\"writeback\"},"
        "{\"path\":\"/e\",\"readonly\":false,\"cache\":\"writeback\"}],"
        "\"nets\":[{\"type\":\"user\",\"hostfwd\":[]}],\"vsock\":{\"cid\":4294967294},"
        "\"balloon\":false,\"console\":\"serial\",\"on_panic\":\"none\",\"autostart\":false,"
        "\"cpu_weight\":100,\"cpu_max_percent\":0,\"memory_max_mib\":0}", false);
    /* Each watchdog action; the watchdog's default action is not implied:
     * it is named. null is absent (no watchdog). */
    static const char *const wd[] = { "reset", "poweroff", "pause", "none" };
    for (size_t i = 0; i < 4; i++) {
        char in[160], want[400];
        snprintf(in, sizeof(in), "{\"name\":\"w\",\"kernel\":\"@K\",\"watchdog\":\"%s\","
                 "\"on_panic\":\"%s\"}", wd[i], i == 1 ? "pause" : "none");
        snprintf(want, sizeof(want), "{\"name\":\"w\",\"vcpus\":1,\"memory_mib\":512,"
                 "\"kernel\":\"@K\",\"disks\":[],\"nets\":[],\"balloon\":false,"
                 "\"console\":\"serial\",\"watchdog\":\"%s\",\"on_panic\":\"%s\","
                 "\"autostart\":false,\"cpu_weight\":100,\"cpu_max_percent\":0,"
                 "\"memory_max_mib\":0}", wd[i], i == 1 ? "pause" : "none");
        check_normalized(in, want, false);
    }
    check_normalized(
        "{\"name\":\"w\",\"kernel\":\"@K\",\"watchdog\":null,\"on_panic\":null}",
        "{\"name\":\"w\",\"vcpus\":1,\"memory_mib\":512,\"kernel\":\"@K\",\"disks\":[],"
        "\"nets\":[],\"balloon\":false,\"console\":\"serial\",\"on_panic\":\"none\","
        "\"autostart\":false,\"cpu_weight\":100,\"cpu_max_percent\":0,\"memory_max_mib\":0}", false);
}

/* ---- bad definitions ---- */

struct bad {
    const char *json;
    const char *field;      /* vmdef_err_field of the message */
    const char *text;       /* a part of the message */
};

static const struct bad bad_defs[] = {
    { "[]", "definition", "must be a JSON object" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"colour\":1}", "colour", "unknown field" },
    { "{\"kernel\":\"@K\"}", "name", "required" },
    { "{\"name\":null,\"kernel\":\"@K\"}", "name", "required" },
    { "{\"name\":7,\"kernel\":\"@K\"}", "name", "must be a string" },
    { "{\"name\":\"Web1\",\"kernel\":\"@K\"}", "name", "'Web1' is not a VM name" },
    { "{\"name\":\"-a\",\"kernel\":\"@K\"}", "name", "not a VM name" },
    { "{\"name\":\"a/b\",\"kernel\":\"@K\"}", "name", "not a VM name" },
    { "{\"name\":\"\",\"kernel\":\"@K\"}", "name", "not a VM name" },
    { "{\"name\":\"a234567890123456789012345678901234567890123456789012345678901234\","
      "\"kernel\":\"@K\"}", "name", "not a VM name" },
    { "{\"name\":\"a\\u0000b\",\"kernel\":\"@K\"}", "name", "NUL" },
    { "{\"name\":\"a\",\"uuid\":\"0f8fad5b-d9cb-469f-a165-70867728950\",\"kernel\":\"@K\"}", "uuid", "not a UUID" },
    { "{\"name\":\"a\",\"uuid\":\"0f8fad5bxd9cb-469f-a165-70867728950e\",\"kernel\":\"@K\"}", "uuid", "not a UUID" },
    { "{\"name\":\"a\",\"vcpus\":0,\"kernel\":\"@K\"}", "vcpus", "0 is out of range (1 to 64)" },
    { "{\"name\":\"a\",\"vcpus\":65,\"kernel\":\"@K\"}", "vcpus", "out of range" },
    { "{\"name\":\"a\",\"vcpus\":-1,\"kernel\":\"@K\"}", "vcpus", "out of range" },
    { "{\"name\":\"a\",\"vcpus\":\"2\",\"kernel\":\"@K\"}", "vcpus", "must be an integer" },
    { "{\"name\":\"a\",\"vcpus\":1.5,\"kernel\":\"@K\"}", "vcpus", "must be an integer" },
    { "{\"name\":\"a\",\"vcpus\":true,\"kernel\":\"@K\"}", "vcpus", "must be an integer" },
    { "{\"name\":\"a\",\"memory_mib\":15,\"kernel\":\"@K\"}", "memory_mib", "out of range" },
    { "{\"name\":\"a\",\"memory_mib\":1048577,\"kernel\":\"@K\"}", "memory_mib", "out of range" },
    { "{\"name\":\"a\",\"memory_mib\":1e30,\"kernel\":\"@K\"}", "memory_mib", "must be" },
    { "{\"name\":\"a\"}", "kernel", "required" },
    { "{\"name\":\"a\",\"kernel\":\"vmlinux\"}", "kernel", "'vmlinux' is not an absolute path" },
    { "{\"name\":\"a\",\"kernel\":5}", "kernel", "must be a string" },
    { "{\"name\":\"a\",\"kernel\":\"\"}", "kernel", "not an absolute path" },
    { "{\"name\":\"a\",\"bios\":\"@K\",\"initrd\":\"@R\"}", "initrd", "needs kernel" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"initrd\":\"./i\"}", "initrd", "absolute" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"cmdline\":[]}", "cmdline", "must be a string" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"disks\":{}}", "disks", "must be an array" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"disks\":[{\"path\":\"/1\"},{\"path\":\"/2\"},{\"path\":\"/3\"},"
      "{\"path\":\"/4\"},{\"path\":\"/5\"},{\"path\":\"/6\"},{\"path\":\"/7\"},{\"path\":\"/8\"}]}",
      "disks", "more than 7" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"disks\":[\"/x\"]}", "disks[0]", "must be an object" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"disks\":[{\"path\":\"@R\"},{\"path\":\"/x\",\"size\":1}]}",
      "disks[1].size", "unknown field" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"disks\":[{\"readonly\":true}]}", "disks[0].path", "required" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"disks\":[{\"path\":\"d.img\"}]}", "disks[0].path", "absolute" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"disks\":[{\"path\":\"/a,b\"}]}", "disks[0].path", "comma" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"disks\":[{\"path\":\"/x\",\"format\":\"vmdk\"}]}",
      "disks[0].format", "must be \"raw\" or \"qcow2\"" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"disks\":[{\"path\":\"/x\",\"readonly\":\"yes\"}]}",
      "disks[0].readonly", "true or false" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"disks\":[{\"path\":\"/x\",\"cache\":\"unsafe\"}]}",
      "disks[0].cache", "\"writeback\" or \"none\"" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"disks\":[{\"path\":\"/x\"},{\"path\":\"/x\"}]}",
      "disks[1].path", "is disks[0] too" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"nets\":[{}]}", "nets[0].type", "required" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"nets\":[{\"type\":\"bridge\"}]}", "nets[0].type", "\"user\" or \"tap\"" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"nets\":[{\"type\":\"user\",\"mac\":\"52:54:00:zz:00:01\"}]}",
      "nets[0].mac", "not a card's MAC" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"nets\":[{\"type\":\"user\",\"mac\":\"01:00:5e:00:00:01\"}]}",
      "nets[0].mac", "multicast" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"nets\":[{\"type\":\"user\",\"mac\":\"52:54:00:00:00:1\"}]}",
      "nets[0].mac", "not a card's MAC" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"nets\":[{\"type\":\"user\",\"mac\":\"52:54:00:00:00:01\"},"
      "{\"type\":\"user\",\"mac\":\"52:54:00:00:00:01\"}]}", "nets[1].mac", "nets[0]'s too" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"nets\":[{\"type\":\"tap\"}]}", "nets[0].ifname", "required" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"nets\":[{\"type\":\"tap\",\"ifname\":\"a,b\"}]}",
      "nets[0].ifname", "not an interface name" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"nets\":[{\"type\":\"tap\",\"ifname\":\"tap0123456789abc\"}]}",
      "nets[0].ifname", "not an interface name" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"nets\":[{\"type\":\"tap\",\"ifname\":\"t\"},"
      "{\"type\":\"tap\",\"ifname\":\"t\"}]}", "nets[1].ifname", "nets[0]'s too" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"nets\":[{\"type\":\"tap\",\"ifname\":\"t\",\"hostfwd\":[]}]}",
      "nets[0].hostfwd", "unknown field" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"nets\":[{\"type\":\"user\",\"ifname\":\"t\"}]}",
      "nets[0].ifname", "unknown field" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"nets\":[{\"type\":\"user\",\"hostfwd\":\"tcp::1-:2\"}]}",
      "nets[0].hostfwd", "must be an array" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"nets\":[{\"type\":\"user\",\"hostfwd\":[\"tcp::1-:2\",\"tcp::99999-:2\"]}]}",
      "nets[0].hostfwd[1]", "not a rule" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"nets\":[{\"type\":\"user\",\"hostfwd\":[\"tcp::1-:2,mac=x\"]}]}",
      "nets[0].hostfwd[0]", "not a rule" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"nets\":[{\"type\":\"user\",\"hostfwd\":[\"tcp::1-:1\",\"tcp::2-:1\","
      "\"tcp::3-:1\",\"tcp::4-:1\",\"tcp::5-:1\",\"tcp::6-:1\",\"tcp::7-:1\",\"tcp::8-:1\",\"tcp::9-:1\","
      "\"tcp::10-:1\",\"tcp::11-:1\",\"tcp::12-:1\",\"tcp::13-:1\",\"tcp::14-:1\",\"tcp::15-:1\","
      "\"tcp::16-:1\",\"tcp::17-:1\"]}]}", "nets[0].hostfwd", "more than 16" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"nets\":[{\"type\":\"user\"},{\"type\":\"user\"},{\"type\":\"user\"},"
      "{\"type\":\"user\"},{\"type\":\"user\"},{\"type\":\"user\"},{\"type\":\"user\"},{\"type\":\"user\"}]}",
      "nets", "more than 7" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"disks\":[{\"path\":\"/1\"},{\"path\":\"/2\"},{\"path\":\"/3\"},"
      "{\"path\":\"/4\"}],\"nets\":[{\"type\":\"user\"},{\"type\":\"user\"},{\"type\":\"user\"},"
      "{\"type\":\"user\"}]}", "nets", "too many devices" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"disks\":[{\"path\":\"/1\"},{\"path\":\"/2\"},{\"path\":\"/3\"},"
      "{\"path\":\"/4\"},{\"path\":\"/5\"},{\"path\":\"/6\"}],\"vsock\":{\"cid\":3},\"balloon\":true}",
      "balloon", "too many devices" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"disks\":[{\"path\":\"/1\"},{\"path\":\"/2\"},{\"path\":\"/3\"},"
      "{\"path\":\"/4\"},{\"path\":\"/5\"},{\"path\":\"/6\"},{\"path\":\"/7\"}],\"console\":\"virtio\"}",
      "console", "too many devices" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"vsock\":3}", "vsock", "must be an object" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"vsock\":{}}", "vsock.cid", "required" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"vsock\":{\"cid\":2}}", "vsock.cid", "out of range (3 to 4294967294)" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"vsock\":{\"cid\":4294967295}}", "vsock.cid", "out of range" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"vsock\":{\"cid\":3,\"port\":1}}", "vsock.port", "unknown field" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"balloon\":1}", "balloon", "true or false" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"console\":\"hvc0\"}", "console", "\"serial\" or \"virtio\"" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"console\":3}", "console", "\"serial\" or \"virtio\"" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"jit\":\"on\"}", "jit", "true or false" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"autostart\":\"no\"}", "autostart", "true or false" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"watchdog\":\"reboot\"}", "watchdog",
      "must be \"reset\" or \"poweroff\" or \"pause\" or \"none\"" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"watchdog\":true}", "watchdog", "must be \"reset\"" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"watchdog\":{\"action\":\"reset\"}}", "watchdog",
      "must be" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"on_panic\":\"reset\"}", "on_panic",
      "must be \"none\" or \"pause\" or \"poweroff\"" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"on_panic\":1}", "on_panic", "must be" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"panic\":\"pause\"}", "panic", "unknown field" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"cpu_weight\":0}", "cpu_weight", "out of range (1 to 10000)" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"cpu_weight\":10001}", "cpu_weight", "out of range" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"vcpus\":2,\"cpu_max_percent\":201}", "cpu_max_percent",
      "out of range (0 to 200)" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"memory_max_mib\":100}", "memory_max_mib", "less than memory_mib" },
    { "{\"name\":\"a\",\"kernel\":\"@K\",\"memory_max_mib\":1073741825}", "memory_max_mib", "out of range" },
};

static void test_bad(void)
{
    for (size_t i = 0; i < sizeof(bad_defs) / sizeof(bad_defs[0]); i++) {
        const struct bad *b = &bad_defs[i];
        struct vmdef d;
        char err[512] = "", field[64];
        int r = parse_text(b->json, &d, err, sizeof(err));
        CHECK_MSG(r == -EINVAL, "accepted (%d): %s", r, b->json);
        if (r == 0) {
            vmdef_free(&d);
            continue;
        }
        vmdef_err_field(err, field, sizeof(field));
        CHECK_MSG(!strcmp(field, b->field), "field '%s', want '%s': %s", field, b->field, err);
        CHECK_MSG(strstr(err, b->text) != NULL, "message '%s' lacks '%s'", err, b->text);
    }
    /* A long unknown field name is cut, and what a terminal would act on is
     * not echoed. */
    struct vmdef d;
    char err[512];
    CHECK(parse_text("{\"\\u001b[2Jxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\":1}", &d, err,
                     sizeof(err)) == -EINVAL);
    CHECK_MSG(!strchr(err, '\033') && strlen(err) < 64, "%s", err);
}

/* ---- files ---- */

static void check_files_fail(const char *json, int want_rc, const char *want_msg)
{
    struct vmdef d;
    char err[512] = "";
    int r = parse_text(json, &d, err, sizeof(err));
    CHECK_MSG(r == 0, "%s", err);
    if (r)
        return;
    r = vmdef_check_files(&d, err, sizeof(err));
    char want[512];
    snprintf(want, sizeof(want), "%s", expand(want_msg));
    CHECK_MSG(r == want_rc && !strcmp(err, want), "%d '%s', want %d '%s'", r, err, want_rc, want);
    vmdef_free(&d);
}

static void test_files(void)
{
    check_files_fail("{\"name\":\"a\",\"kernel\":\"/nonexistent/vmlinux\"}", -ENOENT,
                     "kernel: /nonexistent/vmlinux: No such file or directory");
    check_files_fail("{\"name\":\"a\",\"kernel\":\"@K\",\"initrd\":\"/tmp\"}", -EINVAL,
                     "initrd: /tmp: not a regular file");
    check_files_fail("{\"name\":\"a\",\"kernel\":\"@K\",\"disks\":[{\"path\":\"@R\"},{\"path\":\"/x\"}]}",
                     -ENOENT, "disks[1].path: /x: No such file or directory");
    check_files_fail("{\"name\":\"a\",\"kernel\":\"@K\",\"disks\":[{\"path\":\"/tmp\"}]}", -EINVAL,
                     "disks[0].path: /tmp: not a regular file or block device");
    if (geteuid() != 0) {   /* root may write anything: access(2) says yes */
        check_files_fail("{\"name\":\"a\",\"kernel\":\"@K\",\"disks\":[{\"path\":\"@O\"}]}", -EACCES,
                         "disks[0].path: @O: Permission denied");
    }
    /* Read-only disks need only be readable; a block device is a disk. */
    struct vmdef d;
    char err[512];
    CHECK(parse_text("{\"name\":\"a\",\"kernel\":\"@K\",\"disks\":[{\"path\":\"@O\",\"readonly\":true},"
                     "{\"path\":\"@Q\",\"format\":\"qcow2\"},{\"path\":\"@R\"}]}", &d, err,
                     sizeof(err)) == 0);
    CHECK_MSG(vmdef_check_files(&d, err, sizeof(err)) == 0, "%s", err);
    CHECK(d.disks[0].format == BLOCK_FORMAT_RAW);
    CHECK(d.disks[1].format == BLOCK_FORMAT_QCOW2);
    CHECK(d.disks[2].format == BLOCK_FORMAT_RAW);
    vmdef_free(&d);
}

/* ---- conflicts and identities ---- */

static void check_conflict(const char *json, const struct vmdef *others, size_t n, int want_rc,
                           const char *want_field)
{
    struct vmdef d;
    char err[512] = "", field[64];
    int r = parse_text(json, &d, err, sizeof(err));
    CHECK_MSG(r == 0, "%s", err);
    if (r)
        return;
    r = vmdef_conflicts(&d, others, n, err, sizeof(err));
    vmdef_err_field(err, field, sizeof(field));
    CHECK_MSG(r == want_rc && (!want_rc || !strcmp(field, want_field)),
              "%s: %d '%s', want %d %s", json, r, err, want_rc, want_field ? want_field : "");
    vmdef_free(&d);
}

static void test_conflicts(void)
{
    struct vmdef others[2];
    char err[512];
    CHECK(parse_text("{\"name\":\"web1\",\"kernel\":\"@K\",\"uuid\":\"0f8fad5b-d9cb-469f-a165-70867728950e\","
                     "\"disks\":[{\"path\":\"/img/web1\"},{\"path\":\"/img/base\",\"readonly\":true}],"
                     "\"nets\":[{\"type\":\"user\",\"mac\":\"52:54:00:00:00:01\",\"hostfwd\":[\"tcp::8080-:80\"]}],"
                     "\"vsock\":{\"cid\":3}}", &others[0], err, sizeof(err)) == 0);
    CHECK(parse_text("{\"name\":\"web2\",\"kernel\":\"@K\",\"nets\":[{\"type\":\"user\","
                     "\"mac\":\"52:54:00:00:00:02\",\"hostfwd\":[\"udp:0.0.0.0:5353-:53\"]}]}",
                     &others[1], err, sizeof(err)) == 0);
    check_conflict("{\"name\":\"db\",\"kernel\":\"@K\"}", others, 2, 0, NULL);
    check_conflict("{\"name\":\"web2\",\"kernel\":\"@K\"}", others, 2, -EEXIST, "name");
    /* The name is the first answer, whatever else clashes too. */
    check_conflict("{\"name\":\"web2\",\"kernel\":\"@K\",\"vsock\":{\"cid\":3}}", others, 2, -EEXIST, "name");
    check_conflict("{\"name\":\"db\",\"kernel\":\"@K\",\"uuid\":\"0F8FAD5B-D9CB-469F-A165-70867728950E\"}",
                   others, 2, -EEXIST, "uuid");
    check_conflict("{\"name\":\"db\",\"kernel\":\"@K\",\"vsock\":{\"cid\":3}}", others, 2, -EADDRINUSE,
                   "vsock.cid");
    check_conflict("{\"name\":\"db\",\"kernel\":\"@K\",\"nets\":[{\"type\":\"user\"},"
                   "{\"type\":\"tap\",\"ifname\":\"t0\",\"mac\":\"52:54:00:00:00:02\"}]}", others, 2,
                   -EADDRINUSE, "nets[1].mac");
    check_conflict("{\"name\":\"db\",\"kernel\":\"@K\",\"disks\":[{\"path\":\"/img/web1\",\"readonly\":true}]}",
                   others, 2, -EADDRINUSE, "disks[0].path");
    check_conflict("{\"name\":\"db\",\"kernel\":\"@K\",\"disks\":[{\"path\":\"/img/base\"}]}", others, 2,
                   -EADDRINUSE, "disks[0].path");
    check_conflict("{\"name\":\"db\",\"kernel\":\"@K\",\"disks\":[{\"path\":\"/img/base\",\"readonly\":true}]}",
                   others, 2, 0, NULL);
    check_conflict("{\"name\":\"db\",\"kernel\":\"@K\",\"nets\":[{\"type\":\"user\","
                   "\"hostfwd\":[\"tcp::2222-:22\",\"tcp:127.0.0.1:8080-:8080\"]}]}", others, 2,
                   -EADDRINUSE, "nets[0].hostfwd[1]");
    /* 0.0.0.0 takes every address; another protocol or address is free. */
    check_conflict("{\"name\":\"db\",\"kernel\":\"@K\",\"nets\":[{\"type\":\"user\","
                   "\"hostfwd\":[\"udp:127.0.0.2:5353-:53\"]}]}", others, 2, -EADDRINUSE,
                   "nets[0].hostfwd[0]");
    check_conflict("{\"name\":\"db\",\"kernel\":\"@K\",\"nets\":[{\"type\":\"user\","
                   "\"hostfwd\":[\"tcp::5353-:53\",\"udp:127.0.0.2:8080-:80\",\"tcp:127.0.0.2:8080-:80\"]}]}",
                   others, 2, 0, NULL);
    /* Within one definition. */
    check_conflict("{\"name\":\"db\",\"kernel\":\"@K\",\"nets\":[{\"type\":\"user\",\"hostfwd\":[\"tcp::1-:1\"]},"
                   "{\"type\":\"user\",\"hostfwd\":[\"tcp::2-:1\",\"tcp::1-:2\"]}]}", NULL, 0, -EADDRINUSE,
                   "nets[1].hostfwd[1]");
    check_conflict("{\"name\":\"db\",\"kernel\":\"@K\",\"nets\":[{\"type\":\"user\",\"hostfwd\":[\"tcp::1-:1\","
                   "\"tcp::1-:2\"]}]}", NULL, 0, -EADDRINUSE, "nets[0].hostfwd[1]");

    /* vmdef_define: generated UUID (v4) and MACs, kept where given. */
    json_t *j = load("{\"name\":\"db\",\"kernel\":\"@K\",\"disks\":[{\"path\":\"@Q\"}],"
                     "\"nets\":[{\"type\":\"user\"},{\"type\":\"user\",\"mac\":\"52:54:00:00:00:03\"},"
                     "{\"type\":\"user\"}]}");
    struct vmdef d;
    CHECK_MSG(vmdef_define(j, others, 2, &d, err, sizeof(err)) == 0, "%s", err);
    CHECK(strlen(d.uuid) == 36 && d.uuid[14] == '4' && strchr("89ab", d.uuid[19]));
    CHECK(d.disks[0].format == BLOCK_FORMAT_QCOW2);
    for (unsigned i = 0; i < 3; i++)
        CHECK(d.nets[i].has_mac && d.nets[i].mac[0] == 0x52 && d.nets[i].mac[1] == 0x54 &&
              d.nets[i].mac[2] == 0);
    CHECK(d.nets[1].mac[5] == 3);
    CHECK(memcmp(d.nets[0].mac, d.nets[2].mac, 6) && memcmp(d.nets[0].mac, d.nets[1].mac, 6));
    /* Defined twice: the second UUID differs; once the first is on the
     * host, the same name is refused and nothing is left to free. */
    struct vmdef d2;
    CHECK(vmdef_parse(j, &d2, err, sizeof(err)) == 0);
    CHECK(vmdef_assign_ids(&d2, NULL, 0, err, sizeof(err)) == 0);
    CHECK(strcmp(d.uuid, d2.uuid) != 0);
    vmdef_free(&d2);
    CHECK(vmdef_define(j, &d, 1, &d2, err, sizeof(err)) == -EEXIST);
    CHECK(d2.name[0] == '\0' && d2.ndisks == 0);
    json_decref(j);
    /* Its JSON names every MAC and the UUID, and parses back to itself. */
    json_t *n = vmdef_to_json(&d);
    CHECK(n && json_is_string(json_object_get(n, "uuid")));
    CHECK(json_is_string(json_object_get(json_array_get(json_object_get(n, "nets"), 2), "mac")));
    CHECK(vmdef_parse(n, &d2, err, sizeof(err)) == 0 && !strcmp(d2.uuid, d.uuid) &&
          !memcmp(d2.nets[2].mac, d.nets[2].mac, 6));
    json_decref(n);
    vmdef_free(&d2);
    vmdef_free(&d);
    vmdef_free(&others[0]);
    vmdef_free(&others[1]);
}

/* ---- argv ---- */

static void check_argv(const char *json, const struct vmdef_paths *p, const char *const *want)
{
    struct vmdef d;
    char err[512] = "";
    int r = parse_text(json, &d, err, sizeof(err));
    CHECK_MSG(r == 0, "%s", err);
    if (r)
        return;
    if (d.ndisks)
        CHECK_MSG(vmdef_check_files(&d, err, sizeof(err)) == 0, "%s", err);
    char **argv;
    r = vmdef_argv(&d, p, &argv, err, sizeof(err));
    CHECK_MSG(r == 0, "%s", err);
    size_t i = 0;
    for (; !r && want[i] && argv[i]; i++) {
        char w[4096];
        snprintf(w, sizeof(w), "%s", expand(want[i]));
        CHECK_MSG(!strcmp(argv[i], w), "argv[%zu] '%s', want '%s'", i, argv[i], w);
    }
    CHECK_MSG(r || (!want[i] && !argv[i]), "argv length differs at %zu", i);
    vmdef_argv_free(r ? NULL : argv);
    vmdef_free(&d);
}

static void test_argv(void)
{
    const struct vmdef_paths p = {
        .nimbus = "/usr/bin/nimbus", .api_socket = "/run/nimbus/vms/web1/api.sock",
        .console_socket = "/run/nimbus/vms/web1/console.sock",
        .vsock_socket = "/run/nimbus/vms/web1/vsock.sock",
    };
    static const char *const small[] = {
        "/usr/bin/nimbus", "run", "--kernel", "@K", "--mem", "512M", "--smp", "1",
        "--api", "/run/nimbus/vms/web1/api.sock",
        "--console", "socket:/run/nimbus/vms/web1/console.sock", NULL,
    };
    check_argv("{\"name\":\"web1\",\"kernel\":\"@K\"}", &p, small);
    static const char *const full[] = {
        "/usr/bin/nimbus", "run", "--kernel", "@K", "--initrd", "@R", "--append",
        "console=hvc0 nimbus.agent=1024", "--bios", "@K", "--mem", "2048M", "--smp", "4",
        "--disk", "@Q,format=qcow2,cache=none", "--disk", "@O,format=raw,readonly",
        "--net", "user,hostfwd=tcp::2222-:22,hostfwd=udp::53-:53,mac=52:54:00:00:00:0a",
        "--net", "tap,ifname=tap0,mac=52:54:00:00:00:0b",
        "--vsock", "3,path=/run/nimbus/vms/web1/vsock.sock", "--balloon",
        "--api", "/run/nimbus/vms/web1/api.sock",
        "--console", "virtio,socket:/run/nimbus/vms/web1/console.sock", "--jit", "on",
        "--watchdog=poweroff", "--on-panic", "pause", NULL,
    };
    check_argv("{\"name\":\"web1\",\"kernel\":\"@K\",\"initrd\":\"@R\",\"bios\":\"@K\","
               "\"cmdline\":\"console=hvc0 nimbus.agent=1024\",\"vcpus\":4,\"memory_mib\":2048,"
               "\"disks\":[{\"path\":\"@Q\",\"cache\":\"none\"},{\"path\":\"@O\",\"readonly\":true}],"
               "\"nets\":[{\"type\":\"user\",\"hostfwd\":[\"tcp::2222-:22\",\"udp::53-:53\"],"
               "\"mac\":\"52:54:00:00:00:0a\"},{\"type\":\"tap\",\"ifname\":\"tap0\","
               "\"mac\":\"52:54:00:00:00:0b\"}],\"vsock\":{\"cid\":3},\"balloon\":true,"
               "\"console\":\"virtio\",\"jit\":true,\"cpu_weight\":7,\"memory_max_mib\":4096,"
               "\"watchdog\":\"poweroff\",\"on_panic\":\"pause\"}", &p, full);
    /* Devices handed in: by descriptor where a number is given, by path
     * and name where -1 (a user card has none). */
    static const int disk_fds[] = { 4, -1 }, tap_fds[] = { -1, 6 };
    struct vmdef_paths pf = p;
    pf.disk_fds = disk_fds;
    pf.tap_fds = tap_fds;
    static const char *const byfd[] = {
        "/usr/bin/nimbus", "run", "--kernel", "@K", "--mem", "512M", "--smp", "1",
        "--disk", "fd=4,format=qcow2,readonly", "--disk", "@O,format=raw",
        "--net", "user,mac=52:54:00:00:00:0a", "--net", "tap,fd=6,mac=52:54:00:00:00:0b",
        "--api", "/run/nimbus/vms/web1/api.sock",
        "--console", "socket:/run/nimbus/vms/web1/console.sock", "--watchdog=reset", NULL,
    };
    check_argv("{\"name\":\"web1\",\"kernel\":\"@K\",\"disks\":[{\"path\":\"@Q\",\"readonly\":true},"
               "{\"path\":\"@O\"}],\"nets\":[{\"type\":\"user\",\"mac\":\"52:54:00:00:00:0a\"},"
               "{\"type\":\"tap\",\"ifname\":\"tap0\",\"mac\":\"52:54:00:00:00:0b\"}],"
               "\"watchdog\":\"reset\",\"on_panic\":\"none\"}", &pf, byfd);
    static const char *const jit_off[] = {
        "/usr/bin/nimbus", "run", "--bios", "@K", "--mem", "16M", "--smp", "1",
        "--api", "/run/nimbus/vms/web1/api.sock",
        "--console", "socket:/run/nimbus/vms/web1/console.sock", "--jit", "off", NULL,
    };
    check_argv("{\"name\":\"web1\",\"bios\":\"@K\",\"memory_mib\":16,\"jit\":false}", &p, jit_off);

    /* Socket paths that do not fit a sockaddr_un. */
    struct vmdef d;
    char err[512], **argv;
    CHECK(parse_text("{\"name\":\"web1\",\"kernel\":\"@K\",\"vsock\":{\"cid\":3}}", &d, err,
                     sizeof(err)) == 0);
    char longp[128];   /* a path of 'a's */
    memset(longp, 'a', sizeof(longp));
    longp[0] = '/';
    longp[108] = '\0';   /* sun_path holds 107 bytes and the NUL */
    struct vmdef_paths q = p;
    q.api_socket = longp;
    CHECK(vmdef_argv(&d, &q, &argv, err, sizeof(err)) == -ENAMETOOLONG && argv == NULL);
    q = p;
    longp[96] = '\0';    /* 96 + "_4294967295" = 107 */
    q.vsock_socket = longp;
    CHECK_MSG(vmdef_argv(&d, &q, &argv, err, sizeof(err)) == 0, "%s", err);
    vmdef_argv_free(argv);
    longp[96] = 'a';
    longp[97] = '\0';
    CHECK(vmdef_argv(&d, &q, &argv, err, sizeof(err)) == -ENAMETOOLONG);
    q = p;
    q.console_socket = NULL;
    CHECK(vmdef_argv(&d, &q, &argv, err, sizeof(err)) == -EINVAL);
    vmdef_free(&d);
}

static void test_err_field(void)
{
    char f[16];
    CHECK(vmdef_err_field("disks[1].path: /x: No such file", f, sizeof(f)) == 13 &&
          !strcmp(f, "disks[1].path"));
    CHECK(vmdef_err_field("out of memory", f, sizeof(f)) == 0 && !f[0]);
    CHECK(vmdef_err_field("the API socket path is too long: /x", f, sizeof(f)) == 0 && !f[0]);
    CHECK(vmdef_err_field("nets[0].hostfwd[10]: x", f, sizeof(f)) == 0);   /* too long for f */
}

int main(void)
{
    make_files();
    test_good();
    test_bad();
    test_files();
    test_conflicts();
    test_argv();
    test_err_field();
    remove_files();
    return check_summary("test_vmdef");
}
