/*
 * admin.h - the local admin socket of a running vestnikd.
 *
 * A unix socket (mode 0600, peer credentials checked: root or the
 * server's own user) speaking the protocol in admin_protocol.h, used by
 * vestnikctl for status, reload and account changes on a running server.
 */
#ifndef VESTNIK_ADMIN_H
#define VESTNIK_ADMIN_H

#include <uv.h>

#include "vestnik/util.h"

int vn_admin_start(uv_loop_t *loop, const char *path, vn_buf *err);
void vn_admin_stop(void);

#endif
