/* The API's HTTP server: libmicrohttpd in external-polling mode (its epoll
 * fd, plus a timerfd for its connection timeouts and the shutdown
 * deadline) served by the VM's I/O thread, request bodies gathered and
 * size-checked, routed (api_router.c) and served by the ops; and the event
 * stream, a chunked response that the connection's suspension keeps from
 * polling while there is nothing to say. See api.h. */
#include "api/api.h"

#include <errno.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "api/api_shutdown.h"
#include "api/api_socket.h"
#include "base/dynlib.h"
#include "base/errmsg.h"

#define EVENT_RING     64u     /* events kept for the streams; a stream further behind ends */
#define EVENT_MAX_LINE 1024u
#define CLOSE_FLUSH_MS 1000    /* api_close: replies in flight get this long */
#define IDLE_TIMEOUT_S 60u     /* an idle connection is closed (not the event streams) */

struct request_state {          /* one request (MHD's req_cls) */
    char *body;
    size_t len;
    bool too_large;
    bool replied;               /* a reply is queued already (413 on Content-Length) */
};

struct event_stream {
    struct api *api;
    struct MHD_Connection *conn;    /* NULL: free slot */
    uint64_t next;                  /* the next event to send */
    size_t off;                     /* bytes of it sent already */
    char first[EVENT_MAX_LINE];     /* this stream's own first line: the state now */
    size_t first_len, first_off;
    bool suspended;
};

/* libmicrohttpd, loaded by api_open_ops (base/dynlib.h): with gnutls and
 * its dependencies it would add some 5 ms to the start of every nimbus
 * process, most of which serve no API. */
struct mhd_lib {
    __typeof__(&MHD_start_daemon) start_daemon;
    __typeof__(&MHD_stop_daemon) stop_daemon;
    __typeof__(&MHD_get_daemon_info) get_daemon_info;
    __typeof__(&MHD_get_timeout) get_timeout;
    __typeof__(&MHD_run) run;
    __typeof__(&MHD_lookup_connection_value) lookup_connection_value;
    __typeof__(&MHD_suspend_connection) suspend_connection;
    __typeof__(&MHD_resume_connection) resume_connection;
    __typeof__(&MHD_create_response_from_buffer) create_response_from_buffer;
    __typeof__(&MHD_create_response_from_callback) create_response_from_callback;
    __typeof__(&MHD_add_response_header) add_response_header;
    __typeof__(&MHD_queue_response) queue_response;
    __typeof__(&MHD_destroy_response) destroy_response;
};

static int mhd_lib_load(struct mhd_lib *l, char *err, size_t errlen)
{
    static const struct dynlib_sym syms[] = {
        DYNLIB_SYM(struct mhd_lib, start_daemon, "MHD_start_daemon"),
        DYNLIB_SYM(struct mhd_lib, stop_daemon, "MHD_stop_daemon"),
        DYNLIB_SYM(struct mhd_lib, get_daemon_info, "MHD_get_daemon_info"),
        DYNLIB_SYM(struct mhd_lib, get_timeout, "MHD_get_timeout"),
        DYNLIB_SYM(struct mhd_lib, run, "MHD_run"),
        DYNLIB_SYM(struct mhd_lib, lookup_connection_value, "MHD_lookup_connection_value"),
        DYNLIB_SYM(struct mhd_lib, suspend_connection, "MHD_suspend_connection"),
        DYNLIB_SYM(struct mhd_lib, resume_connection, "MHD_resume_connection"),
        DYNLIB_SYM(struct mhd_lib, create_response_from_buffer, "MHD_create_response_from_buffer"),
        DYNLIB_SYM(struct mhd_lib, create_response_from_callback,
                   "MHD_create_response_from_callback"),
        DYNLIB_SYM(struct mhd_lib, add_response_header, "MHD_add_response_header"),
        DYNLIB_SYM(struct mhd_lib, queue_response, "MHD_queue_response"),
        DYNLIB_SYM(struct mhd_lib, destroy_response, "MHD_destroy_response"),
    };
    return dynlib_load("libmicrohttpd.so.12", "libmicrohttpd12", syms,
                       sizeof(syms) / sizeof(syms[0]), l, err, errlen);
}

