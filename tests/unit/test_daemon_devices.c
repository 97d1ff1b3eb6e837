/* Unit tests for the devices nimbusd opens and hands to a VM process
 * (src/daemon/devices):
 *  - disks open read-write, or read-only when the definition says, at the
 *    numbers the VM process will see them at; user cards get none;
 *  - a missing or unwritable disk, or a qcow2 image another process has
 *    locked, is refused with the field named and nothing left open; a
 *    read-only qcow2 image shares its lock with other readers;
 *  - taps: attached with the flags nimbus run checks (as root), or the
 *    refusal names the card's field (as a user). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "daemon/devices.h"

#include "check.h"

static char dir[64], raw[128], qcow[128], ro[128];

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    while (d && readdir(d))
        n++;
    if (d)
        closedir(d);
    return n;
}

static void make(const char *path, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    CHECK(fd >= 0 && write(fd, "QFI\xfb", 4) == 4);
    close(fd);
}

static struct vmdef two_disks(void)
{
    struct vmdef d = { .name = "t", .ndisks = 2 };
    d.disks[0] = (struct vmdef_disk){ .path = raw, .format = BLOCK_FORMAT_RAW };
    d.disks[1] = (struct vmdef_disk){ .path = qcow, .format = BLOCK_FORMAT_QCOW2, .readonly = true };
    d.nnets = 1;
    d.nets[0].type = VMDEF_NET_USER;
    return d;
}

static void test_disks(void)
{
    struct vmdef d = two_disks();
    struct vm_devices v;
    char field[64] = "", err[256] = "";
    int before = open_fds();
    int r = vm_devices_open(&d, 4, &v, field, sizeof(field), err, sizeof(err));
    CHECK_MSG(r == 0, "%s", err);
    if (r)
        return;
    CHECK(v.nfds == 2 && v.disk_fd[0] == 4 && v.disk_fd[1] == 5 && v.tap_fd[0] == -1);
    CHECK((fcntl(v.fds[0], F_GETFL) & O_ACCMODE) == O_RDWR);
    CHECK((fcntl(v.fds[1], F_GETFL) & O_ACCMODE) == O_RDONLY);
    CHECK(fcntl(v.fds[0], F_GETFD) & FD_CLOEXEC);
    /* Another reader of the read-only qcow2 image may share it; a writer
     * may not (the lock is the image's, as nimbus run takes it). */
    int other = open(qcow, O_RDONLY);
    CHECK(flock(other, LOCK_SH | LOCK_NB) == 0);
    CHECK(flock(other, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK);
    close(other);
    vm_devices_close(&v);
    CHECK(open_fds() == before);

    /* A writer holds the qcow2 image: even read-only it is refused. */
    other = open(qcow, O_RDONLY);
    CHECK(flock(other, LOCK_EX | LOCK_NB) == 0);
    r = vm_devices_open(&d, 4, &v, field, sizeof(field), err, sizeof(err));
    CHECK_MSG(r == -EBUSY && !strcmp(field, "disks[1].path") && strstr(err, "in use") &&
              strstr(err, qcow), "%d %s: %s", r, field, err);
    CHECK(open_fds() == before + 1);
    close(other);

    /* Missing: named, nothing left open. */
    d.disks[0].path = (char *)"/nonexistent/disk.img";
    r = vm_devices_open(&d, 4, &v, field, sizeof(field), err, sizeof(err));
    CHECK_MSG(r == -ENOENT && !strcmp(field, "disks[0].path") &&
              !strcmp(err, "disks[0].path: /nonexistent/disk.img: No such file or directory"),
              "%d %s: %s", r, field, err);
    CHECK(open_fds() == before);

    /* Read-only file, read-write disk (root may write anything). */
    if (geteuid() != 0) {
        d.disks[0].path = ro;
        r = vm_devices_open(&d, 4, &v, field, sizeof(field), err, sizeof(err));
        CHECK_MSG(r == -EACCES && !strcmp(field, "disks[0].path") && strstr(err, "for writing"),
                  "%d %s: %s", r, field, err);
        d.disks[0].readonly = true;
        r = vm_devices_open(&d, 4, &v, field, sizeof(field), err, sizeof(err));
        CHECK_MSG(r == 0, "%s", err);
        if (r == 0)
            vm_devices_close(&v);
    }
    CHECK(open_fds() == before);
}

static void test_tap(void)
{
    struct vmdef d = two_disks();
    d.nnets = 2;
    d.nets[1].type = VMDEF_NET_TAP;
    snprintf(d.nets[1].ifname, sizeof(d.nets[1].ifname), "nbdevt%d", (int)getpid() % 100000);
    struct vm_devices v;
    char field[64] = "", err[256] = "";
    int before = open_fds();
    int r = vm_devices_open(&d, 10, &v, field, sizeof(field), err, sizeof(err));
    if (r == 0) {
        /* Root (or a tap made for this user): the flags nimbus run checks. */
        CHECK(v.nfds == 3 && v.tap_fd[0] == -1 && v.tap_fd[1] == 12);
        struct ifreq ifr = { 0 };
        CHECK(ioctl(v.fds[2], TUNGETIFF, &ifr) == 0);
        CHECK((ifr.ifr_flags & (IFF_TUN | IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)) ==
              (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR));
        CHECK(!strcmp(ifr.ifr_name, d.nets[1].ifname));
        vm_devices_close(&v);
    } else {
        /* Refused (no CAP_NET_ADMIN, or no /dev/net/tun): the card named,
         * the disks opened before it closed again. */
        CHECK_MSG(!strcmp(field, "nets[1].ifname") && strstr(err, d.nets[1].ifname), "%d %s: %s",
                  r, field, err);
    }
    CHECK(open_fds() == before);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/nimbus-devices.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(raw, sizeof(raw), "%s/raw.img", dir);
    snprintf(qcow, sizeof(qcow), "%s/disk.qcow2", dir);
    snprintf(ro, sizeof(ro), "%s/ro.img", dir);
    make(raw, 0644);
    make(qcow, 0644);
    make(ro, 0444);
    test_disks();
    test_tap();
    unlink(raw);
    unlink(qcow);
    unlink(ro);
    rmdir(dir);
    return check_summary("test_daemon_devices");
}
