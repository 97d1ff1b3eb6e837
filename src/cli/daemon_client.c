/* The CLI's nimbusd client. See daemon_client.h. */
#include "cli/daemon_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

void daemon_default_socket(unsigned uid, const char *xdg_runtime_dir, char *buf, size_t len)
{
    if (uid == 0)
        snprintf(buf, len, "/run/nimbus/nimbusd.sock");
    else if (xdg_runtime_dir && *xdg_runtime_dir)
        snprintf(buf, len, "%s/nimbus/nimbusd.sock", xdg_runtime_dir);
    else
        snprintf(buf, len, "/tmp/nimbus-%u/nimbusd.sock", uid);
}

const char *daemon_socket(const struct api_cmd_args *a, char *buf, size_t len)
{
    const char *env = getenv("NIMBUS_CONNECT");
    if (a->connect && *a->connect)
        snprintf(buf, len, "%s", a->connect);
    else if (env && *env)
        snprintf(buf, len, "%s", env);
    else
        daemon_default_socket((unsigned)geteuid(), getenv("XDG_RUNTIME_DIR"), buf, len);
    return buf;
}

void daemon_vm_path(char *buf, size_t len, const char *vm, const char *suffix)
{
    /* RFC 3986's unreserved characters stand; every other byte is %XX. */
    size_t n = (size_t)snprintf(buf, len, "/vms/");
    for (const unsigned char *p = (const unsigned char *)vm; *p && n + 4 < len; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p))
            buf[n++] = (char)*p;
        else
            n += (size_t)snprintf(buf + n, len - n, "%%%02X", *p);
    }
    buf[n] = '\0';
    snprintf(buf + strlen(buf), len - strlen(buf), "%s", suffix);
}

int daemon_report_unreachable(const char *cmd, const char *sock, int r, const char *err)
{
    if (r != -ECONNREFUSED) {
        fprintf(stderr, "nimbus %s: %s\n", cmd, err);
        return 1;
    }
    /* libcurl says only "couldn't connect": ask the socket why. */
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int e = fd < 0 ? errno : connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ? errno : 0;
    if (fd >= 0)
        close(fd);
    if (e == ENOENT || e == ENOTDIR)
        fprintf(stderr, "nimbus %s: nimbusd is not running (no socket at %s; --connect PATH or "
                "NIMBUS_CONNECT names another)\n", cmd, sock);
    else if (e == ECONNREFUSED)
        fprintf(stderr, "nimbus %s: nimbusd is not running (nothing listens at %s)\n", cmd, sock);
    else
        fprintf(stderr, "nimbus %s: cannot connect to nimbusd at %s: %s\n", cmd, sock,
                e ? strerror(e) : "it closed the connection");
    return 1;
}

int daemon_report(const char *cmd, const struct api_cmd_args *a, const char *vm, long status,
                  json_t *reply)
{
    const char *msg = json_string_value(json_object_get(reply, "error"));
    const char *code = json_string_value(json_object_get(reply, "code"));
    const char *field = json_string_value(json_object_get(reply, "field"));
    if (vm && code && !strcmp(code, "not_found"))
        fprintf(stderr, "nimbus %s: no VM named %s\n", cmd, vm);
    else if (field && msg && strncmp(msg, field, strlen(field)))
        fprintf(stderr, "nimbus %s: %s: %s\n", cmd, field, msg);
    else if (msg)
        fprintf(stderr, "nimbus %s: %s\n", cmd, msg);
    else
        fprintf(stderr, "nimbus %s: nimbusd answered HTTP %ld\n", cmd, status);
    if (a->json)
        api_print_json(reply);
    else
        json_decref(reply);
    return 1;
}

void daemon_request(const struct api_cmd_args *a, const char *method, const char *path,
                    const char *body, struct daemon_reply *out)
{
    daemon_socket(a, out->sock, sizeof(out->sock));
    out->r = api_call(out->sock, method, path, body, &out->status, &out->reply, out->err,
                      sizeof(out->err));
}

int daemon_check(const char *cmd, const struct api_cmd_args *a, const char *vm,
                 struct daemon_reply *rep, json_t **reply)
{
    *reply = NULL;
    if (rep->r)
        return daemon_report_unreachable(cmd, rep->sock, rep->r, rep->err);
    if (rep->status < 200 || rep->status >= 300)
        return daemon_report(cmd, a, vm, rep->status, rep->reply);
    *reply = rep->reply;
    return 0;
}

int daemon_call(const char *cmd, const struct api_cmd_args *a, const char *vm,
                const char *method, const char *path, const char *body, json_t **reply)
{
    struct daemon_reply rep;
    daemon_request(a, method, path, body, &rep);
    return daemon_check(cmd, a, vm, &rep, reply);
}

int daemon_vm_operand(int argc, char **argv, const struct api_cmd_args *a, const char **vm)
{
    *vm = NULL;
    if (a->first_arg >= argc) {
        fprintf(stderr, "nimbus %s: which VM? (a name: 'nimbus list --all' lists them; "
                "'nimbus %s --help')\n", argv[0], argv[0]);
        return 2;
    }
    if (a->first_arg + 1 < argc) {
        fprintf(stderr, "nimbus %s: unexpected argument '%s'\n", argv[0], argv[a->first_arg + 1]);
        return 2;
    }
    *vm = argv[a->first_arg];
    return 0;
}

int daemon_vm_cmd_parse(int argc, char **argv, const struct api_cmd_spec *spec,
                        struct api_cmd_args *a, const char **vm)
{
    bool done;
    *vm = NULL;
    int r = api_cmd_parse_spec(argc, argv, spec, a, &done);
    if (r || done)
        return r;
    return daemon_vm_operand(argc, argv, a, vm);
}

void daemon_print_done(const struct api_cmd_args *a, json_t *reply, const char *vm,
                       const char *text)
{
    if (a->json) {
        api_print_json(reply);
        return;
    }
    printf("VM %s %s\n", vm, text);
    json_decref(reply);
}

int daemon_vm_simple(int argc, char **argv, const char *usage, const char *api_path,
                     const char *method, const char *suffix, const char *done)
{
    const struct api_cmd_spec spec = {
        .usage = usage, .which = API_CMD_CONNECT | (api_path ? API_CMD_API : 0),
    };
    struct api_cmd_args a;
    bool isdone;
    int r = api_cmd_parse_spec(argc, argv, &spec, &a, &isdone);
    if (r || isdone)
        return r;
    if (a.sock)
        return api_cmd_run(argc, argv, &a, "PUT", api_path, NULL);
    const char *vm;
    if ((r = daemon_vm_operand(argc, argv, &a, &vm)))
        return r;
    char path[512];
    daemon_vm_path(path, sizeof(path), vm, suffix);
    json_t *reply;
    if ((r = daemon_call(argv[0], &a, vm, method, path, NULL, &reply)))
        return r;
    daemon_print_done(&a, reply, vm, done);
    return 0;
}
