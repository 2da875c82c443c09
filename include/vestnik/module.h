/*
 * module.h - the one header a vestnik module includes.
 *
 * A module is a shared object exporting `vn_module_entry` (use VN_MODULE).
 * Through this API it registers hook handlers, disco features and
 * identities, declares its config keys (validated with line numbers when
 * the config is loaded), starts timers and worker jobs, reads and writes
 * the store, and sends stanzas. It never reaches into the core otherwise,
 * nor into another module.
 *
 * Everything here must be called on the loop thread, except inside a
 * vn_work_fn, which runs on a worker thread and may only touch its own data.
 */
#ifndef VESTNIK_MODULE_H
#define VESTNIK_MODULE_H

#include <stdbool.h>
#include <stdint.h>

#include "jid.h"
#include "log.h"
#include "roster.h"
#include "stanza.h"
#include "store.h"
#include "util.h"

#define VN_MODULE_API_VERSION 2

typedef struct vn_module vn_module;   /* a loaded module instance */
typedef struct vn_session vn_session; /* a bound client resource */

/* ---- hooks ----
 * Named events with priorities; higher priority runs first. A handler
 * returns VN_HANDLED to stop the chain (it dealt with the event) or VN_PASS.
 *
 * Stanza hooks run by the router, for a stanza whose 'to' is a local host:
 *   "iq-get/host/<ns>", "iq-set/host/<ns>"  to the server itself; <ns> is the
 *                                           namespace of the iq's payload
 *   "iq-get/bare/<ns>", "iq-set/bare/<ns>"  to a local account's bare JID (an
 *                                           iq from a client with no 'to' is
 *                                           addressed to its own bare JID)
 *   "iq-result/host", "iq-result/bare"      results/errors to host or bare JID
 *   "message/host", "message/bare", "presence/host", "presence/bare"
 *   "iq/full", "message/full", "presence/full"  to a bound resource
 *                                           (ev->session is the receiver);
 *                                           unhandled, delivered to it
 *   "route/local"    first, for every stanza to a local account (bare or
 *                    full JID): filters such as blocking take it here
 * A message to an unavailable full JID is handled as one to the bare JID.
 * Unhandled iq get/set gets service-unavailable; unhandled messages and
 * presence to a bare JID follow the core's default rules.
 *   "presence/broadcast" presence without 'to' from ev->session (the
 *                    client's own availability); unhandled, the core only
 *                    records availability and <priority/>
 *   "stanza/in"      every stanza a local client sends, before routing
 *   "stream/element" a top-level element of a bound client's stream that is
 *                    not a stanza (e.g. stream management); unhandled, it
 *                    closes the stream with <unsupported-stanza-type/>
 *   "route/remote"   a stanza for a domain that is not local (s2s,
 *                    components); unhandled: remote-server-not-found
 *   "stanza/out"     every stanza about to be written to a local client
 *                    (ev->session is the receiver); HANDLED swallows it
 * Session events (ev->stanza is NULL unless said):
 *   "stream/features" ev->data is the <stream:features/> element being built
 *                    for a stream after authentication (ev->session NULL)
 *   "stream/features/unauthenticated"  the same, before authentication
 *                    (only on encrypted streams or when encryption is
 *                    optional), e.g. for in-band registration
 *   "iq/unauthenticated" an iq on such a stream before authentication;
 *                    ev->data is a vn_unauthenticated_iq; a handler that
 *                    returns VN_HANDLED sets its reply (or the stream is
 *                    closed with <not-authorized/> when unhandled)
 *   "session/bound"   a resource was bound
 *   "session/closed"  a bound session is going away (ev->data: the reason
 *                     as a const char *, or NULL for a graceful close)
 *   "session/hibernated" the connection of a stream-management session
 *                    dropped; it stays bound, waiting to be resumed
 *   "session/resumed" such a session was resumed on a new connection
 *   "bind2/features" the SASL2 stream feature is being built, before
 *                    authentication; ev->data is the <inline/> of its Bind 2
 *                    (XEP-0386) <bind/>: add <feature var='NAMESPACE'/> for
 *                    each request a module serves through "bind2/inline"
 *   "bind2/inline"   a SASL2 login just bound ev->session with Bind 2;
 *                    ev->stanza is one child of the client's <bind/> (e.g.
 *                    <enable xmlns='urn:xmpp:carbons:2'/>), ev->data the
 *                    <bound/> of the answer, for a reply if the feature
 *                    defines one; HANDLED when served (the session then
 *                    starts with it, as after the request's usual form)
 *   "disco/host-info" mod_disco builds the host's disco#info; ev->data is
 *                    the <query/>: add extension forms (XEP-0128) here, so
 *                    the caps hash covers them
 *   "disco/account-info" the same for an account's bare JID (ev->to);
 *                    add the features served on the account's behalf
 *   "host/reload"     after SIGHUP reloaded the config
 *   "admin/command"   a request on the admin socket (vestnikctl) that the
 *                    core does not serve itself; ev->data is a
 *                    vn_admin_command. A handler that knows fields[0]
 *                    appends its whole answer to reply ("ok\n" and body
 *                    lines, or "error MESSAGE\n", admin_protocol's format)
 *                    and returns VN_HANDLED, at once; unhandled, the
 *                    client gets "error unknown command"
 */
