/* smki doctor: every check an operator would make by hand on a home, in the order a
 * problem would show itself (folder, configuration, PIN files, token and PIN, store,
 * CAs and their keys, CRLs and ARLs, audit trail), each finding with what to do.
 * Reads only: the store is opened read-only, nothing is signed or written. */
#define _POSIX_C_SOURCE 200809L
#include "ops.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ca/ca.h"
#include "ca/crl.h"
#include "ra/ra.h"
#include "store/store.h"

#define DAY 86400
#define CA_KEYS_MAX 64

const char *smki_doctor_level_name(int level)
{
    switch (level) {
    case SMKI_DOCTOR_OK: return "ok";
    case SMKI_DOCTOR_NOTE: return "note";
    case SMKI_DOCTOR_WARN: return "warning";
    case SMKI_DOCTOR_PROBLEM: return "problem";
    default: return "?";
    }
}

void smki_doctor_add(smki_doctor_report *rep, const char *check, const char *subject, smki_doctor_level level,
                     const char *finding, const char *action)
{
    if (level >= SMKI_DOCTOR_OK && level <= SMKI_DOCTOR_PROBLEM) rep->count[level]++;
    if (rep->n == SMKI_DOCTOR_ITEMS_MAX) {
        rep->dropped++;
        return;
    }
    smki_doctor_item *it = &rep->items[rep->n++];
    snprintf(it->check, sizeof it->check, "%s", check);
    snprintf(it->subject, sizeof it->subject, "%s", subject ? subject : "");
    it->level = level;
    snprintf(it->finding, sizeof it->finding, "%s", finding);
    snprintf(it->action, sizeof it->action, "%s", action ? action : "");
}

