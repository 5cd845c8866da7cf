/*
 * cmd_synth.c - mamori synth: write synthetic residents, vouchers and
 * vaccinations for one municipality as import CSV files (R9.4).
 *
 * The generator is src/synth/; this file parses the options, finds the
 * shipped data, creates the three files (never over existing ones) and
 * reminds the operator that the output is test data.  It opens no store
 * and reads no configuration, so it changes no state mamori keeps and
 * writes no audit record (docs/synth.md).
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "synth/synth.h"

#ifndef MAMORI_SOURCE_DATA_DIR
#error "MAMORI_SOURCE_DATA_DIR must be defined by the build"
#endif

#define WHO "synth"
#define SYNTH_DEFAULT_COUNT 1000u
#define SYNTH_OUT_BUF (1u << 20)

enum { OPT_MUNI = 256, OPT_COUNT, OPT_SEED, OPT_OUT, OPT_ENCODING, OPT_START };

struct synth_cli {
    struct synth_opts o;
    const char *out;
    char seed[33];              /* a generated seed, when none was given */
    char today[11];
};

static int
parse(int argc, char **argv, struct synth_cli *c)
{
    static const struct option lo[] = {
        { "municipality", required_argument, NULL, OPT_MUNI },
        { "count", required_argument, NULL, OPT_COUNT },
        { "seed", required_argument, NULL, OPT_SEED },
        { "out", required_argument, NULL, OPT_OUT },
        { "encoding", required_argument, NULL, OPT_ENCODING },
        { "start-date", required_argument, NULL, OPT_START },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int ch;

    cli_getopt_reset();
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case OPT_MUNI:
            c->o.municipality = optarg;
            break;
        case OPT_COUNT:
            if (util_parse_u64(optarg, 1, SYNTH_COUNT_MAX, &c->o.count) != 0) {
                cli_errx(WHO, "--count must be a whole number from 1 to %u",
                         SYNTH_COUNT_MAX);
                return CLI_USAGE;
            }
            break;
        case OPT_SEED:
            c->o.seed = optarg;
            c->o.seed_len = strlen(optarg);
            if (c->o.seed_len < 1 || c->o.seed_len > SYNTH_SEED_MAX) {
                cli_errx(WHO, "--seed must be 1 to %u bytes", SYNTH_SEED_MAX);
                return CLI_USAGE;
            }
            break;
        case OPT_OUT:
            c->out = optarg;
            break;
        case OPT_ENCODING:
            if (strcmp(optarg, "utf-8") == 0)
                c->o.encoding = SYNTH_UTF8;
            else if (strcmp(optarg, "cp932") == 0)
                c->o.encoding = SYNTH_CP932;
            else {
                cli_errx(WHO, "--encoding must be utf-8 or cp932");
                return CLI_USAGE;
            }
            break;
        case OPT_START:
            if (!synth_date_valid(optarg)) {
                cli_errx(WHO, "--start-date must be a real date written "
                         "YYYY-MM-DD between 1900 and 2199");
                return CLI_USAGE;
            }
            c->o.start_date = optarg;
            break;
        case 'h':
            cli_usage(CMD_SYNTH_SYNOPSIS);
            return CLI_OK;
        default:
            cli_bad_option(WHO, argv);
            return CLI_USAGE;
        }
    }
    if (optind != argc || c->o.municipality == NULL) {
        cli_usage(CMD_SYNTH_SYNOPSIS);
        return CLI_USAGE;
    }
    return -1;                          /* parsed; carry on */
}

/* Defaults that need the clock or randomness: a seed (said aloud, so the
 * run can be repeated) and today's local date. */
static int
defaults(struct synth_cli *c)
{
    time_t now = time(NULL);
    struct tm tm;

    if (c->o.seed == NULL) {
        uint8_t raw[8];

        randombytes_buf(raw, sizeof(raw));
        if (util_hex_encode(raw, sizeof(raw), c->seed, sizeof(c->seed)) != 0)
            return -1;
        c->o.seed = c->seed;
        c->o.seed_len = strlen(c->seed);
        cli_errx(WHO, "no --seed given; this run used --seed %s", c->seed);
    }
    if (c->o.start_date == NULL) {
        if (localtime_r(&now, &tm) == NULL ||
            strftime(c->today, sizeof(c->today), "%Y-%m-%d", &tm) != 10)
            return -1;
        c->o.start_date = c->today;
    }
    return 0;
}

/* The first data directory holding the name list: the installed one,
 * then the source tree's (as mamori init finds the municipality table). */