struct api {
    struct api_ops ops;
    struct mhd_lib lib;
    struct api_socket sock;
    struct MHD_Daemon *mhd;
    int epoll_fd;                   /* MHD's */
    int timer_fd;
    int64_t timer_armed_ns;         /* what timer_fd is set to; INT64_MAX: disarmed */
    struct api_shutdown *shutdown;
    int64_t start_ns;
    unsigned in_flight;             /* requests begun and not completed */
    bool closing;

    enum vm_state last_state;
    uint64_t migration_seq;         /* the last migration progress told */
    uint64_t guest_seq;             /* the guest's health events told */
    uint64_t event_seq;             /* events so far; the ring holds the last EVENT_RING */
    char events[EVENT_RING][EVENT_MAX_LINE];
    size_t event_len[EVENT_RING];
    struct event_stream streams[API_MAX_EVENT_STREAMS];

    /* What fill put at each poll index: 0 epoll, 1 timer, 2 shutdown. */
    int slot_fd[3];
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- events ---- */

static void wake_streams(struct api *a)
{
    for (unsigned i = 0; i < API_MAX_EVENT_STREAMS; i++) {
        struct event_stream *s = &a->streams[i];
        if (s->conn && s->suspended) {
            s->suspended = false;
            a->lib.resume_connection(s->conn);
        }
    }
}

/* The line of event {"kind": kind, "time_ms", "uptime_ms", ...fields} in
 * buf (EVENT_MAX_LINE bytes); its length, 0 if it did not fit. Takes
 * `fields` (may be NULL). */
static size_t event_line(struct api *a, const char *kind, json_t *fields, char *buf)
{
    json_t *ev = fields ? fields : json_object();
    if (!ev)
        return 0;
    json_object_set_new(ev, "kind", json_string(kind));
    json_object_set_new(ev, "time_ms", json_integer(real_ms()));
    json_object_set_new(ev, "uptime_ms", json_integer((mono_ns() - a->start_ns) / 1000000));
    char *s = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(ev);
    size_t n = s ? strlen(s) : EVENT_MAX_LINE;
    if (n + 1 > EVENT_MAX_LINE) {
        free(s);
        return 0;
    }
    memcpy(buf, s, n);
    buf[n] = '\n';
    free(s);
    return n + 1;
}

/* Adds an event to the ring and wakes the streams. Takes `fields`. */
static void emit(struct api *a, const char *kind, json_t *fields)
{
    unsigned slot = (unsigned)(a->event_seq % EVENT_RING);
    size_t n = event_line(a, kind, fields, a->events[slot]);
    if (!n)
        return;
    a->event_len[slot] = n;
    a->event_seq++;
    wake_streams(a);
}

/* A "migration" event when the migration's progress moved on. */
static void note_migration(struct api *a)
{
    json_t *fields = a->ops.migration ? a->ops.migration(a->ops.opaque, &a->migration_seq) : NULL;
    if (fields)
        emit(a, "migration", fields);
}

/* The guest's watchdog and panic events since the last look. */
static void note_guest(struct api *a)
{
    const char *kind;
    json_t *fields;
    while (a->ops.guest_event &&
           (fields = a->ops.guest_event(a->ops.opaque, &a->guest_seq, &kind)))
        emit(a, kind, fields);
}

/* A state event if the VM's state changed since the last look. */
static void note_state(struct api *a)
{
    enum vm_state now = a->ops.state(a->ops.opaque);
    if (now == a->last_state)
        return;
    emit(a, "state", json_pack("{s:s, s:s}", "old", vm_state_name(a->last_state), "new",
                               vm_state_name(now)));
    a->last_state = now;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct event_stream *s = cls;
    struct api *a = s->api;
    (void)pos;
    if (s->first_off < s->first_len) {
        size_t n = s->first_len - s->first_off < max ? s->first_len - s->first_off : max;
        memcpy(buf, s->first + s->first_off, n);
        s->first_off += n;
        return (ssize_t)n;
    }
    if (a->event_seq - s->next > EVENT_RING)
        return MHD_CONTENT_READER_END_WITH_ERROR;   /* too far behind: events lost */
    if (s->next == a->event_seq) {
        if (a->closing)
            return MHD_CONTENT_READER_END_OF_STREAM;
        /* Nothing to say: off MHD's event loop until emit() resumes us
         * (returning 0 without this would make MHD ask again at once). */
        s->suspended = true;
        a->lib.suspend_connection(s->conn);
        return 0;
    }
    unsigned slot = (unsigned)(s->next % EVENT_RING);
    size_t n = a->event_len[slot] - s->off;
    if (n > max)
        n = max;
    memcpy(buf, a->events[slot] + s->off, n);
    s->off += n;
    if (s->off == a->event_len[slot]) {
        s->off = 0;
        s->next++;
    }
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    struct event_stream *s = cls;
    s->conn = NULL;
    s->suspended = false;
}

/* ---- replies ---- */

static enum MHD_Result reply_json(struct api *a, struct MHD_Connection *c, unsigned status,
                                  json_t *body)
{
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    size_t n = s ? strlen(s) : 0;
    char *buf = s ? realloc(s, n + 2) : NULL;
    if (!buf) {
        free(s);
        return MHD_NO;
    }
    buf[n] = '\n';   /* one line, for people and line-reading scripts */
    buf[n + 1] = '\0';
    struct MHD_Response *r = a->lib.create_response_from_buffer(n + 1, buf,
                                                                MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(buf);
        return MHD_NO;
    }
    a->lib.add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result ret = a->lib.queue_response(c, status, r);
    a->lib.destroy_response(r);
    return ret;
}

static enum MHD_Result reply_error(struct api *a, struct MHD_Connection *c, unsigned status,
                                   const char *msg, const char *code)
{
    return reply_json(a, c, status, api_error_body(msg, code, NULL));
}

static enum MHD_Result serve_events(struct api *a, struct MHD_Connection *c)
{
    struct event_stream *s = NULL;
    for (unsigned i = 0; i < API_MAX_EVENT_STREAMS && !s; i++)
        if (!a->streams[i].conn)
            s = &a->streams[i];
    if (!s)
        return reply_error(a, c, 503, "too many event streams (at most 8)", "busy");
    /* The stream starts with the state as it is now. */
    note_state(a);
    *s = (struct event_stream){ .api = a, .conn = c, .next = a->event_seq };
    s->first_len = event_line(a, "state", json_pack("{s:n, s:s}", "old", "new",
                                                    vm_state_name(a->last_state)), s->first);
    struct MHD_Response *r = a->lib.create_response_from_callback(
        MHD_SIZE_UNKNOWN, EVENT_MAX_LINE, stream_read, s, stream_free);
    if (!r) {
        s->conn = NULL;
        return MHD_NO;
    }
    a->lib.add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-ndjson");
    enum MHD_Result ret = a->lib.queue_response(c, 200, r);
    a->lib.destroy_response(r);   /* stream_free runs when the connection is done with it */
    if (ret != MHD_YES)
        s->conn = NULL;
    return ret;
}

static enum MHD_Result serve_routes(struct api *a, struct MHD_Connection *c)
{
    size_t n;
    const struct api_route *rt = api_routes(&n);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_pack("{s:s, s:s}", "method", rt[i].method, "path",
                                              rt[i].path));
    return reply_json(a, c, 200, json_pack("{s:o}", "routes", list));
}

