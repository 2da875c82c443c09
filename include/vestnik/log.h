/*
 * log.h - leveled logging to stderr or syslog.
 *
 * Message bodies and passwords are never logged at info level or above;
 * debug may show stanza traffic and is meant for development only.
 */
#ifndef VESTNIK_LOG_H
#define VESTNIK_LOG_H

#include <stdbool.h>

typedef enum { VN_LOG_ERROR = 0, VN_LOG_WARN = 1, VN_LOG_INFO = 2, VN_LOG_DEBUG = 3 } vn_log_level;

void vn_log(vn_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool vn_log_enabled(vn_log_level level);

#define vn_log_error(...) vn_log(VN_LOG_ERROR, __VA_ARGS__)
#define vn_log_warn(...) vn_log(VN_LOG_WARN, __VA_ARGS__)
#define vn_log_info(...) vn_log(VN_LOG_INFO, __VA_ARGS__)
#define vn_log_debug(...)                                                                          \
    do {                                                                                           \
        if (vn_log_enabled(VN_LOG_DEBUG))                                                          \
            vn_log(VN_LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)

#endif
