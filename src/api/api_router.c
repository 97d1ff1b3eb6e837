/* The API's routes: method + path -> typed request, bodies validated, and
 * the typed errors (STYLE.md principle 7). See api.h. */
#include "api/api.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define ANY_LIVE ((1u << VM_STATE_RUNNING) | (1u << VM_STATE_PAUSED))

static const struct api_route routes[] = {
    { "GET", "/vm", API_GET_VM, 0 },
    { "PUT", "/vm/pause", API_PAUSE, 1u << VM_STATE_RUNNING },
    { "PUT", "/vm/resume", API_RESUME, 1u << VM_STATE_PAUSED },
    /* The guest must run to power itself off. */
    { "PUT", "/vm/shutdown", API_SHUTDOWN, 1u << VM_STATE_RUNNING },
    { "PUT", "/vm/destroy", API_DESTROY, ANY_LIVE | (1u << VM_STATE_MIGRATING) },
    { "PUT", "/vm/reset", API_RESET, ANY_LIVE },
    { "PUT", "/vm/snapshot", API_SNAPSHOT, ANY_LIVE },
    { "PUT", "/vm/balloon", API_BALLOON, ANY_LIVE },
    { "GET", "/vm/balloon/stats", API_BALLOON_STATS, 0 },
    { "GET", "/vm/counters", API_COUNTERS, 0 },
    { "GET", "/vm/events", API_EVENTS, 0 },
    { "GET", "/routes", API_ROUTES, 0 },
    /* Migrating: only to resume a paused post-copy (vm_migrate_start). */
    { "PUT", "/vm/migrate", API_MIGRATE, ANY_LIVE | (1u << VM_STATE_MIGRATING) },
    { "GET", "/vm/migration", API_MIGRATION, 0 },
    { "PUT", "/vm/migration/cancel", API_MIGRATE_CANCEL, 1u << VM_STATE_MIGRATING },
    { "PUT", "/vm/migration/recover", API_MIGRATE_RECOVER, 1u << VM_STATE_MIGRATING },
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

const struct api_route *api_routes(size_t *n)
{
    *n = NROUTES;
    return routes;
}

json_t *api_error_body(const char *msg, const char *code, const char *state_name)
{
    json_t *o = json_pack("{s:s, s:s}", "error", msg, "code", code);
    if (o && state_name)
        json_object_set_new(o, "state", json_string(state_name));
    return o;
}

static int fail(json_t **error, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(json_t **error, int status, const char *code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    *error = api_error_body(msg, code, NULL);
    return status;
}

static int wrong_state(json_t **error, const char *what, enum vm_state state)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "wrong state: %s needs %s; the VM is %s", what,
             !strcmp(what, "resume") ? "a paused VM"
             : !strcmp(what, "cancel") ? "a migration under way"
             : !strcmp(what, "recover") ? "an incoming post-copy in postcopy-paused"
             : !strcmp(what, "pause") || !strcmp(what, "shutdown") ? "a running VM"
                                                                    : "a running or paused VM",
             vm_state_name(state));
    *error = api_error_body(msg, "wrong_state", vm_state_name(state));
    return 409;
}

int api_error(int r, const char *msg, enum vm_state state, json_t **error)
{
    static const struct {
        int err, status;
        const char *code;
    } map[] = {
        { EINVAL, 400, "bad_request" },
        { ERANGE, 400, "bad_request" },
        { EALREADY, 409, "wrong_state" },
        { ESHUTDOWN, 409, "wrong_state" },
        { EBUSY, 409, "busy" },
        { ENODEV, 409, "no_device" },
        { EEXIST, 409, "exists" },
        { ENOTEMPTY, 409, "exists" },
        { ENOENT, 404, "not_found" },
        { ENOTSUP, 501, "unsupported" },
        { ECONNREFUSED, 503, "unavailable" },
        { ETIMEDOUT, 503, "unavailable" },
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (-r != map[i].err)
            continue;
        bool ws = !strcmp(map[i].code, "wrong_state");
        *error = api_error_body(msg, map[i].code, ws ? vm_state_name(state) : NULL);
        return map[i].status;
    }
    *error = api_error_body(msg, "internal", NULL);
    return 500;
}

/* ---- bodies ---- */

enum field_type { F_UINT, F_BOOL, F_STRING };

struct field {
    const char *name;
    enum field_type type;
    bool required;
};

