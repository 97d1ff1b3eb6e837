/* Announcing the network cards after a move. See announce.h. */
#include "vm/announce.h"

#include <stdio.h>
#include <string.h>

#include "net/announce.h"
#include "virtio/net.h"

void vm_announce_start(struct virt_machine *m)
{
    m->announce_rounds = m->config.nnets ? NET_ANNOUNCE_ROUNDS : 0;
    m->announce_due_ns = 0;
}

int64_t vm_announce_poll(struct virt_machine *m, int64_t now_ns)
{
    if (!m->announce_rounds || virt_is_paused(m))
        return INT64_MAX;
    if (now_ns < m->announce_due_ns)
        return m->announce_due_ns;
    /* Network cards sit right after the disks (virt.h). */
    for (unsigned i = 0; i < m->config.nnets; i++) {
        struct virtio_dev *card = m->virtio[m->config.ndisks + i];
        int r = card ? virtio_net_announce(card) : 0;
        if (r && m->announce_rounds == NET_ANNOUNCE_ROUNDS)
            fprintf(stderr, "nimbus: announcing network card %u: %s\n", i, strerror(-r));
    }
    m->announce_rounds--;
    unsigned done = NET_ANNOUNCE_ROUNDS - m->announce_rounds;
    m->announce_due_ns = now_ns + (int64_t)net_announce_gap_ms(done) * 1000000;
    return m->announce_rounds ? m->announce_due_ns : INT64_MAX;
}
