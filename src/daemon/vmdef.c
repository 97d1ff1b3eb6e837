/* VM definitions. See vmdef.h. */
#include "daemon/vmdef.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/errmsg.h"
#include "net/mac.h"

#define DEFAULT_VCPUS      1u
#define DEFAULT_MEMORY_MIB 512u
#define DEFAULT_CPU_WEIGHT 100u
#define MAX_CPU_WEIGHT     10000u        /* cgroup v2 cpu.weight's range */
#define MAX_MEMORY_MAX_MIB (1ull << 30)  /* bytes still fit in 64 bits */
#define FIELD_MAX          48u           /* "nets[6].hostfwd[15]" and then some */

static const char *const top_fields[] = {
    "name", "uuid", "vcpus", "memory_mib", "kernel", "initrd", "cmdline", "bios", "disks",
    "nets", "vsock", "balloon", "console", "jit", "watchdog", "on_panic", "autostart", "cpu_weight", "cpu_max_percent",
    "memory_max_mib", NULL,
};
static const char *const disk_fields[] = { "path", "format", "readonly", "cache", NULL };
static const char *const user_fields[] = { "type", "mac", "hostfwd", NULL };
static const char *const tap_fields[] = { "type", "ifname", "mac", NULL };
static const char *const vsock_fields[] = { "cid", NULL };

/* ---- field readers: each names the field in its message ---- */

/* A JSON path for messages: "disks[1]" + ".path". */
static void field_name(char out[FIELD_MAX], const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void field_name(char out[FIELD_MAX], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, FIELD_MAX, fmt, ap);
    va_end(ap);
}

/* Field names from the request go into messages: keep them short and
 * printable (a terminal shows them). */
static void printable(char *out, size_t len, const char *s)
{
    size_t i = 0;
    for (; s[i] && i + 1 < len; i++)
        out[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
    out[i] = '\0';
}

static int check_fields(const json_t *o, const char *prefix, const char *const *known, char *err,
                        size_t errlen)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)o, key, v) {
        const char *const *k = known;
        while (*k && strcmp(*k, key))
            k++;
        if (!*k) {
            char shown[33];
            printable(shown, sizeof(shown), key);
            return errmsg(err, errlen, -EINVAL, "%s%s%s: unknown field", prefix,
                          *prefix ? "." : "", shown);
        }
    }
    return 0;
}

/* null counts as absent for every optional field. */
static const json_t *get(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_null(v) ? NULL : v;
}

static int get_uint(const json_t *v, const char *field, uint64_t lo, uint64_t hi, uint64_t *out,
                    char *err, size_t errlen)
{
    if (!json_is_integer(v))
        return errmsg(err, errlen, -EINVAL, "%s: must be an integer (%llu to %llu)", field,
                      (unsigned long long)lo, (unsigned long long)hi);
    json_int_t x = json_integer_value(v);
    if (x < 0 || (uint64_t)x < lo || (uint64_t)x > hi)
        return errmsg(err, errlen, -EINVAL, "%s: %lld is out of range (%llu to %llu)", field,
                      (long long)x, (unsigned long long)lo, (unsigned long long)hi);
    *out = (uint64_t)x;
    return 0;
}

static int get_bool(const json_t *v, const char *field, bool *out, char *err, size_t errlen)
{
    if (!json_is_boolean(v))
        return errmsg(err, errlen, -EINVAL, "%s: must be true or false", field);
    *out = json_is_true(v);
    return 0;
}

/* A string of at most VMDEF_STRING_MAX bytes without NULs. */
static int get_string(const json_t *v, const char *field, const char **out, char *err,
                      size_t errlen)
{
    if (!json_is_string(v))
        return errmsg(err, errlen, -EINVAL, "%s: must be a string", field);
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (strlen(s) != n)
        return errmsg(err, errlen, -EINVAL, "%s: contains a NUL byte", field);
    if (n > VMDEF_STRING_MAX)
        return errmsg(err, errlen, -EINVAL, "%s: longer than %u bytes", field, VMDEF_STRING_MAX);
    *out = s;
    return 0;
}

/* One of `choices` (NULL-terminated); *out gets its index. */
static int get_choice(const json_t *v, const char *field, const char *const *choices, int *out,
                      char *err, size_t errlen)
{
    const char *s = json_string_value(v);
    for (int i = 0; s && choices[i]; i++)
        if (!strcmp(s, choices[i])) {
            *out = i;
            return 0;
        }
    char list[128] = "";
    for (int i = 0; choices[i]; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s\"%s\"", i ? " or " : "",
                 choices[i]);
    return errmsg(err, errlen, -EINVAL, "%s: must be %s", field, list);
}

/* An absolute path (a copy in *out; NULL when absent). `nocomma`: the path
 * goes into a comma-separated nimbus run option (--disk). */
