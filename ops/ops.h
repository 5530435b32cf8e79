/* Operations: what an operator runs to know an installation is healthy. `smki doctor`
 * looks at a home (folder, configuration, PIN files, token, store, CAs, CRLs and ARLs,
 * audit trail) without changing anything and says, for each problem, what to do. */
#ifndef SMKI_OPS_H
#define SMKI_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "hsm/hsm.h"

typedef enum {
    SMKI_DOCTOR_OK = 0,
    SMKI_DOCTOR_NOTE,    /* nothing wrong, worth knowing (no RA yet, no store yet) */
    SMKI_DOCTOR_WARN,    /* works today, will not for long (a CRL due soon, a CA near expiry) */
    SMKI_DOCTOR_PROBLEM, /* broken now (a lapsed CRL, an expired CA, a wrong PIN, a damaged trail) */
} smki_doctor_level;
const char *smki_doctor_level_name(int level);

typedef struct {
    char check[16];   /* home, config, pin-file, token, pin, store, ca, ca-key, crl, arl, audit, repo-tls */
    char subject[96]; /* what the finding is about: a path, "test/smki-oca", the token label */
    smki_doctor_level level;
    char finding[320];
    char action[320]; /* what to do about it; "" when nothing is to be done */
} smki_doctor_item;

#define SMKI_DOCTOR_ITEMS_MAX 96
typedef struct {
    size_t n, dropped; /* dropped: findings past the table (counted in the totals) */
    size_t count[SMKI_DOCTOR_PROBLEM + 1];
    smki_doctor_item items[SMKI_DOCTOR_ITEMS_MAX];
} smki_doctor_report;

typedef struct {
    const char *home;
    const smki_conf *conf;     /* the home's configuration, loaded and checked */
    const char *conf_path;     /* for messages */
    smki_hsm_opts *hsm;        /* module, key_copy and the user PIN (NULL pin: none given); run()
                                  works on its own copy, so that a PIN the token refused once
                                  is not offered again for every key (an HSM locks) */
    const char *token;         /* the home's token label */
    const char *store_dir;
    int64_t now;               /* 0: the clock */
    unsigned ca_warn_days;     /* a CA expiring within this many days is a warning; 0: 180 */
} smki_doctor_opts;

/* Run every check in order and fill rep. Reads only: the store is opened read-only,
 * nothing is signed, no file is written. Returns 0 when it could look (rep says what
 * it found); a negative status only for a failure of the doctor itself (memory). */
SMKI_MUST_CHECK int smki_doctor_run(const smki_doctor_opts *o, smki_doctor_report *rep);

/* A finding the caller made before it could call smki_doctor_run (a home that does
 * not exist, a configuration that does not load), in the same report. */
void smki_doctor_add(smki_doctor_report *rep, const char *check, const char *subject, smki_doctor_level level,
                     const char *finding, const char *action);

#endif
