/*
 * fuzz_xml_parser.c - libFuzzer target for the streaming XML parser
 * (xml_parser.c) and the stanza serializer behind it (stanza.c).
 *
 * The input is a client's byte stream, fed in chunks whose size the first
 * byte picks, so element and UTF-8 boundaries fall anywhere. Every stanza
 * the parser delivers must survive a round trip: serialized, parsed back
 * with vn_stanza_parse and serialized again, it must give the same text.
 * An element named <restart/> resets the parser as a stream restart does
 * (at most twice per input), dropping the rest of its chunk as the c2s
 * transport does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log_internal.h"
#include "vestnik/stanza.h"
#include "vestnik/util.h"
#include "xml_parser.h"

#define MAX_STANZA_SIZE 65536
#define MAX_DEPTH 32

typedef struct fuzz_stream {
    vn_xml_parser *parser;
    vn_buf first;
    vn_buf second;
    int restarts;
    bool want_reset;
} fuzz_stream;

static void check_round_trip(const vn_stanza *st, fuzz_stream *fs)
{
    vn_buf_reset(&fs->first);
    vn_stanza_serialize_to(st, VN_NS_CLIENT, &fs->first);
    vn_stanza *again = vn_stanza_parse(fs->first.data, fs->first.len);
    if (!again)
        abort(); /* the serializer wrote something its own parser refuses */
    vn_buf_reset(&fs->second);
    vn_stanza_serialize_to(again, VN_NS_CLIENT, &fs->second);
    vn_stanza_free(again);
    if (fs->first.len != fs->second.len || memcmp(fs->first.data, fs->second.data, fs->first.len))
        abort(); /* a round trip changed the element */
}

static void on_open(void *ud, const vn_stanza *header)
{
    char *text = vn_stanza_serialize(header, VN_NS_CLIENT, NULL);
    free(text);
}

static void on_stanza(void *ud, vn_stanza *st)
{
    fuzz_stream *fs = ud;

    check_round_trip(st, fs);
    if (strcmp(vn_stanza_name(st), "restart") == 0 && fs->restarts < 2) {
        fs->want_reset = true;
        vn_xml_parser_stop(fs->parser);
    }
    vn_stanza_free(st);
}

static void on_close(void *ud)
{
}

static void on_error(void *ud, const char *condition, const char *text)
{
}

static const vn_xml_callbacks callbacks = {
    .stream_open = on_open,
    .stanza = on_stanza,
    .stream_close = on_close,
    .error = on_error,
};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    vn_log_setup(VN_LOG_ERROR, false, "fuzz_xml_parser");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = data[0] % 64 + 1; /* 1..64 bytes per feed */
    const char *bytes = (const char *)data + 1;
    size_t left = size - 1;
    fuzz_stream fs = {0};

    vn_buf_init(&fs.first);
    vn_buf_init(&fs.second);
    fs.parser = vn_xml_parser_new(&callbacks, &fs, MAX_STANZA_SIZE, MAX_DEPTH);
    while (left > 0) {
        size_t n = left < chunk ? left : chunk;
        int rc = vn_xml_parser_feed(fs.parser, bytes, n);
        bytes += n;
        left -= n;
        if (fs.want_reset) {
            /* Like the c2s transport: what followed in the chunk is dropped. */
            vn_xml_parser_reset(fs.parser);
            fs.want_reset = false;
            fs.restarts++;
        } else if (rc < 0) {
            break;
        }
    }
    vn_xml_parser_free(fs.parser);
    vn_buf_free(&fs.first);
    vn_buf_free(&fs.second);
    return 0;
}
