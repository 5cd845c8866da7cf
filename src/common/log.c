/*
 * log.c - JSON-lines operational log to stderr or syslog.
 */
#include "common/log.h"

#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "common/util.h"

static char            log_proc[32] = "mamori";
static enum log_target log_target_ = LOG_TO_STDERR;
static enum log_level  log_min = LOG_LVL_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void
log_setup(const char *procname, enum log_target target, enum log_level min)
{
    if (procname != NULL)
        snprintf(log_proc, sizeof(log_proc), "%s", procname);
    if (target == LOG_TO_SYSLOG && log_target_ != LOG_TO_SYSLOG)
        openlog("mamorid", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    log_target_ = target;
    log_min = min;
}

int
log_level_parse(const char *s, enum log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

static int
syslog_priority(enum log_level lvl)
{
    switch (lvl) {
    case LOG_LVL_ERROR: return LOG_ERR;
    case LOG_LVL_WARN:  return LOG_WARNING;
    case LOG_LVL_INFO:  return LOG_INFO;
    default:            return LOG_DEBUG;
    }
}

bool
log_enabled(enum log_level lvl)
{
    return lvl <= log_min;
}

void
log_event(enum log_level lvl, const char *event, json_t *fields)
{
    char ts[25];
    json_t *line;
    char *text;

    if (lvl > log_min) {
        json_decref(fields);
        return;
    }
    util_utc_now(ts);
    /* Fixed keys first, and a caller's field can never replace them. */
    line = json_pack("{s:s,s:s,s:s,s:i,s:s}", "ts", ts, "level", level_names[lvl],
                     "proc", log_proc, "pid", (int)getpid(), "event", event);
    if (line == NULL) {
        json_decref(fields);
        return;
    }
    if (json_is_object(fields))
        json_object_update_missing(line, fields);
    json_decref(fields);
    text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(line);
    if (text == NULL)
        return;
    if (log_target_ == LOG_TO_SYSLOG) {
        syslog(syslog_priority(lvl), "%s", text);
    } else {
        /* One write per line keeps lines whole across processes. */
        size_t n = strlen(text);
        text[n] = '\n';
        ssize_t w = write(STDERR_FILENO, text, n + 1);
        (void)w;
    }
    free(text);
}

void
log_msg(enum log_level lvl, const char *event, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    if (lvl > log_min)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    log_event(lvl, event, json_pack("{s:s}", "msg", buf));
}
