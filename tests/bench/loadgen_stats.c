/*
 * loadgen_stats.c - the load generator's figures: delivery latency
 * percentiles, and the server process's memory and CPU time read from
 * /proc/PID/status (VmRSS) and /proc/PID/stat (utime + stime).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loadgen.h"

void lg_latencies_add(lg_latencies *l, uint64_t ns)
{
    if (l->count == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 65536;
        l->samples_us = vn_realloc(l->samples_us, l->cap * sizeof *l->samples_us);
    }
    uint64_t us = ns / 1000;
    l->samples_us[l->count++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    l->sorted = false;
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

double lg_latencies_quantile(lg_latencies *l, double q)
{
    if (l->count == 0)
        return 0;
    if (!l->sorted)
        qsort(l->samples_us, l->count, sizeof *l->samples_us, compare_u32);
    l->sorted = true;
    size_t rank = (size_t)(q * (double)(l->count - 1) + 0.5);
    return l->samples_us[rank] / 1000.0;
}

void lg_latencies_free(lg_latencies *l)
{
    free(l->samples_us);
    memset(l, 0, sizeof *l);
}

static long status_field_kib(int pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long value = -1;
    size_t field_len = strlen(field);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, field_len) == 0 && line[field_len] == ':') {
            value = strtol(line + field_len + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return value;
}

static double cpu_seconds(int pid)
{
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    /* The command name may hold spaces and parentheses: fields after the
     * last ')' are state (3rd), ... utime (14th), stime (15th). */
    const char *p = strrchr(text, ')');
    if (!p)
        return -1;
    unsigned long utime = 0, stime = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

int lg_proc_sample_take(int pid, lg_proc_sample *out)
{
    memset(out, 0, sizeof *out);
    out->at_ns = uv_hrtime();
    if (pid <= 0)
        return 0;
    out->rss_kib = status_field_kib(pid, "VmRSS");
    out->cpu_seconds = cpu_seconds(pid);
    return out->rss_kib < 0 || out->cpu_seconds < 0 ? -1 : 0;
}
