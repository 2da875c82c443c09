/*
 * platform.c - the services platform's lifetime: its configuration and
 * its parts, started in order (registry first: the others look services
 * up in it) and stopped in reverse.
 */
#include <stddef.h>

#include "platform.h"

platform_config platform_conf;

typedef struct part {
    const char *name;
    int (*start)(vn_module *m);
    void (*stop)(vn_module *m);
} part;

static const part parts[] = {
    {"registry", registry_start, registry_stop},
    {"directory", directory_start, directory_stop},
    {"consent", consent_start, consent_stop},
    {"audit", audit_start, audit_stop},
};
#define PART_COUNT (sizeof parts / sizeof parts[0])

void platform_reload(vn_module *m)
{
    platform_conf = (platform_config){
        .directory_prefix = vn_module_config_string(m, "directory_prefix"),
        .consent_required = vn_module_config_bool(m, "consent_required"),
        .message_rate = vn_module_config_int(m, "service_message_rate"),
        .message_burst = vn_module_config_int(m, "service_message_burst"),
        .daily_quota = vn_module_config_int(m, "service_daily_quota"),
        .broadcast_max_audience = vn_module_config_int(m, "broadcast_max_audience"),
        .broadcasts_per_hour = vn_module_config_int(m, "broadcasts_per_hour"),
        .max_audiences = vn_module_config_int(m, "service_max_audiences"),
        .audit_retention_days = vn_module_config_int(m, "audit_retention_days"),
    };
}

int platform_start(vn_module *m)
{
    platform_reload(m);
    for (size_t i = 0; i < PART_COUNT; i++) {
        if (parts[i].start(m) != 0) {
            vn_log_error("services: the %s part failed to start", parts[i].name);
            while (i-- > 0)
                parts[i].stop(m);
            return -1;
        }
    }
    return 0;
}

void platform_stop(vn_module *m)
{
    for (size_t i = PART_COUNT; i-- > 0;)
        parts[i].stop(m);
}
