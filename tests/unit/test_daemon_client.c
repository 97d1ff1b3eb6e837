/* Unit tests for the CLI's nimbusd client (src/cli/daemon_client): the
 * default socket for root and for other users (with and without
 * XDG_RUNTIME_DIR), --connect over NIMBUS_CONNECT over the default, and VM
 * names in request paths. (The requests themselves: tests/guest/cli_daemon.sh
 * against a stand-in daemon.) */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/daemon_client.h"

#include "check.h"

static void check_default(unsigned uid, const char *xdg, const char *want)
{
    char buf[256];
    daemon_default_socket(uid, xdg, buf, sizeof(buf));
    CHECK_MSG(!strcmp(buf, want), "uid %u, XDG_RUNTIME_DIR %s: %s, want %s", uid,
              xdg ? xdg : "(unset)", buf, want);
}

static void check_path(const char *vm, const char *suffix, const char *want)
{
    char buf[512];
    daemon_vm_path(buf, sizeof(buf), vm, suffix);
    CHECK_MSG(!strcmp(buf, want), "'%s' '%s': %s, want %s", vm, suffix, buf, want);
}

int main(void)
{
    check_default(0, "/run/user/0", "/run/nimbus/nimbusd.sock");
    check_default(0, NULL, "/run/nimbus/nimbusd.sock");
    check_default(1000, "/run/user/1000", "/run/user/1000/nimbus/nimbusd.sock");
    check_default(1000, NULL, "/tmp/nimbus-1000/nimbusd.sock");
    check_default(1000, "", "/tmp/nimbus-1000/nimbusd.sock");

    char buf[256], want[256];
    struct api_cmd_args a = { 0 };
    unsetenv("NIMBUS_CONNECT");
    daemon_default_socket((unsigned)geteuid(), getenv("XDG_RUNTIME_DIR"), want, sizeof(want));
    CHECK(!strcmp(daemon_socket(&a, buf, sizeof(buf)), want));
    setenv("NIMBUS_CONNECT", "", 1);    /* empty: as if unset */
    CHECK(!strcmp(daemon_socket(&a, buf, sizeof(buf)), want));
    setenv("NIMBUS_CONNECT", "/tmp/env.sock", 1);
    CHECK(!strcmp(daemon_socket(&a, buf, sizeof(buf)), "/tmp/env.sock"));
    a.connect = "/tmp/opt.sock";
    CHECK(!strcmp(daemon_socket(&a, buf, sizeof(buf)), "/tmp/opt.sock"));

    check_path("web1", "", "/vms/web1");
    check_path("db-2.x_y~", "/start", "/vms/db-2.x_y~/start");
    check_path("a b/c?d#%", "/log?lines=3", "/vms/a%20b%2Fc%3Fd%23%25/log?lines=3");
    check_path("\xc3\xa9", "", "/vms/%C3%A9");
    /* A name longer than the buffer is cut, never overrun. */
    char huge[2000];
    memset(huge, '/', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    char small[64];
    daemon_vm_path(small, sizeof(small), huge, "/stats");
    CHECK(strlen(small) < sizeof(small) && !strncmp(small, "/vms/%2F%2F", 11));
    return check_summary("test_daemon_client");
}
