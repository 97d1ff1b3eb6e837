/* The CLI's API client. See api_client.h. */
#include "cli/api_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/dynlib.h"
#include "base/errmsg.h"

#define MAX_REPLY (4u << 20)   /* a reply bigger than this is not our server's */

struct curl_lib;

struct buf {
    char *data;
    size_t len;
    bool (*line)(void *opaque, const char *s);   /* streaming: hand out lines */
    void *opaque;
    bool stopped;
    bool (*stop)(void *opaque);  /* streaming: asked about once a second; true ends it */
    int status_ok;          /* streaming: -1 until the status is known */
    const struct curl_lib *lib;
    void *curl;
};

static bool stream_status_ok(struct buf *b);

/* libcurl's progress callback: runs even while no data comes. */
static int on_progress(void *opaque, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    struct buf *b = opaque;
    if (b->stop && b->stop(b->opaque))
        b->stopped = true;
    return b->stopped;
}

static size_t on_data(char *p, size_t size, size_t n, void *opaque)
{
    struct buf *b = opaque;
    size_t k = size * n;
    if (b->len + k > MAX_REPLY)
        return 0;
    char *d = realloc(b->data, b->len + k + 1);
    if (!d)
        return 0;
    memcpy(d + b->len, p, k);
    b->data = d;
    b->len += k;
    d[b->len] = '\0';
    /* Only a 2xx reply's body is a stream: an error's is kept whole. */
    if (!b->line || !stream_status_ok(b))
        return k;
    char *nl;
    while ((nl = memchr(b->data, '\n', b->len))) {
        *nl = '\0';
        if (!b->line(b->opaque, b->data)) {
            b->stopped = true;
            return 0;
        }
        size_t used = (size_t)(nl - b->data) + 1;
        memmove(b->data, nl + 1, b->len - used + 1);
        b->len -= used;
    }
    return k;
}

/* libcurl, loaded when a command talks to an API (base/dynlib.h): its
 * dependencies (TLS, Kerberos, LDAP, ... about twenty shared libraries)
 * would cost every nimbus process about 10 ms at start, and `run`,
 * `restore` and `exec` never use it. Only these functions are used. */
struct curl_lib {
    __typeof__(&curl_easy_init) easy_init;
    __typeof__(&curl_easy_setopt) easy_setopt;
    __typeof__(&curl_easy_perform) easy_perform;
    __typeof__(&curl_easy_getinfo) easy_getinfo;
    __typeof__(&curl_easy_cleanup) easy_cleanup;
    __typeof__(&curl_easy_strerror) easy_strerror;
    __typeof__(&curl_slist_append) slist_append;
    __typeof__(&curl_slist_free_all) slist_free_all;
};

static int curl_open(struct curl_lib *l, char *err, size_t errlen)
{
    static const struct dynlib_sym syms[] = {
        DYNLIB_SYM(struct curl_lib, easy_init, "curl_easy_init"),
        DYNLIB_SYM(struct curl_lib, easy_setopt, "curl_easy_setopt"),
        DYNLIB_SYM(struct curl_lib, easy_perform, "curl_easy_perform"),
        DYNLIB_SYM(struct curl_lib, easy_getinfo, "curl_easy_getinfo"),
        DYNLIB_SYM(struct curl_lib, easy_cleanup, "curl_easy_cleanup"),
        DYNLIB_SYM(struct curl_lib, easy_strerror, "curl_easy_strerror"),
        DYNLIB_SYM(struct curl_lib, slist_append, "curl_slist_append"),
        DYNLIB_SYM(struct curl_lib, slist_free_all, "curl_slist_free_all"),
    };
    return dynlib_load("libcurl.so.4", "libcurl4", syms, sizeof(syms) / sizeof(syms[0]), l, err,
                       errlen);
}

static bool stream_status_ok(struct buf *b)
{
    if (b->status_ok < 0) {
        long code = 0;
        b->lib->easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &code);
        b->status_ok = code >= 200 && code < 300;
    }
    return b->status_ok;
}

