/* nimbus counters: GET /vm/counters on the VM's API (docs/api.md): each
 * hart's instructions, TLB misses, traps, SBI calls; each device's counts. */
#include <stdio.h>

#include "cli/api_client.h"
#include "cli/cli.h"

static const char *const hart_fields[] = {
    "instructions", "tlb_misses", "exceptions", "interrupts", "sbi_calls", "wfi_exits",
};
#define NFIELDS (sizeof(hart_fields) / sizeof(hart_fields[0]))

static void print_row(const char *name, json_t *o)
{
    printf("%-6s", name);
    for (size_t i = 0; i < NFIELDS; i++)
        printf(" %14lld", (long long)json_integer_value(json_object_get(o, hart_fields[i])));
    printf("\n");
}

static void print_human(json_t *r)
{
    printf("%-6s", "hart");
    for (size_t i = 0; i < NFIELDS; i++)
        printf(" %14s", hart_fields[i]);
    printf("\n");
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(r, "harts"), i, h) {
        char name[16];
        snprintf(name, sizeof(name), "%lld", (long long)json_integer_value(json_object_get(h, "hart")));
        print_row(name, h);
    }
    print_row("total", json_object_get(r, "totals"));
    json_array_foreach(json_object_get(r, "devices"), i, h) {
        const char *key;
        json_t *v;
        printf("device %s:", json_string_value(json_object_get(h, "kind")));
        json_object_foreach(h, key, v) {
            if (json_is_integer(v))
                printf(" %s=%lld", key, (long long)json_integer_value(v));
            else if (json_is_string(v) && json_object_get(h, "kind") != v)
                printf(" %s=%s", key, json_string_value(v));
        }
        printf("\n");
    }
}

int cmd_counters(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimbus counters --api PATH [--json]\n"
        "Shows the VM's counters: per hart the instructions retired, software-TLB\n"
        "misses, exceptions and interrupts taken, SBI calls served (the hypercalls,\n"
        "this machine's VM exits) and WFI waits; per device what it counts.\n"
        "  --api PATH   the VM's API socket (nimbus run --api PATH)\n"
        "  --json       print the server's JSON reply (GET /vm/counters)\n";
    return api_cmd_simple(argc, argv, usage, "GET", "/vm/counters", print_human);
}
