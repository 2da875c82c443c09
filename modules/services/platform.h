/*
 * platform.h - the interface between the services platform's own parts:
 * the registry, the directory, consent, broadcasts and the audit (the Bot
 * API has botapi.h, the assistant assistant.h). The wire protocol they
 * serve is xeps/services-bus.md; what users and operators see is
 * doc/services.md.
 *
 *   registry.c   services in memory: profiles, the operator's flags,
 *                counters, the admin socket's `services` commands
 *   directory.c  services.<host>: disco, XEP-0055 search, the bus's iqs
 *   consent.c    start, mute, stop; the filter on what services send;
 *                the ad-hoc command "My services"
 *   broadcast.c  audiences and broadcasts with their delivery report
 *   audit.c      the per-service log, rate limits and quotas
 *   text.c       case folding and word matching (Latin, Cyrillic)
 *
 * A service is a component's domain (every JID at it speaks for it) or a
 * bot account's bare JID. Everything runs on the loop thread.
 */
#ifndef VESTNIK_SERVICES_PLATFORM_H
#define VESTNIK_SERVICES_PLATFORM_H

#include <stdbool.h>
#include <stdint.h>

#include <uthash.h>

#include "registry_store.h"
#include "services.h"

#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_SEARCH "jabber:iq:search"

/* ---- the platform's configuration (mod_services.c's keys) ---- */
typedef struct platform_config {
    const char *directory_prefix;
    bool consent_required;
    long long message_rate, message_burst, daily_quota;
    long long broadcast_max_audience, broadcasts_per_hour, max_audiences;
    long long audit_retention_days;
} platform_config;
extern platform_config platform_conf;

/* ---- the parts' lifetimes, in platform_start's order ---- */
int registry_start(vn_module *m);
void registry_stop(vn_module *m);
int directory_start(vn_module *m);
void directory_stop(vn_module *m);
int consent_start(vn_module *m);
void consent_stop(vn_module *m);
int audit_start(vn_module *m);
void audit_stop(vn_module *m);

/* ---- registry.c ---- */
typedef struct service {
    char *host;         /* the local host whose directory lists it */
    service_record rec; /* rec.jid is the key */
    double tokens;      /* message_rate's bucket */
    int64_t refill_us;
    int64_t day; /* daily_quota: the day counted, its messages */
    uint64_t day_count;
    int64_t hour; /* broadcasts_per_hour */
    unsigned hour_broadcasts;
    bool dirty; /* counters not saved yet */
    UT_hash_handle hh;
} service;

/* The service with that id, or NULL. */
service *registry_find(const char *id);
/* The service jid speaks for: its domain's if a component serves it,
 * else its bare JID's if that is a known service; created (without a
 * profile, so not listed) for a component seen first. NULL if none. */
service *registry_for(const vn_jid *jid, const char *host);
/* The service with that id, created (without a profile) if unknown. */
service *registry_ensure(const char *host, const char *id);
/* A cheap test before parsing: may the (normalised) JID text be a
 * service's? false means certainly not. */
bool registry_may_speak_for(const char *jid);
/* Listed in the directory: it has a profile and is not suspended. */
bool registry_listed(const service *svc);
/* Write the record (profile, flags, counters) now. */
void registry_save(service *svc);
/* Counters changed: saved within a few seconds. */
void registry_touch(service *svc);
typedef void (*registry_cb)(service *svc, void *ud);
void registry_foreach(const char *host, registry_cb cb, void *ud);

/* The known categories' ids, NULL-terminated, and a category's name (a
 * msgid); NULL for an unknown id. */
extern const char *const registry_categories[];
const char *registry_category_name(const char *id);

/* ---- directory.c: the services.<host> domains ---- */
/* The local host whose directory domain is domain, or NULL. */
const char *directory_host_of(const char *domain);
const char *directory_domain_of(const char *host);
/* Reply helpers for the handlers of the bus's iqs. */
void directory_iq_error(const vn_stanza *iq, const char *type, const char *condition,
                        const char *app_condition, const char *text);

/* ---- consent.c ---- */
/* What the filter decided; the stanza error for a refusal. */
typedef struct consent_refusal {
    const char *type, *condition; /* stanza error type and condition */
    const char *app_condition;    /* in NS_SERVICES, or NULL */
    const char *text;             /* msgid */
} consent_refusal;
consent_state consent_get(const char *host, const char *user, const char *service_id);
int consent_set(const char *host, const char *user, const char *service_id, consent_state st);
const char *consent_state_name(consent_state st);

/* ---- broadcast.c ---- */
void broadcast_audience_iq(service *svc, vn_event *ev, const vn_stanza *audience);
void broadcast_iq(service *svc, vn_event *ev, const vn_stanza *broadcast);
/* Part of a broadcast now: the consent filter has checked it already. */
bool broadcast_in_progress(void);

/* ---- audit.c ---- */
typedef enum { AUDIT_IN, AUDIT_OUT, AUDIT_REFUSED, AUDIT_BROADCAST } audit_kind;
/* Log one stanza between svc and with (a bare JID; for a broadcast, the
 * audience's name and n its recipients). */
void audit_log(service *svc, audit_kind kind, const char *with, const vn_stanza *st, size_t n);
/* May svc send n messages now (the daily quota, and unless broadcast, the
 * message rate)? NULL if yes (and taken from its allowance), else why not. */
const consent_refusal *audit_allow(service *svc, size_t n, bool broadcast);
typedef bool (*audit_entry_cb)(int64_t ts_us, const char *kind, const char *with, const char *what,
                               void *ud);
/* The newest entries of svc with user (NULL: any), newest first. */
void audit_foreach(service *svc, const char *user, size_t limit, audit_entry_cb cb, void *ud);

/* ---- text.c ---- */
/* s lowercased (ASCII, Latin-1 letters, Cyrillic), malloc'ed. */
char *text_fold(const char *s);
/* Does folded text contain word (folded) at a word's start? */
bool text_has_word_prefix(const char *text, const char *word);

#endif
