/* What the RA's operators hand over and take away: a device batch's CSR files, the
 * certificates a request issued written into a folder, the text forms they type (block
 * kinds, subscriber types, serials, SKIs), and the read-only view of a home's store.
 * Kept here, not in the smki command, so every front end applies the same rules. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ra_private.h"

int smki_ra_open_read(const char *location, const smki_ra_policy *p, smki_store **s, smki_ra **ra)
{
    ENSURE(location && s && ra, SMKI_E_INTERNAL, "smki_ra_open_read: missing argument");
    *s = NULL, *ra = NULL;
    if (!smki_store_exists(location)) return 0;
    smki_store_opts so = {0, 0, 1};
    GUARD(smki_store_open(location, &so, s));
    int rc = smki_ra_open(*s, p, ra);
    if (rc == 0) return 0;
    smki_store_close(*s);
    *s = NULL, *ra = NULL;
    if (rc != SMKI_E_NOTFOUND) return rc;
    smki_error_clear(); /* read-only, and the RA has written nothing yet */
    return 0;
}

int smki_ra_operator_add_bootstrap(smki_ra *ra, const smki_ra_actor *by, const char *name, EVP_PKEY *pub,
                                   size_t *adopted)
{
    ENSURE(ra && adopted, SMKI_E_INTERNAL, "smki_ra_operator_add_bootstrap: missing argument");
    *adopted = 0;
    size_t before = 0;
    GUARD(smki_ra_operator_count(ra, &before));
    GUARD(smki_ra_operator_add(ra, by, name, pub));
    if (before) return 0;
    /* The bootstrap: the CAs of the ceremony that preceded every operator, bound to the
     * trail now by the first operator's signature. */
    int rc = smki_ra_ca_adopt(ra, by, adopted);
    if (rc < 0)
        return smki_error_wrap("operator %s is registered, but the CA certificates of the bootstrap ceremony are not "
                               "yet in the audit trail: run 'smki ra adopt-ca --operator %s'",
                               name, name);
    return 0;
}

/* ---- Text forms ------------------------------------------------------------------------------ */

const char *smki_range_kind_name(smki_range_kind k)
{
    return k == SMKI_RANGE_CENTRAL ? "central" : "device";
}

int smki_range_kind_parse(const char *text, smki_range_kind *out)
{
    ENSURE(text, SMKI_E_USAGE, "no block kind given: central or device");
    if (strcmp(text, "central") == 0) *out = SMKI_RANGE_CENTRAL;
    else if (strcmp(text, "device") == 0) *out = SMKI_RANGE_DEVICE;
    else return SMKI_FAIL(SMKI_E_USAGE, "a block's kind is central or device, not '%.16s'", text);
    return 0;
}

int smki_ra_subscriber_make(const char *party, const char *type, const char *role, const char *env,
                            smki_ra_subscriber *out)
{
    static const struct {
        const char *name;
        smki_profile_id id;
    } TYPES[] = {{"organisation", SMKI_PROFILE_ORGANISATION},
                 {"device", SMKI_PROFILE_DEVICE},
                 {"dccki-server", SMKI_PROFILE_DCCKI_SERVER},
                 {"dccki-client", SMKI_PROFILE_DCCKI_CLIENT}};
    ENSURE(party && type && env && out, SMKI_E_USAGE, "a subscriber needs a party, a type and an environment");
    memset(out, 0, sizeof *out);
    out->type = SMKI_PROFILE_UNKNOWN;
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (strcmp(type, TYPES[i].name) == 0) out->type = TYPES[i].id;
    ENSURE(out->type != SMKI_PROFILE_UNKNOWN, SMKI_E_USAGE,
           "a subscriber's type is organisation, device, dccki-server or dccki-client, not '%.16s'", type);
    ENSURE(strlen(party) < sizeof out->party && strlen(env) < sizeof out->env, SMKI_E_USAGE,
           "party '%.16s...' or environment '%.16s...' too long", party, env);
    snprintf(out->party, sizeof out->party, "%s", party);
    snprintf(out->env, sizeof out->env, "%s", env);
    out->role = -1;
    if (role) {
        uint8_t r;
        GUARD(smki_role_parse(role, &r));
        out->role = r;
    }
    return 0;
}

int smki_ra_ski_parse(const char *text, uint8_t ski[SMKI_KEYID_LEN])
{
    size_t got = 0;
    int ok = text && strlen(text) == 2 * SMKI_KEYID_LEN &&
             smki_hex_decode(text, 2 * SMKI_KEYID_LEN, ski, SMKI_KEYID_LEN, &got) == 0 && got == SMKI_KEYID_LEN;
    if (!ok) smki_error_clear();
    ENSURE(ok, SMKI_E_USAGE, "an issuer's SKI is 16 hex digits, not '%.32s'", text ? text : "");
    return 0;
}

/* ---- A device batch's CSR files ------------------------------------------------------------- */