static int get_path(const json_t *v, const char *field, bool nocomma, char **out, char *err,
                    size_t errlen)
{
    const char *s;
    int r = get_string(v, field, &s, err, errlen);
    if (r)
        return r;
    if (s[0] != '/')
        return errmsg(err, errlen, -EINVAL, "%s: '%.200s' is not an absolute path", field, s);
    if (nocomma && strchr(s, ','))
        return errmsg(err, errlen, -EINVAL, "%s: %.200s: a path with a comma cannot be given to "
                      "nimbus run", field, s);
    *out = strdup(s);
    return *out ? 0 : errmsg(err, errlen, -ENOMEM, "%s: out of memory", field);
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > VMDEF_NAME_MAX || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || strchr("_.-", s[i])))
            return false;
    return true;
}

/* RFC 4122's text form, 8-4-4-4-12 hex digits; copied in lower case. */
static bool parse_uuid(const char *s, char out[VMDEF_UUID_TEXT])
{
    if (strlen(s) != VMDEF_UUID_TEXT - 1)
        return false;
    for (size_t i = 0; i < VMDEF_UUID_TEXT - 1; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
        out[i] = (char)tolower((unsigned char)s[i]);
    }
    out[VMDEF_UUID_TEXT - 1] = '\0';
    return true;
}

/* Linux allows more in an interface name; these are what survive a
 * comma-separated option and a shell. */
static bool valid_ifname(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 15)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
            return false;
    return true;
}

/* ---- parse ---- */

static int parse_disk(const json_t *o, unsigned i, struct vmdef_disk *d, char *err, size_t errlen)
{
    static const char *const formats[] = { "raw", "qcow2", NULL };
    static const char *const caches[] = { "writeback", "none", NULL };
    char f[FIELD_MAX], p[FIELD_MAX];
    field_name(p, "disks[%u]", i);
    if (!json_is_object(o))
        return errmsg(err, errlen, -EINVAL, "%s: must be an object", p);
    int r = check_fields(o, p, disk_fields, err, errlen);
    if (r)
        return r;
    const json_t *v;
    field_name(f, "%s.path", p);
    if (!(v = get(o, "path")))
        return errmsg(err, errlen, -EINVAL, "%s: required", f);
    if ((r = get_path(v, f, true, &d->path, err, errlen)))
        return r;
    int k;
    field_name(f, "%s.format", p);
    if ((v = get(o, "format"))) {
        if ((r = get_choice(v, f, formats, &k, err, errlen)))
            return r;
        d->format = k ? BLOCK_FORMAT_QCOW2 : BLOCK_FORMAT_RAW;
    }
    field_name(f, "%s.readonly", p);
    if ((v = get(o, "readonly")) && (r = get_bool(v, f, &d->readonly, err, errlen)))
        return r;
    field_name(f, "%s.cache", p);
    if ((v = get(o, "cache"))) {
        if ((r = get_choice(v, f, caches, &k, err, errlen)))
            return r;
        d->cache = k ? BLOCK_CACHE_NONE : BLOCK_CACHE_WRITEBACK;
    }
    return 0;
}

static int parse_hostfwd(const json_t *a, const char *p, struct vmdef_net *n, char *err,
                         size_t errlen)
{
    char f[FIELD_MAX];
    field_name(f, "%s.hostfwd", p);
    if (!json_is_array(a))
        return errmsg(err, errlen, -EINVAL, "%s: must be an array of rules", f);
    if (json_array_size(a) > NET_MAX_HOSTFWD)
        return errmsg(err, errlen, -EINVAL, "%s: more than %u rules", f, NET_MAX_HOSTFWD);
    size_t i;
    const json_t *v;
    json_array_foreach(a, i, v) {
        const char *s;
        char msg[160];
        struct net_hostfwd fwd;
        field_name(f, "%s.hostfwd[%zu]", p, i);
        int r = get_string(v, f, &s, err, errlen);
        if (r)
            return r;
        if (strchr(s, ',') || net_parse_hostfwd(s, &fwd, msg, sizeof(msg)))
            return errmsg(err, errlen, -EINVAL, "%s: '%.64s' is not a rule "
                          "([tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT)", f, s);
        if (!(n->hostfwd[i] = strdup(s)))
            return errmsg(err, errlen, -ENOMEM, "%s: out of memory", f);
        n->nhostfwd = (unsigned)i + 1;
    }
    return 0;
}