static const struct field snapshot_fields[] = {
    { "path", F_STRING, true }, { "diff", F_BOOL, false }, { "compress", F_BOOL, false },
    { "stop", F_BOOL, false }, { NULL, 0, false },
};
static const struct field balloon_fields[] = { { "target_mib", F_UINT, true }, { NULL, 0, false } };
static const struct field shutdown_fields[] = { { "timeout_s", F_UINT, false }, { NULL, 0, false } };
static const struct field migrate_fields[] = {
    { "to", F_STRING, true }, { "max_bandwidth", F_UINT, false },
    { "downtime_limit_ms", F_UINT, false }, { "max_rounds", F_UINT, false },
    { "auto_converge", F_BOOL, false }, { "mode", F_STRING, false },
    { "postcopy_after", F_UINT, false }, { "compress", F_BOOL, false },
    { "resume", F_BOOL, false }, { "copy_storage", F_BOOL, false },
    { "postcopy_prepage", F_BOOL, false }, { NULL, 0, false },
};
static const struct field recover_fields[] = { { "listen", F_STRING, true }, { NULL, 0, false } };
static const struct field no_fields[] = { { NULL, 0, false } };

static const struct field *fields_of(enum api_action a)
{
    switch (a) {
    case API_SNAPSHOT: return snapshot_fields;
    case API_BALLOON:  return balloon_fields;
    case API_SHUTDOWN: return shutdown_fields;
    case API_MIGRATE:  return migrate_fields;
    case API_MIGRATE_RECOVER: return recover_fields;
    default:           return no_fields;
    }
}

static const char *type_name(enum field_type t)
{
    return t == F_UINT ? "a non-negative integer" : t == F_BOOL ? "true or false" : "a string";
}

/* Parses and checks `body` against `fields`; *root is the object (NULL for
 * an empty body, which is fine when nothing is required). */
static int check_body(const struct field *fields, const char *body, size_t len, json_t **root,
                      json_t **error)
{
    *root = NULL;
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
        i++;
    if (i == len) {
        for (const struct field *f = fields; f->name; f++)
            if (f->required)
                return fail(error, 400, "bad_request", "the body needs \"%s\" (%s)", f->name,
                            type_name(f->type));
        return 0;
    }
    json_error_t je;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!o)
        return fail(error, 400, "bad_request", "malformed JSON: %s", je.text);
    int st = 0;
    if (!json_is_object(o)) {
        st = fail(error, 400, "bad_request", "the body must be a JSON object");
        goto bad;
    }
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        const struct field *f = fields;
        while (f->name && strcmp(f->name, key))
            f++;
        if (!f->name) {
            st = fail(error, 400, "bad_request", "unknown field \"%.64s\"", key);
            goto bad;
        }
        bool ok = f->type == F_UINT ? json_is_integer(v) && json_integer_value(v) >= 0
                  : f->type == F_BOOL ? json_is_boolean(v)
                                      : json_is_string(v);
        if (!ok) {
            st = fail(error, 400, "bad_request", "\"%s\" must be %s", f->name, type_name(f->type));
            goto bad;
        }
    }
    for (const struct field *f = fields; f->name; f++) {
        if (f->required && !json_object_get(o, f->name)) {
            st = fail(error, 400, "bad_request", "the body needs \"%s\" (%s)", f->name,
                      type_name(f->type));
            goto bad;
        }
    }
    *root = o;
    return 0;
bad:
    json_decref(o);
    return st;
}

static bool get_bool(json_t *o, const char *name)
{
    return o && json_is_true(json_object_get(o, name));
}

/* An optional non-negative integer field of at most `max`. */
static int get_uint(json_t *o, const char *name, uint64_t max, uint64_t *v, json_t **error)
{
    json_t *j = json_object_get(o, name);
    if (!j)
        return 0;
    json_int_t x = json_integer_value(j);
    if ((uint64_t)x > max)
        return fail(error, 400, "bad_request", "\"%s\" must be at most %llu", name,
                    (unsigned long long)max);
    *v = (uint64_t)x;
    return 0;
}

