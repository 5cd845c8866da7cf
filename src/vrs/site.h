/*
 * site.h - the vaccination-site interface (R1.5) and its device
 * credentials.
 *
 * Vaccination sites reach mamori only over the PUBLIC listener, with a
 * device token issued per tenant (store/store_site.h), and only through
 * voucher numbers: no route they can reach takes or answers an individual
 * number, a resident id, an address number or an address (R1.5).
 *
 *   POST /v1/site/check         {"voucher_line"}
 *   POST /v1/site/vaccinations  {"voucher_line","vaccine","dose","date","lot",
 *                                "clinic","doctor"}
 *
 * Device management is a tenant administrator's (PERM_TERMINAL_MANAGE,
 * like terminals) on the internal listener:
 *
 *   POST /v1/site-devices {"name"} -> device id + token (shown once)
 *   GET  /v1/site-devices
 *   POST /v1/site-devices/{device}/revoke
 *
 * docs/records.md "Site interface" describes the answers.
 */
#ifndef MAMORI_VRS_SITE_H
#define MAMORI_VRS_SITE_H

#include "common/util.h"
#include "http/router.h"

/*
 * For a route with PERM_SITE_SUBMIT: the request must come over the
 * public listener with "Authorization: Bearer <device token>" (never a
 * cookie) of an active device of an active tenant.  Binds the request to
 * that device: tenant, role ROLE_SITE_DEVICE, user_id = device id,
 * session_hash = the token's stored hash; then asks the permission matrix
 * (auth_role_allows).  0, or -1 with resp holding 401 / 403.
 */
int vrs_site_authorize(struct http_request *req, struct http_response *resp) MAMORI_WARN_UNUSED;

/* Route table pieces (http/routes.c). */
extern const struct param_rule vrs_site_device_params[];   /* {device} */
extern const struct field_rule vrs_site_device_fields[];
extern const struct field_rule vrs_site_check_fields[];
extern const struct field_rule vrs_site_vaccination_fields[];

/* Route handlers. */
void vrs_site_h_device_create(const struct http_request *req, struct http_response *resp);
void vrs_site_h_device_list(const struct http_request *req, struct http_response *resp);
void vrs_site_h_device_revoke(const struct http_request *req, struct http_response *resp);
void vrs_site_h_check(const struct http_request *req, struct http_response *resp);
void vrs_site_h_vaccination(const struct http_request *req, struct http_response *resp);

#endif