static int parse_net(const json_t *o, unsigned i, struct vmdef_net *n, char *err, size_t errlen)
{
    static const char *const types[] = { "user", "tap", NULL };
    char f[FIELD_MAX], p[FIELD_MAX];
    field_name(p, "nets[%u]", i);
    if (!json_is_object(o))
        return errmsg(err, errlen, -EINVAL, "%s: must be an object", p);
    const json_t *v;
    int r, k;
    field_name(f, "%s.type", p);
    if (!(v = get(o, "type")))
        return errmsg(err, errlen, -EINVAL, "%s: required (\"user\" or \"tap\")", f);
    if ((r = get_choice(v, f, types, &k, err, errlen)))
        return r;
    n->type = k ? VMDEF_NET_TAP : VMDEF_NET_USER;
    if ((r = check_fields(o, p, n->type == VMDEF_NET_TAP ? tap_fields : user_fields, err, errlen)))
        return r;
    field_name(f, "%s.mac", p);
    if ((v = get(o, "mac"))) {
        const char *s;
        if ((r = get_string(v, f, &s, err, errlen)))
            return r;
        if (net_parse_mac(s, n->mac))
            return errmsg(err, errlen, -EINVAL, "%s: '%.32s' is not a card's MAC (six hex bytes "
                          "like 52:54:00:12:34:56, not multicast)", f, s);
        n->has_mac = true;
    }
    if (n->type == VMDEF_NET_TAP) {
        const char *s;
        field_name(f, "%s.ifname", p);
        if (!(v = get(o, "ifname")))
            return errmsg(err, errlen, -EINVAL, "%s: required for a tap card", f);
        if ((r = get_string(v, f, &s, err, errlen)))
            return r;
        if (!valid_ifname(s))
            return errmsg(err, errlen, -EINVAL, "%s: '%.32s' is not an interface name (1 to 15 "
                          "of A-Z a-z 0-9 _ . -)", f, s);
        snprintf(n->ifname, sizeof(n->ifname), "%s", s);
    } else if ((v = get(o, "hostfwd")) && (r = parse_hostfwd(v, p, n, err, errlen))) {
        return r;
    }
    return 0;
}

/* An array field of at most VMDEF_MAX_DEVICES entries. */
static int get_devices(const json_t *o, const char *key, const json_t **out, char *err,
                       size_t errlen)
{
    const json_t *a = get(o, key);
    *out = NULL;
    if (!a)
        return 0;
    if (!json_is_array(a))
        return errmsg(err, errlen, -EINVAL, "%s: must be an array", key);
    if (json_array_size(a) > VMDEF_MAX_DEVICES)
        return errmsg(err, errlen, -EINVAL, "%s: more than %u", key, VMDEF_MAX_DEVICES);
    *out = a;
    return 0;
}

/* "watchdog": the board gets one, and what its expiry does; "on_panic":
 * what a guest panic does (nimbus run --watchdog=ACTION, --on-panic ACTION;
 * panic has no reset: the guest's own panic= setting reboots it). */
static int parse_guest_actions(const json_t *j, struct vmdef *d, char *err, size_t errlen)
{
    static const char *const wd_names[] = { "reset", "poweroff", "pause", "none", NULL };
    static const enum guest_action wd_actions[] = { GUEST_ACTION_RESET, GUEST_ACTION_POWEROFF,
                                                    GUEST_ACTION_PAUSE, GUEST_ACTION_NONE };
    static const char *const panic_names[] = { "none", "pause", "poweroff", NULL };
    static const enum guest_action panic_actions[] = { GUEST_ACTION_NONE, GUEST_ACTION_PAUSE,
                                                       GUEST_ACTION_POWEROFF };
    const json_t *v;
    int r, k;
    if ((v = get(j, "watchdog"))) {
        if ((r = get_choice(v, "watchdog", wd_names, &k, err, errlen)))
            return r;
        d->watchdog = true;
        d->watchdog_action = wd_actions[k];
    }
    d->panic_action = GUEST_ACTION_NONE;
    if ((v = get(j, "on_panic"))) {
        if ((r = get_choice(v, "on_panic", panic_names, &k, err, errlen)))
            return r;
        d->panic_action = panic_actions[k];
    }
    return 0;
}

