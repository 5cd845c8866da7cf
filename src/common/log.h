/*
 * log.h - structured operational log (JSON lines).
 *
 * Every line is one JSON object: {"ts","level","proc","pid","event",...}.
 * Callers pass an event name (a fixed identifier, never data) and an
 * optional jansson object of extra fields.  Personal data must never be
 * passed here: route *patterns*, ids and counts are fine, values are not.
 */
#ifndef MAMORI_LOG_H
#define MAMORI_LOG_H

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };
enum log_target { LOG_TO_STDERR = 0, LOG_TO_SYSLOG };

/* Set the process name shown in "proc", the target and the minimum level.
 * Safe to call again (e.g. after fork, to rename the process). */
void log_setup(const char *procname, enum log_target target, enum log_level min);

/* Parse "error", "warn", "info", "debug".  Returns 0 or -1. */
int log_level_parse(const char *s, enum log_level *out);

/* True if lines at `lvl` are written (to skip building them otherwise). */
bool log_enabled(enum log_level lvl);

/* Emit one line.  `fields` may be NULL; when not NULL it must be a JSON
 * object and its reference is stolen (this call decrefs it). */
void log_event(enum log_level lvl, const char *event, json_t *fields);

/* Convenience: {"event":event,"msg":<formatted>}.  The format must not
 * carry personal data. */
void log_msg(enum log_level lvl, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(ev, ...) log_msg(LOG_LVL_ERROR, ev, __VA_ARGS__)
#define log_warn(ev, ...)  log_msg(LOG_LVL_WARN, ev, __VA_ARGS__)
#define log_info(ev, ...)  log_msg(LOG_LVL_INFO, ev, __VA_ARGS__)
#define log_debug(ev, ...) log_msg(LOG_LVL_DEBUG, ev, __VA_ARGS__)

#endif
