/*
 * cluster_nats.c - the node's one NATS connection.
 *
 * libnats does its socket I/O on our loop through its libuv adapter, but
 * calls subscription handlers on its own delivery threads: they only queue
 * the message and wake the loop (uv_async), where cl_dispatch handles it,
 * in arrival order per subscription. Publishing happens on the loop.
 * libnats reconnects by itself; while it is away, what we publish is
 * buffered by it (reconnect buffer) or dropped with a warning.
 */
#include <nats/adapters/libuv.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_internal.h"

typedef struct queued {
    natsMsg *msg;
    struct queued *next;
} queued;

static natsConnection *conn;
static natsSubscription *sub_cluster, *sub_node;
static uv_async_t wake;
static bool wake_open;
static uv_mutex_t lock;
static queued *head, **tail = &head;
static char *url;

static void on_message(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    queued *q = malloc(sizeof *q);
    if (!q) {
        natsMsg_Destroy(msg);
        return;
    }
    q->msg = msg;
    q->next = NULL;
    uv_mutex_lock(&lock);
    *tail = q;
    tail = &q->next;
    uv_mutex_unlock(&lock);
    uv_async_send(&wake);
}

static void drain(uv_async_t *h)
{
    uv_mutex_lock(&lock);
    queued *q = head;
    head = NULL;
    tail = &head;
    uv_mutex_unlock(&lock);
    while (q) {
        queued *next = q->next;
        if (conn)
            cl_dispatch(q->msg);
        natsMsg_Destroy(q->msg);
        free(q);
        q = next;
    }
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    if (natsConnection_IsClosed(nc))
        return; /* we are leaving */
    vn_log_warn("cluster: lost the NATS connection, reconnecting");
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    vn_log_info("cluster: NATS connection back");
}

int cl_nats_connect(uv_loop_t *loop, const char *servers, vn_buf *err)
{
    natsOptions *opts = NULL;
    natsStatus s;
    char subject[256];

    if (uv_mutex_init(&lock) != 0 || uv_async_init(loop, &wake, drain) != 0) {
        vn_buf_printf(err, "cluster: cannot set up the NATS queue");
        return -1;
    }
    wake_open = true;
    natsLibuv_Init();
    natsLibuv_SetThreadLocalLoop(loop);
    s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = natsOptions_SetServers(opts, NULL, 0);
    if (s == NATS_OK)
        s = natsOptions_SetURL(opts, servers);
    if (s == NATS_OK)
        s = natsOptions_SetName(opts, cl.node_id);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(opts, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(opts, 250);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(opts, on_disconnected, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(opts, on_reconnected, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetEventLoop(opts, loop, natsLibuv_Attach, natsLibuv_Read, natsLibuv_Write,
                                     natsLibuv_Detach);
    if (s == NATS_OK)
        s = natsConnection_Connect(&conn, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK) {
        vn_buf_printf(err, "cluster: cannot connect to NATS at %s: %s", servers,
                      natsStatus_GetText(s));
        conn = NULL;
        return -1;
    }
    snprintf(subject, sizeof subject, "vestnik.node.%s", cl.node_id);
    s = natsConnection_Subscribe(&sub_node, conn, subject, on_message, NULL);
    if (s == NATS_OK)
        s = natsConnection_Subscribe(&sub_cluster, conn, CL_SUBJECT_PREFIX ">", on_message, NULL);
    if (s == NATS_OK) {
        /* No limit of pending messages but memory: dropping one would
         * lose a stanza or an announcement. */
        natsSubscription_SetPendingLimits(sub_node, -1, -1);
        natsSubscription_SetPendingLimits(sub_cluster, -1, -1);
    }
    /* No natsConnection_Flush here or anywhere: it waits for a PONG that
     * only the loop we would block can read. */
    if (s != NATS_OK) {
        vn_buf_printf(err, "cluster: cannot subscribe on NATS: %s", natsStatus_GetText(s));
        cl_nats_close();
        return -1;
    }
    url = vn_strdup(servers);
    return 0;
}

static void closed_wake(uv_handle_t *h)
{
    uv_mutex_destroy(&lock);
}

void cl_nats_close(void)
{
    if (conn) {
        natsSubscription_Destroy(sub_node);
        natsSubscription_Destroy(sub_cluster);
        sub_node = sub_cluster = NULL;
        natsConnection_Close(conn);
        natsConnection_Destroy(conn);
        conn = NULL;
    }
    if (wake_open) {
        wake_open = false;
        drain(&wake); /* frees what is still queued (conn is NULL: not handled) */
        uv_close((uv_handle_t *)&wake, closed_wake);
    }
    free(url);
    url = NULL;
}

void cl_publish(const char *subject, const char *const *headers, const void *data, size_t len)
{
    natsMsg *msg = NULL;
    natsStatus s;

    if (!conn)
        return;
    s = natsMsg_Create(&msg, subject, NULL, data, (int)len);
    for (size_t i = 0; s == NATS_OK && headers && headers[i]; i += 2)
        s = natsMsgHeader_Set(msg, headers[i], headers[i + 1]);
    if (s == NATS_OK)
        s = natsConnection_PublishMsg(conn, msg);
    if (s != NATS_OK)
        vn_log_warn("cluster: cannot publish on %s: %s", subject, natsStatus_GetText(s));
    natsMsg_Destroy(msg);
}

const char *cl_header(natsMsg *msg, const char *name)
{
    const char *value = NULL;
    if (natsMsgHeader_Get(msg, name, &value) != NATS_OK)
        return NULL;
    return value;
}

bool cl_nats_connected(void)
{
    return conn && natsConnection_Status(conn) == NATS_CONN_STATUS_CONNECTED;
}

const char *cl_nats_url(void)
{
    return url ? url : "";
}