static int parse_scalars(const json_t *j, struct vmdef *d, char *err, size_t errlen)
{
    static const char *const consoles[] = { "serial", "virtio", NULL };
    const json_t *v;
    const char *s;
    uint64_t x;
    int r, k;

    if (!(v = get(j, "name")))
        return errmsg(err, errlen, -EINVAL, "name: required");
    if ((r = get_string(v, "name", &s, err, errlen)))
        return r;
    if (!valid_name(s)) {
        char shown[72];
        printable(shown, sizeof(shown), s);
        return errmsg(err, errlen, -EINVAL, "name: '%s' is not a VM name "
                      "([a-z0-9][a-z0-9_.-]{0,62})", shown);
    }
    snprintf(d->name, sizeof(d->name), "%s", s);
    if ((v = get(j, "uuid"))) {
        if ((r = get_string(v, "uuid", &s, err, errlen)))
            return r;
        if (!parse_uuid(s, d->uuid))
            return errmsg(err, errlen, -EINVAL, "uuid: '%.40s' is not a UUID "
                          "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", s);
    }
    d->vcpus = DEFAULT_VCPUS;
    if ((v = get(j, "vcpus"))) {
        if ((r = get_uint(v, "vcpus", 1, VMDEF_MAX_VCPUS, &x, err, errlen)))
            return r;
        d->vcpus = (unsigned)x;
    }
    d->memory_mib = DEFAULT_MEMORY_MIB;
    if ((v = get(j, "memory_mib")) &&
        (r = get_uint(v, "memory_mib", VMDEF_MIN_MIB, VMDEF_MAX_MIB, &d->memory_mib, err, errlen)))
        return r;
    if ((v = get(j, "cmdline"))) {
        if ((r = get_string(v, "cmdline", &s, err, errlen)))
            return r;
        if (!(d->cmdline = strdup(s)))
            return errmsg(err, errlen, -ENOMEM, "cmdline: out of memory");
    }
    if ((v = get(j, "vsock"))) {
        if (!json_is_object(v))
            return errmsg(err, errlen, -EINVAL, "vsock: must be an object ({\"cid\": N})");
        if ((r = check_fields(v, "vsock", vsock_fields, err, errlen)))
            return r;
        if (!get(v, "cid"))
            return errmsg(err, errlen, -EINVAL, "vsock.cid: required");
        /* 0-2 are the hypervisor, local and host; -1U is VMADDR_CID_ANY. */
        if ((r = get_uint(get(v, "cid"), "vsock.cid", 3, 0xfffffffeu, &x, err, errlen)))
            return r;
        d->vsock_cid = (uint32_t)x;
    }
    if ((v = get(j, "balloon")) && (r = get_bool(v, "balloon", &d->balloon, err, errlen)))
        return r;
    if ((v = get(j, "console"))) {
        if ((r = get_choice(v, "console", consoles, &k, err, errlen)))
            return r;
        d->console = k ? VMDEF_CONSOLE_VIRTIO : VMDEF_CONSOLE_SERIAL;
    }
    if ((v = get(j, "jit"))) {
        bool on = false;
        if ((r = get_bool(v, "jit", &on, err, errlen)))
            return r;
        d->jit = on ? VMDEF_JIT_ON : VMDEF_JIT_OFF;
    }
    if ((r = parse_guest_actions(j, d, err, errlen)))
        return r;
    if ((v = get(j, "autostart")) && (r = get_bool(v, "autostart", &d->autostart, err, errlen)))
        return r;
    d->cpu_weight = DEFAULT_CPU_WEIGHT;
    if ((v = get(j, "cpu_weight"))) {
        if ((r = get_uint(v, "cpu_weight", 1, MAX_CPU_WEIGHT, &x, err, errlen)))
            return r;
        d->cpu_weight = (unsigned)x;
    }
    if ((v = get(j, "cpu_max_percent"))) {
        /* 0 (no cap) or 1 to 100 per vCPU: more could never be used. */
        if ((r = get_uint(v, "cpu_max_percent", 0, 100ull * d->vcpus, &x, err, errlen)))
            return r;
        d->cpu_max_percent = (unsigned)x;
    }
    if ((v = get(j, "memory_max_mib"))) {
        if ((r = get_uint(v, "memory_max_mib", 0, MAX_MEMORY_MAX_MIB, &x, err, errlen)))
            return r;
        if (x && x < d->memory_mib)
            return errmsg(err, errlen, -EINVAL, "memory_max_mib: %llu is less than memory_mib "
                          "(%llu); 0 means the default", (unsigned long long)x,
                          (unsigned long long)d->memory_mib);
        d->memory_max_mib = x;
    }
    return 0;
}

static int parse_images(const json_t *j, struct vmdef *d, char *err, size_t errlen)
{
    static const char *const keys[] = { "kernel", "initrd", "bios" };
    char **slots[] = { &d->kernel, &d->initrd, &d->bios };
    for (size_t i = 0; i < 3; i++) {
        const json_t *v = get(j, keys[i]);
        int r;
        if (v && (r = get_path(v, keys[i], false, slots[i], err, errlen)))
            return r;
    }
    if (!d->kernel && !d->bios)
        return errmsg(err, errlen, -EINVAL, "kernel: required (or bios, for a bare-metal program)");
    if (d->initrd && !d->kernel)
        return errmsg(err, errlen, -EINVAL, "initrd: needs kernel");
    return 0;
}

/* Within one definition: no disk, MAC, tap or host port twice; the slots. */
static int check_devices(const struct vmdef *d, char *err, size_t errlen)
{
    for (unsigned i = 0; i < d->ndisks; i++)
        for (unsigned k = 0; k < i; k++)
            if (!strcmp(d->disks[i].path, d->disks[k].path))
                return errmsg(err, errlen, -EINVAL, "disks[%u].path: %.200s is disks[%u] too", i,
                              d->disks[i].path, k);
    for (unsigned i = 0; i < d->nnets; i++)
        for (unsigned k = 0; k < i; k++) {
            const struct vmdef_net *a = &d->nets[i], *b = &d->nets[k];
            char mac[NET_MAC_TEXT];
            net_format_mac(a->mac, mac);
            if (a->has_mac && b->has_mac && !memcmp(a->mac, b->mac, 6))
                return errmsg(err, errlen, -EINVAL, "nets[%u].mac: %s is nets[%u]'s too", i, mac, k);
            if (a->type == VMDEF_NET_TAP && b->type == VMDEF_NET_TAP && !strcmp(a->ifname, b->ifname))
                return errmsg(err, errlen, -EINVAL, "nets[%u].ifname: %s is nets[%u]'s too", i,
                              a->ifname, k);
        }
    /* The slot order of nimbus run: disks, cards, console, vsock, balloon. */
    unsigned used = d->ndisks + d->nnets;
    const char *over = used > VMDEF_MAX_DEVICES ? "nets" : NULL;
    if (!over && d->console == VMDEF_CONSOLE_VIRTIO && ++used > VMDEF_MAX_DEVICES)
        over = "console";
    if (!over && d->vsock_cid && ++used > VMDEF_MAX_DEVICES)
        over = "vsock";
    if (!over && d->balloon && ++used > VMDEF_MAX_DEVICES)
        over = "balloon";
    if (over)
        return errmsg(err, errlen, -EINVAL, "%s: too many devices: at most %u disks, cards, a "
                      "virtio console, vsock and balloon together", over, VMDEF_MAX_DEVICES);
    return 0;
}

