/*
 * api.h - staff authentication over HTTP: login, logout, enrolment,
 * password change, staff and terminal management, and the per-request
 * session check (R3.5, R6.1-R6.9).  docs/access.md describes the flows.
 */
#ifndef MAMORI_AUTH_API_H
#define MAMORI_AUTH_API_H

#include <stdint.h>

#include "auth/password.h"
#include "config/config.h"
#include "http/router.h"

/* Per-worker state, made before the sandbox closes (reads the blocklist). */
struct auth_env {
    enum pw_profile      profile;
    unsigned long long   opslimit;
    size_t               memlimit;
    struct pw_blocklist *blocklist;
    char                 dummy_hash[PW_HASH_LEN]; /* R6.4: verified for unknown IDs */
};

int auth_env_init(const struct mamori_config *cfg, struct auth_env **out)
    MAMORI_WARN_UNUSED;
void auth_env_free(struct auth_env *a);

/* Seconds since the epoch.  The one clock of the auth layer. */
int64_t auth_now(void);

/*
 * For a route that needs a session: check the token, its terminal
 * binding, idle and absolute limits, the account, the terminal's
 * registration, CSRF for cookie sessions, and the role against the
 * route's permission (auth_role_allows).  0 and req's session fields
 * filled, or -1 with resp holding 401 / 403 (deny by default).
 */
int auth_authorize(struct http_request *req, struct http_response *resp)
    MAMORI_WARN_UNUSED;

/* Route handlers (http/routes.c). */
void auth_h_login(const struct http_request *req, struct http_response *resp);
void auth_h_logout(const struct http_request *req, struct http_response *resp);
void auth_h_me(const struct http_request *req, struct http_response *resp);
void auth_h_password(const struct http_request *req, struct http_response *resp);
void auth_h_enrol(const struct http_request *req, struct http_response *resp);
void auth_h_staff_create(const struct http_request *req, struct http_response *resp);
void auth_h_staff_reset(const struct http_request *req, struct http_response *resp);
void auth_h_staff_reconfirm(const struct http_request *req, struct http_response *resp);
void auth_h_terminal_register(const struct http_request *req, struct http_response *resp);
void auth_h_terminal_revoke(const struct http_request *req, struct http_response *resp);
void auth_h_staff_list(const struct http_request *req, struct http_response *resp);
void auth_h_staff_role(const struct http_request *req, struct http_response *resp);
void auth_h_staff_disable(const struct http_request *req, struct http_response *resp);
void auth_h_staff_enable(const struct http_request *req, struct http_response *resp);
void auth_h_terminal_list(const struct http_request *req, struct http_response *resp);

/* Field validators for the route table. */
const char *auth_check_user_id(const char *v);
const char *auth_check_code(const char *v);
const char *auth_check_fingerprint(const char *v);
const char *auth_check_reason(const char *v);
const char *auth_check_role(const char *v);

#endif
