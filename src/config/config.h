/*
 * config.h - mamorid.conf(5): parsing and validation.
 *
 * Format: one "key = value" per line, '#' starts a comment, blank lines
 * ignored, keys are fixed (an unknown key is an error, so a typo never
 * silently weakens a setting).  Relative paths are resolved against
 * `datadir`.  See man/mamorid.conf.5 for every key.
 */
#ifndef MAMORI_CONFIG_H
#define MAMORI_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"

#define CONFIG_ADDR_MAX 64
#define CONFIG_PRIO_MAX 512

struct listener_config {
    char     host[CONFIG_ADDR_MAX]; /* numeric IPv4 or IPv6 address */
    uint16_t port;                  /* 0 = ephemeral (tests) */
    char     cert[PATH_MAX];        /* server certificate chain (PEM) */
    char     key[PATH_MAX];         /* server private key (PEM) */
    char     priorities[CONFIG_PRIO_MAX]; /* GnuTLS priority string */
};

enum store_backend { STORE_BACKEND_SQLITE = 0, STORE_BACKEND_POSTGRESQL };

struct mamori_config {
    char     path[PATH_MAX];        /* the file this was read from */
    char     datadir[PATH_MAX];
    char     user[64];              /* unprivileged user when started as root */
    unsigned workers;               /* worker processes */
    unsigned threads;               /* HTTP threads per worker */
    unsigned connection_timeout;    /* seconds of client inactivity */
    unsigned drain_timeout;         /* seconds SIGTERM waits for requests */
    unsigned max_connections;       /* per listener, per worker */
    enum log_target log_target;
    enum log_level  log_level;
    char     pidfile[PATH_MAX];
    char     portsfile[PATH_MAX];   /* actual bound ports, written at start */
    char     refdata[PATH_MAX];     /* shipped reference data directory */

    struct listener_config internal; /* LG-WAN side: client cert required */
    char     client_ca[PATH_MAX];    /* terminal CA bundle (PEM) */
    char     revocation_list[PATH_MAX]; /* revoked terminal fingerprints */

    struct listener_config public_;  /* internet side: no client cert */

    char     master_key[PATH_MAX];   /* read by the key holder only */
    char     keys_dir[PATH_MAX];     /* key holder's directory */
    char     audit_dir[PATH_MAX];    /* written by the audit writer only */
    /* Audit log and intrusion detection (R7.2-R7.5; mamorid.conf(5)). */
    unsigned audit_checkpoint_entries; /* sign the head after N entries */
    unsigned audit_checkpoint_seconds; /* ... or T seconds */
    unsigned audit_segment_max_mb;  /* rotate at this size (and daily) */
    unsigned audit_archive_days;    /* compress older segments (R7.3) */
    unsigned audit_retention_days;  /* delete archived ones after (R7.3) */
    unsigned audit_office_start;    /* office hours, UTC+9 hour 0-23 (R7.4, R7.5) */
    unsigned audit_office_end;      /* hour 1-24, exclusive */
    unsigned detect_login_failures; /* per account in detect_window (R7.4) */
    unsigned detect_source_failures;/* per source address in detect_window */
    unsigned detect_window;         /* seconds */
    unsigned detect_distinct_residents; /* per account in detect_read_window */
    unsigned detect_read_window;    /* seconds */
    unsigned detect_block_seconds;  /* how long a source stays blocked */
    char     audit_webhook[512];    /* http(s) URL for alerts, empty: none */

    enum store_backend store_backend;
    char     store_path[PATH_MAX];   /* SQLite database file */
    char     store_conninfo[1024];   /* libpq connection string */

    /* Staff authentication (docs/access.md, R6.2-R6.5, R6.8). */
    char     auth_password_profile[8]; /* "r6.3" (default) or "nist" */
    unsigned auth_pwhash_opslimit;   /* Argon2id passes */
    unsigned auth_pwhash_memlimit_kib; /* Argon2id memory, KiB */
    unsigned auth_session_idle;      /* seconds without a request (R6.5) */
    unsigned auth_session_lifetime;  /* seconds from login (R6.5) */
    unsigned auth_enrol_ttl;         /* seconds an enrolment secret is valid */
    unsigned auth_account_lapse_days;/* days after re-confirmation (R6.8) */

    /* Vaccination records (docs/records.md). */
    unsigned records_retention_years;/* years after ceasing before deletion (R2.10) */
    int      records_retention_at;  /* minute of the Japan-time day the retention job
                                     * runs (0-1439), or -1: off (R2.10, vrs/retention.h) */
};

/* Default GnuTLS priorities: TLS 1.3 preferred, 1.2 minimum, AEAD only. */
extern const char CONFIG_DEFAULT_PRIORITIES[];

/* Fill *cfg with defaults (datadir must still be set by the file). */
void config_defaults(struct mamori_config *cfg);

/* Load and validate `path`.  On failure returns -1 and writes a plain
 * sentence naming the file, line and key into err. */
int config_load(const char *path, struct mamori_config *cfg,
                char *err, size_t errlen) __attribute__((warn_unused_result));

/* Parse "host:port" / "[v6]:port" into a listener. */
int config_parse_listen(const char *s, struct listener_config *l)
    __attribute__((warn_unused_result));

#endif
