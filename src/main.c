/*
 * main.c - vestnikd: command line, signals, and the loop.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "config.h"
#include "modload.h"
#include "server.h"

#ifndef VN_SYSCONFDIR
#define VN_SYSCONFDIR "/etc/vestnik"
#endif

static uv_signal_t sig_term, sig_int, sig_hup;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: vestnikd [-c FILE] [--check-config] [--version]\n"
            "  -c, --config FILE   configuration file (default %s/vestnik.yaml)\n"
            "  --check-config      validate the configuration and modules, then exit\n"
            "  --version           print the version and exit\n",
            VN_SYSCONFDIR);
}

static int check_config(const char *path)
{
    vn_buf err;
    vn_buf_init(&err);
    vn_config *cfg = vn_config_load(path, &err);
    int rc = cfg && vn_modules_check(cfg, &err) == 0 ? 0 : 1;
    if (rc == 0)
        printf("%s: configuration ok\n", path);
    else
        fputs(err.data ? err.data : "configuration invalid\n", stderr);
    vn_config_free(cfg);
    vn_buf_free(&err);
    return rc;
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_hup, NULL);
    vn_server_stop();
}

static void on_reload_signal(uv_signal_t *h, int signum)
{
    vn_buf err;
    vn_buf_init(&err);
    if (vn_server_reload(&err) < 0)
        vn_log_error("reload failed, keeping the running configuration:\n%s",
                     err.data ? err.data : "");
    vn_buf_free(&err);
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'C'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = VN_SYSCONFDIR "/vestnik.yaml";
    int only_check = 0, opt;

    while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'C': only_check = 1; break;
        case 'V': printf("vestnikd %s\n", PACKAGE_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (only_check)
        return check_config(config_path);

    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    vn_buf err;
    vn_buf_init(&err);
    if (vn_server_start(loop, config_path, &err) < 0) {
        fprintf(stderr, "vestnikd: cannot start:\n%s", err.data ? err.data : "unknown error\n");
        vn_buf_free(&err);
        vn_server_stop();
        uv_run(loop, UV_RUN_DEFAULT);
        vn_server_cleanup();
        uv_run(loop, UV_RUN_DEFAULT);
        uv_loop_close(loop);
        return 1;
    }
    vn_buf_free(&err);

    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_init(loop, &sig_hup);
    uv_signal_start(&sig_term, on_stop_signal, SIGTERM);
    uv_signal_start(&sig_int, on_stop_signal, SIGINT);
    uv_signal_start(&sig_hup, on_reload_signal, SIGHUP);

    uv_run(loop, UV_RUN_DEFAULT);
    vn_server_cleanup();
    uv_run(loop, UV_RUN_DEFAULT); /* let handles closed by the cleanup finish */
    int rc = uv_loop_close(loop) == 0 ? 0 : 1;
    vn_log_info("stopped");
    return rc;
}
