/*
 * sessions.h - the table of bound client resources.
 *
 * Maps full JIDs to sessions and bare JIDs to their resources (with
 * priority and availability), the core of RFC 6121 delivery. A session is
 * created at resource binding and removed when its stream ends.
 */
#ifndef VESTNIK_SESSIONS_H
#define VESTNIK_SESSIONS_H

#include "vestnik/module.h"

struct vn_c2s;

/* Bind a resource for an authenticated stream. resource NULL or "" asks the
 * server to generate one. If the full JID is taken, the older session is
 * closed with a <conflict/> stream error and the new one wins. Returns NULL
 * with *condition ("bad-request" for an invalid resource,
 * "resource-constraint" when the account already has
 * limits.max_resources_per_account resources) on failure. */
vn_session *vn_sessions_bind(struct vn_c2s *stream, const char *host, const char *user,
                             const char *resource, const char **condition);
/* Remove a session (its stream is ending); runs "session/closed". The
 * memory is released on the next loop turn (or by vn_sessions_reap), so
 * callers up the stack may still look at it: it is marked dead and
 * vn_session_send ignores it. */
void vn_sessions_unbind(vn_session *s, const char *reason);
/* Release unbound sessions now (at shutdown). */
void vn_sessions_reap(void);
/* A module is about to be unmapped: free every session slot whose free
 * function is its code (module_base: where it is loaded, from dladdr), so
 * that no session calls into it later. */
void vn_sessions_drop_module_data(const void *module_base);
struct vn_c2s *vn_session_stream(const vn_session *s);
/* The session moved to another stream (stream management resumption). */
void vn_session_set_stream(vn_session *s, struct vn_c2s *stream);
/* Close every session of an account with a stream error (account deleted),
 * on every node of a cluster. */
void vn_sessions_kick_user(const char *host, const char *user, const char *condition);
/* The same for this node's sessions only (another node asked). */
void vn_sessions_kick_user_here(const char *host, const char *user, const char *condition);

/* ---- remote sessions, held by other nodes of a cluster (cluster.h) ----
 * They live in the same tables, with no stream: vn_session_send publishes
 * to their node. put adds or updates one (closing a local session of the
 * same full JID: the newer wins); NULL for an invalid JID. */
vn_session *vn_sessions_put_remote(const char *node, const char *full, int priority,
                                   bool available);
void vn_sessions_drop_remote(const char *node, const char *full);
/* Forget every session of a node (it left or died); how many. */
size_t vn_sessions_drop_node(const char *node);
/* The node of a remote session, NULL for a local one. */
const char *vn_session_node(const vn_session *s);
/* Every session of node (local ones: NULL); cb may not bind or drop. */
void vn_sessions_foreach_of_node(const char *node, vn_session_cb cb, void *ud);
/* Remote sessions held by node (all nodes: NULL). */
size_t vn_sessions_count_remote(const char *node);

#endif