typedef enum { VN_PASS = 0, VN_HANDLED = 1 } vn_hook_result;

typedef struct vn_event {
    vn_stanza *stanza;   /* owned by the caller of the hook; copy to keep */
    vn_session *session; /* local session concerned, or NULL */
    const vn_jid *from;  /* parsed 'from' of the stanza, or NULL */
    const vn_jid *to;    /* parsed 'to' of the stanza, or NULL */
    const char *host;    /* the local host the event belongs to */
    void *data;          /* event-specific, see above */
} vn_event;

typedef vn_hook_result (*vn_hook_fn)(vn_event *ev, void *ud);

typedef struct vn_admin_command {
    const char *const *fields; /* the command, then its arguments */
    int n_fields;
    vn_buf *reply; /* empty; the handler writes the answer here */
} vn_admin_command;

typedef struct vn_unauthenticated_iq {
    vn_stanza *reply;    /* set by the handler; the stream writes and frees it */
    const char *peer_ip; /* the client's address, for rate limits */
} vn_unauthenticated_iq;

void vn_hook_add(const char *name, int priority, vn_hook_fn fn, void *ud);
void vn_hook_remove(const char *name, vn_hook_fn fn, void *ud);
vn_hook_result vn_hook_run(const char *name, vn_event *ev);

/* ---- routing ----
 * vn_route takes ownership of a stanza with 'from' and 'to' set and
 * delivers it: to a local session, through the hooks above, or with an
 * error back to the sender. vn_route_error routes an error reply to st
 * (nothing if st is itself an error). */
void vn_route(vn_stanza *st);
void vn_route_error(const vn_stanza *st, const char *type, const char *condition, const char *text);
/* Deliver st to each of n recipients ('to' set to each in turn; st stays
 * the caller's). The stanza is serialized once and the bytes reused with
 * the 'to' spliced in, unless a hook on the way changes it: the way to
 * broadcast (MUC rooms, notifications to many contacts). */
void vn_route_fanout(const vn_stanza *st, const char *const *to, size_t n);
/* vn_route, once every store write issued so far is durable (store.h): the
 * way to send a reply saying that something was saved. If a write failed,
 * an iq result goes as an internal-server-error instead. */
void vn_route_durable(vn_stanza *st);

bool vn_is_local_host(const char *domain);
/* Is domain served by a configured external component (XEP-0114)? Its
 * stanzas' 'from' is checked against it, so a service can tell them. */
bool vn_is_component(const char *domain);
/* The configured hosts, NULL-terminated. */
const char *const *vn_local_hosts(void);

/* ---- sessions ---- */
const vn_jid *vn_session_jid(const vn_session *s); /* full JID */
const char *vn_session_host(const vn_session *s);
/* Write a stanza to the client (runs "stanza/out"); st stays the caller's. */
void vn_session_send(vn_session *s, const vn_stanza *st);
int vn_session_priority(const vn_session *s);
void vn_session_set_priority(vn_session *s, int priority);
bool vn_session_available(const vn_session *s); /* has sent available presence */
/* Its connection dropped and it waits for resumption (XEP-0198): stanzas
 * sent to it are queued, not seen by anyone yet (push notifications). */
bool vn_session_hibernating(const vn_session *s);
/* Can the client take more now without a limit (output buffer, unacked
 * stanzas) ending its stream? For paced bulk sending: when false, try
 * again a little later. */
bool vn_session_can_take_more(const vn_session *s);
void vn_session_set_available(vn_session *s, bool available);
/* Per-session data slots keyed by any pointer (use your module handle).
 * free_fn (may be NULL) runs when the slot is replaced or the session ends,
 * or, for slots whose free_fn is the module's own code, when the module is
 * unloaded (the core frees them just before unmapping it). */
void *vn_session_get_data(const vn_session *s, const void *key);
void vn_session_set_data(vn_session *s, const void *key, void *data, void (*free_fn)(void *));

/* Held by another node of a cluster (doc/cluster.md): what is sent to it
 * is forwarded to that node, and its data slots are not the ones the
 * modules of its own node keep (ask that node, e.g. with a probe). */
bool vn_session_is_remote(const vn_session *s);

vn_session *vn_session_find(const vn_jid *full);
/* Calls cb for every bound session of a bare JID; return false to stop. */
typedef bool (*vn_session_cb)(vn_session *s, void *ud);
void vn_sessions_foreach(const vn_jid *bare, vn_session_cb cb, void *ud);
size_t vn_sessions_count(void);

/* ---- accounts ----
 * user is a localpart (normalised here). These derive SCRAM keys (PBKDF2),
 * which takes milliseconds: call them from a vn_work_fn (they are safe on
 * worker threads) rather than on the loop. 0 ok; 1 exists already (create)
 * or no such account / wrong password; -1 invalid username or store error. */
bool vn_account_exists(const char *host, const char *user);
int vn_account_create(const char *host, const char *user, const char *password);
int vn_account_set_password(const char *host, const char *user, const char *password);
int vn_account_check_password(const char *host, const char *user, const char *password);
/* Removes the account and all its data, and closes its sessions (loop
 * thread only). */
