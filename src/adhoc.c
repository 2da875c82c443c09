/*
 * adhoc.c - the registry of ad-hoc commands (vestnik/adhoc.h).
 *
 * The core keeps the list so that any feature can offer a command without
 * knowing who serves them; mod_adhoc reads it. A handful of commands at
 * most: a small array in registration order, which is the order people see.
 */
#include "vestnik/adhoc.h"

#include <stdlib.h>
#include <string.h>

#include "vestnik/util.h"

static vn_adhoc_command *commands;
static size_t n_commands;

void vn_adhoc_add(const char *node, const char *name, vn_adhoc_fn fn, void *ud)
{
    vn_adhoc_remove(node);
    commands = vn_realloc(commands, (n_commands + 1) * sizeof *commands);
    commands[n_commands++] = (vn_adhoc_command){.node = node, .name = name, .fn = fn, .ud = ud};
}

void vn_adhoc_remove(const char *node)
{
    for (size_t i = 0; i < n_commands; i++) {
        if (strcmp(commands[i].node, node) == 0) {
            memmove(&commands[i], &commands[i + 1], (n_commands - i - 1) * sizeof *commands);
            n_commands--;
            return;
        }
    }
}

const vn_adhoc_command *vn_adhoc_at(size_t i)
{
    return i < n_commands ? &commands[i] : NULL;
}

const vn_adhoc_command *vn_adhoc_find(const char *node)
{
    for (size_t i = 0; node && i < n_commands; i++)
        if (strcmp(commands[i].node, node) == 0)
            return &commands[i];
    return NULL;
}
