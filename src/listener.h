/*
 * listener.h - the configured TCP listeners.
 *
 * Each listener accepts connections and hands them, already in TLS for
 * direct-TLS listeners, to the stream layer through the accept callback.
 */
#ifndef VESTNIK_LISTENER_H
#define VESTNIK_LISTENER_H

#include <uv.h>

#include "config.h"
#include "conn.h"

typedef void (*vn_accept_cb)(vn_conn *c, const vn_listener_conf *lc, void *ud);

/* Bind and listen on every configured listener; -1 with message on the
 * first failure (nothing left listening). */
int vn_listeners_start(uv_loop_t *loop, const vn_config *cfg, vn_accept_cb cb, void *ud,
                       vn_buf *err);
void vn_listeners_stop(void);

#endif
