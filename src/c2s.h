/*
 * c2s.h - client-to-server streams (RFC 6120): the state machine from
 * stream header through STARTTLS, SASL and resource binding to stanzas.
 */
#ifndef VESTNIK_C2S_H
#define VESTNIK_C2S_H

#include "conn.h"
#include "listener.h"
#include "vestnik/stanza.h"

typedef struct vn_c2s vn_c2s;

/* Accept callback for c2s listeners (see listener.h). */
void vn_c2s_accept(vn_conn *c, const vn_listener_conf *lc, void *ud);
/* Write a stanza to the client. */
void vn_c2s_write_stanza(vn_c2s *s, const vn_stanza *st);
/* Send a stream error (condition NULL: none) and close. */
void vn_c2s_close(vn_c2s *s, const char *condition, const char *text);
/* Close every client stream with <system-shutdown/>. */
void vn_c2s_close_all(const char *condition);
size_t vn_c2s_count(void);

#endif