static enum MHD_Result serve_shutdown(struct api *a, struct MHD_Connection *c,
                                      const struct api_request *req, enum vm_state state)
{
    char err[256] = "";
    uint32_t port;
    int fd;
    json_t *e;
    int r = a->ops.agent(a->ops.opaque, &fd, &port, err, sizeof(err));
    if (r == 0)
        r = api_shutdown_start(a->shutdown, fd, port, req->timeout_s, err, sizeof(err));
    if (r) {
        unsigned st = (unsigned)api_error(r, err[0] ? err : strerror(-r), state, &e);
        /* No agent: the VM can't be asked, say so as a conflict with how it runs. */
        if (r == -ENOTSUP) {
            json_decref(e);
            st = 409;
            e = api_error_body(err, "no_agent", NULL);
        }
        return reply_json(a, c, st, e);
    }
    emit(a, "shutdown", json_pack("{s:s, s:I}", "phase", "requested", "timeout_s",
                                  (json_int_t)req->timeout_s));
    return reply_json(a, c, 202, json_pack("{s:s, s:s, s:I}", "state", vm_state_name(state),
                                        "shutdown", "requested", "timeout_s",
                                        (json_int_t)req->timeout_s));
}

static enum MHD_Result dispatch(struct api *a, struct MHD_Connection *c, const char *method,
                                const char *url, const struct request_state *rs)
{
    enum vm_state state = a->ops.state(a->ops.opaque);
    struct api_request *req = malloc(sizeof(*req));
    if (!req)
        return reply_error(a, c, 500, "out of memory", "internal");
    json_t *e;
    enum MHD_Result ret;
    int st = api_route(method, url, rs->body, rs->len, state, req, &e);
    if (st) {
        ret = reply_json(a, c, (unsigned)st, e);
        goto out;
    }
    switch (req->action) {
    case API_EVENTS:
        ret = serve_events(a, c);
        goto out;
    case API_ROUTES:
        ret = serve_routes(a, c);
        goto out;
    case API_SHUTDOWN:
        ret = serve_shutdown(a, c, req, state);
        goto out;
    default:
        break;
    }
    if (req->action == API_PAUSE || req->action == API_RESUME || req->action == API_DESTROY ||
        req->action == API_RESET || req->action == API_SNAPSHOT || req->action == API_MIGRATE ||
        req->action == API_MIGRATE_CANCEL || req->action == API_MIGRATE_RECOVER)
        note_state(a);   /* a change nobody saw yet comes before ours */
    json_t *reply = json_object();
    char err[256] = "";
    int r = reply ? a->ops.handle(a->ops.opaque, req, reply, err, sizeof(err)) : -ENOMEM;
    if (r) {
        json_decref(reply);
        st = api_error(r, err[0] ? err : strerror(-r), a->ops.state(a->ops.opaque), &e);
        ret = reply_json(a, c, (unsigned)st, e);
        goto out;
    }
    if (req->action == API_GET_VM)
        json_object_set_new(reply, "uptime_ms", json_integer((mono_ns() - a->start_ns) / 1000000));
    if (req->action == API_DESTROY || req->action == API_RESET)
        emit(a, req->action == API_DESTROY ? "destroy" : "reset", NULL);
    if (req->action == API_SNAPSHOT) {
        /* running/paused -> saving -> back, or -> saved with stop. The save
         * ran on this thread, so the stream tells it once it is done; a save
         * refused at once (a bad path, no base for a diff) tells nothing. */
        emit(a, "state", json_pack("{s:s, s:s}", "old", vm_state_name(a->last_state), "new",
                                   vm_state_name(VM_STATE_SAVING)));
        a->last_state = VM_STATE_SAVING;
        emit(a, "snapshot", json_pack("{s:s, s:O, s:O, s:O}", "path", req->snapshot.path,
                                      "pause_us", json_object_get(reply, "pause_us"),
                                      "memory_bytes", json_object_get(reply, "memory_bytes"),
                                      "state_bytes", json_object_get(reply, "state_bytes")));
        if (req->snapshot.stop) {
            /* The VM lives on as the snapshot; the process ends. */
            emit(a, "state", json_pack("{s:s, s:s}", "old", vm_state_name(VM_STATE_SAVING),
                                       "new", vm_state_name(VM_STATE_SAVED)));
            a->last_state = a->ops.state(a->ops.opaque);
        }
    }
    note_state(a);
    ret = reply_json(a, c, 200, reply);
out:
    free(req);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls)
{
    struct api *a = cls;
    struct request_state *rs = *req_cls;
    (void)version;
    if (!rs) {
        rs = calloc(1, sizeof(*rs));
        if (!rs)
            return MHD_NO;
        *req_cls = rs;
        a->in_flight++;
        const char *cl = a->lib.lookup_connection_value(c, MHD_HEADER_KIND,
                                                        MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > API_MAX_BODY) {
            /* Refused before it is sent; MHD closes the connection after. */
            rs->too_large = rs->replied = true;
            return reply_error(a, c, 413, "request body larger than 16384 bytes", "too_large");
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (rs->too_large)
            return MHD_YES;
        if (rs->len + n > API_MAX_BODY) {
            rs->too_large = true;   /* read on to the end, then say so */
            free(rs->body);
            rs->body = NULL;
            rs->len = 0;
            return MHD_YES;
        }
        char *b = realloc(rs->body, rs->len + n + 1);
        if (!b)
            return MHD_NO;
        memcpy(b + rs->len, upload, n);
        rs->body = b;
        rs->len += n;
        b[rs->len] = '\0';
        return MHD_YES;
    }
    if (rs->replied)
        return MHD_YES;
    rs->replied = true;
    if (rs->too_large)
        return reply_error(a, c, 413, "request body larger than 16384 bytes", "too_large");
    return dispatch(a, c, method, url, rs);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct api *a = cls;
    struct request_state *rs = *req_cls;
    (void)c;
    (void)toe;
    if (!rs)
        return;
    free(rs->body);
    free(rs);
    *req_cls = NULL;
    a->in_flight--;
}

/* ---- the I/O thread's source ---- */

/* Sets timer_fd to the earlier of MHD's timeout and the shutdown deadline. */
static void arm_timer(struct api *a)
{
    int64_t at = api_shutdown_deadline(a->shutdown);
    MHD_UNSIGNED_LONG_LONG ms;
    if (a->lib.get_timeout(a->mhd, &ms) == MHD_YES) {
        int64_t t = mono_ns() + (int64_t)(ms > 3600000 ? 3600000 : ms) * 1000000;
        if (t < at)
            at = t;
    }
    if (at == a->timer_armed_ns)
        return;
    struct itimerspec its = { 0 };
    if (at != INT64_MAX) {
        if (at <= 0)
            at = 1;   /* 0 would disarm */
        its.it_value.tv_sec = at / 1000000000;
        its.it_value.tv_nsec = at % 1000000000;
    }
    timerfd_settime(a->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
    a->timer_armed_ns = at;
}

static unsigned source_fill(void *opaque, struct pollfd *fds, unsigned max)
{
    struct api *a = opaque;
    uint64_t seq = a->event_seq;
    note_migration(a);
    note_guest(a);   /* before the state: a watchdog's pause comes after it */
    note_state(a);   /* the guest's own power-off or reboot, a signal */
    if (a->event_seq != seq)
        a->lib.run(a->mhd);   /* the streams just resumed send now, not at MHD's next timeout */
    arm_timer(a);
    int want[3] = { a->epoll_fd, a->timer_fd, api_shutdown_fd(a->shutdown) };
    unsigned n = 0;
    for (unsigned i = 0; i < 3 && n < max; i++) {
        a->slot_fd[n] = want[i];
        fds[n++] = (struct pollfd){ .fd = want[i], .events = POLLIN };
    }
    return n;
}

static void shutdown_progress(struct api *a)
{
    int result;
    char msg[256];
    if (api_shutdown_agent_done(a->shutdown, &result, msg, sizeof(msg))) {
        if (result)
            emit(a, "shutdown", json_pack("{s:s, s:s}", "phase", "agent_failed", "error", msg));
        else
            emit(a, "shutdown", json_pack("{s:s}", "phase", "agent_asked"));
    }
    if (api_shutdown_expired(a->shutdown, mono_ns()) &&
        a->ops.state(a->ops.opaque) != VM_STATE_SHUTDOWN) {
        struct api_request req = { .action = API_DESTROY };
        json_t *reply = json_object();
        char err[256];
        /* The guest did not power off in time: a hard stop. */
        emit(a, "shutdown", json_pack("{s:s}", "phase", "timeout"));
        if (reply && a->ops.handle(a->ops.opaque, &req, reply, err, sizeof(err)) == 0)
            emit(a, "destroy", NULL);
        json_decref(reply);
        note_state(a);
    }
}

static void source_handle(void *opaque, const struct pollfd *fds, unsigned n)
{
    struct api *a = opaque;
    bool any = false;
    for (unsigned i = 0; i < n; i++) {
        if (!fds[i].revents || fds[i].fd != a->slot_fd[i])
            continue;
        any = true;
        if (fds[i].fd == a->timer_fd) {
            uint64_t v;
            ssize_t k = read(a->timer_fd, &v, sizeof(v));
            (void)k;
            a->timer_armed_ns = INT64_MAX;
        }
    }
    if (!any)
        return;
    shutdown_progress(a);
    a->lib.run(a->mhd);
}

struct vm_io_source api_io_source(struct api *a)
{
    return (struct vm_io_source){ .fill = source_fill, .handle = source_handle, .opaque = a };
}

/* ---- open and close ---- */

/* The HTTP server library (libmicrohttpd, through dlopen) into `lib`. */
static int load_lib(struct mhd_lib *lib, char *err, size_t errlen)
{
    char why[256];
    int r = mhd_lib_load(lib, why, sizeof(why));
    return r ? errmsg(err, errlen, r, "--api: %s", why) : 0;
}

int api_preload(char *err, size_t errlen)
{
    struct mhd_lib lib;
    return load_lib(&lib, err, errlen);
}

int api_open_ops(const char *path, const struct api_ops *ops, struct api **out, char *err,
                 size_t errlen)
{
    struct api *a = calloc(1, sizeof(*a));
    if (!a)
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    int r;
    a->ops = *ops;
    a->start_ns = mono_ns();
    a->timer_fd = -1;
    a->timer_armed_ns = INT64_MAX;
    a->last_state = ops->state(ops->opaque);
    if ((r = load_lib(&a->lib, err, errlen))) {
        free(a);
        return r;
    }
    if ((r = api_socket_listen(path, "--api", &a->sock, err, errlen))) {
        free(a);
        return r;
    }
    if ((r = api_shutdown_create(&a->shutdown, err, errlen)))
        goto fail;
    a->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (a->timer_fd < 0) {
        r = errmsg(err, errlen, -errno, "--api: timerfd: %s", strerror(errno));
        goto fail;
    }
    /* No MHD thread: the I/O thread polls MHD's epoll fd and calls MHD_run. */
    a->mhd = a->lib.start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0,
                                 NULL, NULL, on_request, a,
                                 MHD_OPTION_LISTEN_SOCKET, a->sock.fd,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_MAX_CONNECTIONS,
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)API_MAX_HEADERS,
                                 MHD_OPTION_CONNECTION_TIMEOUT, IDLE_TIMEOUT_S,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, a,
                                 MHD_OPTION_END);
    if (!a->mhd) {
        r = errmsg(err, errlen, -EIO, "--api %s: cannot start the HTTP server", path);
        goto fail;
    }
    a->sock.fd = -1;   /* MHD's now: MHD_stop_daemon closes it */
    const union MHD_DaemonInfo *info = a->lib.get_daemon_info(a->mhd,
                                                               MHD_DAEMON_INFO_EPOLL_FD);
    if (!info) {
        r = errmsg(err, errlen, -EIO, "--api %s: the HTTP server has no epoll fd", path);
        goto fail;
    }
    a->epoll_fd = info->epoll_fd;
    *out = a;
    return 0;
fail:
    if (a->mhd)
        a->lib.stop_daemon(a->mhd);
    if (a->sock.fd >= 0)
        close(a->sock.fd);
    api_socket_unlink(&a->sock);
    if (a->timer_fd >= 0)
        close(a->timer_fd);
    api_shutdown_free(a->shutdown);
    free(a);
    return r;
}

void api_close(struct api *a)
{
    if (!a)
        return;
    a->closing = true;
    note_migration(a);
    note_guest(a);
    note_state(a);
    wake_streams(a);
    /* The replies in flight (a destroy's own, the streams' last events). */
    int64_t end = mono_ns() + (int64_t)CLOSE_FLUSH_MS * 1000000;
    for (int64_t now = mono_ns(); a->in_flight && now < end; now = mono_ns()) {
        a->lib.run(a->mhd);
        if (!a->in_flight)
            break;
        struct pollfd p = { .fd = a->epoll_fd, .events = POLLIN };
        MHD_UNSIGNED_LONG_LONG ms = 10;
        int wait = (int)((end - now) / 1000000) + 1;
        if (a->lib.get_timeout(a->mhd, &ms) == MHD_YES && ms < (MHD_UNSIGNED_LONG_LONG)wait)
            wait = (int)ms;
        poll(&p, 1, wait);
    }
    wake_streams(a);   /* MHD must not stop with suspended connections */
    a->lib.stop_daemon(a->mhd);
    api_socket_unlink(&a->sock);
    close(a->timer_fd);
    api_shutdown_free(a->shutdown);
    free(a);
}
