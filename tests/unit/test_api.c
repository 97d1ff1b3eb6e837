/* Unit tests for the per-VM API (src/api) with a fake VM:
 *  - the router: every route, wrong states (409 naming the state), unknown
 *    paths (404) and methods (405), malformed JSON, unknown fields, wrong
 *    types, missing fields, duplicate keys; typed requests filled in;
 *  - docs/openapi.json against the route table, both ways, and each
 *    operation's documented error statuses;
 *  - the HTTP server over a real unix socket, served by a poll loop as the
 *    VM's I/O thread serves it, spoken to with the CLI's libcurl client:
 *    replies and errors, a 20 KiB body (413), 20 KiB of headers (431),
 *    8 clients at once, the event stream seeing pause and resume, the
 *    socket path rules, graceful shutdown through a fake guest agent (the
 *    frames it gets), refused without an agent, and the destroy at the
 *    deadline. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "cli/api_client.h"

#include "check.h"

/* ---- the fake VM ---- */

struct fake {
    _Atomic int state;          /* enum vm_state */
    _Atomic int destroys;
    _Atomic int handled;
    char agent_path[108];       /* "": no agent */
};

static enum vm_state fake_state(void *o)
{
    return (enum vm_state)atomic_load(&((struct fake *)o)->state);
}

static int fake_handle(void *o, const struct api_request *req, json_t *reply, char *err,
                       size_t errlen)
{
    struct fake *f = o;
    atomic_fetch_add(&f->handled, 1);
    switch (req->action) {
    case API_PAUSE:
        atomic_store(&f->state, VM_STATE_PAUSED);
        break;
    case API_RESUME:
        atomic_store(&f->state, VM_STATE_RUNNING);
        break;
    case API_DESTROY:
        atomic_fetch_add(&f->destroys, 1);
        atomic_store(&f->state, VM_STATE_SHUTDOWN);
        break;
    case API_SNAPSHOT:
        snprintf(err, errlen, "snapshots are not built yet");
        return -ENOTSUP;
    case API_BALLOON:
        if (req->target_mib > 100) {
            snprintf(err, errlen, "no balloon device");
            return -ENODEV;
        }
        json_object_set_new(reply, "target_mib", json_integer((json_int_t)req->target_mib));
        break;
    default:
        break;
    }
    json_object_set_new(reply, "state", json_string(vm_state_name(fake_state(o))));
    return 0;
}

static int fake_agent(void *o, int *fd, uint32_t *port, char *err, size_t errlen)
{
    struct fake *f = o;
    if (!f->agent_path[0]) {
        snprintf(err, errlen, "the guest has no agent");
        return -ENOTSUP;
    }
    /* The fake's "device" is a unix socket the test listens on. */
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->agent_path);
    *fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (*fd < 0 || connect(*fd, (struct sockaddr *)&sa, sizeof(sa))) {
        snprintf(err, errlen, "%s: %s", f->agent_path, strerror(errno));
        if (*fd >= 0)
            close(*fd);
        return -EIO;
    }
    *port = 1024;
    return 0;
}

/* ---- the router ---- */

static int route(const char *method, const char *url, const char *body, enum vm_state st,
                 struct api_request *req, const char **code)
{
    static char codebuf[64];
    json_t *e = NULL;
    int s = api_route(method, url, body, body ? strlen(body) : 0, st, req, &e);
    codebuf[0] = '\0';
    if (e) {
        snprintf(codebuf, sizeof(codebuf), "%s", json_string_value(json_object_get(e, "code")));
        if (!strcmp(codebuf, "wrong_state"))
            CHECK(!strcmp(json_string_value(json_object_get(e, "state")), vm_state_name(st)));
        CHECK(json_string_value(json_object_get(e, "error")) != NULL);
    }
    json_decref(e);
    *code = codebuf;
    return s;
}

