/*
 * qr.h - a QR code as a PNG image, for showing a document in person.
 *
 * libqrencode makes the symbol (byte mode, error correction M, the
 * smallest version that fits), libpng writes it as an 8-bit grayscale
 * image. A whole SD-JWT presentation rarely fits (a version 40 symbol
 * holds 2331 bytes at level M): the usual payload is a one-time link
 * (cred_http.h).
 */
#ifndef VN_CRED_QR_H
#define VN_CRED_QR_H

#include <stddef.h>

/* Largest text accepted (bytes); beyond: VN_CRED_EQR. */
#define VN_QR_MAX_TEXT 2331

/* PNG of text, each module scale x scale pixels (1..32) with a quiet zone
 * of margin modules (4 is the standard's). *png: free(). 0 or
 * VN_CRED_EQR (too long) / VN_CRED_EINVAL / VN_CRED_ECRYPTO (libpng or
 * libqrencode failed). */
int vn_qr_png(const char *text, unsigned scale, unsigned margin, unsigned char **png,
              size_t *png_len);

#endif
