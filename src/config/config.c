/*
 * config.c - mamorid.conf(5) parser.
 *
 * Deliberately small: fixed keys in one table, each with a setter that
 * validates its value.  Unknown keys, duplicate keys and bad values are
 * errors that name the file and line.
 */
#include "config/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

const char CONFIG_DEFAULT_PRIORITIES[] =
    "SECURE256:+SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
    ":-CIPHER-ALL:+AES-256-GCM:+CHACHA20-POLY1305:+AES-128-GCM"
    ":-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA"
    ":-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1"
    ":%SAFE_RENEGOTIATION";

enum value_kind { V_PATH, V_STRING, V_UINT, V_LISTEN, V_LOGTARGET, V_LOGLEVEL,
                  V_BACKEND, V_PRIORITIES, V_DAILY };

struct key_desc {
    const char     *name;
    enum value_kind kind;
    size_t          offset;    /* into struct mamori_config */
    size_t          size;      /* for strings */
    uint64_t        min, max;  /* for numbers */
};

#define F(member) offsetof(struct mamori_config, member), sizeof(((struct mamori_config *)0)->member)
#define U(member) offsetof(struct mamori_config, member), 0

static const struct key_desc keys[] = {
    { "datadir",                  V_PATH,       F(datadir), 0, 0 },
    { "user",                     V_STRING,     F(user), 0, 0 },
    { "workers",                  V_UINT,       U(workers), 1, 16 },
    { "threads",                  V_UINT,       U(threads), 1, 64 },
    { "connection_timeout",       V_UINT,       U(connection_timeout), 1, 3600 },
    { "drain_timeout",            V_UINT,       U(drain_timeout), 1, 600 },
    { "max_connections",          V_UINT,       U(max_connections), 1, 100000 },
    { "log.target",               V_LOGTARGET,  U(log_target), 0, 0 },
    { "log.level",                V_LOGLEVEL,   U(log_level), 0, 0 },
    { "pidfile",                  V_PATH,       F(pidfile), 0, 0 },
    { "portsfile",                V_PATH,       F(portsfile), 0, 0 },
    { "refdata",                  V_PATH,       F(refdata), 0, 0 },
    { "internal.listen",          V_LISTEN,     U(internal), 0, 0 },
    { "internal.cert",            V_PATH,       F(internal.cert), 0, 0 },
    { "internal.key",             V_PATH,       F(internal.key), 0, 0 },
    { "internal.priorities",      V_PRIORITIES, F(internal.priorities), 0, 0 },
    { "internal.client_ca",       V_PATH,       F(client_ca), 0, 0 },
    { "internal.revocation_list", V_PATH,       F(revocation_list), 0, 0 },
    { "public.listen",            V_LISTEN,     U(public_), 0, 0 },
    { "public.cert",              V_PATH,       F(public_.cert), 0, 0 },
    { "public.key",               V_PATH,       F(public_.key), 0, 0 },
    { "public.priorities",        V_PRIORITIES, F(public_.priorities), 0, 0 },
    { "keys.master",              V_PATH,       F(master_key), 0, 0 },
    { "keys.dir",                 V_PATH,       F(keys_dir), 0, 0 },
    { "audit.dir",                V_PATH,       F(audit_dir), 0, 0 },
    { "audit.checkpoint_entries", V_UINT,       U(audit_checkpoint_entries), 1, 1000000 },
    { "audit.checkpoint_seconds", V_UINT,       U(audit_checkpoint_seconds), 1, 86400 },
    { "audit.segment_max_mb",     V_UINT,       U(audit_segment_max_mb), 1, 1024 },
    { "audit.archive_days",       V_UINT,       U(audit_archive_days), 1, 36500 },
    { "audit.retention_days",     V_UINT,       U(audit_retention_days), 1, 36500 },
    { "audit.office_hours_start", V_UINT,       U(audit_office_start), 0, 23 },
    { "audit.office_hours_end",   V_UINT,       U(audit_office_end), 1, 24 },
    { "audit.webhook",            V_STRING,     F(audit_webhook), 0, 0 },
    { "detect.login_failures",    V_UINT,       U(detect_login_failures), 1, 100000 },
    { "detect.source_failures",   V_UINT,       U(detect_source_failures), 1, 100000 },
    { "detect.window",            V_UINT,       U(detect_window), 1, 86400 },
    { "detect.distinct_residents", V_UINT,      U(detect_distinct_residents), 1, 1000000 },
    { "detect.read_window",       V_UINT,       U(detect_read_window), 1, 86400 },
    { "detect.block_seconds",     V_UINT,       U(detect_block_seconds), 0, 604800 },
    { "store.backend",            V_BACKEND,    U(store_backend), 0, 0 },
    { "store.path",               V_PATH,       F(store_path), 0, 0 },
    { "store.conninfo",           V_STRING,     F(store_conninfo), 0, 0 },
    { "auth.password_profile",    V_STRING,     F(auth_password_profile), 0, 0 },
    { "auth.pwhash_opslimit",     V_UINT,       U(auth_pwhash_opslimit), 1, 20 },
    { "auth.pwhash_memlimit_kib", V_UINT,       U(auth_pwhash_memlimit_kib), 8, 4194304 },
    { "auth.session_idle",        V_UINT,       U(auth_session_idle), 1, 86400 },
    { "auth.session_lifetime",    V_UINT,       U(auth_session_lifetime), 1, 604800 },
    { "auth.enrol_ttl",           V_UINT,       U(auth_enrol_ttl), 60, 2592000 },
    { "auth.account_lapse_days",  V_UINT,       U(auth_account_lapse_days), 1, 366 },
    { "records.retention_years",  V_UINT,       U(records_retention_years), 1, 100 },
    { "records.retention_schedule", V_DAILY,    U(records_retention_at), 0, 0 },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

void
config_defaults(struct mamori_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->user, sizeof(cfg->user), "mamori");
    cfg->workers = 1;
    cfg->threads = 2;
    snprintf(cfg->auth_password_profile, sizeof(cfg->auth_password_profile), "r6.3");
    cfg->auth_pwhash_opslimit = 3;          /* crypto_pwhash_OPSLIMIT_MODERATE */
    cfg->auth_pwhash_memlimit_kib = 65536;  /* 64 MiB */
    cfg->auth_session_idle = 900;           /* 15 minutes (R6.5) */
    cfg->auth_session_lifetime = 43200;     /* 12 hours (R6.5) */
    cfg->auth_enrol_ttl = 86400;
    cfg->auth_account_lapse_days = 365;     /* R6.8 */
    cfg->records_retention_years = 5;       /* R2.10; 003 names no period */
    cfg->records_retention_at = 2 * 60 + 30; /* 02:30 JST: outside office hours (R2.10) */
    cfg->connection_timeout = 30;
    cfg->drain_timeout = 10;
    cfg->max_connections = 1024;
    cfg->log_target = LOG_TO_STDERR;
    cfg->log_level = LOG_LVL_INFO;
    snprintf(cfg->pidfile, sizeof(cfg->pidfile), "run/mamorid.pid");
    snprintf(cfg->portsfile, sizeof(cfg->portsfile), "run/ports.json");
    snprintf(cfg->refdata, sizeof(cfg->refdata), "%s", MAMORI_SOURCE_DATA_DIR);
    snprintf(cfg->internal.host, sizeof(cfg->internal.host), "127.0.0.1");
    cfg->internal.port = 8443;
    snprintf(cfg->internal.cert, sizeof(cfg->internal.cert), "pki/server.crt");
    snprintf(cfg->internal.key, sizeof(cfg->internal.key), "pki/server.key");
    snprintf(cfg->internal.priorities, sizeof(cfg->internal.priorities), "%s",
             CONFIG_DEFAULT_PRIORITIES);
    snprintf(cfg->client_ca, sizeof(cfg->client_ca), "pki/terminal-ca.crt");
    snprintf(cfg->revocation_list, sizeof(cfg->revocation_list),
             "revocation/terminals.txt");
    snprintf(cfg->public_.host, sizeof(cfg->public_.host), "127.0.0.1");
    cfg->public_.port = 8444;
    snprintf(cfg->public_.cert, sizeof(cfg->public_.cert), "pki/server.crt");
    snprintf(cfg->public_.key, sizeof(cfg->public_.key), "pki/server.key");
    snprintf(cfg->public_.priorities, sizeof(cfg->public_.priorities), "%s",
             CONFIG_DEFAULT_PRIORITIES);
    snprintf(cfg->master_key, sizeof(cfg->master_key), "keys/master.key");
    snprintf(cfg->keys_dir, sizeof(cfg->keys_dir), "keys");
    snprintf(cfg->audit_dir, sizeof(cfg->audit_dir), "audit");
    cfg->audit_checkpoint_entries = 1000;
    cfg->audit_checkpoint_seconds = 60;
    cfg->audit_segment_max_mb = 256;
    cfg->audit_archive_days = 366;          /* the last year stays live (R7.3) */
    cfg->audit_retention_days = 1827;       /* five years (R7.3) */
    cfg->audit_office_start = 8;
    cfg->audit_office_end = 19;
    cfg->detect_login_failures = 5;
    cfg->detect_source_failures = 20;
    cfg->detect_window = 300;
    cfg->detect_distinct_residents = 200;
    cfg->detect_read_window = 3600;
    cfg->detect_block_seconds = 900;
    cfg->store_backend = STORE_BACKEND_SQLITE;
    snprintf(cfg->store_path, sizeof(cfg->store_path), "db/mamori.sqlite");
}

