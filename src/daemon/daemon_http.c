/* nimbusd's API: HTTP/1.1 + JSON on a unix socket (docs/daemon.md),
 * libmicrohttpd with a thread per connection, since an operation may wait
 * for a VM (a shutdown, a save) while others are served. */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/api_socket.h"
#include "base/errmsg.h"
#include "daemon/daemon.h"

#define MAX_BODY (64u * 1024)
#define MAX_CONNECTIONS 64u
#define ND_LISTEN_BACKLOG 256
#define MAX_LOG_BYTES (1u << 20)     /* GET .../log returns at most the last 1 MiB */
#define SHUTDOWN_DEFAULT_S 60u
#define SHUTDOWN_MAX_S 3600u

struct request_state {
    char *body;
    size_t len;
    bool too_big;
};

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, char *text,
                                  const char *type)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text,
                                                             MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, json_t *body)
{
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    char *line = s ? realloc(s, strlen(s) + 2) : NULL;
    if (!line) {
        free(s);
        return MHD_NO;
    }
    strcat(line, "\n");
    return reply_text(c, status, line, "application/json");
}

static unsigned status_of(int r, const struct nd_err *e)
{
    if (!strcmp(e->code, "not_found"))
        return MHD_HTTP_NOT_FOUND;
    if (!strcmp(e->code, "exists") || !strcmp(e->code, "wrong_state") ||
        !strcmp(e->code, "device_unavailable"))
        return MHD_HTTP_CONFLICT;
    if (!strcmp(e->code, "invalid_definition") || !strcmp(e->code, "bad_request"))
        return MHD_HTTP_BAD_REQUEST;
    return r == -ETIMEDOUT ? MHD_HTTP_GATEWAY_TIMEOUT : MHD_HTTP_INTERNAL_SERVER_ERROR;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, int r, struct nd_err *e)
{
    if (!e->code[0])
        snprintf(e->code, sizeof(e->code), "failed");
    json_t *o = api_error_body(e->msg, e->code, e->state[0] ? e->state : NULL);
    if (o && e->field[0])
        json_object_set_new(o, "field", json_string(e->field));
    return reply_json(c, status_of(r, e), o);
}

static enum MHD_Result bad_request(struct MHD_Connection *c, unsigned status, const char *code,
                                   const char *msg)
{
    struct nd_err e = { 0 };
    snprintf(e.msg, sizeof(e.msg), "%s", msg);
    snprintf(e.code, sizeof(e.code), "%s", code);
    json_t *o = api_error_body(e.msg, e.code, NULL);
    return reply_json(c, status, o);
}

/* ---- the event stream ---- */

struct stream {
    struct nimbusd *d;
    int64_t next;       /* the next seq to send */
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct stream *s = cls;
    struct nimbusd *d = s->d;
    pthread_mutex_lock(&d->lock);
    while (!d->stopping && s->next > d->last_seq) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_sec += 1;
        pthread_cond_timedwait(&d->changed, &d->lock, &t);
    }
    if (d->stopping) {
        pthread_mutex_unlock(&d->lock);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    /* Fell behind by more than the ring holds: skip to what is kept. */
    if (d->last_seq - s->next >= ND_EVENT_RING)
        s->next = d->last_seq - ND_EVENT_RING + 1;
    size_t used = 0;
    while (s->next <= d->last_seq) {
        json_t *j = nd_event_json(&d->ring[s->next % ND_EVENT_RING]);
        char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        size_t n = line ? strlen(line) : 0;
        if (line && used + n + 1 > max) {
            free(line);
            break;
        }
        if (line) {
            memcpy(buf + used, line, n);
            buf[used + n] = '\n';
            used += n + 1;
            free(line);
        }
        s->next++;
    }
    pthread_mutex_unlock(&d->lock);
    return (ssize_t)used;
}

static enum MHD_Result serve_events(struct nimbusd *d, struct MHD_Connection *c)
{
    struct stream *s = calloc(1, sizeof(*s));
    if (!s)
        return MHD_NO;
    s->d = d;
    pthread_mutex_lock(&d->lock);
    s->next = d->last_seq + 1;   /* what happens from now on */
    pthread_mutex_unlock(&d->lock);
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 8192,
                                                               stream_read, s, free);
    if (!r) {
        free(s);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-ndjson");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- the VM's log ---- */

/* GET .../log?follow=1: after the last lines, what is added to the file,
 * until the client goes or the daemon stops. */
struct log_follow {
    struct nimbusd *d;
    int fd;
    off_t pos;
};

static ssize_t follow_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct log_follow *f = cls;
    for (int waits = 0;; waits++) {
        ssize_t k = pread(f->fd, buf, max, f->pos);
        if (k > 0) {
            f->pos += k;
            return k;
        }
        pthread_mutex_lock(&f->d->lock);
        bool stopping = f->d->stopping;
        pthread_mutex_unlock(&f->d->lock);
        if (k < 0 || stopping)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (waits == 5)
            return 0;   /* let MHD see whether the client is still there */
        /* A log file is written by another process: no event to wait for
         * but its size. */
        usleep(100000);
    }
}