static void test_router(void)
{
    struct api_request req;
    const char *code;
    CHECK_EQ(route("GET", "/vm", NULL, VM_STATE_RUNNING, &req, &code), 0);
    CHECK_EQ(req.action, API_GET_VM);
    CHECK_EQ(route("GET", "/vm", NULL, VM_STATE_SHUTDOWN, &req, &code), 0);
    CHECK_EQ(route("PUT", "/vm/pause", "", VM_STATE_RUNNING, &req, &code), 0);
    CHECK_EQ(route("PUT", "/vm/pause", " {} ", VM_STATE_RUNNING, &req, &code), 0);
    CHECK_EQ(req.action, API_PAUSE);
    CHECK_EQ(route("PUT", "/vm/balloon", "{\"target_mib\": 64}", VM_STATE_PAUSED, &req, &code), 0);
    CHECK(req.action == API_BALLOON && req.target_mib == 64);
    CHECK_EQ(route("PUT", "/vm/shutdown", NULL, VM_STATE_RUNNING, &req, &code), 0);
    CHECK_EQ(req.timeout_s, API_SHUTDOWN_TIMEOUT_S);
    CHECK_EQ(route("PUT", "/vm/shutdown", "{\"timeout_s\":5}", VM_STATE_RUNNING, &req, &code), 0);
    CHECK_EQ(req.timeout_s, 5);
    CHECK_EQ(route("PUT", "/vm/snapshot", "{\"path\":\"/tmp/s\",\"diff\":true,\"stop\":false}",
                   VM_STATE_RUNNING, &req, &code), 0);
    CHECK(req.action == API_SNAPSHOT && !strcmp(req.snapshot.path, "/tmp/s") && req.snapshot.diff &&
          !req.snapshot.compress && !req.snapshot.stop);
    /* Post-copy pre-paging: on unless turned off. */
    CHECK_EQ(route("PUT", "/vm/migrate", "{\"to\":\"unix:/r\",\"mode\":\"postcopy\"}",
                   VM_STATE_RUNNING, &req, &code), 0);
    CHECK(req.action == API_MIGRATE && !req.migrate.no_prepage);
    CHECK_EQ(route("PUT", "/vm/migrate", "{\"to\":\"unix:/r\",\"mode\":\"hybrid\","
                   "\"postcopy_prepage\":false}", VM_STATE_RUNNING, &req, &code), 0);
    CHECK(req.action == API_MIGRATE && req.migrate.no_prepage);
    /* Post-copy recovery: resume (migrating), recover. */
    CHECK_EQ(route("PUT", "/vm/migrate", "{\"to\":\"unix:/tmp/r\",\"resume\":true}",
                   VM_STATE_MIGRATING, &req, &code), 0);
    CHECK(req.action == API_MIGRATE && req.migrate.resume && !strcmp(req.migrate.to, "unix:/tmp/r"));
    CHECK_EQ(route("PUT", "/vm/migration/recover", "{\"listen\":\"tcp:0.0.0.0:0\"}",
                   VM_STATE_MIGRATING, &req, &code), 0);
    CHECK(req.action == API_MIGRATE_RECOVER && !strcmp(req.path, "tcp:0.0.0.0:0"));

    static const struct {
        const char *method, *url, *body;
        enum vm_state state;
        int status;
        const char *code;
    } bad[] = {
        { "PUT", "/vm/pause", NULL, VM_STATE_PAUSED, 409, "wrong_state" },
        { "PUT", "/vm/resume", NULL, VM_STATE_RUNNING, 409, "wrong_state" },
        { "PUT", "/vm/shutdown", NULL, VM_STATE_PAUSED, 409, "wrong_state" },
        { "PUT", "/vm/destroy", NULL, VM_STATE_SHUTDOWN, 409, "wrong_state" },
        { "PUT", "/vm/reset", NULL, VM_STATE_SHUTDOWN, 409, "wrong_state" },
        { "PUT", "/vm/balloon", "{\"target_mib\":1}", VM_STATE_SHUTDOWN, 409, "wrong_state" },
        { "PUT", "/vm/snapshot", "{\"path\":\"x\"}", VM_STATE_SHUTDOWN, 409, "wrong_state" },
        { "GET", "/nope", NULL, VM_STATE_RUNNING, 404, "not_found" },
        { "GET", "/vm/", NULL, VM_STATE_RUNNING, 404, "not_found" },
        { "GET", "/vm?x=1", NULL, VM_STATE_RUNNING, 404, "not_found" },
        { "POST", "/vm/pause", NULL, VM_STATE_RUNNING, 405, "method_not_allowed" },
        { "DELETE", "/vm", NULL, VM_STATE_RUNNING, 405, "method_not_allowed" },
        { "GET", "/vm/pause", NULL, VM_STATE_RUNNING, 405, "method_not_allowed" },
        { "PUT", "/vm/pause", "{", VM_STATE_RUNNING, 400, "bad_request" },
        { "PUT", "/vm/pause", "{\"x\":1}", VM_STATE_RUNNING, 400, "bad_request" },
        { "PUT", "/vm/pause", "[]", VM_STATE_RUNNING, 400, "bad_request" },
        { "PUT", "/vm/balloon", NULL, VM_STATE_RUNNING, 400, "bad_request" },
        { "PUT", "/vm/balloon", "{}", VM_STATE_RUNNING, 400, "bad_request" },
        { "PUT", "/vm/balloon", "{\"target_mib\":\"5\"}", VM_STATE_RUNNING, 400, "bad_request" },
        { "PUT", "/vm/balloon", "{\"target_mib\":-1}", VM_STATE_RUNNING, 400, "bad_request" },
        { "PUT", "/vm/balloon", "{\"target_mib\":1.5}", VM_STATE_RUNNING, 400, "bad_request" },
        { "PUT", "/vm/balloon", "{\"target_mib\":1,\"target_mib\":2}", VM_STATE_RUNNING, 400,
          "bad_request" },
        { "PUT", "/vm/balloon", "{\"target_mib\":1} {}", VM_STATE_RUNNING, 400, "bad_request" },
        { "PUT", "/vm/shutdown", "{\"timeout_s\":0}", VM_STATE_RUNNING, 400, "bad_request" },
        { "PUT", "/vm/shutdown", "{\"timeout_s\":99999}", VM_STATE_RUNNING, 400, "bad_request" },
        { "PUT", "/vm/snapshot", "{\"path\":\"\"}", VM_STATE_RUNNING, 400, "bad_request" },
        { "PUT", "/vm/snapshot", "{\"path\":\"a\\u0000b\"}", VM_STATE_RUNNING, 400, "bad_request" },
        { "PUT", "/vm/snapshot", "{\"path\":\"a\",\"diff\":1}", VM_STATE_RUNNING, 400, "bad_request" },
        { "GET", "/vm", "{\"a\":1}", VM_STATE_RUNNING, 400, "bad_request" },
        { "PUT", "/vm/migrate", "{\"to\":\"unix:/r\",\"resume\":true,\"mode\":\"postcopy\"}",
          VM_STATE_MIGRATING, 400, "bad_request" },
        { "PUT", "/vm/migrate", "{\"to\":\"unix:/r\",\"postcopy_prepage\":false}",
          VM_STATE_RUNNING, 400, "bad_request" },
        { "PUT", "/vm/migrate", "{\"to\":\"unix:/r\",\"mode\":\"postcopy\",\"postcopy_prepage\":0}",
          VM_STATE_RUNNING, 400, "bad_request" },
        { "PUT", "/vm/migration/recover", "{\"listen\":\"unix:/r\"}", VM_STATE_RUNNING, 409,
          "wrong_state" },
        { "PUT", "/vm/migration/recover", "{}", VM_STATE_MIGRATING, 400, "bad_request" },
        { "PUT", "/vm/migration/recover", "{\"listen\":\"\"}", VM_STATE_MIGRATING, 400,
          "bad_request" },
        { "PUT", "/vm/migration/recover", "{\"listen\":3}", VM_STATE_MIGRATING, 400,
          "bad_request" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int s = route(bad[i].method, bad[i].url, bad[i].body, bad[i].state, &req, &code);
        CHECK_MSG(s == bad[i].status && !strcmp(code, bad[i].code), "%s %s %s: %d %s",
                  bad[i].method, bad[i].url, bad[i].body ? bad[i].body : "", s, code);
    }
}

/* ---- the OpenAPI document against the route table ---- */

static bool has_response(json_t *op, const char *status)
{
    return json_object_get(json_object_get(op, "responses"), status) != NULL;
}

static void test_openapi(void)
{
    json_error_t je;
    json_t *doc = json_load_file("docs/openapi.json", 0, &je);
    CHECK_MSG(doc != NULL, "docs/openapi.json: %s (line %d)", je.text, je.line);
    if (!doc)
        return;
    json_t *paths = json_object_get(doc, "paths");
    size_t n;
    const struct api_route *r = api_routes(&n);
    size_t documented = 0;
    const char *path;
    json_t *item;
    json_object_foreach(paths, path, item) {
        const char *method;
        json_t *op;
        json_object_foreach(item, method, op) {
            documented++;
            const struct api_route *found = NULL;
            for (size_t i = 0; i < n; i++)
                if (!strcmp(r[i].path, path) && !strcasecmp(r[i].method, method))
                    found = &r[i];
            CHECK_MSG(found != NULL, "documented %s %s is not served", method, path);
            CHECK_MSG(has_response(op, "400") && has_response(op, "413"),
                      "%s %s: 400 and 413 not documented", method, path);
            if (found && found->states)
                CHECK_MSG(has_response(op, "409"), "%s %s: 409 not documented", method, path);
        }
    }
    for (size_t i = 0; i < n; i++) {
        char m[8];
        size_t k;
        for (k = 0; r[i].method[k] && k < sizeof(m) - 1; k++)
            m[k] = (char)(r[i].method[k] | 0x20);
        m[k] = '\0';
        CHECK_MSG(json_object_get(json_object_get(paths, r[i].path), m) != NULL,
                  "served %s %s is not documented", r[i].method, r[i].path);
    }
    CHECK_EQ(documented, n);
    json_decref(doc);
}

/* ---- the server ---- */

struct server {
    struct api *api;
    _Atomic bool stop;
    pthread_t thread;
};

/* The I/O thread's loop, as vm_run_io runs a source. */
static void *serve(void *arg)
{
    struct server *s = arg;
    struct vm_io_source src = api_io_source(s->api);
    while (!atomic_load(&s->stop)) {
        struct pollfd fds[VM_IO_SOURCE_MAX_FDS];
        unsigned n = src.fill(src.opaque, fds, VM_IO_SOURCE_MAX_FDS);
        int r = poll(fds, n, 20);
        if (r > 0)
            src.handle(src.opaque, fds, n);
    }
    return NULL;
}

static char dir[64], sock[96];

static int call(const char *method, const char *path, const char *body, json_t **reply)
{
    char err[256];
    long status = 0;
    *reply = NULL;
    if (api_call(sock, method, path, body, &status, reply, err, sizeof(err))) {
        fprintf(stderr, "api_call: %s\n", err);
        return -1;
    }
    return (int)status;
}

static const char *code_of(json_t *r)
{
    const char *c = json_string_value(json_object_get(r, "code"));
    return c ? c : "";
}

struct streamer {
    json_t *events[16];
    _Atomic int n;
    int want;
};

static bool on_event(void *o, const char *line)
{
    struct streamer *s = o;
    int n = atomic_load(&s->n);
    if (n < 16) {
        s->events[n] = json_loads(line, 0, NULL);
        atomic_store(&s->n, n + 1);
    }
    return n + 1 < s->want;
}

static void *stream_thread(void *o)
{
    char err[256];
    if (api_stream(sock, "/vm/events", on_event, o, err, sizeof(err)))
        fprintf(stderr, "stream: %s\n", err);
    return NULL;
}

static void *many_thread(void *o)
{
    int *ok = o;
    for (int i = 0; i < 20; i++) {
        json_t *r;
        if (call("GET", "/vm", NULL, &r) == 200 && json_is_string(json_object_get(r, "state")))
            (*ok)++;
        json_decref(r);
    }
    return NULL;
}

/* A fake guest agent behind a fake --vsock socket: answers the handshake,
 * reads frames until the empty stdin frame, keeps what it got. */
struct fake_agent {
    int listen_fd;
    char got[256];
    size_t len;
};

static void *agent_thread(void *o)
{
    struct fake_agent *a = o;
    int fd = accept(a->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    char line[32];
    size_t k = 0;
    while (k < sizeof(line) - 1 && read(fd, line + k, 1) == 1 && line[k] != '\n')
        k++;
    if (write(fd, "OK 1\n", 5) != 5)
        goto out;
    for (;;) {
        unsigned char h[5];
        if (read(fd, h, 5) != 5)
            break;
        uint32_t len = (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4];
        if (a->len + 2 + len >= sizeof(a->got))
            break;
        a->got[a->len++] = (char)h[0];
        if (len && read(fd, a->got + a->len, len) != (ssize_t)len)
            break;
        a->len += len;
        a->got[a->len++] = ' ';
        if (h[0] == 'i' && len == 0)
            break;
    }
out:
    close(fd);
    return NULL;
}

static void test_server(void)
{
    struct fake f = { .state = VM_STATE_RUNNING };
    struct api_ops ops = { .state = fake_state, .handle = fake_handle, .agent = fake_agent,
                           .opaque = &f };
    char err[256];
    struct server s = { 0 };

    /* Path rules: a regular file is refused and kept. */
    char file[128];
    snprintf(file, sizeof(file), "%s/file", dir);
    FILE *fp = fopen(file, "w");
    fputs("keep", fp);
    fclose(fp);
    CHECK_EQ(api_open_ops(file, &ops, &s.api, err, sizeof(err)), -EEXIST);
    CHECK(strstr(err, "exists and is not a socket") != NULL);
    struct stat st;
    CHECK(stat(file, &st) == 0 && st.st_size == 4);

    /* A stale socket is replaced. */
    int stale = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
    CHECK_EQ(bind(stale, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(stale);
    CHECK_EQ(api_open_ops(sock, &ops, &s.api, err, sizeof(err)), 0);
    CHECK(stat(sock, &st) == 0 && (st.st_mode & 077) == 0);   /* the owner only */
    /* A live one is refused. */
    struct api *second;
    CHECK_EQ(api_open_ops(sock, &ops, &second, err, sizeof(err)), -EADDRINUSE);
    pthread_create(&s.thread, NULL, serve, &s);

    json_t *r;
    CHECK_EQ(call("GET", "/vm", NULL, &r), 200);
    CHECK(!strcmp(json_string_value(json_object_get(r, "state")), "running"));
    CHECK(json_is_integer(json_object_get(r, "uptime_ms")));
    json_decref(r);

    /* The event stream sees the pause and the resume. */
    struct streamer ev = { .want = 3 };
    pthread_t et;
    pthread_create(&et, NULL, stream_thread, &ev);
    struct timespec nap = { 0, 50 * 1000 * 1000 };
    for (int i = 0; i < 200 && atomic_load(&ev.n) < 1; i++)   /* its first line: it is up */
        nanosleep(&nap, NULL);
    CHECK_EQ(atomic_load(&ev.n), 1);

    CHECK_EQ(call("PUT", "/vm/pause", NULL, &r), 200);
    CHECK(!strcmp(json_string_value(json_object_get(r, "state")), "paused"));
    json_decref(r);
    CHECK_EQ(call("PUT", "/vm/pause", NULL, &r), 409);
    CHECK(!strcmp(code_of(r), "wrong_state"));
    CHECK(!strcmp(json_string_value(json_object_get(r, "state")), "paused"));
    json_decref(r);
    CHECK_EQ(call("PUT", "/vm/resume", "{}", &r), 200);
    json_decref(r);
    pthread_join(et, NULL);
    CHECK_EQ(ev.n, 3);
    if (ev.n == 3) {
        CHECK(json_is_null(json_object_get(ev.events[0], "old")));
        CHECK(!strcmp(json_string_value(json_object_get(ev.events[1], "new")), "paused"));
        CHECK(!strcmp(json_string_value(json_object_get(ev.events[2], "old")), "paused"));
        CHECK(!strcmp(json_string_value(json_object_get(ev.events[2], "new")), "running"));
        CHECK(json_is_integer(json_object_get(ev.events[2], "time_ms")));
    }
    for (int i = 0; i < ev.n; i++)
        json_decref(ev.events[i]);

    /* Errors. */
    CHECK_EQ(call("GET", "/nope", NULL, &r), 404);
    CHECK(!strcmp(code_of(r), "not_found"));
    json_decref(r);
    CHECK_EQ(call("DELETE", "/vm", NULL, &r), 405);
    json_decref(r);
    CHECK_EQ(call("PUT", "/vm/balloon", "{\"target_mib\":", &r), 400);
    CHECK(strstr(json_string_value(json_object_get(r, "error")), "malformed JSON") != NULL);
    json_decref(r);
    CHECK_EQ(call("PUT", "/vm/balloon", "{\"target_mib\":500}", &r), 409);
    CHECK(!strcmp(code_of(r), "no_device"));
    json_decref(r);
    CHECK_EQ(call("PUT", "/vm/snapshot", "{\"path\":\"/x\"}", &r), 501);
    CHECK(!strcmp(code_of(r), "unsupported"));
    json_decref(r);
    char *big = malloc(20 * 1024 + 32);
    strcpy(big, "{\"target_mib\":1,\"x\":\"");
    memset(big + strlen(big), 'a', 20 * 1024);
    strcpy(big + 22 + 20 * 1024, "\"}");
    CHECK_EQ(call("PUT", "/vm/balloon", big, &r), 413);
    CHECK(!strcmp(code_of(r), "too_large"));
    json_decref(r);
    free(big);
    CHECK_EQ(call("GET", "/routes", NULL, &r), 200);
    size_t nroutes;
    api_routes(&nroutes);
    CHECK_EQ(json_array_size(json_object_get(r, "routes")), nroutes);
    json_decref(r);

    /* Headers over the limit: refused by the server, which goes on. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    static char req[24 * 1024];
    int k = snprintf(req, sizeof(req), "GET /vm HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(req + k, 'b', 20 * 1024);
    k += 20 * 1024;
    k += snprintf(req + k, sizeof(req) - (size_t)k, "\r\n\r\n");
    ssize_t w = send(fd, req, (size_t)k, MSG_NOSIGNAL);
    (void)w;
    char resp[256] = "";
    ssize_t got = recv(fd, resp, sizeof(resp) - 1, 0);
    CHECK_MSG(got > 12 && (!strncmp(resp, "HTTP/1.1 431", 12) || !strncmp(resp, "HTTP/1.1 413", 12)),
              "oversized headers: %.40s", got > 0 ? resp : "(nothing)");
    close(fd);

    /* Concurrent clients. */
    pthread_t many[8];
    int ok[8] = { 0 };
    for (int i = 0; i < 8; i++)
        pthread_create(&many[i], NULL, many_thread, &ok[i]);
    int total = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(many[i], NULL);
        total += ok[i];
    }
    CHECK_EQ(total, 8 * 20);

    /* Shutdown: refused without an agent; with one, the agent gets
     * poweroff; the VM is destroyed at the deadline. */
    CHECK_EQ(call("PUT", "/vm/shutdown", NULL, &r), 409);
    CHECK(!strcmp(code_of(r), "no_agent"));
    json_decref(r);
    struct fake_agent fa = { 0 };
    snprintf(f.agent_path, sizeof(f.agent_path), "%s/agent.sock", dir);
    struct sockaddr_un aa = { .sun_family = AF_UNIX };
    snprintf(aa.sun_path, sizeof(aa.sun_path), "%s", f.agent_path);
    fa.listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(bind(fa.listen_fd, (struct sockaddr *)&aa, sizeof(aa)) == 0 && listen(fa.listen_fd, 1) == 0);
    pthread_t at;
    pthread_create(&at, NULL, agent_thread, &fa);
    CHECK_EQ(call("PUT", "/vm/shutdown", "{\"timeout_s\":1}", &r), 202);
    CHECK_EQ(json_integer_value(json_object_get(r, "timeout_s")), 1);
    json_decref(r);
    CHECK_EQ(call("PUT", "/vm/shutdown", NULL, &r), 409);
    CHECK(!strcmp(code_of(r), "busy"));
    json_decref(r);
    pthread_join(at, NULL);
    close(fa.listen_fd);
    fa.got[fa.len] = '\0';
    CHECK_MSG(!strcmp(fa.got, "apoweroff x i "), "agent got '%s'", fa.got);
    for (int i = 0; i < 100 && !atomic_load(&f.destroys); i++)
        nanosleep(&nap, NULL);
    CHECK_EQ(atomic_load(&f.destroys), 1);
    CHECK_EQ(call("PUT", "/vm/pause", NULL, &r), 409);
    CHECK(!strcmp(json_string_value(json_object_get(r, "state")), "shutdown"));
    json_decref(r);
    CHECK_EQ(call("GET", "/vm", NULL, &r), 200);
    json_decref(r);

    atomic_store(&s.stop, true);
    pthread_join(s.thread, NULL);
    api_close(s.api);
    CHECK(stat(sock, &st) != 0);
    unlink(f.agent_path);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/nimbus-test-api.XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    snprintf(sock, sizeof(sock), "%s/api.sock", dir);
    test_router();
    test_openapi();
    test_server();
    char file[128];
    snprintf(file, sizeof(file), "%s/file", dir);
    unlink(file);
    rmdir(dir);
    return check_summary("test_api");
}