/* timeout_ms: for the whole request (0: none). */
static int request_with(const struct curl_lib *lib, const char *sock, const char *method,
                        const char *path, const char *body, long timeout_ms, struct buf *b,
                        long *status, char *err, size_t errlen)
{
    CURL *c = lib->easy_init();
    if (!c)
        return errmsg(err, errlen, -ENOMEM, "cannot start libcurl");
    char url[1024];
    snprintf(url, sizeof(url), "http://localhost%s", path);
    lib->easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
    lib->easy_setopt(c, CURLOPT_URL, url);
    lib->easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    lib->easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    lib->easy_setopt(c, CURLOPT_WRITEDATA, b);
    lib->easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (timeout_ms > 0)
        lib->easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    if (b->stop) {
        lib->easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        lib->easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        lib->easy_setopt(c, CURLOPT_XFERINFODATA, b);
    }
    b->lib = lib;
    b->curl = c;
    b->status_ok = -1;
    struct curl_slist *h = NULL;
    if (body) {
        h = lib->slist_append(h, "Content-Type: application/json");
        lib->easy_setopt(c, CURLOPT_HTTPHEADER, h);
        lib->easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    CURLcode rc = lib->easy_perform(c);
    int r = 0;
    if (rc != CURLE_OK &&
        !((rc == CURLE_WRITE_ERROR || rc == CURLE_ABORTED_BY_CALLBACK) && b->stopped)) {
        bool gone = rc == CURLE_COULDNT_CONNECT;
        if (rc == CURLE_OPERATION_TIMEDOUT)
            r = errmsg(err, errlen, -ETIMEDOUT, "%s: no reply within %ld ms", sock, timeout_ms);
        else
            r = errmsg(err, errlen, gone ? -ECONNREFUSED : -EIO, "%s: %s", sock,
                       gone ? "no VM serves its API there" : lib->easy_strerror(rc));
    }
    lib->easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    lib->slist_free_all(h);
    lib->easy_cleanup(c);
    return r;
}

static int request(const char *sock, const char *method, const char *path, const char *body,
                   long timeout_ms, struct buf *b, long *status, char *err, size_t errlen)
{
    struct curl_lib lib;
    int r = curl_open(&lib, err, errlen);
    if (r)
        return r;
    return request_with(&lib, sock, method, path, body, timeout_ms, b, status, err, errlen);
}
static int api_request(const char *sock, const char *method, const char *path, const char *body,
                       long timeout_ms, long *status, char **text, size_t *len, char *err,
                       size_t errlen)
{
    struct buf b = { 0 };
    *text = NULL;
    *len = 0;
    *status = 0;
    int r = request(sock, method, path, body, timeout_ms, &b, status, err, errlen);
    if (r) {
        free(b.data);
        return r;
    }
    *text = b.data ? b.data : strdup("");
    *len = b.len;
    return *text ? 0 : errmsg(err, errlen, -ENOMEM, "out of memory");
}

int api_call_timeout(const char *sock, const char *method, const char *path, const char *body,
                     long timeout_ms, long *status, json_t **reply, char *err, size_t errlen)
{
    char *text;
    size_t len;
    *reply = NULL;
    int r = api_request(sock, method, path, body, timeout_ms, status, &text, &len, err, errlen);
    if (r)
        return r;
    if (len)
        *reply = json_loadb(text, len, 0, NULL);
    if (!*reply)
        r = errmsg(err, errlen, -EPROTO, "%s: HTTP %ld without a JSON reply", sock, *status);
    free(text);
    return r;
}

int api_call(const char *sock, const char *method, const char *path, const char *body,
             long *status, json_t **reply, char *err, size_t errlen)
{
    return api_call_timeout(sock, method, path, body, 0, status, reply, err, errlen);
}

static int stream_reply(const char *sock, const char *path,
                        bool (*line)(void *opaque, const char *s), bool (*stop)(void *opaque),
                        void *opaque, long *status, json_t **reply, char *err, size_t errlen)
{
    struct buf b = { .line = line, .stop = stop, .opaque = opaque };
    *reply = NULL;
    *status = 0;
    int r = request(sock, "GET", path, NULL, 0, &b, status, err, errlen);
    bool ok = *status >= 200 && *status < 300;
    /* A last line without its newline. */
    if (r == 0 && ok && !b.stopped && b.len)
        line(opaque, b.data);
    if (r == 0 && !ok && !b.stopped) {
        *reply = b.data ? json_loadb(b.data, b.len, 0, NULL) : NULL;
        if (!*reply)
            r = errmsg(err, errlen, -EPROTO, "%s: HTTP %ld: %.200s", sock, *status,
                       b.data ? b.data : "");
    }
    free(b.data);
    return r;
}

int api_stream_reply(const char *sock, const char *path,
                     bool (*line)(void *opaque, const char *s), void *opaque, long *status,
                     json_t **reply, char *err, size_t errlen)
{
    return stream_reply(sock, path, line, NULL, opaque, status, reply, err, errlen);
}

int api_stream_until(const char *sock, const char *path,
                     bool (*line)(void *opaque, const char *s), bool (*stop)(void *opaque),
                     void *opaque, char *err, size_t errlen)
{
    long status;
    json_t *reply;
    int r = stream_reply(sock, path, line, stop, opaque, &status, &reply, err, errlen);
    if (r == 0 && reply) {
        const char *msg = json_string_value(json_object_get(reply, "error"));
        r = errmsg(err, errlen, -EPROTO, "%s: HTTP %ld: %.200s", sock, status, msg ? msg : "error");
        json_decref(reply);
    }
    return r;
}

int api_stream(const char *sock, const char *path, bool (*line)(void *opaque, const char *s),
               void *opaque, char *err, size_t errlen)
{
    return api_stream_until(sock, path, line, NULL, opaque, err, errlen);
}

int api_cmd_parse_spec(int argc, char **argv, const struct api_cmd_spec *s,
                       struct api_cmd_args *a, bool *done)
{
    struct option opts[20] = {
        { "json", no_argument, NULL, 'J' },
        { "help", no_argument, NULL, 'h' },
    };
    size_t n = 2;
    if (s->which & API_CMD_API)
        opts[n++] = (struct option){ "api", required_argument, NULL, 'A' };
    if (s->which & API_CMD_CONNECT)
        opts[n++] = (struct option){ "connect", required_argument, NULL, 'C' };
    for (const struct option *o = s->extra; o && o->name && n < 19; o++)
        opts[n++] = *o;
    char shortopts[32];
    snprintf(shortopts, sizeof(shortopts), "h%s", s->shortopts ? s->shortopts : "");
    *a = (struct api_cmd_args){ 0 };
    *done = false;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
        switch (c) {
        case 'A':
            a->sock = optarg;
            break;
        case 'C':
            a->connect = optarg;
            break;
        case 'J':
            a->json = true;
            break;
        case 'h':
            fputs(s->usage, stdout);
            *done = true;
            return 0;
        case '?':
            fputs(s->usage, stderr);
            return 2;
        default:
            if (!s->on_extra || s->on_extra(s->opaque, c, optarg)) {
                fputs(s->usage, stderr);
                return 2;
            }
        }
    }
    /* A command of the per-VM API only: --api is how it finds the VM. */
    if (s->which == API_CMD_API && (!a->sock || !*a->sock)) {
        fprintf(stderr, "nimbus %s: --api PATH is required (the socket of 'nimbus run --api')\n",
                argv[0]);
        return 2;
    }
    a->first_arg = optind;
    return 0;
}

