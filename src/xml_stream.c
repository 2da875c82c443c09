/*
 * xml_stream.c - an XML stream over a connection (see xml_stream.h): the
 * glue between vn_conn and vn_xml_parser that c2s, s2s and components
 * share, so that closing, restarting, pausing and output overflow behave
 * the same on all of them.
 *
 * in_feed is true while the parser runs on a chunk: closing or asking for
 * a restart from inside a callback must stop the parser there, since the
 * rest of the chunk belongs to nobody (closing) or to the next stream
 * (restart: parsed after the reset, on the next read; a peer may only send
 * it after our answer to the element that asked for the restart).
 *
 * Idle memory: once a second a sweep releases the parser of every stream
 * that read nothing since the previous sweep (vn_xml_parser_release: it
 * does so only between two stanzas); the next byte brings it back. The
 * sweep's timer lives while streams do, so a loop can close after them.
 */
#include "xml_stream.h"

#include <stdlib.h>
#include <utlist.h>

#include "server.h"
#include "xml_parser.h"

struct vn_xml_stream {
    vn_conn *conn;
    vn_xml_parser *parser;
    const vn_xml_stream_handler *h;
    void *ud;
    bool in_feed;
    bool restart; /* reset the parser once the current chunk is done */
    bool closing;
    bool read_recently; /* since the last idle sweep */
    vn_xml_stream *prev, *next;
};

#define IDLE_SWEEP_MS 1000

static vn_xml_stream *all_streams;
static uv_timer_t *idle_sweep;

static void on_idle_sweep(uv_timer_t *timer)
{
    for (vn_xml_stream *x = all_streams; x; x = x->next) {
        if (!x->read_recently && !x->closing)
            vn_xml_parser_release(x->parser);
        x->read_recently = false;
    }
}

static void sweep_closed(uv_handle_t *handle)
{
    free(handle);
}

static void stream_list_add(vn_xml_stream *x)
{
    DL_APPEND(all_streams, x);
    if (idle_sweep)
        return;
    idle_sweep = vn_alloc(sizeof *idle_sweep);
    uv_timer_init(vn_srv.loop, idle_sweep);
    uv_unref((uv_handle_t *)idle_sweep); /* the streams keep the loop alive */
    uv_timer_start(idle_sweep, on_idle_sweep, IDLE_SWEEP_MS, IDLE_SWEEP_MS);
}

static void stream_list_remove(vn_xml_stream *x)
{
    DL_DELETE(all_streams, x);
    if (all_streams || !idle_sweep)
        return;
    uv_close((uv_handle_t *)idle_sweep, sweep_closed);
    idle_sweep = NULL;
}

/* ---- parser events, to the owner unless closing ---- */

static void on_stream_open(void *ud, const vn_stanza *header)
{
    vn_xml_stream *x = ud;
    if (!x->closing)
        x->h->stream_open(x->ud, header);
}

static void on_element(void *ud, vn_stanza *el)
{
    vn_xml_stream *x = ud;
    if (x->closing)
        vn_stanza_free(el);
    else
        x->h->element(x->ud, el);
}

static void on_stream_close(void *ud)
{
    vn_xml_stream *x = ud;
    if (!x->closing)
        x->h->stream_close(x->ud);
}

static void on_xml_error(void *ud, const char *condition, const char *text)
{
    vn_xml_stream *x = ud;
    if (!x->closing)
        x->h->error(x->ud, condition, text);
}

static const vn_xml_callbacks xml_callbacks = {
    .stream_open = on_stream_open,
    .stanza = on_element,
    .stream_close = on_stream_close,
    .error = on_xml_error,
};

/* Parse data, or (data NULL) resume what a pause held back. */
static void feed(vn_xml_stream *x, const char *data, size_t len)
{
    x->in_feed = true;
    if (data)
        vn_xml_parser_feed(x->parser, data, len);
    else
        vn_xml_parser_resume(x->parser);
    x->in_feed = false;
    if (!x->restart || x->closing)
        return;
    x->restart = false;
    if (x->h->restart)
        x->h->restart(x->ud);
    else
        vn_xml_parser_reset(x->parser);
}

/* ---- connection events ---- */

static void on_data(vn_conn *c, void *ud, const char *data, size_t len)
{
    vn_xml_stream *x = ud;

    if (x->closing)
        return;
    x->read_recently = true;
    if (x->h->data)
        x->h->data(x->ud);
    if (!x->closing)
        feed(x, data, len);
}

