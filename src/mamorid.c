/*
 * mamorid - the mamori daemon.  See mamorid(8).
 */
#include <getopt.h>
#include <gnutls/gnutls.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "config/config.h"
#include "proc/proc.h"

#define DEFAULT_CONFIG "/etc/mamori/mamorid.conf"

static void
usage(void)
{
    fprintf(stderr, "usage: mamorid [-fnv] [-c config]\n"
                    "  -c config  configuration file (default %s)\n"
                    "  -f         stay in the foreground (for a supervisor)\n"
                    "  -n         check the configuration and exit\n"
                    "  -v         log at debug level\n",
            DEFAULT_CONFIG);
    exit(2);
}

int
main(int argc, char *argv[])
{
    static struct mamori_config cfg;   /* large: keep it off the stack */
    const char *path = DEFAULT_CONFIG;
    bool foreground = false, check_only = false, verbose = false;
    char err[1024];
    int ch;

    while ((ch = getopt(argc, argv, "c:fnv")) != -1) {
        switch (ch) {
        case 'c': path = optarg; break;
        case 'f': foreground = true; break;
        case 'n': check_only = true; break;
        case 'v': verbose = true; break;
        default: usage();
        }
    }
    if (optind != argc)
        usage();
    if (sodium_init() < 0 || gnutls_global_init() < 0) {
        fprintf(stderr, "mamorid: cannot initialise the crypto libraries\n");
        return 1;
    }
    if (config_load(path, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "mamorid: %s\n", err);
        return 1;
    }
    if (verbose)
        cfg.log_level = LOG_LVL_DEBUG;
    if (check_only) {
        if (proc_check(&cfg, err, sizeof(err)) != 0) {
            fprintf(stderr, "mamorid: %s\n", err);
            return 1;
        }
        printf("mamorid: configuration %s is valid\n", path);
        return 0;
    }
    return proc_run(&cfg, foreground);
}
