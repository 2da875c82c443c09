/*
 * datetime.c - XEP-0082 DateTime profile: the timestamps of <delay/>,
 * MAM queries, MUC history and entity time, written and read in one place.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vestnik/module.h"

void vn_datetime_format(int64_t us, char out[VN_DATETIME_SIZE])
{
    int64_t fraction = us % 1000000;
    if (fraction < 0) /* before 1970: whole seconds round down */
        fraction += 1000000;
    time_t secs = (time_t)((us - fraction) / 1000000);
    struct tm tm;
    char date[24];

    gmtime_r(&secs, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, VN_DATETIME_SIZE, "%.19s.%06uZ", date, (unsigned)fraction);
}

bool vn_datetime_parse(const char *text, int64_t *us)
{
    struct tm tm;
    int64_t fraction_us = 0, offset_s = 0;

    memset(&tm, 0, sizeof tm);
    const char *p = text ? strptime(text, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!p)
        return false;
    if (*p == '.') {
        int64_t scale = 100000;
        if (*++p < '0' || *p > '9')
            return false;
        for (; *p >= '0' && *p <= '9'; p++, scale /= 10)
            fraction_us += (*p - '0') * scale;
    }
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hours, minutes, used = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &hours, &minutes, &used) != 2 || used != 5 || hours > 23 ||
            minutes > 59)
            return false;
        offset_s = (hours * 3600 + minutes * 60) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return false;
    }
    if (*p)
        return false;
    /* -1 is also 1969-12-31T23:59:59Z: only errno tells an overflow apart. */
    errno = 0;
    time_t secs = timegm(&tm);
    if (secs == (time_t)-1 && errno)
        return false;
    *us = ((int64_t)secs - offset_s) * 1000000 + fraction_us;
    return true;
}