static void follow_free(void *cls)
{
    struct log_follow *f = cls;
    close(f->fd);
    free(f);
}

static enum MHD_Result serve_follow(struct nimbusd *d, struct MHD_Connection *c, char *head,
                                    int fd, off_t end)
{
    struct log_follow *f = calloc(1, sizeof(*f));
    if (!f) {
        free(head);
        close(fd);
        return MHD_NO;
    }
    /* `head` is the end of the file (the lines asked for): the reader
     * starts where it starts. */
    *f = (struct log_follow){ .d = d, .fd = fd, .pos = end - (off_t)strlen(head) };
    free(head);
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384,
                                                               follow_read, f, follow_free);
    if (!r) {
        follow_free(f);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result serve_log(struct nimbusd *d, struct MHD_Connection *c, const char *name)
{
    json_t *info = NULL;
    struct nd_err e = { 0 };
    int r = nd_info(d, name, &info, &e);   /* 404 for an unknown VM */
    if (r)
        return reply_error(c, r, &e);
    json_decref(info);
    const char *lines_arg = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "lines");
    long want = -1;
    if (lines_arg) {
        char *end;
        want = strtol(lines_arg, &end, 10);
        if (*end || want < 0)
            return bad_request(c, MHD_HTTP_BAD_REQUEST, "bad_request",
                               "lines: a number of lines, 0 or more");
    }
    const char *follow = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "follow");
    if (follow && strcmp(follow, "0") && strcmp(follow, "1"))
        return bad_request(c, MHD_HTTP_BAD_REQUEST, "bad_request", "follow: 0 or 1");
    bool follow_on = follow && !strcmp(follow, "1");
    char path[ND_PATH_MAX];
    nd_vm_data_path(d, name, "log", path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && follow_on) {
        /* Not started yet: follow the file once it exists. */
        int mk = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (mk >= 0)
            close(mk);
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    struct stat st;
    char *text = NULL;
    size_t n = 0;
    off_t end = 0;
    if (fd >= 0 && fstat(fd, &st) == 0) {
        end = st.st_size;
        off_t from = st.st_size > (off_t)MAX_LOG_BYTES ? st.st_size - MAX_LOG_BYTES : 0;
        text = malloc((size_t)(st.st_size - from) + 1);
        ssize_t k = text ? pread(fd, text, (size_t)(st.st_size - from), from) : -1;
        n = k > 0 ? (size_t)k : 0;
    }
    if (!text)
        text = malloc(1);
    if (!text) {
        if (fd >= 0)
            close(fd);
        return MHD_NO;
    }
    text[n] = '\0';
    if (want >= 0) {
        /* The last `want` lines (a final newline ends the last one). */
        size_t i = n && text[n - 1] == '\n' ? n - 1 : n;
        long seen = 0;
        while (i > 0 && seen < want)
            if (text[--i] == '\n' && ++seen == want)
                i++;
        if (want == 0)
            i = n;
        memmove(text, text + i, n - i + 1);
    }
    if (follow_on && fd >= 0)
        return serve_follow(d, c, text, fd, end);
    if (fd >= 0)
        close(fd);
    return reply_text(c, MHD_HTTP_OK, text, "text/plain; charset=utf-8");
}

/* ---- routing ---- */