int
config_parse_listen(const char *s, struct listener_config *l)
{
    char host[CONFIG_ADDR_MAX];
    const char *colon;
    const char *hstart = s;
    size_t hlen;
    uint64_t port;
    unsigned char addr[16];

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        hstart = s + 1;
        hlen = (size_t)(close - hstart);
        colon = close + 1;
    } else {
        colon = strchr(s, ':');
        /* An IPv6 address must be bracketed: "::1:8443" is ambiguous. */
        if (colon == NULL || strchr(colon + 1, ':') != NULL)
            return -1;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= sizeof(host))
        return -1;
    memcpy(host, hstart, hlen);
    host[hlen] = '\0';
    if (inet_pton(AF_INET, host, addr) != 1 && inet_pton(AF_INET6, host, addr) != 1)
        return -1;
    if (util_parse_u64(colon + 1, 0, 65535, &port) != 0)
        return -1;
    memcpy(l->host, host, hlen + 1);
    l->port = (uint16_t)port;
    return 0;
}

static char *
trim(char *s)
{
    char *end;

    while (*s == ' ' || *s == '\t')
        s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' ||
                       end[-1] == '\n'))
        *--end = '\0';
    return s;
}

static bool
printable_ascii(const char *s)
{
    for (; *s != '\0'; s++)
        if (*s < 0x20 || *s > 0x7e)
            return false;
    return true;
}