static int fill_migrate(struct vm_migrate_options *m, json_t *o, json_t **error)
{
    const char *to = json_string_value(json_object_get(o, "to"));
    size_t n = json_string_length(json_object_get(o, "to"));
    if (n == 0 || n >= sizeof(m->to) || strlen(to) != n)
        return fail(error, 400, "bad_request", "\"to\" must be unix:PATH or tcp:HOST:PORT");
    memcpy(m->to, to, n + 1);
    if (get_bool(o, "resume")) {
        /* The migration's parameters are the ones it started with. */
        if (json_object_size(o) != 2)
            return fail(error, 400, "bad_request", "\"resume\" takes \"to\" and nothing else");
        m->resume = true;
        return 0;
    }
    const char *mode = json_string_value(json_object_get(o, "mode"));
    if (mode && vm_migrate_mode_parse(mode, &m->mode))
        return fail(error, 400, "bad_request", "\"mode\" must be precopy, postcopy or hybrid");
    uint64_t v;
    int st;
    v = 0;
    if ((st = get_uint(o, "max_bandwidth", UINT64_MAX >> 1, &v, error)))
        return st;
    m->max_bandwidth = v;
    v = 0;
    if ((st = get_uint(o, "downtime_limit_ms", 60000, &v, error)))
        return st;
    m->downtime_limit_ms = (unsigned)v;
    v = 0;
    if ((st = get_uint(o, "max_rounds", 10000, &v, error)))
        return st;
    m->max_rounds = (unsigned)v;
    v = 0;
    if ((st = get_uint(o, "postcopy_after", 10000, &v, error)))
        return st;
    m->postcopy_after = (unsigned)v;
    if (json_object_get(o, "postcopy_after") && m->mode != VM_MIGRATE_MODE_HYBRID)
        return fail(error, 400, "bad_request", "\"postcopy_after\" goes with mode hybrid");
    json_t *prepage = json_object_get(o, "postcopy_prepage");
    if (prepage && m->mode == VM_MIGRATE_MODE_PRECOPY)
        return fail(error, 400, "bad_request",
                    "\"postcopy_prepage\" goes with mode postcopy or hybrid");
    m->no_prepage = json_is_false(prepage);
    m->auto_converge = get_bool(o, "auto_converge");
    m->compress = get_bool(o, "compress");
    m->copy_storage = get_bool(o, "copy_storage");
    return 0;
}

/* Fills the request's fields from a checked body. */
static int fill_request(struct api_request *req, json_t *o, json_t **error)
{
    switch (req->action) {
    case API_BALLOON:
        req->target_mib = (uint64_t)json_integer_value(json_object_get(o, "target_mib"));
        return 0;
    case API_SHUTDOWN: {
        json_t *t = o ? json_object_get(o, "timeout_s") : NULL;
        json_int_t v = t ? json_integer_value(t) : API_SHUTDOWN_TIMEOUT_S;
        if (v < 1 || v > API_SHUTDOWN_MAX_TIMEOUT_S)
            return fail(error, 400, "bad_request", "\"timeout_s\" must be 1 to %u",
                        API_SHUTDOWN_MAX_TIMEOUT_S);
        req->timeout_s = (unsigned)v;
        return 0;
    }
    case API_SNAPSHOT: {
        const char *p = json_string_value(json_object_get(o, "path"));
        size_t n = json_string_length(json_object_get(o, "path"));
        if (n == 0 || n >= sizeof(req->path) || strlen(p) != n)
            return fail(error, 400, "bad_request", "\"path\" must be a non-empty path without NUL, "
                        "shorter than %zu bytes", sizeof(req->path));
        memcpy(req->path, p, n + 1);
        req->snapshot = (struct vm_snapshot_options){
            .path = req->path,
            .diff = get_bool(o, "diff"),
            .compress = get_bool(o, "compress"),
            .stop = get_bool(o, "stop"),
        };
        return 0;
    }
    case API_MIGRATE:
        return fill_migrate(&req->migrate, o, error);
    case API_MIGRATE_RECOVER: {
        const char *l = json_string_value(json_object_get(o, "listen"));
        size_t n = json_string_length(json_object_get(o, "listen"));
        if (n == 0 || n >= 400 || strlen(l) != n)
            return fail(error, 400, "bad_request", "\"listen\" must be unix:PATH or tcp:HOST:PORT");
        memcpy(req->path, l, n + 1);
        return 0;
    }
    default:
        return 0;
    }
}

int api_route(const char *method, const char *url, const char *body, size_t len,
              enum vm_state state, struct api_request *req, json_t **error)
{
    *error = NULL;
    const struct api_route *r = NULL;
    bool path_known = false;
    for (size_t i = 0; i < NROUTES; i++) {
        if (strcmp(routes[i].path, url))
            continue;
        path_known = true;
        if (!strcmp(routes[i].method, method))
            r = &routes[i];
    }
    if (!path_known)
        return fail(error, 404, "not_found", "no such resource: %.128s", url);
    if (!r)
        return fail(error, 405, "method_not_allowed", "%.16s is not allowed on %s", method, url);
    memset(req, 0, offsetof(struct api_request, path));
    req->path[0] = '\0';
    req->action = r->action;
    /* Anything but GET on a stopped VM is refused before its body is read. */
    if (r->states && !(r->states & (1u << state))) {
        const char *what = strrchr(r->path, '/') + 1;
        return wrong_state(error, what, state);
    }
    json_t *o;
    int st = check_body(fields_of(r->action), body ? body : "", body ? len : 0, &o, error);
    if (st)
        return st;
    st = fill_request(req, o, error);
    json_decref(o);
    return st;
}
