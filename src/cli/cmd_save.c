/* nimbus save: PUT /vms/VM/save on nimbusd (as virsh managedsave): the VM's
 * state and memory go to a snapshot the daemon keeps, its process ends, and
 * nimbus start restores it. On a terminal a spinner and the time so far
 * show while the save runs. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/daemon_client.h"

struct save_job {
    const struct api_cmd_args *a;
    const char *path;
    struct daemon_reply rep;
    int done_fd;            /* written once the request has its answer */
};

static void *save_thread(void *opaque)
{
    struct save_job *j = opaque;
    daemon_request(j->a, "PUT", j->path, NULL, &j->rep);
    char c = 1;
    ssize_t n;
    do {
        n = write(j->done_fd, &c, 1);
    } while (n < 0 && errno == EINTR);
    return NULL;
}

/* The request on a thread of its own, a spinner on this one. Returns
 * 0, or -errno when the thread cannot start (the caller does it here). */
static int save_with_progress(struct save_job *j, const char *vm)
{
    static const char spin[] = "|/-\\";
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    j->done_fd = p[1];
    pthread_t t;
    int r = pthread_create(&t, NULL, save_thread, j);
    if (r) {
        close(p[0]);
        close(p[1]);
        return -r;
    }
    int64_t start = cli_now_ns();
    struct pollfd pf = { .fd = p[0], .events = POLLIN };
    for (unsigned i = 0;; i++) {
        int n = poll(&pf, 1, 100);
        if (n > 0 || (n < 0 && errno != EINTR))
            break;   /* done (or poll failed: then just wait for it) */
        printf("\r%c saving %s ... %.1f s", spin[i % 4], vm,
               (double)(cli_now_ns() - start) / 1e9);
        fflush(stdout);
    }
    printf("\r\033[K");
    fflush(stdout);
    pthread_join(t, NULL);
    close(p[0]);
    close(p[1]);
    return 0;
}

int cmd_save(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimbus save VM [--connect PATH] [--json]\n"
        "Saves a running or paused VM: nimbusd snapshots its state and memory and\n"
        "ends its process; the VM is then 'saved', and nimbus start restores it\n"
        "from that instant. On a terminal, a spinner shows the time so far.\n"
        DAEMON_CONNECT_USAGE
        "  --json          print nimbusd's reply (the VM's info, with the snapshot)\n";
    const struct api_cmd_spec spec = { .usage = usage, .which = API_CMD_CONNECT };
    struct api_cmd_args a;
    const char *vm;
    int r = daemon_vm_cmd_parse(argc, argv, &spec, &a, &vm);
    if (!vm)
        return r;
    char path[512];
    daemon_vm_path(path, sizeof(path), vm, "/save");
    struct save_job j = { .a = &a, .path = path };
    int64_t start = cli_now_ns();
    if (a.json || !isatty(STDOUT_FILENO) || save_with_progress(&j, vm))
        daemon_request(&a, "PUT", path, NULL, &j.rep);
    json_t *reply;
    if ((r = daemon_check(argv[0], &a, vm, &j.rep, &reply)))
        return r;
    if (a.json) {
        api_print_json(reply);
        return 0;
    }
    const char *snap = json_string_value(json_object_get(reply, "snapshot"));
    printf("VM %s saved in %.1f s%s%s\n", vm, (double)(cli_now_ns() - start) / 1e9,
           snap ? ": " : "", snap ? snap : "");
    json_decref(reply);
    return 0;
}