int vn_account_delete(const char *host, const char *user);

/* ---- service discovery registry (served by mod_disco) ----
 * Reference-counted: what was added twice must be removed twice. name may
 * be NULL. Callbacks must not change the registry. */
void vn_disco_add_feature(const char *var);
void vn_disco_remove_feature(const char *var);
void vn_disco_add_identity(const char *category, const char *type, const char *name);
void vn_disco_remove_identity(const char *category, const char *type, const char *name);
typedef void (*vn_disco_feature_cb)(const char *var, void *ud);
typedef void (*vn_disco_identity_cb)(const char *category, const char *type, const char *name,
                                     void *ud);
void vn_disco_foreach_feature(vn_disco_feature_cb cb, void *ud); /* sorted, unique */
void vn_disco_foreach_identity(vn_disco_identity_cb cb, void *ud);
/* Items of a local host's disco#items: services on their own JIDs (a MUC
 * service at conference.<host>, components). name may be NULL; it is
 * looked up with vn_tr in the language of each request (a msgid marked
 * N_(), or a configured name, which stays as it is). */
void vn_disco_add_item(const char *host, const char *jid, const char *name);
void vn_disco_remove_item(const char *host, const char *jid);
typedef void (*vn_disco_item_cb)(const char *jid, const char *name, void *ud);
void vn_disco_foreach_item(const char *host, vn_disco_item_cb cb, void *ud);

/* ---- configuration ----
 * A module declares its keys, and with them what a valid value is; the
 * config loader rejects unknown keys, wrong types and invalid values under
 * modules.<name> with the file's line number, at start, on reload (the
 * running configuration stays) and in `vestnikd --check-config`, which runs
 * no module code but these checks. So load() and reload() can trust every
 * value they read. */
typedef enum { VN_CONF_STRING, VN_CONF_INT, VN_CONF_BOOL } vn_conf_type;

/* NULL if a VN_CONF_STRING value is valid, else what is wrong with it, to
 * follow "key 'name' ..." ("names an unknown transport"). Pure: it may not
 * use the server (check-config has none running), nor keep value. */
typedef const char *(*vn_config_check)(const char *value);

typedef struct vn_config_key {
    const char *name;
    vn_conf_type type;
    const char *default_value;  /* as written in YAML: "30", "true", "text" */
    long long min, max;         /* for VN_CONF_INT; ignored if min == max */
    const char *const *choices; /* VN_CONF_STRING: the only values, NULL-terminated; or NULL */
    vn_config_check check;      /* VN_CONF_STRING: or NULL */
} vn_config_key;

const char *vn_module_config_string(const vn_module *m, const char *key);
long long vn_module_config_int(const vn_module *m, const char *key);
bool vn_module_config_bool(const vn_module *m, const char *key);

/* ---- timers and worker jobs ---- */
typedef struct vn_timer vn_timer;
typedef void (*vn_timer_cb)(vn_timer *t, void *ud);
/* First fire after timeout_ms, then every repeat_ms (0: once; a one-shot
 * timer is freed after its callback returns). */
vn_timer *vn_timer_start(uint64_t timeout_ms, uint64_t repeat_ms, vn_timer_cb cb, void *ud);
void vn_timer_stop(vn_timer *t); /* stops and frees; not after a one-shot fired */

/* work runs on a worker thread, done afterwards on the loop thread. */
typedef void (*vn_work_fn)(void *ud);
void vn_work_queue(vn_work_fn work, vn_work_fn done, void *ud);

/* ---- store and server info ---- */
vn_store *vn_server_store(void);
const char *vn_server_data_dir(void); /* the config's data_dir */
const char *vn_server_version(void);
/* The libuv loop that runs every hook, timer and stanza: for a module with
 * a thread of its own that reports back with a uv_async (the media engine
 * of mod_voice). Handles a module opens on it, it closes before unload. */
struct uv_loop_s *vn_server_loop(void);
int64_t vn_now_us(void); /* wall clock, microseconds since the epoch */

/* XEP-0082 DateTime in UTC with microseconds: "2026-11-25T01:02:03.000004Z". */
#define VN_DATETIME_SIZE 40
void vn_datetime_format(int64_t us, char out[VN_DATETIME_SIZE]);
/* Any XEP-0082 DateTime (fraction optional, Z or +hh:mm); false if not one. */
bool vn_datetime_parse(const char *text, int64_t *us);

/* ---- module definition ---- */
typedef struct vn_module_def {
    int api_version; /* VN_MODULE_API_VERSION */
    const char *name;
    const char *description;
    const vn_config_key *config_keys; /* terminated by an entry with name NULL; may be NULL */
    int (*load)(vn_module *m);        /* 0 on success */
    void (*unload)(vn_module *m);     /* may be NULL */
    void (*reload)(vn_module *m);     /* config changed (SIGHUP); may be NULL */
} vn_module_def;

#define VN_MODULE(...) const vn_module_def vn_module_entry = {VN_MODULE_API_VERSION, __VA_ARGS__}

#endif