static enum MHD_Result vm_action(struct nimbusd *d, struct MHD_Connection *c, const char *name,
                                 const char *action, json_t *body)
{
    struct nd_err e = { 0 };
    int r;
    if (!strcmp(action, "start"))
        r = nd_start(d, name, &e);
    else if (!strcmp(action, "pause"))
        r = nd_pause(d, name, &e);
    else if (!strcmp(action, "resume"))
        r = nd_resume(d, name, &e);
    else if (!strcmp(action, "save"))
        r = nd_save(d, name, &e);
    else if (!strcmp(action, "destroy"))
        r = nd_destroy(d, name, &e);
    else if (!strcmp(action, "migrate-cancel"))
        r = nd_migrate_cancel(d, name, &e);
    else if (!strcmp(action, "shutdown")) {
        json_int_t t = SHUTDOWN_DEFAULT_S;
        json_t *v = body ? json_object_get(body, "timeout_s") : NULL;
        if (body && (json_object_size(body) > (v ? 1u : 0u) || (v && !json_is_integer(v))))
            return bad_request(c, MHD_HTTP_BAD_REQUEST, "bad_request",
                               "the body may hold only \"timeout_s\": an integer");
        if (v)
            t = json_integer_value(v);
        if (t < 1 || t > SHUTDOWN_MAX_S)
            return bad_request(c, MHD_HTTP_BAD_REQUEST, "bad_request",
                               "timeout_s: from 1 to 3600");
        r = nd_shutdown(d, name, (unsigned)t, &e);
    } else
        return bad_request(c, MHD_HTTP_NOT_FOUND, "not_found", "no such route");
    if (r)
        return reply_error(c, r, &e);
    json_t *info = NULL;
    r = nd_info(d, name, &info, &e);
    return r ? reply_error(c, r, &e) : reply_json(c, MHD_HTTP_OK, info);
}

