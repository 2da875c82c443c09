/*
 * mod_services.c - the services platform: outside providers (banks,
 * schools, public services) inside the messenger.
 *
 * This file only declares the module's configuration and starts and stops
 * its parts, in the order of the table below (each part's start may rely
 * on the parts above it). What each part does is said at the top of its
 * own files; services.h is what they share.
 */
#include <stddef.h>

#include "services.h"

static const char *const assistant_engines[] = {"rules", NULL};

static const vn_config_key services_keys[] = {
    /* ---- Bot API (botapi*.c): the Telegram Bot API under /bot<token>/ */
    {.name = "bot_domain_prefix", .type = VN_CONF_STRING, .default_value = "bots"},
    {.name = "bot_max_request_size",
     .type = VN_CONF_INT,
     .default_value = "20971520",
     .min = 1024,
     .max = 1073741824},
    {.name = "bot_max_file_size",
     .type = VN_CONF_INT,
     .default_value = "20971520",
     .min = 1024,
     .max = 1073741824},
    {.name = "bot_max_text_length",
     .type = VN_CONF_INT,
     .default_value = "4096",
     .min = 1,
     .max = 65536},
    {.name = "bot_max_pending_updates",
     .type = VN_CONF_INT,
     .default_value = "1000",
     .min = 1,
     .max = 1000000},
    {.name = "bot_max_poll_timeout",
     .type = VN_CONF_INT,
     .default_value = "50",
     .min = 0,
     .max = 3600},
    {.name = "bot_requests_per_second",
     .type = VN_CONF_INT,
     .default_value = "30",
     .min = 1,
     .max = 100000},
    {.name = "bot_webhook_timeout",
     .type = VN_CONF_INT,
     .default_value = "10",
     .min = 1,
     .max = 300},
    {.name = "bot_webhook_max_retry_delay",
     .type = VN_CONF_INT,
     .default_value = "300",
     .min = 1,
     .max = 86400},
    {.name = "bot_webhook_allow_http", .type = VN_CONF_BOOL, .default_value = "false"},
    {.name = "bot_ca_file", .type = VN_CONF_STRING, .default_value = ""},
    {.name = "bot_file_fetch_private", .type = VN_CONF_BOOL, .default_value = "false"},
    {.name = "bot_file_base_url", .type = VN_CONF_STRING, .default_value = ""},
    /* ---- the platform (platform.h): directory, consent, broadcasts, audit */
    {.name = "directory_prefix", .type = VN_CONF_STRING, .default_value = "services"},
    {.name = "consent_required", .type = VN_CONF_BOOL, .default_value = "true"},
    {.name = "service_message_rate",
     .type = VN_CONF_INT,
     .default_value = "20",
     .min = 0,
     .max = 1000000},
    {.name = "service_message_burst",
     .type = VN_CONF_INT,
     .default_value = "100",
     .min = 1,
     .max = 1000000},
    {.name = "service_daily_quota",
     .type = VN_CONF_INT,
     .default_value = "100000",
     .min = 0,
     .max = 1000000000},
    {.name = "service_max_audiences",
     .type = VN_CONF_INT,
     .default_value = "100",
     .min = 1,
     .max = 100000},
    {.name = "broadcast_max_audience",
     .type = VN_CONF_INT,
     .default_value = "10000",
     .min = 1,
     .max = 1000000},
    {.name = "broadcasts_per_hour",
     .type = VN_CONF_INT,
     .default_value = "30",
     .min = 1,
     .max = 100000},
    {.name = "audit_retention_days",
     .type = VN_CONF_INT,
     .default_value = "90",
     .min = 1,
     .max = 3650},
    /* ---- the assistant (assistant.h) */
    {.name = "assistant_knowledge_base", .type = VN_CONF_STRING, .default_value = ""},
    {.name = "assistant_engine",
     .type = VN_CONF_STRING,
     .default_value = "rules",
     .choices = assistant_engines},
    {.name = "assistant_name", .type = VN_CONF_STRING, .default_value = "assistant"},
    {.name = "assistant_documents_prefix", .type = VN_CONF_STRING, .default_value = "documents"},
    {.name = "assistant_request_timeout",
     .type = VN_CONF_INT,
     .default_value = "900",
     .min = 60,
     .max = 86400},
    {.name = NULL},
};

typedef struct services_part {
    const char *name;
    int (*start)(vn_module *m);
    void (*stop)(vn_module *m);
    void (*reload)(vn_module *m);
} services_part;

static const services_part parts[] = {
    {"botapi", botapi_start, botapi_stop, botapi_reload},
    {"platform", platform_start, platform_stop, platform_reload},
    {"assistant", assistant_start, assistant_stop, assistant_reload},
};
#define PART_COUNT (sizeof parts / sizeof parts[0])

static vn_module *module;

vn_module *services_module(void)
{
    return module;
}

static void stop_parts(vn_module *m, size_t started)
{
    while (started > 0) {
        started--;
        parts[started].stop(m);
    }
}

static int services_load(vn_module *m)
{
    module = m;
    for (size_t i = 0; i < PART_COUNT; i++) {
        if (parts[i].start(m) != 0) {
            vn_log_error("services: the %s part failed to start", parts[i].name);
            stop_parts(m, i);
            module = NULL;
            return -1;
        }
    }
    return 0;
}

static void services_unload(vn_module *m)
{
    stop_parts(m, PART_COUNT);
    module = NULL;
}

static void services_reload(vn_module *m)
{
    for (size_t i = 0; i < PART_COUNT; i++)
        if (parts[i].reload)
            parts[i].reload(m);
}

VN_MODULE("services", "Services platform: Bot API, registry, consent, queues, broadcasts",
          services_keys, services_load, services_unload, services_reload);