/* A daily time "HH:MM" (00:00-23:59) as minutes after midnight, or "off"
 * as -1.  Exactly five characters: "2:30" or "02:30:00" would hide a typo. */
static int
parse_daily(const char *v, int *out)
{
    if (strcmp(v, "off") == 0) {
        *out = -1;
        return 0;
    }
    if (strlen(v) != 5 || v[2] != ':' || !isdigit((unsigned char)v[0]) ||
        !isdigit((unsigned char)v[1]) || !isdigit((unsigned char)v[3]) ||
        !isdigit((unsigned char)v[4]))
        return -1;
    int h = (v[0] - '0') * 10 + (v[1] - '0'), m = (v[3] - '0') * 10 + (v[4] - '0');
    if (h > 23 || m > 59)
        return -1;
    *out = h * 60 + m;
    return 0;
}

/* Set one key.  Returns NULL or a reason for the error. */
static const char *
set_value(struct mamori_config *cfg, const struct key_desc *k, const char *v)
{
    char *base = (char *)cfg;
    uint64_t n;

    switch (k->kind) {
    case V_PATH:
    case V_STRING:
    case V_PRIORITIES:
        if (!printable_ascii(v))
            return "the value must be printable ASCII";
        if (k->kind == V_PATH && v[0] == '\0')
            return "the path is empty";
        if (util_strcpy(base + k->offset, k->size, v) != 0)
            return "the value is too long";
        return NULL;
    case V_UINT:
        if (util_parse_u64(v, k->min, k->max, &n) != 0)
            return "the value must be a whole number in the allowed range";
        *(unsigned *)(void *)(base + k->offset) = (unsigned)n;
        return NULL;
    case V_LISTEN:
        if (config_parse_listen(v, (struct listener_config *)(void *)(base + k->offset)) != 0)
            return "expected a numeric address and port, e.g. 127.0.0.1:8443 or [::1]:8443";
        return NULL;
    case V_LOGTARGET:
        if (strcmp(v, "stderr") == 0)
            cfg->log_target = LOG_TO_STDERR;
        else if (strcmp(v, "syslog") == 0)
            cfg->log_target = LOG_TO_SYSLOG;
        else
            return "expected stderr or syslog";
        return NULL;
    case V_LOGLEVEL:
        if (log_level_parse(v, &cfg->log_level) != 0)
            return "expected error, warn, info or debug";
        return NULL;
    case V_BACKEND:
        if (strcmp(v, "sqlite") == 0)
            cfg->store_backend = STORE_BACKEND_SQLITE;
        else if (strcmp(v, "postgresql") == 0)
            cfg->store_backend = STORE_BACKEND_POSTGRESQL;
        else
            return "expected sqlite or postgresql";
        return NULL;
    case V_DAILY:
        if (parse_daily(v, (int *)(void *)(base + k->offset)) != 0)
            return "expected a time of day HH:MM in Japan time (00:00 to 23:59) or off";
        return NULL;
    }
    return "unsupported key";
}

