/*
 * qr.c - a QR code rendered as a PNG (qr.h): libqrencode for the symbol,
 * libpng for the image, written to memory.
 */
#include "qr.h"

#include <png.h>
#include <qrencode.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <vestnik/util.h>

#include "cred_error.h"

static void png_to_buf(png_structp png, png_bytep data, png_size_t len)
{
    vn_buf_append(png_get_io_ptr(png), data, len);
}

static void png_flush_none(png_structp png)
{
    (void)png;
}

/* Write the symbol; 0 or -1 after a libpng error (its longjmp lands here,
 * so nothing allocated in this function may be live across it but what
 * the caller frees). */
static int write_png(const QRcode *qr, unsigned scale, unsigned margin, vn_buf *out, png_bytep row)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_uint_32 side = ((png_uint_32)qr->width + 2 * margin) * scale;
    png_set_write_fn(png, out, png_to_buf, png_flush_none);
    png_set_IHDR(png, info, side, side, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (png_uint_32 y = 0; y < side; y++) {
        long my = (long)(y / scale) - (long)margin;
        for (png_uint_32 x = 0; x < side; x++) {
            long mx = (long)(x / scale) - (long)margin;
            bool dark = my >= 0 && mx >= 0 && my < qr->width && mx < qr->width &&
                        (qr->data[my * qr->width + mx] & 1);
            row[x] = dark ? 0 : 255;
        }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

int vn_qr_png(const char *text, unsigned scale, unsigned margin, unsigned char **png,
              size_t *png_len)
{
    *png = NULL;
    *png_len = 0;
    if (!text || scale < 1 || scale > 32 || margin > 16)
        return VN_CRED_EINVAL;
    size_t len = strlen(text);
    if (len == 0 || len > VN_QR_MAX_TEXT)
        return len ? VN_CRED_EQR : VN_CRED_EINVAL;
    QRcode *qr = QRcode_encodeData((int)len, (const unsigned char *)text, 0, QR_ECLEVEL_M);
    if (!qr)
        return VN_CRED_EQR;
    size_t side = ((size_t)qr->width + 2 * margin) * scale;
    png_bytep row = vn_alloc(side);
    vn_buf out;
    vn_buf_init(&out);
    int rc = write_png(qr, scale, margin, &out, row);
    free(row);
    QRcode_free(qr);
    if (rc != 0) {
        vn_buf_free(&out);
        return VN_CRED_ECRYPTO;
    }
    *png = (unsigned char *)vn_buf_steal(&out, png_len);
    return 0;
}