int vmdef_parse(const json_t *j, struct vmdef *d, char *err, size_t errlen)
{
    *d = (struct vmdef){ 0 };
    if (!json_is_object(j))
        return errmsg(err, errlen, -EINVAL, "definition: must be a JSON object");
    int r = check_fields(j, "", top_fields, err, errlen);
    if (!r)
        r = parse_scalars(j, d, err, errlen);
    if (!r)
        r = parse_images(j, d, err, errlen);
    const json_t *disks = NULL, *nets = NULL, *v;
    if (!r)
        r = get_devices(j, "disks", &disks, err, errlen);
    if (!r)
        r = get_devices(j, "nets", &nets, err, errlen);
    size_t i;
    json_array_foreach(disks, i, v) {
        if (r || (r = parse_disk(v, (unsigned)i, &d->disks[i], err, errlen)))
            break;
        d->ndisks = (unsigned)i + 1;
    }
    json_array_foreach(nets, i, v) {
        if (r || (r = parse_net(v, (unsigned)i, &d->nets[i], err, errlen)))
            break;
        d->nnets = (unsigned)i + 1;
    }
    if (!r)
        r = check_devices(d, err, errlen);
    if (r) {
        /* What a failed entry had made is freed with the rest. */
        d->ndisks = disks ? (unsigned)json_array_size(disks) : 0;
        d->nnets = nets ? (unsigned)json_array_size(nets) : 0;
        vmdef_free(d);
    }
    return r;
}

void vmdef_free(struct vmdef *d)
{
    if (!d)
        return;
    free(d->kernel);
    free(d->initrd);
    free(d->cmdline);
    free(d->bios);
    for (unsigned i = 0; i < d->ndisks && i < VMDEF_MAX_DEVICES; i++)
        free(d->disks[i].path);
    for (unsigned i = 0; i < d->nnets && i < VMDEF_MAX_DEVICES; i++)
        for (unsigned k = 0; k < NET_MAX_HOSTFWD; k++)
            free(d->nets[i].hostfwd[k]);
    *d = (struct vmdef){ 0 };
}

/* ---- files ---- */

/* `path` exists, is of an allowed kind, and this process may use it so. */
static int check_file(const char *field, const char *path, bool blk_ok, int mode, char *err,
                      size_t errlen)
{
    struct stat st;
    if (stat(path, &st) < 0 || access(path, mode) < 0)
        return errmsg(err, errlen, -errno, "%s: %.200s: %s", field, path, strerror(errno));
    if (!S_ISREG(st.st_mode) && !(blk_ok && S_ISBLK(st.st_mode)))
        return errmsg(err, errlen, -EINVAL, "%s: %.200s: not a regular file%s", field, path,
                      blk_ok ? " or block device" : "");
    return 0;
}

int vmdef_check_files(struct vmdef *d, char *err, size_t errlen)
{
    const char *keys[] = { "kernel", "initrd", "bios" };
    const char *paths[] = { d->kernel, d->initrd, d->bios };
    int r;
    for (size_t i = 0; i < 3; i++)
        if (paths[i] && (r = check_file(keys[i], paths[i], false, R_OK, err, errlen)))
            return r;
    for (unsigned i = 0; i < d->ndisks; i++) {
        struct vmdef_disk *k = &d->disks[i];
        char f[FIELD_MAX], msg[256];
        field_name(f, "disks[%u].path", i);
        if ((r = check_file(f, k->path, true, k->readonly ? R_OK : R_OK | W_OK, err, errlen)))
            return r;
        if (k->format == BLOCK_FORMAT_PROBE && (r = block_probe(k->path, &k->format, msg,
                                                                sizeof(msg))))
            return errmsg(err, errlen, r, "%s: %s", f, msg);
    }
    return 0;
}

/* ---- host-wide ---- */

static bool same_port(const char *a, const char *b)
{
    struct net_hostfwd x, y;
    if (net_parse_hostfwd(a, &x, NULL, 0) || net_parse_hostfwd(b, &y, NULL, 0))
        return false;
    /* 0.0.0.0 takes the port on every address. */
    return x.udp == y.udp && x.host_port == y.host_port &&
           (x.host_addr == y.host_addr || !x.host_addr || !y.host_addr);
}