static void on_tls_ready(vn_conn *c, void *ud)
{
    vn_xml_stream *x = ud;
    if (x->h->tls_ready && !x->closing)
        x->h->tls_ready(x->ud);
}

static void on_connected(vn_conn *c, void *ud)
{
    vn_xml_stream *x = ud;
    if (x->h->connected && !x->closing)
        x->h->connected(x->ud);
}

static void on_close(vn_conn *c, void *ud, const char *reason)
{
    vn_xml_stream *x = ud;

    x->closing = true;
    x->h->closed(x->ud, reason);
    stream_list_remove(x);
    vn_xml_parser_free(x->parser);
    free(x);
}

static const vn_conn_callbacks conn_callbacks = {
    .on_data = on_data,
    .on_tls_ready = on_tls_ready,
    .on_close = on_close,
};

static vn_xml_stream *stream_new(const vn_xml_stream_handler *h, void *ud)
{
    const vn_config *cfg = vn_srv.cfg;
    vn_xml_stream *x = vn_alloc(sizeof *x);

    x->h = h;
    x->ud = ud;
    x->parser = vn_xml_parser_new(&xml_callbacks, x, cfg->max_stanza_size, cfg->max_xml_depth);
    stream_list_add(x);
    return x;
}

vn_xml_stream *vn_xml_stream_accept(vn_conn *c, const vn_xml_stream_handler *h, void *ud)
{
    vn_xml_stream *x = stream_new(h, ud);

    x->conn = c;
    vn_conn_set_callbacks(c, &conn_callbacks, x);
    return x;
}

vn_xml_stream *vn_xml_stream_connect(const struct sockaddr *addr, const vn_xml_stream_handler *h,
                                     void *ud)
{
    vn_xml_stream *x = stream_new(h, ud);

    x->conn = vn_conn_connect(vn_srv.loop, addr, vn_srv.cfg->max_output_buffer, &conn_callbacks,
                              on_connected, x);
    if (!x->conn) {
        stream_list_remove(x);
        vn_xml_parser_free(x->parser);
        free(x);
        return NULL;
    }
    return x;
}

int vn_xml_stream_start(vn_xml_stream *x)
{
    if (vn_conn_start(x->conn) == 0)
        return 0;
    vn_xml_stream_close(x, false);
    return -1;
}

/* ---- output and closing ---- */

int vn_xml_stream_write(vn_xml_stream *x, const char *data, size_t len)
{
    if (x->closing)
        return 0;
    if (vn_conn_write(x->conn, data, len) == 0)
        return 0;
    vn_xml_stream_close(x, false);
    if (x->h->overflow)
        x->h->overflow(x->ud);
    return -1;
}

int vn_xml_stream_write_element(vn_xml_stream *x, const vn_stanza *el, const char *default_ns)
{
    static vn_buf out; /* reused: the loop is single-threaded */

    vn_buf_reset(&out);
    vn_stanza_serialize_to(el, default_ns, &out);
    return vn_xml_stream_write(x, out.data, out.len);
}

void vn_xml_stream_close(vn_xml_stream *x, bool graceful)
{
    if (x->closing)
        return;
    if (graceful)
        vn_xml_stream_write(x, "</stream:stream>", 16);
    if (x->closing) /* that write overflowed */
        return;
    x->closing = true;
    if (x->in_feed)
        vn_xml_parser_stop(x->parser);
    vn_conn_close(x->conn, graceful);
}

bool vn_xml_stream_closing(const vn_xml_stream *x)
{
    return x->closing;
}

/* ---- restarts and load shaping ---- */

void vn_xml_stream_restart(vn_xml_stream *x)
{
    x->restart = true;
    vn_xml_parser_stop(x->parser);
}

void vn_xml_stream_reset(vn_xml_stream *x)
{
    vn_xml_parser_reset(x->parser);
}

void vn_xml_stream_pause(vn_xml_stream *x, bool paused)
{
    if (x->closing)
        return;
    vn_conn_pause_reading(x->conn, paused);
    if (paused)
        vn_xml_parser_pause(x->parser);
    else
        feed(x, NULL, 0);
}

vn_conn *vn_xml_stream_conn(const vn_xml_stream *x)
{
    return x->conn;
}
