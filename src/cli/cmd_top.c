/* nimbus top: the running VMs' figures, refreshed, as top(1) shows
 * processes: CPU %, RSS, disk and network rates, from two samples of each
 * VM's GET /vms/VM/stats on nimbusd; -b (batch) prints frame after frame
 * instead of redrawing the screen, -n stops after so many. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/daemon_client.h"

struct top_opts {
    bool batch;
    long frames;        /* 0: until interrupted */
    double delay_s;
};

/* One VM's figures at one instant. */
struct sample {
    char name[64];
    char state[16];
    int64_t t_ns;       /* when the stats came (CLOCK_MONOTONIC) */
    double vcpu_s, rss, uptime_s;
    double disk_r, disk_w, net_rx, net_tx;   /* bytes so far */
};

struct frame {
    struct sample *s;
    size_t n;
};

static int on_opt(void *opaque, int opt, const char *arg)
{
    struct top_opts *o = opaque;
    char *end;
    errno = 0;
    switch (opt) {
    case 'b':
        o->batch = true;
        return 0;
    case 'n':
        o->frames = strtol(arg, &end, 10);
        return errno || !*arg || *end || o->frames < 1 ? -1 : 0;
    case 'd':
        o->delay_s = strtod(arg, &end);
        return errno || !*arg || *end || !(o->delay_s >= 0.1 && o->delay_s <= 3600) ? -1 : 0;
    default:
        return -1;
    }
}

static double num(const json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct sample *)a)->name, ((const struct sample *)b)->name);
}

/* The running and paused VMs' stats now. 0, or the exit status (1) after a
 * message. A VM that goes away between the list and its stats is left out. */
static int take_frame(const struct api_cmd_args *a, struct frame *f)
{
    json_t *list;
    *f = (struct frame){ 0 };
    int r = daemon_call("top", a, NULL, "GET", "/vms", NULL, &list);
    if (r)
        return r;
    json_t *vms = json_object_get(list, "vms");
    f->s = calloc(json_array_size(vms) + 1, sizeof(*f->s));
    if (!f->s) {
        json_decref(list);
        fprintf(stderr, "nimbus top: out of memory\n");
        return 1;
    }
    size_t i;
    json_t *vm;
    json_array_foreach(vms, i, vm) {
        const char *name = json_string_value(json_object_get(vm, "name"));
        const char *st = json_string_value(json_object_get(vm, "state"));
        if (!name || !st || (strcmp(st, "running") && strcmp(st, "paused")))
            continue;
        char path[512];
        struct daemon_reply rep;
        daemon_vm_path(path, sizeof(path), name, "/stats");
        daemon_request(a, "GET", path, NULL, &rep);
        if (rep.r == 0 && rep.status == 404) {
            json_decref(rep.reply);
            continue;
        }
        json_t *s;
        if ((r = daemon_check("top", a, name, &rep, &s)))
            break;
        struct sample *x = &f->s[f->n++];
        x->t_ns = cli_now_ns();
        snprintf(x->name, sizeof(x->name), "%s", name);
        snprintf(x->state, sizeof(x->state), "%s",
                 json_string_value(json_object_get(s, "state")) ?: st);
        x->vcpu_s = num(s, "vcpu_seconds");
        x->rss = num(s, "rss_bytes");
        x->uptime_s = num(s, "uptime_s");
        x->disk_r = num(s, "disk_read_bytes");
        x->disk_w = num(s, "disk_write_bytes");
        x->net_rx = num(s, "net_rx_bytes");
        x->net_tx = num(s, "net_tx_bytes");
        json_decref(s);
    }
    json_decref(list);
    if (r) {
        free(f->s);
        f->s = NULL;
        return r;
    }
    qsort(f->s, f->n, sizeof(*f->s), by_name);
    return 0;
}

static const struct sample *find(const struct frame *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->s[i].name, name))
            return &f->s[i];
    return NULL;
}

/* 1536 -> "1.5K"; negative (unknown) -> "-". */
static void human(double v, char *buf, size_t len)
{
    static const char units[] = " KMGTP";
    int u = 0;
    if (v < 0 || isnan(v)) {
        snprintf(buf, len, "-");
        return;
    }
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%.0f", v);
    else
        snprintf(buf, len, "%.1f%c", v, units[u]);
}

