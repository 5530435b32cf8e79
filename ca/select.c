/* What a caller names and the CA decides: the profile a CSR is issued under, a CA named
 * by its kind or its SKI, and whether an environment can be used. These were the smki
 * command's decisions; every caller now meets the same ones. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca_private.h"

int smki_ca_leaf_profile(const smki_csr *csr, smki_profile_id want, smki_profile_id *out)
{
    ENSURE(csr && out, SMKI_E_INTERNAL, "smki_ca_leaf_profile: missing argument");
    if (want == SMKI_PROFILE_UNKNOWN) {
        *out = csr->has_hw_module_name ? SMKI_PROFILE_DEVICE : SMKI_PROFILE_ORGANISATION;
        return 0;
    }
    ENSURE(want == SMKI_PROFILE_ORGANISATION || want == SMKI_PROFILE_DEVICE || want == SMKI_PROFILE_DCCKI_SERVER ||
               want == SMKI_PROFILE_DCCKI_CLIENT,
           SMKI_E_USAGE, "--profile is organisation, device, dccki-server or dccki-client, not %s (a certificate from a "
           "CSR)", smki_profile_get(want)->name);
    *out = want;
    return 0;
}

int smki_ca_kind_parse(const char *text, smki_ca_kind *out)
{
    static const struct {
        const char *name;
        smki_ca_kind kind;
    } SHORT[] = {{"root", SMKI_CA_ROOT}, {"oca", SMKI_CA_OCA}, {"dca", SMKI_CA_DCA}, {"ica", SMKI_CA_DCCKI_ICA}};
    ENSURE(text, SMKI_E_USAGE, "no CA named");
    for (int k = 0; k < SMKI_CA_KIND_COUNT; k++)
        if (strcmp(text, smki_ca_kind_name((smki_ca_kind)k)) == 0) {
            *out = (smki_ca_kind)k;
            return 0;
        }
    for (size_t i = 0; i < sizeof SHORT / sizeof SHORT[0]; i++)
        if (strcmp(text, SHORT[i].name) == 0) {
            *out = SHORT[i].kind;
            return 0;
        }
    return SMKI_FAIL(SMKI_E_USAGE,
                     "'%.32s' is not a CA: smki-root, smki-oca (oca), smki-dca (dca), dccki-root, dccki-ica", text);
}

/* 16 hex digits: a CA certificate's SKI. */
static int parse_ski(const char *text, uint8_t ski[SMKI_KEYID_LEN])
{
    size_t got = 0;
    if (strlen(text) != 2 * SMKI_KEYID_LEN) return 0;
    if (smki_hex_decode(text, strlen(text), ski, SMKI_KEYID_LEN, &got) != 0 || got != SMKI_KEYID_LEN) {
        smki_error_clear();
        return 0;
    }
    return 1;
}

int smki_ca_select(smki_ca_db *db, const char *env, const char *text, smki_ca_selection *out)
{
    ENSURE(db && env && text && out, SMKI_E_INTERNAL, "smki_ca_select: missing argument");
    memset(out, 0, sizeof *out);
    smki_ca_record *rec = malloc(sizeof *rec);
    ENSURE(rec, SMKI_E_NOMEM, "out of memory");
    int rc;
    if (parse_ski(text, out->ski)) {
        out->by_ski = 1;
        out->current = 1;
        rc = smki_ca_get_by_ski(db, env, out->ski, rec, &out->current);
        if (rc == 0) out->kind = rec->kind;
    } else {
        rc = smki_ca_kind_parse(text, &out->kind);
        if (rc == 0) rc = smki_ca_get(db, env, out->kind, rec);
        if (rc == 0) {
            memcpy(out->ski, rec->cert.ski, SMKI_KEYID_LEN);
            out->current = 1;
        }
    }
    if (rc == 0) memcpy(out->serial, rec->cert.serial, SMKI_SERIAL_LEN);
    free(rec);
    return rc;
}

int smki_ca_env_check(const smki_conf *conf, const char *store_dir, const char *env)
{
    ENSURE(env, SMKI_E_USAGE, "no environment named");
    smki_env e;
    int rc = smki_env_load(env, conf, &e);
    if (rc == 0) rc = smki_env_check_configured(&e);
    if (rc == 0 || !store_dir || !smki_store_exists(store_dir)) return rc;
    /* Not usable from configuration: the store may hold its hierarchy. */
    char msg[SMKI_ERR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", smki_error_msg());
    smki_store_opts so = {0, 0, 1};
    smki_store *s = NULL;
    smki_ca_db db;
    int found = 0;
    if (smki_store_open(store_dir, &so, &s) == 0 && smki_ca_db_open(s, &db) == 0) found = smki_ca_env_get(&db, env, &e) == 0;
    smki_store_close(s);
    if (found) {
        smki_error_clear();
        return 0;
    }
    return SMKI_FAIL(rc, "%s", msg);
}