static int
resolve_path(const struct mamori_config *cfg, char *p, size_t size)
{
    char tmp[PATH_MAX];

    if (p[0] == '/' || p[0] == '\0')
        return 0;
    if (util_path_join(tmp, sizeof(tmp), cfg->datadir, p) != 0)
        return -1;
    return util_strcpy(p, size, tmp);
}

static int
resolve_paths(struct mamori_config *cfg)
{
    struct { char *p; size_t n; } paths[] = {
        { cfg->pidfile, sizeof(cfg->pidfile) },
        { cfg->portsfile, sizeof(cfg->portsfile) },
        { cfg->refdata, sizeof(cfg->refdata) },
        { cfg->internal.cert, sizeof(cfg->internal.cert) },
        { cfg->internal.key, sizeof(cfg->internal.key) },
        { cfg->client_ca, sizeof(cfg->client_ca) },
        { cfg->revocation_list, sizeof(cfg->revocation_list) },
        { cfg->public_.cert, sizeof(cfg->public_.cert) },
        { cfg->public_.key, sizeof(cfg->public_.key) },
        { cfg->master_key, sizeof(cfg->master_key) },
        { cfg->keys_dir, sizeof(cfg->keys_dir) },
        { cfg->audit_dir, sizeof(cfg->audit_dir) },
        { cfg->store_path, sizeof(cfg->store_path) },
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        if (resolve_path(cfg, paths[i].p, paths[i].n) != 0)
            return -1;
    return 0;
}

static const struct key_desc *
find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static int
parse_line(struct mamori_config *cfg, char *line, bool seen[NKEYS],
           const char **why, const char **key)
{
    char *eq, *name, *value;
    const struct key_desc *k;
    char *hash = strchr(line, '#');

    if (hash != NULL)
        *hash = '\0';
    line = trim(line);
    if (*line == '\0')
        return 0;
    eq = strchr(line, '=');
    if (eq == NULL) {
        *why = "expected \"key = value\"";
        return -1;
    }
    *eq = '\0';
    name = trim(line);
    value = trim(eq + 1);
    *key = name;
    k = find_key(name);
    if (k == NULL) {
        *why = "unknown key";
        return -1;
    }
    if (seen[k - keys]) {
        *why = "key given twice";
        return -1;
    }
    seen[k - keys] = true;
    *why = set_value(cfg, k, value);
    return *why == NULL ? 0 : -1;
}

int
config_load(const char *path, struct mamori_config *cfg, char *err, size_t errlen)
{
    char *text, *line, *save = NULL;
    size_t len;
    unsigned lineno = 0;
    bool seen[NKEYS] = { false };

    config_defaults(cfg);
    if (util_strcpy(cfg->path, sizeof(cfg->path), path) != 0 ||
        util_read_file(path, 1u << 20, &text, &len) != 0) {
        snprintf(err, errlen, "%s: cannot read the configuration file: %s",
                 path, strerror(errno));
        return -1;
    }
    if (strlen(text) != len) {
        snprintf(err, errlen, "%s: the file contains a NUL byte", path);
        free(text);
        return -1;
    }
    /* Split by hand: strtok_r would merge empty lines and skew numbers. */
    for (line = text; line != NULL; line = save) {
        const char *why = NULL, *key = "";
        save = strchr(line, '\n');
        if (save != NULL)
            *save++ = '\0';
        lineno++;
        if (parse_line(cfg, line, seen, &why, &key) != 0) {
            snprintf(err, errlen, "%s line %u: %s%s%s", path, lineno,
                     *key ? key : "", *key ? ": " : "", why);
            free(text);
            return -1;
        }
    }
    free(text);
    if (cfg->datadir[0] != '/') {
        snprintf(err, errlen, "%s: datadir must be set to an absolute path", path);
        return -1;
    }
    if (cfg->internal.port != 0 && cfg->internal.port == cfg->public_.port &&
        strcmp(cfg->internal.host, cfg->public_.host) == 0) {
        snprintf(err, errlen, "%s: internal.listen and public.listen are the same address", path);
        return -1;
    }
    if (cfg->store_backend == STORE_BACKEND_POSTGRESQL && cfg->store_conninfo[0] == '\0') {
        snprintf(err, errlen, "%s: store.backend is postgresql but store.conninfo is empty", path);
        return -1;
    }
    if (cfg->audit_retention_days < cfg->audit_archive_days ||
        cfg->audit_office_end <= cfg->audit_office_start) {
        snprintf(err, errlen, "%s: audit.retention_days must be at least audit.archive_days "
                 "and audit.office_hours_end after audit.office_hours_start", path);
        return -1;
    }
    if (cfg->audit_webhook[0] != '\0' && strncmp(cfg->audit_webhook, "http://", 7) != 0 &&
        strncmp(cfg->audit_webhook, "https://", 8) != 0) {
        snprintf(err, errlen, "%s: audit.webhook must be an http:// or https:// URL", path);
        return -1;
    }
    if (strcmp(cfg->auth_password_profile, "r6.3") != 0 &&
        strcmp(cfg->auth_password_profile, "nist") != 0) {
        snprintf(err, errlen, "%s: auth.password_profile must be r6.3 or nist", path);
        return -1;
    }
    if (resolve_paths(cfg) != 0) {
        snprintf(err, errlen, "%s: a path is too long once joined to datadir", path);
        return -1;
    }
    return 0;
}
