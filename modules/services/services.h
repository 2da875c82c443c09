/*
 * services.h - the internal interface between the files of mod_services.
 *
 * mod_services is the services platform (banks, schools, public services
 * inside the messenger): one shared object built from several parts, one
 * concern per file, each part started and stopped by mod_services.c in the
 * order of its table. The Bot API (botapi*.c, its own declarations in
 * botapi.h) serves the Telegram-shaped HTTP API; the other parts (registry,
 * consent, durable queues, broadcasts, audit, assistant) declare here what
 * the rest of the module may call. Everything runs on the loop thread
 * unless a declaration says otherwise.
 */
#ifndef VESTNIK_SERVICES_H
#define VESTNIK_SERVICES_H

#include <stdbool.h>

#include <vestnik/i18n.h>
#include <vestnik/module.h>

/* The module instance while loaded (for config lookups and hook ud). */
vn_module *services_module(void);

/* ---- the parts: start on load (0 ok, else the load fails and the parts
 * started before are stopped again), stop on unload in reverse order,
 * reload after SIGHUP (may be NULL in the table). ---- */
int botapi_start(vn_module *m);
void botapi_stop(vn_module *m);
void botapi_reload(vn_module *m);
/* The local host a Bot API bot (<name>@<bot_domain_prefix>.<host>, made
 * with `vestnikctl bot add`) belongs to, or NULL if jid is no such bot:
 * bots are services as components are (botapi.c). */
const char *services_bot_host(const vn_jid *jid);
/* The platform (platform.h): registry, directory, consent, broadcasts,
 * audit; then the assistant (assistant.h). */
int platform_start(vn_module *m);
void platform_stop(vn_module *m);
void platform_reload(vn_module *m);
int assistant_start(vn_module *m);
void assistant_stop(vn_module *m);
void assistant_reload(vn_module *m);

/* ---- consent, for every way a service talks to users (consent.c) ----
 * A service (a component's domain, a bot's bare JID) may message a user
 * only after the user started it (xeps/services-bus.md, "Consent"). */
typedef enum {
    CONSENT_NONE,    /* never started: the service may not message */
    CONSENT_STARTED, /* may message and include in broadcasts */
    CONSENT_MUTED,   /* may answer, but broadcasts skip the user */
    CONSENT_STOPPED, /* stopped by the user: may not message */
} consent_state;
/* May service_id send user (a local account's bare JID) a message now,
 * as part of a broadcast or not? NULL if so; else why not (a msgid, for
 * an error text), and the refusal is counted against the service. */
const char *services_consent_check(const char *service_id, const char *host, const char *user,
                                   bool broadcast);
/* The user wrote to the service (or pressed start): started, unless muted. */
void services_consent_started(const char *service_id, const char *host, const char *user);

#endif
