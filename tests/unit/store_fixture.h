/*
 * store_fixture.h - the store every store-backed unit test starts from:
 * a fresh keyring (master key and tenant keys) and a fresh migrated store
 * on SQLite, and on PostgreSQL when MAMORI_TEST_PG is set (each fixture in
 * its own schema, dropped afterwards), with its tenants and, on request,
 * one open context per tenant.
 *
 * Not a test program: tests/CMakeLists.txt links it into every
 * tests/unit/test_*.c.  Failures are cmocka assertions (a test helper, so
 * it fails the case rather than returning error codes).
 */
#ifndef MAMORI_TESTS_STORE_FIXTURE_H
#define MAMORI_TESTS_STORE_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "crypto/keyring.h"
#include "store/store.h"

#define STORE_FX_TENANTS 4

struct CMUnitTest;

struct store_fx {
    bool                 skip;          /* PostgreSQL case without MAMORI_TEST_PG */
    enum store_backend   backend;
    char                 dir[64];       /* temporary directory: keys, SQLite file */
    char                 mk[128];       /* master key file */
    char                 db[128];       /* SQLite file ("" on PostgreSQL) */
    char                 schema[40];    /* PostgreSQL schema ("" on SQLite) */
    char                 conninfo[1200];/* PostgreSQL: search_path and
                                           application_name = schema */
    struct keyring      *kr;            /* owned */
    struct key_provider  kp;
    struct store_config  cfg;
    struct store        *st;            /* owned */
    /* With STORE_FX_CTX: ctx[i] is tenants[i]'s context, owned; a test
     * that closes one sets it to NULL. */
    struct store_tenant *ctx[STORE_FX_TENANTS];
};

/* store_fx_open flags */
#define STORE_FX_CTX 1u         /* open a context for each tenant */

/* store_fx_run flags */
#define STORE_FX_PG_IN_CI 1u    /* CI=true without MAMORI_TEST_PG is a failure */

/* Open f for the backend store_fx_run is running (memset first).  `tag`
 * names the temporary directory and prefixes the schema; tenants (at most
 * STORE_FX_TENANTS with STORE_FX_CTX) get keys and a store row.  On
 * PostgreSQL without MAMORI_TEST_PG, only sets f->skip. */
void store_fx_open(struct store_fx *f, const char *tag, const char *const *tenants,
                   size_t ntenants, unsigned flags);

/* Close f's contexts, store and keyring; drop its schema and directory. */
void store_fx_close(struct store_fx *f);

/* store_fx_open on the heap, for cmocka setups; store_fx_free closes and
 * frees (NULL is fine). */
struct store_fx *store_fx_new(const char *tag, const char *const *tenants, size_t ntenants,
                              unsigned flags);
void store_fx_free(struct store_fx *f);

/* The backend of the group running now, and whether its cases skip
 * (PostgreSQL without MAMORI_TEST_PG). */
enum store_backend store_fx_backend(void);
bool store_fx_pg_missing(void);

/* MAMORI_TEST_PG (the database, not a fixture's schema); NULL if unset. */
const char *store_fx_pg_base(void);

/* A connection that drops notices, and one statement on a new one (a
 * command or a query; anything else fails the case). */
PGconn *store_fx_pg_connect(const char *conninfo);
void store_fx_pg_exec(const char *conninfo, const char *sql);

/* Behind the store's back, on f's own database: run SQL (any statements),
 * or read the one integer a one-row query answers. */
void store_fx_raw_exec(const struct store_fx *f, const char *sql);
int64_t store_fx_raw_int(const struct store_fx *f, const char *sql);

/* Run the group on SQLite as `sqlite_name`, then on PostgreSQL as
 * `pg_name` (every case skipped, said loudly, without MAMORI_TEST_PG).
 * Returns cmocka's failed count (plus one with STORE_FX_PG_IN_CI in CI
 * without PostgreSQL). */
int store_fx_run(const char *sqlite_name, const char *pg_name,
                 const struct CMUnitTest *tests, size_t ntests, unsigned flags);

#define STORE_FX_RUN(sqlite_name, pg_name, tests, flags) \
    store_fx_run((sqlite_name), (pg_name), (tests), sizeof(tests) / sizeof((tests)[0]), \
                 (flags))

#endif
