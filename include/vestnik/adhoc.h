/*
 * vestnik/adhoc.h - commands a person runs from any client (XEP-0050).
 *
 * Ad-Hoc Commands are how a plain XMPP client shows a server's menus: the
 * client lists the commands of the server's JID and runs one; the server
 * answers with a data form (XEP-0004), the person fills it in, the server
 * answers with a note. Features offer their commands here ("Language",
 * later "My documents", "My services") and mod_adhoc serves them, so a
 * feature never needs to know the protocol nor the module.
 *
 * A command is one or two steps: run with no form, it shows one (or does
 * its work at once); run with the submitted form, it does its work. The
 * texts of both are in the reader's language: names and notes are msgids
 * translated by mod_adhoc, forms are built with vestnik/form.h in req->lang.
 */
#ifndef VESTNIK_ADHOC_H
#define VESTNIK_ADHOC_H

#include <stddef.h>

#include "jid.h"
#include "stanza.h"

typedef struct vn_adhoc_request {
    const vn_jid *from;    /* the person, a local account's full JID */
    const char *host;      /* the host whose command runs */
    const char *lang;      /* the request's xml:lang, for vn_tr */
    const vn_stanza *form; /* the submitted <x type='submit'/>; NULL on the first step */
} vn_adhoc_request;

typedef enum { VN_ADHOC_INFO, VN_ADHOC_WARN, VN_ADHOC_ERROR } vn_adhoc_note_type;

typedef struct vn_adhoc_reply {
    vn_stanza *form;              /* to show (status executing); taken by mod_adhoc */
    vn_stanza *result;            /* a form of type 'result' shown with status completed
                                   * (what a command looked up); taken by mod_adhoc */
    const char *note;             /* msgid: the outcome (status completed) */
    vn_adhoc_note_type note_type; /* VN_ADHOC_ERROR: the command failed */
} vn_adhoc_reply;

/* Fills reply: a form asks for the next step, else the command completed
 * with its result and note. Runs on the loop thread. */
typedef void (*vn_adhoc_fn)(const vn_adhoc_request *req, vn_adhoc_reply *reply, void *ud);

/* Offers a command on every local host's JID, to its own accounts. node is
 * the command's id (a URI or a short name), name a msgid shown in the list.
 * Both must outlive the registration (string literals). */
void vn_adhoc_add(const char *node, const char *name, vn_adhoc_fn fn, void *ud);
void vn_adhoc_remove(const char *node);

/* For mod_adhoc: the commands in registration order; NULL past the end. */
typedef struct vn_adhoc_command {
    const char *node;
    const char *name;
    vn_adhoc_fn fn;
    void *ud;
} vn_adhoc_command;
const vn_adhoc_command *vn_adhoc_at(size_t i);
const vn_adhoc_command *vn_adhoc_find(const char *node);

#endif
