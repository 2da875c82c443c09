/*
 * sasl2.h - XEP-0388 SASL2 on client streams (sasl2.c), with what can be
 * negotiated inside it: XEP-0198 resumption (c2s_sm.c), XEP-0386 Bind 2
 * (bind2.c) and XEP-0484 FAST tokens (fast.c). One <authenticate/> round
 * trip can authenticate (with a token), resume or bind, and enable
 * carbons, CSI and stream management; no stream restart follows.
 *
 * Only c2s.c and the files named above include this header.
 */
#ifndef VESTNIK_SASL2_H
#define VESTNIK_SASL2_H

#include "c2s.h"
#include "sasl.h"

#define VN_NS_SASL2 "urn:xmpp:sasl:2"
#define VN_NS_BIND2 "urn:xmpp:bind:0"

/* A stream's SASL2 exchange in progress (vn_c2s.sasl2). */
typedef struct vn_sasl2 vn_sasl2;

/* Add <authentication xmlns='urn:xmpp:sasl:2'/> with the same mechanisms
 * as <mechanisms/> and the inline features, unless auth.sasl2 is off. */
void vn_c2s_sasl2_add_features(vn_c2s *s, const vn_sasl_context *ctx, vn_stanza *features);
/* An element in the SASL2 namespace from the client. */
void vn_c2s_sasl2_element(vn_c2s *s, const vn_stanza *el);
/* The answer to the login's inline <resume/> (c2s_sm.c): the login goes
 * on and <success/> is written. Takes answer. */
void vn_c2s_sasl2_resumed(vn_c2s *s, vn_stanza *answer);
void vn_sasl2_free(vn_sasl2 *x);

/* bind2.c */
/* The <bind xmlns='urn:xmpp:bind:0'/> of SASL2's <inline/>, listing the
 * features a bind request may enable (the "bind2/features" hook). */
void vn_bind2_add_feature(const char *host, vn_stanza *inline_el);
/* Bind a resource for the authenticated stream s as the client's <bind/>
 * asks, enabling what it lists; the <bound/> element for <success/>, or
 * NULL (nothing bound) when the account has no room for a resource. The
 * resource is "<tag>/<id>", the id derived from the account and the
 * <user-agent id/> (stable for one client instance, not revealing the id),
 * or random without one. */
vn_stanza *vn_bind2_bind(vn_c2s *s, const vn_stanza *bind, const char *ua_id);

#endif