static int conflicts_with(const struct vmdef *d, const struct vmdef *o, char *err, size_t errlen)
{
    if (d->uuid[0] && !strcmp(d->uuid, o->uuid))
        return errmsg(err, errlen, -EEXIST, "uuid: %s is VM %s's", d->uuid, o->name);
    if (d->vsock_cid && d->vsock_cid == o->vsock_cid)
        return errmsg(err, errlen, -EADDRINUSE, "vsock.cid: %u is VM %s's", d->vsock_cid,
                      o->name);
    for (unsigned i = 0; i < d->ndisks; i++)
        for (unsigned k = 0; k < o->ndisks; k++)
            if (!strcmp(d->disks[i].path, o->disks[k].path) &&
                !(d->disks[i].readonly && o->disks[k].readonly))
                return errmsg(err, errlen, -EADDRINUSE, "disks[%u].path: %.200s is a disk of VM "
                              "%s (only read-only disks may be shared)", i, d->disks[i].path,
                              o->name);
    for (unsigned i = 0; i < d->nnets; i++) {
        const struct vmdef_net *a = &d->nets[i];
        for (unsigned k = 0; k < o->nnets; k++) {
            const struct vmdef_net *b = &o->nets[k];
            char mac[NET_MAC_TEXT];
            net_format_mac(a->mac, mac);
            if (a->has_mac && b->has_mac && !memcmp(a->mac, b->mac, 6))
                return errmsg(err, errlen, -EADDRINUSE, "nets[%u].mac: %s is VM %s's", i, mac,
                              o->name);
            for (unsigned x = 0; x < a->nhostfwd; x++)
                for (unsigned y = 0; y < b->nhostfwd; y++)
                    if (same_port(a->hostfwd[x], b->hostfwd[y]))
                        return errmsg(err, errlen, -EADDRINUSE, "nets[%u].hostfwd[%u]: VM %s "
                                      "forwards that host port (%s)", i, x, o->name,
                                      b->hostfwd[y]);
        }
    }
    return 0;
}

int vmdef_conflicts(const struct vmdef *d, const struct vmdef *others, size_t n, char *err,
                    size_t errlen)
{
    int r = 0;
    /* Every name first: "exists" is the answer a client most expects. */
    for (size_t i = 0; i < n; i++)
        if (!strcmp(d->name, others[i].name))
            return errmsg(err, errlen, -EEXIST, "name: a VM named %s exists", d->name);
    for (size_t i = 0; i < n && !r; i++)
        r = conflicts_with(d, &others[i], err, errlen);
    /* Host ports within the definition itself. */
    for (unsigned i = 0; i < d->nnets && !r; i++)
        for (unsigned k = 0; k <= i && !r; k++)
            for (unsigned x = 0; x < d->nets[i].nhostfwd && !r; x++)
                for (unsigned y = 0; y < d->nets[k].nhostfwd && !r; y++)
                    if ((k < i || y < x) && same_port(d->nets[i].hostfwd[x], d->nets[k].hostfwd[y]))
                        r = errmsg(err, errlen, -EADDRINUSE, "nets[%u].hostfwd[%u]: the same "
                                   "host port as nets[%u].hostfwd[%u]", i, x, k, y);
    return r;
}

static bool mac_taken(const uint8_t mac[6], const struct vmdef *d, const struct vmdef *others,
                      size_t n)
{
    for (size_t i = 0; i <= n; i++) {
        const struct vmdef *o = i < n ? &others[i] : d;
        for (unsigned k = 0; k < o->nnets; k++)
            if (o->nets[k].has_mac && !memcmp(o->nets[k].mac, mac, 6))
                return true;
    }
    return false;
}

static int random_bytes(void *buf, size_t n)
{
    ssize_t got;
    do {
        got = getrandom(buf, n, 0);
    } while (got < 0 && errno == EINTR);
    return got == (ssize_t)n ? 0 : -EIO;
}

int vmdef_assign_ids(struct vmdef *d, const struct vmdef *others, size_t n, char *err,
                     size_t errlen)
{
    if (!d->uuid[0]) {
        uint8_t u[16];
        if (random_bytes(u, sizeof(u)))
            return errmsg(err, errlen, -EIO, "uuid: no randomness from the host");
        u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);   /* version 4 (RFC 4122 4.4) */
        u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);   /* variant 10x */
        snprintf(d->uuid, sizeof(d->uuid),
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
                 u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
                 u[14], u[15]);
    }
    for (unsigned i = 0; i < d->nnets; i++) {
        struct vmdef_net *c = &d->nets[i];
        /* 2^24 addresses: a few draws find a free one unless the host has
         * millions of cards. */
        for (int tries = 0; !c->has_mac && tries < 64; tries++) {
            uint8_t mac[6] = { 0x52, 0x54, 0x00 };   /* QEMU's locally administered prefix */
            if (random_bytes(mac + 3, 3))
                return errmsg(err, errlen, -EIO, "nets[%u].mac: no randomness from the host", i);
            if (mac_taken(mac, d, others, n))
                continue;
            memcpy(c->mac, mac, 6);
            c->has_mac = true;
        }
        if (!c->has_mac)
            return errmsg(err, errlen, -EADDRINUSE, "nets[%u].mac: no free MAC found", i);
    }
    return 0;
}

