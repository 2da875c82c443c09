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

#endif