static enum MHD_Result dispatch(struct nimbusd *d, struct MHD_Connection *c, const char *method,
                                const char *url, json_t *body)
{
    struct nd_err e = { 0 };
    json_t *out = NULL;
    int r;
    bool get = !strcmp(method, "GET"), put = !strcmp(method, "PUT");
    if (!strcmp(url, "/vms")) {
        if (get) {
            r = nd_list(d, &out, &e);
            return r ? reply_error(c, r, &e) : reply_json(c, MHD_HTTP_OK, out);
        }
        if (!strcmp(method, "POST")) {
            if (!body)
                return bad_request(c, MHD_HTTP_BAD_REQUEST, "invalid_definition",
                                   "the body must be a VM definition (a JSON object)");
            r = nd_define(d, body, &out, &e);
            return r ? reply_error(c, r, &e) : reply_json(c, MHD_HTTP_CREATED, out);
        }
        return bad_request(c, MHD_HTTP_METHOD_NOT_ALLOWED, "bad_request",
                           "/vms takes GET or POST");
    }
    if (!strncmp(url, "/vms/", 5)) {
        char name[64] = "", action[32] = "";
        const char *rest = url + 5, *slash = strchr(rest, '/');
        size_t nl = slash ? (size_t)(slash - rest) : strlen(rest);
        if (nl == 0 || nl >= sizeof(name) || (slash && strlen(slash + 1) >= sizeof(action)))
            return bad_request(c, MHD_HTTP_NOT_FOUND, "not_found", "no such route");
        memcpy(name, rest, nl);
        if (slash)
            snprintf(action, sizeof(action), "%s", slash + 1);
        if (!action[0] && get) {
            r = nd_info(d, name, &out, &e);
            return r ? reply_error(c, r, &e) : reply_json(c, MHD_HTTP_OK, out);
        }
        if (!action[0] && !strcmp(method, "DELETE")) {
            r = nd_undefine(d, name, &e);
            return r ? reply_error(c, r, &e)
                     : reply_json(c, MHD_HTTP_OK, json_pack("{s:s, s:s}", "name", name, "state",
                                                            "undefined"));
        }
        if (!strcmp(action, "log") && get)
            return serve_log(d, c, name);
        if (!strcmp(action, "stats") && get) {
            r = nd_vm_stats(d, name, &out, &e);
            return r ? reply_error(c, r, &e) : reply_json(c, MHD_HTTP_OK, out);
        }
        if (put || !strcmp(method, "POST")) {
            /* Migration's routes (migration.c) take POST as well: libvirt's
             * clients and the spelling. */
            if (!strcmp(action, "migrate")) {
                if (!body)
                    return bad_request(c, MHD_HTTP_BAD_REQUEST, "bad_request",
                                       "the body must be a JSON object with \"to\"");
                json_t *gone = NULL;
                r = nd_migrate(d, name, body, &gone, &e);
                if (r)
                    return reply_error(c, r, &e);
                if (gone)
                    return reply_json(c, MHD_HTTP_OK, gone);
                r = nd_info(d, name, &out, &e);
                return r ? reply_error(c, r, &e) : reply_json(c, MHD_HTTP_OK, out);
            }
            if (!strcmp(action, "incoming")) {
                r = nd_incoming(d, name, body, &out, &e);
                return r ? reply_error(c, r, &e) : reply_json(c, MHD_HTTP_CREATED, out);
            }
            if (!strcmp(action, "migrate-cancel"))
                return vm_action(d, c, name, action, body);
        }
        if (action[0] && put)
            return vm_action(d, c, name, action, body);
        return bad_request(c, MHD_HTTP_NOT_FOUND, "not_found", "no such route");
    }
    if (!strcmp(url, "/events") && get)
        return serve_events(d, c);
    if (!strcmp(url, "/host") && get) {
        r = nd_host(d, &out, &e);
        return r ? reply_error(c, r, &e) : reply_json(c, MHD_HTTP_OK, out);
    }
    if (!strcmp(url, "/metrics") && get) {
        char *text = NULL;
        r = nd_metrics(d, &text, &e);
        return r ? reply_error(c, r, &e)
                 : reply_text(c, MHD_HTTP_OK, text, "text/plain; version=0.0.4; charset=utf-8");
    }
    return bad_request(c, MHD_HTTP_NOT_FOUND, "not_found", "no such route");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **req_cls)
{
    (void)version;
    struct nimbusd *d = cls;
    struct request_state *rs = *req_cls;
    if (!rs) {
        rs = calloc(1, sizeof(*rs));
        if (!rs)
            return MHD_NO;
        *req_cls = rs;
        return MHD_YES;
    }
    if (*upload_size) {
        if (rs->len + *upload_size > MAX_BODY)
            rs->too_big = true;
        if (!rs->too_big) {
            char *b = realloc(rs->body, rs->len + *upload_size + 1);
            if (!b)
                return MHD_NO;
            memcpy(b + rs->len, upload_data, *upload_size);
            rs->body = b;
            rs->len += *upload_size;
            b[rs->len] = '\0';
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (rs->too_big)
        return bad_request(c, MHD_HTTP_CONTENT_TOO_LARGE, "bad_request",
                           "the body is larger than 64 KiB");
    json_t *body = NULL;
    if (rs->len) {
        json_error_t je;
        body = json_loadb(rs->body, rs->len, JSON_REJECT_DUPLICATES, &je);
        if (!body || !json_is_object(body)) {
            char msg[300];
            snprintf(msg, sizeof(msg), "the body is not a JSON object: %s",
                     body ? "another JSON value" : je.text);
            json_decref(body);
            return bad_request(c, MHD_HTTP_BAD_REQUEST, "bad_request", msg);
        }
    }
    enum MHD_Result ret = dispatch(d, c, method, url, body);
    json_decref(body);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct request_state *rs = *req_cls;
    if (rs) {
        free(rs->body);
        free(rs);
    }
    *req_cls = NULL;
}

int nd_http_open(struct nimbusd *d, char *err, size_t errlen)
{
    struct api_socket s;
    int r = api_socket_listen(d->cfg.socket_path, "--socket", &s, err, errlen);
    if (r)
        return r;
    /* A host's clients come in bursts (a control plane, 20 scripts at
     * once): a unix socket's full backlog fails a non-blocking connect at
     * once (EAGAIN), so a longer one than a VM's API needs. */
    if (listen(s.fd, ND_LISTEN_BACKLOG)) {
        r = errmsg(err, errlen, -errno, "%s: listen: %s", s.path, strerror(errno));
        close(s.fd);
        api_socket_unlink(&s);
        return r;
    }
    d->http = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                   MHD_USE_POLL,
                               0, NULL, NULL, on_request, d, MHD_OPTION_LISTEN_SOCKET, s.fd,
                               MHD_OPTION_CONNECTION_LIMIT, MAX_CONNECTIONS,
                               MHD_OPTION_CONNECTION_TIMEOUT, 0u,
                               MHD_OPTION_NOTIFY_COMPLETED, on_completed, d, MHD_OPTION_END);
    if (!d->http) {
        close(s.fd);
        api_socket_unlink(&s);
        return errmsg(err, errlen, -EIO, "%s: cannot start the HTTP server", s.path);
    }
    snprintf(d->http_path, sizeof(d->http_path), "%s", s.path);
    d->http_sock = s;
    return 0;
}

void nd_http_close(struct nimbusd *d)
{
    if (!d->http)
        return;
    /* The event streams end first, then the server's threads. */
    pthread_mutex_lock(&d->lock);
    d->stopping = true;
    pthread_cond_broadcast(&d->changed);
    pthread_mutex_unlock(&d->lock);
    MHD_stop_daemon(d->http);
    d->http = NULL;
    api_socket_unlink(&d->http_sock);
}