/* add() with printf-formatted finding and action (action may be NULL). */
static void addf(smki_doctor_report *rep, const char *check, const char *subject, smki_doctor_level level,
                 const char *action, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void addf(smki_doctor_report *rep, const char *check, const char *subject, smki_doctor_level level,
                 const char *action, const char *fmt, ...)
{
    char finding[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(finding, sizeof finding, fmt, ap);
    va_end(ap);
    smki_doctor_add(rep, check, subject, level, finding, action);
}

/* The last error's message, then cleared: a failed step becomes a finding. */
static const char *taken_error(char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", smki_error_msg());
    smki_error_clear();
    return buf;
}

static void when(int64_t t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* "3 days", "5 hours", "12 minutes": a span an operator reads at a glance. */
static void span(int64_t s, char *out, size_t cap)
{
    if (s < 0) s = -s;
    if (s >= 2 * DAY)
        snprintf(out, cap, "%lld days", (long long)(s / DAY));
    else if (s >= 2 * 3600)
        snprintf(out, cap, "%lld hours", (long long)(s / 3600));
    else
        snprintf(out, cap, "%lld minutes", (long long)(s / 60));
}

/* ---- The folder and its secrets --------------------------------------------------- */

static void check_home(const smki_doctor_opts *o, smki_doctor_report *rep)
{
    struct stat st;
    if (stat(o->home, &st) != 0 || !S_ISDIR(st.st_mode)) {
        addf(rep, "home", o->home, SMKI_DOCTOR_PROBLEM, "check --home or SMKI_HOME; 'smki hsm init' makes a new home",
             "%s is not a folder", o->home);
        return;
    }
    unsigned mode = (unsigned)(st.st_mode & 0777);
    if (mode & 0022)
        addf(rep, "home", o->home, SMKI_DOCTOR_PROBLEM, "chmod go-w the home (chmod 700 unless a service reads it)",
             "others may write into the home (mode %04o): they could replace the configuration or the store", mode);
    else if (mode & 0005)
        addf(rep, "home", o->home, SMKI_DOCTOR_WARN, "chmod o-rx the home (chmod 700, or 750 for a service's group)",
             "every user may look into the home (mode %04o)", mode);
    else
        addf(rep, "home", o->home, SMKI_DOCTOR_OK, NULL, "a folder, mode %04o", mode);
}

static void check_pin_file(const smki_doctor_opts *o, smki_doctor_report *rep, const char *key, const char *what)
{
    const char *p = smki_conf_get(o->conf, key, NULL);
    if (!p) return;
    char path[4400];
    snprintf(path, sizeof path, "%s%s%s", p[0] == '/' ? "" : o->home, p[0] == '/' ? "" : "/", p);
    struct stat st;
    if (stat(path, &st) != 0) {
        addf(rep, "pin-file", path, SMKI_DOCTOR_PROBLEM, "create it (umask 077) or correct the path in smki.conf",
             "the %s file named by [%s] does not exist", what, key);
        return;
    }
    unsigned mode = (unsigned)(st.st_mode & 07777);
    if (mode & 0006)
        addf(rep, "pin-file", path, SMKI_DOCTOR_PROBLEM,
             "take the PIN as known: choose a new one, then chmod 600 the file (640 for a service's group)",
             "the %s file is %s by every user (mode %04o); smki refuses it", what,
             (mode & 0004) ? "readable" : "writable", mode);
    else
        addf(rep, "pin-file", path, SMKI_DOCTOR_OK, NULL, "the %s file, mode %04o", what, mode);
}

/* ---- The token ------------------------------------------------------------------------ */

static void check_token(const smki_doctor_opts *o, smki_doctor_report *rep)
{
    char err[SMKI_ERR_MSG_MAX];
    const char *module = o->hsm->module ? o->hsm->module : smki_softhsm_default_module();
    smki_token_info info;
    int rc = smki_token_find(o->hsm, o->token, &info);
    if (rc == SMKI_E_NOTFOUND) {
        addf(rep, "token", o->token, SMKI_DOCTOR_WARN,
             "'smki hsm init' creates it; a home that only serves the repository needs none",
             "no token '%s' in %s: %s", o->token, module, taken_error(err, sizeof err));
        return;
    }
    if (rc < 0) {
        addf(rep, "token", o->token, SMKI_DOCTOR_PROBLEM,
             "check [hsm] module in smki.conf and that the module's own configuration can be read",
             "the PKCS#11 module %s failed: %s", module, taken_error(err, sizeof err));
        return;
    }
    addf(rep, "token", o->token, SMKI_DOCTOR_OK, NULL, "token '%s' (%s %s, serial %s) in slot %lu of %s", info.label,
         info.manufacturer, info.model, info.serial, info.slot_id, module);
    if (!o->hsm->pin) {
        addf(rep, "pin", o->token, SMKI_DOCTOR_WARN,
             "set [hsm] pin_file in smki.conf, or give SMKI_PIN or --pin-file to commands that sign",
             "no user PIN is configured: every command that signs (issuance, CRLs, RA actions) will ask for one");
        return;
    }
    smki_key_info *keys = NULL;
    size_t n = 0;
    rc = smki_key_list(o->hsm, o->token, &keys, &n);
    free(keys);
    if (rc < 0) {
        addf(rep, "pin", o->token, SMKI_DOCTOR_PROBLEM,
             "check the PIN file named by [hsm] pin_file (or SMKI_PIN); a token locks after repeated wrong PINs",
             "logging in to token '%s' failed: %s", o->token, taken_error(err, sizeof err));
        o->hsm->pin = NULL; /* not offered again below (run() owns this copy) */
    } else
        addf(rep, "pin", o->token, SMKI_DOCTOR_OK, NULL, "the user PIN logs in; %zu key pair(s) on the token", n);
}

/* ---- The store, the CAs and their lists ------------------------------------------------ */

typedef struct {
    char keys[CA_KEYS_MAX][SMKI_ENV_NAME_MAX + 48];
    size_t n, more;
} ca_keys;

static int collect_ca_key(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    (void)val;
    (void)vlen;
    ca_keys *k = arg;
    if (k->n == CA_KEYS_MAX || klen >= sizeof k->keys[0]) {
        k->more++;
        return 0;
    }
    memcpy(k->keys[k->n], key, klen);
    k->keys[k->n][klen] = '\0';
    k->n++;
    return 0;
}

typedef struct {
    const smki_ca_db *db;
    ca_keys keys;
} ca_scan;

/* "<env>/<kind>" with a CA kind smki knows: the current CA of that kind. Superseded
 * CAs ("<env>/<kind>/<serial>") and records that are not CAs (the RA's "/governed-by-ra")
 * share the database. */
static int is_current_ca_key(const char *key)
{
    const char *slash = strchr(key, '/');
    if (!slash || slash == key) return 0;
    for (int k = 0; k < SMKI_CA_KIND_COUNT; k++)
        if (strcmp(slash + 1, smki_ca_kind_name((smki_ca_kind)k)) == 0) return 1;
    return 0;
}

static int scan_cas(smki_txn *t, void *arg)
{
    ca_scan *sc = arg;
    return smki_txn_scan(t, sc->db->cas, "", 0, collect_ca_key, &sc->keys);
}

typedef struct {
    const smki_ca_db *db;
    const char *key;
    smki_ca_record *rec;
} ca_get;

static int get_ca(smki_txn *t, void *arg)
{
    ca_get *g = arg;
    return smki_ca_get_txn(t, g->db, g->key, g->rec);
}

/* The CA's key, found where the ceremony put it, is the certificate's key. With the
 * PIN, it also signs (a random digest, verified with the certificate: nothing is
 * kept): a public half alone does not prove the private key is still on the token. */
static void check_ca_key(const smki_doctor_opts *o, smki_doctor_report *rep, const smki_ca_record *r,
                         const char *subject)
{
    char err[SMKI_ERR_MSG_MAX];
    EVP_PKEY *pub = NULL;
    smki_key *key = NULL;
    const uint8_t *p = r->cert.der;
    X509 *x = d2i_X509(NULL, &p, (long)r->cert.der_len);
    if (smki_key_public_load(r->key_ref, o->hsm, &pub) < 0) {
        addf(rep, "ca-key", subject, SMKI_DOCTOR_PROBLEM,
             "this home must reach the token (or file) of the ceremony: check [hsm] module and token",
             "the CA's key %s cannot be found: %s", r->key_ref, taken_error(err, sizeof err));
    } else if (!x || EVP_PKEY_eq(pub, X509_get0_pubkey(x)) != 1) {
        addf(rep, "ca-key", subject, SMKI_DOCTOR_PROBLEM,
             "another key carries the CA key's name: restore the ceremony's token from its backup",
             "the key %s is not the key of the CA's certificate", r->key_ref);
    } else if (!o->hsm->pin && strncmp(r->key_ref, "pkcs11:", 7) == 0) {
        addf(rep, "ca-key", subject, SMKI_DOCTOR_OK, NULL,
             "the CA's public key is there (%s); without the PIN its signing was not tried", r->key_ref);
    } else {
        uint8_t digest[32], sig[SMKI_SIG_MAX];
        size_t sig_len = sizeof sig;
        int rc = RAND_bytes(digest, sizeof digest) == 1 ? 0 : SMKI_FAIL(SMKI_E_CRYPTO, "no random octets");
        if (rc == 0) rc = smki_key_open(r->key_ref, o->hsm, &key);
        if (rc == 0) rc = smki_key_sign_digest(key, digest, SMKI_SIG_DER, sig, &sig_len);
        if (rc == 0) rc = smki_verify_digest(X509_get0_pubkey(x), digest, SMKI_SIG_DER, sig, sig_len);
        if (rc < 0) {
            addf(rep, "ca-key", subject, SMKI_DOCTOR_PROBLEM,
                 "the CA cannot issue or publish lists: check the PIN and the token, else restore its key from the "
                 "ceremony's backup",
                 "the CA's key %s does not sign: %s", r->key_ref, taken_error(err, sizeof err));
            /* No second try with what may be a wrong PIN: an HSM locks after a few. */
            o->hsm->pin = NULL;
        } else
            addf(rep, "ca-key", subject, SMKI_DOCTOR_OK, NULL, "the CA's key signs (%s)", r->key_ref);
    }
    smki_key_free(key);
    EVP_PKEY_free(pub);
    X509_free(x);
}

static void check_ca_validity(const smki_doctor_opts *o, smki_doctor_report *rep, const smki_ca_record *r,
                              const char *subject, int64_t now)
{
    char at[32], left[32];
    when(r->cert.not_after, at, sizeof at);
    span(r->cert.not_after - now, left, sizeof left);
    int64_t warn = (int64_t)(o->ca_warn_days ? o->ca_warn_days : 180) * DAY;
    if (r->cert.not_after <= now)
        addf(rep, "ca", subject, SMKI_DOCTOR_PROBLEM,
             "nothing it signed verifies any more: replace the CA (docs/ra.md, CA re-key) and re-issue",
             "the CA's certificate expired %s ago (%s)", left, at);
    else if (r->cert.not_before > now)
        addf(rep, "ca", subject, SMKI_DOCTOR_PROBLEM, "check the system clock",
             "the CA's certificate is not valid yet (the clock is behind its notBefore)");
    else if (r->cert.not_after - now < warn)
        addf(rep, "ca", subject, SMKI_DOCTOR_WARN,
             "plan its successor now: what it certifies must be re-issued before it expires",
             "the CA's certificate expires in %s (%s)", left, at);
    else
        addf(rep, "ca", subject, SMKI_DOCTOR_OK, NULL, "valid until %s", at);
}

/* Is the list published at path the one the store holds as the latest? */
static int file_is(const char *path, const uint8_t *der, size_t len)
{
    uint8_t *data = NULL;
    size_t n = 0;
    if (smki_file_read(path, 16u << 20, &data, &n) < 0) {
        smki_error_clear();
        return 0;
    }
    int same = n == len && memcmp(data, der, len) == 0;
    free(data);
    return same;
}

static void check_list(const smki_doctor_opts *o, smki_doctor_report *rep, smki_ca_db *db, const smki_ca_record *r,
                       const char *subject, int64_t now)
{
    const char *kind = smki_ca_kind_is_root(r->kind) ? "arl" : "crl";
    const char *what = smki_ca_kind_is_root(r->kind) ? "ARL" : "CRL";
    char action[256], err[SMKI_ERR_MSG_MAX], at[32], left[32];
    snprintf(action, sizeof action,
             "publish it: 'smki ca %s --env %s --operator NAME' (smki-publish.timer does it unattended)", kind,
             r->env);
    smki_crl crl;
    memset(&crl, 0, sizeof crl);
    int rc = smki_ca_crl_get(db, r->env, r->kind, &crl);
    if (rc == SMKI_E_NOTFOUND) {
        smki_error_clear();
        addf(rep, kind, subject, SMKI_DOCTOR_PROBLEM, action,
             "no %s has been published: relying parties cannot check revocation", what);
        return;
    }
    if (rc < 0) {
        addf(rep, kind, subject, SMKI_DOCTOR_PROBLEM, "see the store check", "its %s cannot be read: %s", what,
             taken_error(err, sizeof err));
        return;
    }
    when(crl.next_update, at, sizeof at);
    span(crl.next_update - now, left, sizeof left);
    int64_t period = crl.next_update - crl.this_update;
    if (crl.next_update <= now)
        addf(rep, kind, subject, SMKI_DOCTOR_PROBLEM, action,
             "%s %llu lapsed %s ago (nextUpdate %s): relying parties refuse what this CA certified", what,
             (unsigned long long)crl.number, left, at);
    else if (crl.next_update - now < period / 4)
        addf(rep, kind, subject, SMKI_DOCTOR_WARN, action, "%s %llu is due: nextUpdate in %s (%s)", what,
             (unsigned long long)crl.number, left, at);
    else
        addf(rep, kind, subject, SMKI_DOCTOR_OK, NULL, "%s %llu, %zu revoked, nextUpdate in %s (%s)", what,
             (unsigned long long)crl.number, crl.entries, left, at);
    char path[4400];
    snprintf(path, sizeof path, "%s/ca/%s/%s.crl", o->home, r->env, smki_ca_kind_name(r->kind));
    if (!file_is(path, crl.der, crl.der_len))
        addf(rep, kind, path, SMKI_DOCTOR_WARN, action,
             "the file is missing or older than the %s in the store (the repository serves the store's)", what);
    smki_crl_clear(&crl);
}

static void check_cas(const smki_doctor_opts *o, smki_doctor_report *rep, smki_store *s, int64_t now)
{
    char err[SMKI_ERR_MSG_MAX];
    smki_ca_db db;
    if (smki_ca_db_open(s, &db) < 0) {
        addf(rep, "ca", NULL, SMKI_DOCTOR_PROBLEM, "open it once read-write ('smki store info') to bring it up to date",
             "the CA's databases cannot be opened: %s", taken_error(err, sizeof err));
        return;
    }
    ca_scan *sc = calloc(1, sizeof *sc);
    smki_ca_record *r = calloc(1, sizeof *r);
    if (!sc || !r) goto out;
    sc->db = &db;
    if (smki_store_read(s, scan_cas, sc) < 0) {
        addf(rep, "ca", NULL, SMKI_DOCTOR_PROBLEM, "see the store check", "the CA records cannot be read: %s",
             taken_error(err, sizeof err));
        goto out;
    }
    size_t current = 0;
    for (size_t i = 0; i < sc->keys.n; i++) {
        const char *key = sc->keys.keys[i];
        if (!is_current_ca_key(key)) continue; /* a superseded CA (kept for its old lists), the RA's marker */
        ca_get g = {&db, key, r};
        if (smki_store_read(s, get_ca, &g) < 0) {
            addf(rep, "ca", key, SMKI_DOCTOR_PROBLEM, "restore the store from its last backup",
                 "the CA record does not decode: %s", taken_error(err, sizeof err));
            continue;
        }
        current++;
        check_ca_validity(o, rep, r, key, now);
        check_ca_key(o, rep, r, key);
        check_list(o, rep, &db, r, key, now);
    }
    if (current == 0)
        addf(rep, "ca", NULL, SMKI_DOCTOR_NOTE, "'smki ca init --env test' runs a test ceremony",
             "the store holds no CA yet");
    if (sc->keys.more)
        addf(rep, "ca", NULL, SMKI_DOCTOR_NOTE, NULL, "%zu further CA records not examined", sc->keys.more);
out:
    free(sc);
    free(r);
}

/* ---- The audit trail ---------------------------------------------------------------- */

static void check_audit(const smki_doctor_opts *o, smki_doctor_report *rep, smki_store *s)
{
    char err[SMKI_ERR_MSG_MAX];
    smki_ra_policy pol;
    smki_ra *ra = NULL;
    size_t ops = 0;
    if (smki_ra_policy_load(o->conf, &pol) < 0) {
        addf(rep, "audit", NULL, SMKI_DOCTOR_PROBLEM, "correct [ra] in smki.conf", "the RA's settings: %s",
             taken_error(err, sizeof err));
        return;
    }
    if (smki_ra_open(s, &pol, &ra) < 0 || smki_ra_operator_count(ra, &ops) < 0) {
        smki_error_clear();
        smki_ra_close(ra);
        addf(rep, "audit", NULL, SMKI_DOCTOR_NOTE, "'smki ra operator add' registers the first operator (docs/ra.md)",
             "this store has no RA yet: no audit trail to verify");
        return;
    }
    if (ops == 0) {
        smki_ra_close(ra);
        addf(rep, "audit", NULL, SMKI_DOCTOR_NOTE, "'smki ra operator add' registers the first operator (docs/ra.md)",
             "no RA operator is registered: no audit trail to verify");
        return;
    }
    const char *ck = smki_conf_get(o->conf, "audit.checkpoint_key", "smki-audit");
    char ref[SMKI_KEY_URI_MAX];
    int rc = 0;
    if (strncmp(ck, "pkcs11:", 7) == 0 || strncmp(ck, "file:", 5) == 0)
        snprintf(ref, sizeof ref, "%s", ck);
    else
        rc = smki_p11_uri_format_public(o->token, ck, ref, sizeof ref);
    EVP_PKEY *pub = NULL;
    if (rc == 0) rc = smki_key_public_load(ref, o->hsm, &pub);
    if (rc < 0) {
        addf(rep, "audit", ck, SMKI_DOCTOR_PROBLEM,
             "set [audit] checkpoint_key to the key that signs checkpoints; without it RA actions stop when a "
             "checkpoint falls due",
             "the checkpoint key cannot be found: %s", taken_error(err, sizeof err));
        smki_ra_close(ra);
        return;
    }
    smki_audit_report *ar = calloc(1, sizeof *ar);
    rc = ar ? smki_audit_verify(ra, pub, ar) : SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    if (rc == 0) {
        addf(rep, "audit", NULL, SMKI_DOCTOR_OK, NULL,
             "%llu entries chained and signed by %zu operator(s); last checkpoint at entry %llu",
             (unsigned long long)ar->entries, ops, (unsigned long long)ar->last_checkpoint);
    } else if (rc == SMKI_E_VERIFY) {
        smki_error_clear();
        for (size_t i = 0; i < ar->n_findings; i++) {
            char subject[32];
            snprintf(subject, sizeof subject, "entry %llu", (unsigned long long)ar->findings[i].seq);
            addf(rep, "audit", subject, SMKI_DOCTOR_PROBLEM,
                 "keep the store as it is for investigation; restore the last verified backup (docs/ra.md section 6)",
                 "%s: %s", smki_audit_finding_name(ar->findings[i].kind), ar->findings[i].message);
        }
    } else {
        addf(rep, "audit", NULL, SMKI_DOCTOR_PROBLEM, "see the store check", "the audit trail cannot be read: %s",
             taken_error(err, sizeof err));
    }
    free(ar);
    EVP_PKEY_free(pub);
    smki_ra_close(ra);
}

static void check_store(const smki_doctor_opts *o, smki_doctor_report *rep, int64_t now)
{
    char err[SMKI_ERR_MSG_MAX];
    int there = smki_store_exists(o->store_dir); /* either engine; negative: cannot tell (the open says why) */
    if (there == 0) {
        addf(rep, "store", o->store_dir, SMKI_DOCTOR_NOTE, "the first 'smki ca init' creates it", "no store yet");
        return;
    }
    smki_store_opts so = {0, 0, 1};
    smki_store *s = NULL;
    if (smki_store_open(o->store_dir, &so, &s) < 0) {
        addf(rep, "store", o->store_dir, SMKI_DOCTOR_PROBLEM,
             "check the folder's owner and permissions (LMDB) or the server and [store] conninfo (PostgreSQL), "
             "and that no newer smki wrote it",
             "the store cannot be opened: %s", taken_error(err, sizeof err));
        return;
    }
    addf(rep, "store", o->store_dir, SMKI_DOCTOR_OK, NULL, "opened read-only (schema %u)", smki_store_schema(s));
    check_cas(o, rep, s, now);
    check_audit(o, rep, s);
    smki_store_close(s);
}

/* ---- The repository's TLS certificate ([repo] tls_cert) -------------------------------------- */

static void check_repo_tls(const smki_doctor_opts *o, smki_doctor_report *rep, int64_t now)
{
    const char *p = smki_conf_get(o->conf, "repo.tls_cert", NULL);
    if (!p) return;
    char path[4400], err[SMKI_ERR_MSG_MAX], at[32], left[32];
    snprintf(path, sizeof path, "%s%s%s", p[0] == '/' ? "" : o->home, p[0] == '/' ? "" : "/", p);
    X509 *x = NULL;
    if (smki_cert_load_file(path, &x) < 0) {
        addf(rep, "repo-tls", path, SMKI_DOCTOR_PROBLEM, "correct [repo] tls_cert, or install the certificate there",
             "the repository's TLS certificate cannot be read: %s", taken_error(err, sizeof err));
        return;
    }
    struct tm tm;
    int64_t not_after = ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1 ? (int64_t)timegm(&tm) : 0;
    X509_free(x);
    when(not_after, at, sizeof at);
    span(not_after - now, left, sizeof left);
    static const char RENEW[] = "issue its successor (smki ra request submit --type dccki-server), replace the files "
                                "and 'systemctl reload smki-repo' (SIGHUP: no connection dropped)";
    if (not_after <= now)
        addf(rep, "repo-tls", path, SMKI_DOCTOR_PROBLEM, RENEW, "the repository's TLS certificate expired %s ago (%s)",
             left, at);
    else if (not_after - now < 30 * DAY)
        addf(rep, "repo-tls", path, SMKI_DOCTOR_WARN, RENEW, "the repository's TLS certificate expires in %s (%s)", left,
             at);
    else
        addf(rep, "repo-tls", path, SMKI_DOCTOR_OK, NULL, "the repository's TLS certificate is valid until %s", at);
}

int smki_doctor_run(const smki_doctor_opts *o, smki_doctor_report *rep)
{
    ENSURE(o && o->home && o->hsm && o->token && o->store_dir, SMKI_E_USAGE, "smki_doctor_run: options missing");
    int64_t now = o->now > 0 ? o->now : (int64_t)time(NULL);
    /* Our own copy of the token options: a PIN the token refused is dropped after its
     * first refusal rather than offered again for every key. */
    smki_hsm_opts hsm = *o->hsm;
    smki_doctor_opts own = *o;
    own.hsm = &hsm;
    o = &own;
    check_home(o, rep);
    addf(rep, "config", o->conf_path, SMKI_DOCTOR_OK, NULL, "read; every section and setting is known");
    check_pin_file(o, rep, "hsm.pin_file", "user PIN");
    check_pin_file(o, rep, "hsm.so_pin_file", "SO PIN");
    check_token(o, rep);
    check_store(o, rep, now);
    check_repo_tls(o, rep, now);
    return 0;
}