static int
load_data(struct synth_data **d)
{
    static const char *const dirs[] = {
#ifdef MAMORI_DATA_DIR
        MAMORI_DATA_DIR,
#endif
        MAMORI_SOURCE_DATA_DIR,
    };
    char names[PATH_MAX], lg[PATH_MAX], err[PATH_MAX + 256];
    const char *dir = MAMORI_SOURCE_DATA_DIR;

    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
        if (util_path_join(names, sizeof(names), dirs[i], SYNTH_NAMES_CSV) == 0 &&
            access(names, R_OK) == 0) {
            dir = dirs[i];
            break;
        }
    if (util_path_join(names, sizeof(names), dir, SYNTH_NAMES_CSV) != 0 ||
        util_path_join(lg, sizeof(lg), dir, SYNTH_LGCODE_CSV) != 0) {
        cli_errx(WHO, "the data directory path is too long");
        return -1;
    }
    if (synth_data_load(names, lg, d, err, sizeof(err)) != 0) {
        cli_errx(WHO, "%s", err);
        return -1;
    }
    if (synth_data_names_skipped(*d) > 0)
        cli_errx(WHO, "note: %zu names of %s cannot be written in CP932 and "
                 "are not used", synth_data_names_skipped(*d), names);
    return 0;
}

static const char *const out_files[3] = {
    SYNTH_RESIDENTS_CSV, SYNTH_VOUCHERS_CSV, SYNTH_VACCINATIONS_CSV,
};

/* Remove the files this run created (after a failure). */
static void
unlink_created(const char *dir, const bool created[3])
{
    char path[PATH_MAX];

    for (size_t i = 0; i < 3; i++)
        if (created[i] && util_path_join(path, sizeof(path), dir, out_files[i]) == 0)
            (void)unlink(path);
}

/* Create DIR (if missing) and the three files, each new: an existing
 * file is never overwritten. */
static int
open_outputs(const char *dir, FILE *f[3], bool created[3])
{
    char path[PATH_MAX];

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        cli_err(WHO, "cannot create %s", dir);
        return -1;
    }
    for (size_t i = 0; i < 3; i++) {
        int fd;

        if (util_path_join(path, sizeof(path), dir, out_files[i]) != 0) {
            cli_errx(WHO, "the output path is too long");
            return -1;
        }
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
            if (errno == EEXIST)
                cli_errx(WHO, "%s already exists; remove it or choose another "
                         "--out", path);
            else
                cli_err(WHO, "cannot create %s", path);
            return -1;
        }
        created[i] = true;
        if ((f[i] = fdopen(fd, "w")) == NULL) {
            cli_err(WHO, "cannot open %s", path);
            close(fd);
            return -1;
        }
        /* Full buffering: rows are small and many. */
        (void)setvbuf(f[i], NULL, _IOFBF, SYNTH_OUT_BUF);
    }
    return 0;
}

static int
close_outputs(FILE *f[3])
{
    int rc = 0;

    for (size_t i = 0; i < 3; i++) {
        if (f[i] != NULL && fclose(f[i]) != 0) {
            cli_err(WHO, "cannot write %s", out_files[i]);
            rc = -1;
        }
        f[i] = NULL;
    }
    return rc;
}

static int
generate(const struct synth_cli *c, const struct synth_data *d)
{
    FILE *f[3] = { NULL, NULL, NULL };
    bool created[3] = { false, false, false };
    struct synth_stats st;
    char err[512];
    int rc = -1;

    if (open_outputs(c->out, f, created) == 0) {
        if (synth_write(d, &c->o, f[0], f[1], f[2], &st, err, sizeof(err)) == 0)
            rc = 0;
        else
            cli_errx(WHO, "%s", err);
    }
    if (close_outputs(f) != 0)
        rc = -1;
    if (rc != 0) {
        unlink_created(c->out, created);
        return CLI_FAIL;
    }
    printf("wrote %llu residents in %llu households, %llu vouchers and %llu "
           "vaccinations to %s (municipality %s, as of %s)\n",
           (unsigned long long)st.residents, (unsigned long long)st.households,
           (unsigned long long)st.vouchers, (unsigned long long)st.vaccinations,
           c->out, c->o.municipality, c->o.start_date);
    return CLI_OK;
}

int
cmd_synth(int argc, char **argv)
{
    struct synth_cli c;
    struct synth_data *d = NULL;
    char err[256];
    int rc;

    memset(&c, 0, sizeof(c));
    c.o.count = SYNTH_DEFAULT_COUNT;
    c.o.encoding = SYNTH_UTF8;
    c.out = ".";
    if ((rc = parse(argc, argv, &c)) >= 0)
        return rc;
    /* R9.4: say what this is before anything is written. */
    fprintf(stderr, "mamori synth: SYNTHETIC TEST DATA: invented people with "
            "valid-looking individual numbers; never mix it with real records "
            "(R9.4)\n");
    if (sodium_init() < 0) {
        cli_errx(WHO, "cannot initialise libsodium");
        return CLI_FAIL;
    }
    if (load_data(&d) != 0)
        return CLI_FAIL;
    if (synth_check_municipality(d, c.o.municipality, err, sizeof(err)) != 0) {
        cli_errx(WHO, "%s", err);
        synth_data_free(d);
        return CLI_USAGE;
    }
    if (defaults(&c) != 0) {
        cli_errx(WHO, "cannot read the clock");
        synth_data_free(d);
        return CLI_FAIL;
    }
    rc = generate(&c, d);
    synth_data_free(d);
    return rc;
}