int vmdef_define(const json_t *j, const struct vmdef *others, size_t n, struct vmdef *d,
                 char *err, size_t errlen)
{
    int r = vmdef_parse(j, d, err, errlen);
    if (r)
        return r;
    if ((r = vmdef_check_files(d, err, errlen)) || (r = vmdef_conflicts(d, others, n, err, errlen)) ||
        (r = vmdef_assign_ids(d, others, n, err, errlen)))
        vmdef_free(d);
    return r;
}

size_t vmdef_err_field(const char *err, char *field, size_t len)
{
    const char *end = strstr(err, ": ");
    size_t n = end ? (size_t)(end - err) : 0;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)err[i]) && !isdigit((unsigned char)err[i]) &&
            !strchr("_.[]", err[i]))
            n = 0;
    if (n >= len)
        n = 0;
    if (len) {
        memcpy(field, err, n);
        field[n] = '\0';
    }
    return n;
}

/* ---- JSON ---- */

static int set(json_t *o, const char *key, json_t *v)
{
    return json_object_set_new(o, key, v);   /* a NULL v fails, and is freed by none */
}

static json_t *disk_json(const struct vmdef_disk *k)
{
    json_t *o = json_object();
    int bad = !o;
    bad |= set(o, "path", json_string(k->path));
    if (k->format != BLOCK_FORMAT_PROBE)
        bad |= set(o, "format", json_string(k->format == BLOCK_FORMAT_QCOW2 ? "qcow2" : "raw"));
    bad |= set(o, "readonly", json_boolean(k->readonly));
    bad |= set(o, "cache", json_string(k->cache == BLOCK_CACHE_NONE ? "none" : "writeback"));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *net_json(const struct vmdef_net *c)
{
    json_t *o = json_object();
    int bad = !o;
    bad |= set(o, "type", json_string(c->type == VMDEF_NET_TAP ? "tap" : "user"));
    if (c->has_mac) {
        char mac[NET_MAC_TEXT];
        net_format_mac(c->mac, mac);
        bad |= set(o, "mac", json_string(mac));
    }
    if (c->type == VMDEF_NET_TAP) {
        bad |= set(o, "ifname", json_string(c->ifname));
    } else {
        json_t *a = json_array();
        for (unsigned i = 0; a && i < c->nhostfwd; i++)
            bad |= json_array_append_new(a, json_string(c->hostfwd[i]));
        bad |= set(o, "hostfwd", a);
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *vmdef_to_json(const struct vmdef *d)
{
    json_t *o = json_object();
    int bad = !o;
    bad |= set(o, "name", json_string(d->name));
    if (d->uuid[0])
        bad |= set(o, "uuid", json_string(d->uuid));
    bad |= set(o, "vcpus", json_integer(d->vcpus));
    bad |= set(o, "memory_mib", json_integer((json_int_t)d->memory_mib));
    if (d->kernel)
        bad |= set(o, "kernel", json_string(d->kernel));
    if (d->initrd)
        bad |= set(o, "initrd", json_string(d->initrd));
    if (d->cmdline)
        bad |= set(o, "cmdline", json_string(d->cmdline));
    if (d->bios)
        bad |= set(o, "bios", json_string(d->bios));
    json_t *disks = json_array(), *nets = json_array();
    for (unsigned i = 0; disks && i < d->ndisks; i++)
        bad |= json_array_append_new(disks, disk_json(&d->disks[i]));
    for (unsigned i = 0; nets && i < d->nnets; i++)
        bad |= json_array_append_new(nets, net_json(&d->nets[i]));
    bad |= set(o, "disks", disks);
    bad |= set(o, "nets", nets);
    if (d->vsock_cid)
        bad |= set(o, "vsock", json_pack("{s:I}", "cid", (json_int_t)d->vsock_cid));
    bad |= set(o, "balloon", json_boolean(d->balloon));
    bad |= set(o, "console", json_string(d->console == VMDEF_CONSOLE_VIRTIO ? "virtio" : "serial"));
    if (d->jit != VMDEF_JIT_DEFAULT)
        bad |= set(o, "jit", json_boolean(d->jit == VMDEF_JIT_ON));
    if (d->watchdog)
        bad |= set(o, "watchdog", json_string(guest_action_name(d->watchdog_action)));
    bad |= set(o, "on_panic", json_string(guest_action_name(d->panic_action)));
    bad |= set(o, "autostart", json_boolean(d->autostart));
    bad |= set(o, "cpu_weight", json_integer(d->cpu_weight));
    bad |= set(o, "cpu_max_percent", json_integer(d->cpu_max_percent));
    bad |= set(o, "memory_max_mib", json_integer((json_int_t)d->memory_max_mib));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- argv ---- */

struct args {
    char **v;
    size_t n, cap;
    bool failed;
};

static void add(struct args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct args *a, const char *fmt, ...)
{
    if (a->failed)
        return;
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 32;
        char **v = realloc(a->v, cap * sizeof(*v));
        if (!v) {
            a->failed = true;
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&a->v[a->n], fmt, ap);
    va_end(ap);
    if (r < 0) {
        a->v[a->n] = NULL;
        a->failed = true;
        return;
    }
    a->v[++a->n] = NULL;
}

static void add_disk(struct args *a, const struct vmdef_disk *k, int fd)
{
    char byfd[24];
    snprintf(byfd, sizeof(byfd), "fd=%d", fd);
    add(a, "--disk");
    add(a, "%s%s%s%s", fd >= 0 ? byfd : k->path,
        k->format == BLOCK_FORMAT_QCOW2 ? ",format=qcow2"
        : k->format == BLOCK_FORMAT_RAW ? ",format=raw" : "",
        k->readonly ? ",readonly" : "", k->cache == BLOCK_CACHE_NONE ? ",cache=none" : "");
}

static void add_net(struct args *a, const struct vmdef_net *c, int fd)
{
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    if (!f) {
        a->failed = true;
        return;
    }
    if (c->type == VMDEF_NET_TAP && fd >= 0)
        fprintf(f, "tap,fd=%d", fd);
    else if (c->type == VMDEF_NET_TAP)
        fprintf(f, "tap,ifname=%s", c->ifname);
    else
        fputs("user", f);
    for (unsigned i = 0; i < c->nhostfwd; i++)
        fprintf(f, ",hostfwd=%s", c->hostfwd[i]);
    if (c->has_mac) {
        char mac[NET_MAC_TEXT];
        net_format_mac(c->mac, mac);
        fprintf(f, ",mac=%s", mac);
    }
    if (fclose(f) || !s) {
        free(s);
        a->failed = true;
        return;
    }
    add(a, "--net");
    add(a, "%s", s);
    free(s);
}

static int check_socket(const char *what, const char *path, size_t suffix, char *err,
                        size_t errlen)
{
    if (!path || !*path)
        return errmsg(err, errlen, -EINVAL, "no %s path", what);
    if (strlen(path) + suffix >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return errmsg(err, errlen, -ENAMETOOLONG, "the %s path is too long for a unix socket: %s",
                      what, path);
    return 0;
}

int vmdef_argv(const struct vmdef *d, const struct vmdef_paths *p, char ***argv, char *err,
               size_t errlen)
{
    *argv = NULL;
    int r;
    if (!p->nimbus || !*p->nimbus)
        return errmsg(err, errlen, -EINVAL, "no nimbus binary path");
    if ((r = check_socket("API socket", p->api_socket, 0, err, errlen)) ||
        (r = check_socket("console socket", p->console_socket, 0, err, errlen)))
        return r;
    /* nimbus run's vsock device connects to PATH_PORT: room for "_4294967295". */
    if (d->vsock_cid && (r = check_socket("vsock socket", p->vsock_socket, 11, err, errlen)))
        return r;
    struct args a = { 0 };
    add(&a, "%s", p->nimbus);
    add(&a, "run");
    if (d->kernel) {
        add(&a, "--kernel");
        add(&a, "%s", d->kernel);
    }
    if (d->initrd) {
        add(&a, "--initrd");
        add(&a, "%s", d->initrd);
    }
    if (d->cmdline) {
        add(&a, "--append");
        add(&a, "%s", d->cmdline);
    }
    if (d->bios) {
        add(&a, "--bios");
        add(&a, "%s", d->bios);
    }
    add(&a, "--mem");
    add(&a, "%lluM", (unsigned long long)d->memory_mib);
    add(&a, "--smp");
    add(&a, "%u", d->vcpus);
    for (unsigned i = 0; i < d->ndisks; i++)
        add_disk(&a, &d->disks[i], p->disk_fds ? p->disk_fds[i] : -1);
    for (unsigned i = 0; i < d->nnets; i++)
        add_net(&a, &d->nets[i], p->tap_fds ? p->tap_fds[i] : -1);
    if (d->vsock_cid) {
        add(&a, "--vsock");
        add(&a, "%u,path=%s", d->vsock_cid, p->vsock_socket);
    }
    if (d->balloon)
        add(&a, "--balloon");
    add(&a, "--api");
    add(&a, "%s", p->api_socket);
    add(&a, "--console");
    add(&a, "%ssocket:%s", d->console == VMDEF_CONSOLE_VIRTIO ? "virtio," : "", p->console_socket);
    if (d->jit != VMDEF_JIT_DEFAULT) {
        add(&a, "--jit");
        add(&a, "%s", d->jit == VMDEF_JIT_ON ? "on" : "off");
    }
    if (d->watchdog)
        add(&a, "--watchdog=%s", guest_action_name(d->watchdog_action));
    if (d->panic_action != GUEST_ACTION_NONE) {
        add(&a, "--on-panic");
        add(&a, "%s", guest_action_name(d->panic_action));
    }
    if (a.failed) {
        vmdef_argv_free(a.v);
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    }
    *argv = a.v;
    return 0;
}

void vmdef_argv_free(char **argv)
{
    for (size_t i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
}