int api_cmd_parse(int argc, char **argv, const char *usage, const struct option *extra,
                  int (*on_extra)(void *opaque, int opt, const char *arg), void *opaque,
                  struct api_cmd_args *a, bool *done)
{
    const struct api_cmd_spec s = {
        .usage = usage, .which = API_CMD_API, .extra = extra, .on_extra = on_extra,
        .opaque = opaque,
    };
    return api_cmd_parse_spec(argc, argv, &s, a, done);
}

void api_print_json(json_t *reply)
{
    char *s = json_dumps(reply, JSON_COMPACT);
    if (s)
        puts(s);
    free(s);
    json_decref(reply);
}

int api_cmd_call(const char *name, const struct api_cmd_args *a, const char *method,
                 const char *path, const char *body, json_t **reply)
{
    char err[256];
    long status;
    if (api_call(a->sock, method, path, body, &status, reply, err, sizeof(err))) {
        fprintf(stderr, "nimbus %s: %s\n", name, err);
        return 1;
    }
    if (status >= 200 && status < 300)
        return 0;
    const char *msg = json_string_value(json_object_get(*reply, "error"));
    fprintf(stderr, "nimbus %s: %s (HTTP %ld)\n", name, msg ? msg : "error", status);
    if (a->json)
        api_print_json(*reply);
    else
        json_decref(*reply);
    *reply = NULL;
    return 1;
}

void api_cmd_print(const struct api_cmd_args *a, json_t *reply, void (*human)(json_t *reply))
{
    if (a->json) {
        api_print_json(reply);
        return;
    }
    if (human) {
        human(reply);
    } else {
        const char *st = json_string_value(json_object_get(reply, "state"));
        printf("state: %s\n", st ? st : "?");
    }
    json_decref(reply);
}

int api_cmd_no_operands(int argc, char **argv, const struct api_cmd_args *a)
{
    if (a->first_arg >= argc)
        return 0;
    fprintf(stderr, "nimbus %s: unexpected argument '%s'\n", argv[0], argv[a->first_arg]);
    return 2;
}

int api_cmd_run(int argc, char **argv, const struct api_cmd_args *a, const char *method,
                const char *path, void (*human)(json_t *reply))
{
    json_t *reply;
    int r = api_cmd_no_operands(argc, argv, a);
    if (!r)
        r = api_cmd_call(argv[0], a, method, path, NULL, &reply);
    if (r)
        return r;
    api_cmd_print(a, reply, human);
    return 0;
}

int api_cmd_simple(int argc, char **argv, const char *usage, const char *method,
                   const char *path, void (*human)(json_t *reply))
{
    struct api_cmd_args a;
    bool done;
    int r = api_cmd_parse(argc, argv, usage, NULL, NULL, NULL, &a, &done);
    if (r || done)
        return r;
    return api_cmd_run(argc, argv, &a, method, path, human);
}