/* One more file's bytes into set. */
static int csr_set_add(smki_ra_csr_set *set, size_t *cap, const char *path)
{
    if (set->n == *cap) {
        size_t more = *cap ? 2 * *cap : 64;
        uint8_t **ders = realloc(set->ders, more * sizeof *ders);
        if (ders) set->ders = ders;
        size_t *lens = ders ? realloc(set->lens, more * sizeof *lens) : NULL;
        if (lens) set->lens = lens;
        ENSURE(ders && lens, SMKI_E_NOMEM, "out of memory reading CSR %s", path);
        *cap = more;
    }
    int rc = smki_file_read(path, SMKI_CSR_MAX, &set->ders[set->n], &set->lens[set->n]);
    if (rc < 0) return smki_error_wrap("%s", path);
    set->n++;
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of dir's regular files not starting with '.', sorted (*names malloc'd). */
static int dir_names(const char *dir, char ***names, size_t *n)
{
    DIR *d = opendir(dir);
    ENSURE(d, SMKI_E_IO, "cannot read folder %s", dir);
    size_t cap = 0;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[4352];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **more = realloc(*names, cap * sizeof *more);
            if (!more) rc = SMKI_FAIL(SMKI_E_NOMEM, "out of memory listing %s", dir);
            else *names = more;
        }
        if (rc == 0 && !((*names)[*n] = strdup(p))) rc = SMKI_FAIL(SMKI_E_NOMEM, "out of memory listing %s", dir);
        if (rc == 0) (*n)++;
    }
    closedir(d);
    if (*n) qsort(*names, *n, sizeof **names, cmp_name);
    return rc;
}

int smki_ra_csr_set_read(const char *const *files, size_t n_files, const char *dir, smki_ra_csr_set *out)
{
    ENSURE(out && (files || !n_files), SMKI_E_INTERNAL, "smki_ra_csr_set_read: missing argument");
    memset(out, 0, sizeof *out);
    size_t cap = 0, n_names = 0;
    char **names = NULL;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n_files; i++) rc = csr_set_add(out, &cap, files[i]);
    if (rc == 0 && dir) rc = dir_names(dir, &names, &n_names);
    for (size_t i = 0; rc == 0 && i < n_names; i++) rc = csr_set_add(out, &cap, names[i]);
    for (size_t i = 0; i < n_names; i++) free(names[i]);
    free(names);
    if (rc == 0 && out->n == 0)
        rc = SMKI_FAIL(SMKI_E_USAGE, "a device batch needs CSRs: --csr FILE ... or --csr-dir DIR%s%s",
                       dir ? " (none in " : "", dir ? "the folder)" : "");
    return rc;
}

void smki_ra_csr_set_free(smki_ra_csr_set *set)
{
    if (!set) return;
    for (size_t i = 0; set->ders && i < set->n; i++) free(set->ders[i]);
    free(set->ders);
    free(set->lens);
    memset(set, 0, sizeof *set);
}

/* ---- The certificates a request issued, into a folder ----------------------------------------- */

typedef struct {
    const char *dir;
    int force, writing; /* pass 1 checks every file, pass 2 writes */
    size_t written, present;
} certs_out;

static int cert_file(const smki_cert *x, void *arg)
{
    certs_out *o = arg;
    char pem[4096], s[2 * SMKI_SERIAL_LEN + 1], path[4400];
    size_t n, have_len = 0;
    smki_hex_encode(x->serial, SMKI_SERIAL_LEN, s, 0);
    snprintf(path, sizeof path, "%s/%s.pem", o->dir, s);
    GUARD(smki_cert_to_pem(x->der, x->der_len, pem, sizeof pem, &n));
    struct stat st;
    int exists = stat(path, &st) == 0;
    int same = 0;
    if (exists && S_ISREG(st.st_mode) && (size_t)st.st_size == n) {
        uint8_t *have = NULL;
        if (smki_file_read(path, n, &have, &have_len) == 0) same = have_len == n && memcmp(have, pem, n) == 0;
        else smki_error_clear();
        free(have);
    }
    ENSURE(!exists || same || o->force, SMKI_E_EXISTS,
           "%s exists and holds something else than certificate %s; --force replaces it", path, s);
    if (!o->writing) return 0;
    if (same) {
        o->present++;
        return 0;
    }
    GUARD(smki_file_write_atomic(path, pem, n, 0644, 0));
    o->written++;
    return 0;
}

int smki_ra_request_write_certs(smki_ra *ra, uint64_t id, const char *dir, int force, size_t *written,
                                size_t *present)
{
    ENSURE(ra && dir && written && present, SMKI_E_INTERNAL, "smki_ra_request_write_certs: missing argument");
    *written = 0, *present = 0;
    GUARD(smki_mkdirs(dir, 0755));
    GUARD(smki_dir_sweep_tmp(dir)); /* what a run killed while writing left */
    certs_out o = {dir, force, 0, 0, 0};
    GUARD(smki_ra_request_certs(ra, id, cert_file, &o));
    o.writing = 1;
    GUARD(smki_ra_request_certs(ra, id, cert_file, &o));
    *written = o.written, *present = o.present;
    return 0;
}
