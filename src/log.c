/*
 * log.c - leveled logging to stderr (with timestamps) or syslog.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log_internal.h"

static vn_log_level log_level = VN_LOG_INFO;
static bool log_syslog;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void vn_log_setup(vn_log_level level, bool use_syslog, const char *ident)
{
    if (log_syslog && !use_syslog)
        closelog();
    if (use_syslog && !log_syslog)
        openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    log_level = level;
    log_syslog = use_syslog;
}

int vn_log_level_parse(const char *name)
{
    for (int i = 0; i < (int)(sizeof level_names / sizeof level_names[0]); i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

bool vn_log_enabled(vn_log_level level)
{
    return level <= log_level;
}

void vn_log(vn_log_level level, const char *fmt, ...)
{
    static const int syslog_prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    char msg[2048];
    va_list ap;

    if (!vn_log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    if (log_syslog) {
        syslog(syslog_prio[level], "%s", msg);
        return;
    }
    struct timespec ts;
    struct tm tm;
    char when[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ %-5s %s\n", when, ts.tv_nsec / 1000000, level_names[level], msg);
}