static void uptime_text(double s, char *buf, size_t len)
{
    long t = s > 0 ? (long)s : 0;
    if (t >= 86400)
        snprintf(buf, len, "%ldd%02ld:%02ld:%02ld", t / 86400, t / 3600 % 24, t / 60 % 60, t % 60);
    else
        snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

/* What changed per second between two samples of one VM (-1: unknown). */
struct rates {
    double cpu_pct, disk_r, disk_w, net_rx, net_tx;
};

static struct rates rates_of(const struct sample *prev, const struct sample *now)
{
    struct rates r = { -1, -1, -1, -1, -1 };
    double dt = prev ? (double)(now->t_ns - prev->t_ns) / 1e9 : 0;
    /* A restarted VM's counters start again: no rate across that. */
    if (!prev || dt <= 0 || now->uptime_s < prev->uptime_s)
        return r;
    r.cpu_pct = (now->vcpu_s - prev->vcpu_s) / dt * 100;
    r.disk_r = (now->disk_r - prev->disk_r) / dt;
    r.disk_w = (now->disk_w - prev->disk_w) / dt;
    r.net_rx = (now->net_rx - prev->net_rx) / dt;
    r.net_tx = (now->net_tx - prev->net_tx) / dt;
    return r;
}

static void header(const struct api_cmd_args *a, const struct frame *f)
{
    time_t now = time(NULL);
    char when[16];
    strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
    size_t paused = 0;
    for (size_t i = 0; i < f->n; i++)
        paused += !strcmp(f->s[i].state, "paused");
    printf("nimbus top - %s - %zu VMs: %zu running, %zu paused", when, f->n, f->n - paused,
           paused);
    /* The host's figures if nimbusd has them; top goes on without. */
    struct daemon_reply rep;
    daemon_request(a, "GET", "/host", NULL, &rep);
    if (rep.r == 0 && rep.status == 200)
        printf(" - memory %lld MiB committed, %lld MiB available of %lld",
               (long long)num(rep.reply, "memory_committed_mib"),
               (long long)num(rep.reply, "memory_available_mib"),
               (long long)num(rep.reply, "memory_total_mib"));
    json_decref(rep.reply);
    printf("\n\n");
}

static void print_frame(const struct api_cmd_args *a, const struct frame *prev,
                        const struct frame *f)
{
    header(a, f);
    printf("%-20s %-8s %6s %8s %9s %9s %9s %9s %10s\n", "NAME", "STATE", "CPU%", "RSS",
           "DISK R/s", "DISK W/s", "NET RX/s", "NET TX/s", "UPTIME");
    for (size_t i = 0; i < f->n; i++) {
        const struct sample *s = &f->s[i];
        struct rates r = rates_of(find(prev, s->name), s);
        char cpu[16] = "-", rss[16], dr[16], dw[16], rx[16], tx[16], up[48];
        if (r.cpu_pct >= 0)
            snprintf(cpu, sizeof(cpu), "%.1f", r.cpu_pct);
        human(s->rss, rss, sizeof(rss));
        human(r.disk_r, dr, sizeof(dr));
        human(r.disk_w, dw, sizeof(dw));
        human(r.net_rx, rx, sizeof(rx));
        human(r.net_tx, tx, sizeof(tx));
        uptime_text(s->uptime_s, up, sizeof(up));
        printf("%-20s %-8s %6s %8s %9s %9s %9s %9s %10s\n", s->name, s->state, cpu, rss, dr, dw,
               rx, tx, up);
    }
}

/* --json: one line per frame. */
static void print_frame_json(const struct frame *prev, const struct frame *f)
{
    json_t *vms = json_array();
    for (size_t i = 0; vms && i < f->n; i++) {
        const struct sample *s = &f->s[i];
        struct rates r = rates_of(find(prev, s->name), s);
        json_t *rate[5];
        const double v[5] = { r.cpu_pct, r.disk_r, r.disk_w, r.net_rx, r.net_tx };
        for (int k = 0; k < 5; k++)
            rate[k] = v[k] >= 0 ? json_real(v[k]) : json_null();
        json_array_append_new(vms, json_pack("{s:s, s:s, s:o, s:I, s:o, s:o, s:o, s:o, s:f}",
                                             "name", s->name, "state", s->state,
                                             "cpu_percent", rate[0], "rss_bytes", (json_int_t)s->rss,
                                             "disk_read_bytes_per_s", rate[1],
                                             "disk_write_bytes_per_s", rate[2],
                                             "net_rx_bytes_per_s", rate[3],
                                             "net_tx_bytes_per_s", rate[4],
                                             "uptime_s", s->uptime_s));
    }
    json_t *o = json_pack("{s:I, s:o}", "time", (json_int_t)time(NULL), "vms", vms);
    if (o)
        api_print_json(o);
}

/* Sleeps `s` seconds; false when SIGINT, SIGTERM or SIGHUP came instead. */
static bool pause_for(double s, const sigset_t *quit)
{
    struct timespec ts = { (time_t)s, (long)((s - floor(s)) * 1e9) };
    int64_t end = cli_now_ns() + (int64_t)(s * 1e9);
    for (;;) {
        int sig = sigtimedwait(quit, NULL, &ts);
        if (sig > 0)
            return false;
        if (errno != EINTR)
            return true;   /* EAGAIN: the time is up */
        int64_t left = end - cli_now_ns();
        if (left <= 0)
            return true;
        ts = (struct timespec){ left / 1000000000, left % 1000000000 };
    }
}

int cmd_top(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimbus top [-b] [-n FRAMES] [-d SECONDS] [--connect PATH] [--json]\n"
        "Shows the running and paused VMs, refreshed: CPU % (vCPU time per second:\n"
        "100 is one vCPU busy), the VM process's RSS, disk reads and writes and\n"
        "network bytes received and sent per second, and uptime; each frame from\n"
        "two samples DELAY apart (the first frame after one delay). Ctrl-C ends it.\n"
        "  -b, --batch        print frame after frame (top -b), as when stdout is\n"
        "                     not a terminal; else the screen is redrawn\n"
        "  -n, --frames N     stop after N frames\n"
        "  -d, --delay SECS   seconds between frames (0.1..3600, default 2)\n"
        DAEMON_CONNECT_USAGE
        "  --json             one JSON line per frame: {\"time\", \"vms\": [{\"name\",\n"
        "                     \"state\", \"cpu_percent\", \"rss_bytes\",\n"
        "                     \"disk_read_bytes_per_s\", ..., \"uptime_s\"}]}\n";
    static const struct option extra[] = {
        { "batch", no_argument, NULL, 'b' },
        { "frames", required_argument, NULL, 'n' },
        { "delay", required_argument, NULL, 'd' },
        { NULL, 0, NULL, 0 },
    };
    struct top_opts o = { .delay_s = 2 };
    const struct api_cmd_spec spec = {
        .usage = usage, .which = API_CMD_CONNECT, .shortopts = "bn:d:", .extra = extra,
        .on_extra = on_opt, .opaque = &o,
    };
    struct api_cmd_args a;
    bool done;
    int r = api_cmd_parse_spec(argc, argv, &spec, &a, &done);
    if (r || done || (r = api_cmd_no_operands(argc, argv, &a)))
        return r;
    bool redraw = !o.batch && !a.json && isatty(STDOUT_FILENO);
    sigset_t quit;
    sigemptyset(&quit);
    sigaddset(&quit, SIGINT);
    sigaddset(&quit, SIGTERM);
    sigaddset(&quit, SIGHUP);
    sigprocmask(SIG_BLOCK, &quit, NULL);
    struct frame prev, now;
    if ((r = take_frame(&a, &prev)))
        return r;
    if (redraw)
        printf("\033[H\033[2Jnimbus top: sampling every %.1f s...\n", o.delay_s);
    fflush(stdout);
    for (long k = 0; !o.frames || k < o.frames; k++) {
        if (!pause_for(o.delay_s, &quit))
            break;
        if ((r = take_frame(&a, &now)))
            break;
        if (redraw)
            printf("\033[H\033[2J");
        else if (k && !a.json)
            printf("\n");
        if (a.json)
            print_frame_json(&prev, &now);
        else
            print_frame(&a, &prev, &now);
        fflush(stdout);
        free(prev.s);
        prev = now;
    }
    free(prev.s);
    return r;
}
