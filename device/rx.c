/* A device receiving a command: the checks in the order a device makes them (recipient,
 * MAC, signature by the cell of the originator's role, counter above the floor,
 * permission), then CS02a/b/c, the response, or the alert a refusal corresponds to. */
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "device.h"
#include "state.h"

void smki_rx_opts_default(smki_rx_opts *o)
{
    memset(o, 0, sizeof *o);
    o->mac_mode = SMKI_MAC_DEVICE_KEY;
    /* Not in the reference (GBCS Alert Codes table): placeholders, configurable. */
    o->alert_a2 = 0x8F1C;
    o->alert_a3 = 0x8F1D;
    o->alert_a4 = 0x8F1E;
    o->alert_replay = 0x8F1C;
}

static int conf_alert(const smki_conf *conf, const char *key, uint16_t *code)
{
    const char *v = smki_conf_get(conf, key, NULL);
    if (!v) return 0;
    size_t n = strlen(v);
    unsigned long x = n >= 1 && n <= 4 && strspn(v, "0123456789abcdefABCDEF") == n ? strtoul(v, NULL, 16) : 0;
    ENSURE(x > 0, SMKI_E_USAGE, "[%.*s] %s = '%.16s' is not an alert code: give 1-4 hex digits, not 0 (e.g. 8F1C)",
           (int)(strchr(key, '.') - key), key, strchr(key, '.') + 1, v);
    *code = (uint16_t)x;
    return 0;
}

int smki_rx_opts_conf(smki_rx_opts *o, const smki_conf *conf)
{
    GUARD(conf_alert(conf, "device.alert_a2", &o->alert_a2));
    GUARD(conf_alert(conf, "device.alert_a3", &o->alert_a3));
    GUARD(conf_alert(conf, "device.alert_a4", &o->alert_a4));
    GUARD(conf_alert(conf, "device.alert_replay", &o->alert_replay));
    return 0;
}

void smki_rx_result_clear(smki_rx_result *r)
{
    free(r->out);
    memset(r, 0, sizeof *r);
}

const char *smki_rx_verdict_name(smki_rx_verdict v)
{
    static const char *names[] = {"accepted",      "malformed", "not-recipient", "bad-mac",       "no-trust-anchor",
                                  "bad-signature", "replay",    "no-permission", "command-failed"};
    return (unsigned)v < sizeof names / sizeof names[0] ? names[v] : "?";
}

/* ---- Who may send what --------------------------------------------------------------------- */

static int mode_authoriser(uint8_t mode)
{
    switch (mode) {
    case 2: return SMKI_ROLE_SUPPLIER;
    case 3: return SMKI_ROLE_NETWORK_OPERATOR;
    case 4: return SMKI_ROLE_ACB;
    case 5: return SMKI_ROLE_WAN_PROVIDER;
    case 6: return SMKI_ROLE_TRANSITIONAL_COS;
    case 7: return SMKI_ROLE_TRANSITIONAL_COS;
    case 8: return SMKI_ROLE_RECOVERY;
    case 9: return SMKI_ROLE_RECOVERY;
    default: return -1;
    }
}

static int mode_may_replace(uint8_t mode, uint8_t role)
{
    switch (mode) {
    case 2: return role == SMKI_ROLE_SUPPLIER;
    case 3: return role == SMKI_ROLE_NETWORK_OPERATOR;
    case 4: return role == SMKI_ROLE_ACB;
    case 5: return role == SMKI_ROLE_WAN_PROVIDER;
    case 6: return role == SMKI_ROLE_TRANSITIONAL_COS;
    case 7: return role == SMKI_ROLE_SUPPLIER;
    case 8: return role != SMKI_ROLE_ROOT;
    case 9: return 1;
    default: return 0;
    }
}

/* The permission table: which role may send which message code, and whether it must be
 * signed (critical). CS02b's role comes from its mode. */
static int permitted(uint16_t mc, int role, int *critical)
{
    *critical = 1;
    switch (mc) {
    case SMKI_MC_CS02A: *critical = 0; return role == SMKI_ROLE_ACB;
    case SMKI_MC_CS02C: return role == SMKI_ROLE_SUPPLIER || role == SMKI_ROLE_NETWORK_OPERATOR;
    case SMKI_MC_ECS01A: return role == SMKI_ROLE_SUPPLIER;
    default:
        if (mc >= SMKI_MC_CS02B(2) && mc <= SMKI_MC_CS02B(9)) return role == mode_authoriser((uint8_t)(mc - 0x100));
        return 0;
    }
}

/* ---- Verification ------------------------------------------------------------------------- */

static int refuse(smki_rx_result *r, smki_rx_verdict v, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(smki_rx_result *r, smki_rx_verdict v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
    r->verdict = v;
    return 0;
}

static void eui_text(const uint8_t b[8], char out[SMKI_EUI64_TEXT_MAX])
{
    smki_eui64_t e;
    memcpy(e.b, b, 8);
    smki_eui64_format(&e, SMKI_EUI64_HYPHEN, out);
}

static int check_mac(smki_device *d, const smki_gbcs_cmd *c, const smki_rx_opts *o, smki_rx_result *r)
{
    smki_ta_cell_id acb = {SMKI_ROLE_ACB, SMKI_KU_KEY_AGREEMENT, SMKI_CELL_MANAGEMENT};
    int i = smki_dev_cell_index(d, &acb), rc = 0;
    uint8_t z[32], mac[SMKI_GBCS_MAC_LEN];
    smki_key *mine = NULL;
    EVP_PKEY *peer = NULL;
    const uint8_t *peer_point = NULL;

    if (!c->wrapped) return refuse(r, SMKI_RX_BAD_MAC, "no MAC: the command did not come through the ACB (DD)");
    if (o->mac_mode == SMKI_MAC_RTDS_REPLAY) {
        ENSURE(d->rec.flags & SMKI_DEVICE_FLAG_RTDS, SMKI_E_REFUSED,
               "RTDS replay mode is refused on a device with its own keys: its MAC is checked with its KA key");
        ENSURE(o->rtds_acb_ka != NULL, SMKI_E_USAGE, "RTDS replay mode needs the ACB's KA private key");
        ENSURE(d->ka_pub != NULL, SMKI_E_INTERNAL, "RTDS model without its KA certificate");
        mine = o->rtds_acb_ka;
        peer = d->ka_pub;
        peer_point = d->ka_point;
        r->mac_check = "rtds-replay-acb-ka";
    } else {
        ENSURE(!(d->rec.flags & SMKI_DEVICE_FLAG_RTDS), SMKI_E_REFUSED,
               "this is an RTDS replay model (no KA private key): receive it in the named RTDS replay mode "
               "(--rtds-replay-acb-key), which checks the MAC from the ACB side");
        if (i < 0 || !d->cells[i].has_key)
            return refuse(r, SMKI_RX_BAD_MAC, "no ACB key-agreement cell: the MAC cannot be checked");
        GUARD(smki_dev_own_key(d, 1, &mine));
        peer = d->cell_pub[i];
        peer_point = d->cells[i].point;
        r->mac_check = "device-ka";
    }
    GUARD(smki_dev_shared_z(d, mine, (int)o->mac_mode, peer, peer_point, z));
    rc = smki_gbcs_mac_z(z, c->gs.apdu, c->gs.apdu_len, c->invocation, mac);
    smki_wipe(z, sizeof z);
    GUARD(rc);
    if (CRYPTO_memcmp(mac, c->mac, SMKI_GBCS_MAC_LEN) != 0)
        return refuse(r, SMKI_RX_BAD_MAC, "MAC does not verify (%s)", r->mac_check);
    return 0;
}

/* The DS management cells whose holder is the originator; the signature decides which. */
static int check_signature(smki_device *d, const smki_gbcs_cmd *c, int want_role, smki_rx_result *r)
{
    char o[SMKI_EUI64_TEXT_MAX];
    int candidates = 0;
    uint8_t digest[32];
    eui_text(c->gs.originator, o);
    ENSURE(SHA256(c->gs.signed_part, c->gs.signed_len, digest) != NULL, SMKI_E_CRYPTO, "SHA-256 failed");
    for (size_t i = 0; i < d->ncells; i++) {
        const smki_ta_cell *cell = &d->cells[i];
        if (cell->id.key_usage != SMKI_KU_DIGITAL_SIGNATURE || cell->id.cell_usage != SMKI_CELL_MANAGEMENT ||
            !cell->has_key || memcmp(cell->subject_id, c->gs.originator, 8) != 0)
            continue;
        if (want_role >= 0 && cell->id.role != want_role) continue;
        candidates++;
        int rc = smki_verify_digest(d->cell_pub[i], digest, SMKI_SIG_RAW, c->gs.signature, SMKI_SIG_RAW_LEN);
        if (rc == 0) {
            r->role = cell->id.role;
            return 0;
        }
        if (rc != SMKI_E_VERIFY && rc != SMKI_E_INPUT) return rc;
        smki_error_clear();
    }
    if (!candidates)
        return refuse(r, SMKI_RX_NO_CELL, "no %s%sDS trust anchor cell holds originator %s",
                      want_role >= 0 ? smki_role_name((unsigned)want_role) : "", want_role >= 0 ? " " : "", o);
    return refuse(r, SMKI_RX_BAD_SIGNATURE, "signature of %s does not verify with the %s cell", o,
                  want_role >= 0 ? smki_role_name((unsigned)want_role) : "originator's");
}

/* Unsigned (non-critical) commands: the originator is known by its KA cell, whose key
 * the MAC proved. */
static int role_by_ka_cell(const smki_device *d, const uint8_t originator[8])
{
    for (size_t i = 0; i < d->ncells; i++)
        if (d->cells[i].id.key_usage == SMKI_KU_KEY_AGREEMENT && d->cells[i].id.cell_usage == SMKI_CELL_MANAGEMENT &&
            memcmp(d->cells[i].subject_id, originator, 8) == 0)
            return d->cells[i].id.role;
    return -1;
}

static int verify_cmd(smki_device *d, const uint8_t *msg, size_t len, const smki_rx_opts *o, smki_gbcs_cmd *c,
                      smki_rx_result *r)
{
    char want[SMKI_EUI64_TEXT_MAX], got[SMKI_EUI64_TEXT_MAX];
    int critical = 1;
    r->role = -1;
    r->mac_check = "none";
    if (smki_gbcs_cmd_parse(msg, len, c) < 0) {
        refuse(r, SMKI_RX_MALFORMED, "%s", smki_error_msg());
        smki_error_clear();
        return 0;
    }
    r->message_code = c->gs.message_code;
    r->cra = c->gs.cra;
    r->counter = c->gs.counter;
    memcpy(r->originator.b, c->gs.originator, 8);
    memcpy(r->recipient.b, c->gs.recipient, 8);
    if (c->gs.cra != 0x01) return refuse(r, SMKI_RX_MALFORMED, "CRA flag %u: not a command", c->gs.cra);
    /* 1. Intended recipient (alert A3). */
    if (memcmp(c->gs.recipient, d->eui.b, 8) != 0) {
        eui_text(d->eui.b, want);
        eui_text(c->gs.recipient, got);
        return refuse(r, SMKI_RX_NOT_RECIPIENT, "addressed to %s, this device is %s", got, want);
    }
    /* 2. The ACB's MAC (alert A2). */
    GUARD(check_mac(d, c, o, r));
    if (r->verdict != SMKI_RX_ACCEPTED) return 0;
    /* 3. The signature, by the cell of the originator's role (alert A2). A CS02b names its
     *    authoriser by its mode. */
    int want_role = -1;
    uint16_t mc = c->gs.message_code;
    if (mc >= SMKI_MC_CS02B(2) && mc <= SMKI_MC_CS02B(9)) want_role = mode_authoriser((uint8_t)(mc - 0x100));
    if (c->gs.has_signature) {
        GUARD(check_signature(d, c, want_role, r));
        if (r->verdict != SMKI_RX_ACCEPTED) return 0;
    } else {
        r->role = role_by_ka_cell(d, c->gs.originator);
        (void)permitted(mc, r->role, &critical);
        if (critical || r->role < 0)
            return refuse(r, SMKI_RX_BAD_SIGNATURE, "unsigned command 0x%04x: critical commands must be signed", mc);
    }
    /* 4. The counter above the floor of that role (replay). */
    uint64_t floor = d->floors[r->role];
    if (c->gs.counter <= floor)
        return refuse(r, SMKI_RX_REPLAY, "counter %llu is not above the %s floor %llu (replayed or stale)",
                      (unsigned long long)c->gs.counter, smki_role_name((unsigned)r->role),
                      (unsigned long long)floor);
    /* 5. Permission (alert A4). */
    if (!permitted(mc, r->role, &critical))
        return refuse(r, SMKI_RX_NO_PERMISSION, "a %s may not send message code 0x%04x",
                      smki_role_name((unsigned)r->role), mc);
    return 0;
}

int smki_device_verify(smki_device *d, const uint8_t *msg, size_t len, const smki_rx_opts *o, smki_rx_result *r)
{
    smki_gbcs_cmd c;
    memset(r, 0, sizeof *r);
    return verify_cmd(d, msg, len, o, &c, r);
}

/* ---- CS02b --------------------------------------------------------------------------------- */

static uint8_t cert_ku_cell(unsigned ku)
{
    if (ku == SMKI_KU_DIGITAL_SIGNATURE || ku == SMKI_KU_KEY_AGREEMENT) return (uint8_t)ku;
    if (ku & SMKI_KU_KEY_CERT_SIGN) return SMKI_KU_KEY_CERT_SIGN;
    return 0;
}

/* Walk from cert through the certification path to the root cell: each step is the
 * path certificate whose SKI is the child's AKI (and whose subject is its issuer), a CA
 * with keyCertSign, whose key verifies the child's signature. 0: reaches the root;
 * SMKI_E_VERIFY: it does not (why in the error). */
static int chain_to_root(smki_device *d, X509 *leaf, X509 **path, dev_cert_facts_t *pf, size_t npath,
                         const smki_rx_opts *o, int time_checks, time_t now, int *root_unchecked)
{
    smki_ta_cell_id rid = {SMKI_ROLE_ROOT, SMKI_KU_KEY_CERT_SIGN, SMKI_CELL_MANAGEMENT};
    int ri = smki_dev_cell_index(d, &rid);
    X509 *cur = leaf;
    ENSURE(ri >= 0, SMKI_E_VERIFY, "the device has no root cell");
    for (int depth = 0; depth < 6; depth++) {
        const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(cur);
        ENSURE(aki && ASN1_STRING_length(aki) == 8, SMKI_E_VERIFY, "certificate without an 8-octet AKI");
        const uint8_t *a = ASN1_STRING_get0_data(aki);
        if (memcmp(a, d->cells[ri].ski, 8) == 0) {
            if (d->cells[ri].has_key) {
                ENSURE(X509_verify(cur, d->cell_pub[ri]) == 1, SMKI_E_VERIFY,
                       "the root cell's key does not verify the top of the path");
                return 0;
            }
            /* Only the RTDS model has a root anchor without a key (ZA is unpublished). */
            ENSURE(o->mac_mode == SMKI_MAC_RTDS_REPLAY && (d->rec.flags & SMKI_DEVICE_FLAG_RTDS), SMKI_E_VERIFY,
                   "the root cell holds no key");
            *root_unchecked = 1;
            return 0;
        }
        size_t k;
        for (k = 0; k < npath; k++)
            if (memcmp(pf[k].ski, a, 8) == 0 && X509_NAME_cmp(X509_get_subject_name(path[k]),
                                                                X509_get_issuer_name(cur)) == 0)
                break;
        ENSURE(k < npath, SMKI_E_VERIFY, "no certificate of the path issued it (AKI not found) and it is not the root's");
        ENSURE(X509_check_ca(path[k]) >= 1 && (pf[k].key_usage & SMKI_KU_KEY_CERT_SIGN), SMKI_E_VERIFY,
               "a path certificate is not a CA with keyCertSign");
        ENSURE(X509_verify(cur, X509_get0_pubkey(path[k])) == 1, SMKI_E_VERIFY,
               "a certificate's signature does not verify with its issuer in the path");
        if (time_checks) {
            ENSURE(X509_cmp_time(X509_get0_notBefore(path[k]), &now) < 0 &&
                       X509_cmp_time(X509_get0_notAfter(path[k]), &now) > 0,
                   SMKI_E_VERIFY, "a path certificate is outside its validity");
        }
        cur = path[k];
    }
    return SMKI_FAIL(SMKI_E_VERIFY, "certification path longer than 6");
}

typedef struct {
    smki_gbcs_cs02b q;
    smki_ta_cell newcells[SMKI_CS02B_MAX_REPLACEMENTS];
    uint8_t roles[40];
    uint64_t floors[40];
    size_t nfloors;
    int root_unchecked;
} cs02b_work;

static void set_floor(cs02b_work *w, uint8_t role, uint64_t v)
{
    for (size_t i = 0; i < w->nfloors; i++)
        if (w->roles[i] == role) {
            w->floors[i] = v;
            return;
        }
    if (w->nfloors < sizeof w->roles) {
        w->roles[w->nfloors] = role;
        w->floors[w->nfloors++] = v;
    }
}

/* Checks every replacement; fills outcomes; 1 if all succeeded. */
static int cs02b_check(smki_device *d, const smki_gbcs_cmd *c, const smki_rx_opts *o, cs02b_work *w, smki_rx_result *r)
{
    X509 *path[8] = {0};
    dev_cert_facts_t pf[8];
    time_t now = o->now ? o->now : time(NULL);
    int all_ok = 1;
    const smki_gbcs_cs02b *q = &w->q;
    size_t np = 0;

    for (size_t k = 0; k < q->npath; k++) {
        const uint8_t *p = q->path[k].cert;
        X509 *x = d2i_X509(NULL, &p, (long)q->path[k].len);
        if (!x || p != q->path[k].cert + q->path[k].len || smki_dev_cert_facts(x, q->path[k].cert, q->path[k].len, &pf[np]) < 0) {
            X509_free(x);
            smki_error_clear();
            continue; /* a path certificate that does not parse cannot be a link */
        }
        path[np++] = x;
    }
    for (size_t i = 0; i < q->nrepl; i++) {
        smki_cs02b_outcome *oc = &r->outcomes[r->noutcomes++];
        const smki_ta_cell_id *tid = &q->repl[i].target;
        int ci = smki_dev_cell_index(d, tid);
        X509 *x = NULL;
        dev_cert_facts_t f;
        oc->id = *tid;
        oc->status = SMKI_CS02B_SUCCESS;
        if (ci >= 0) {
            memcpy(oc->old_subject, d->cells[ci].subject_id, 8);
            memcpy(oc->old_ski, d->cells[ci].ski, 8);
        }
        memcpy(oc->new_subject, oc->old_subject, 8);
        memcpy(oc->new_ski, oc->old_ski, 8);
        if (ci < 0) {
            oc->status = SMKI_CS02B_TRUST_ANCHOR_NOT_FOUND;
            snprintf(oc->why, sizeof oc->why, "the device has no such cell");
            goto next;
        }
        const uint8_t *p = q->repl[i].cert;
        x = d2i_X509(NULL, &p, (long)q->repl[i].len);
        if (!x || p != q->repl[i].cert + q->repl[i].len || smki_dev_cert_facts(x, q->repl[i].cert, q->repl[i].len, &f) < 0) {
            smki_error_clear();
            oc->status = SMKI_CS02B_BAD_CERTIFICATE;
            snprintf(oc->why, sizeof oc->why, "the certificate does not parse or is not a GB profile");
            goto next;
        }
        if (f.role != tid->role || cert_ku_cell(f.key_usage) != tid->key_usage ||
            (tid->cell_usage == SMKI_CELL_PREPAYMENT && tid->key_usage != SMKI_KU_KEY_AGREEMENT)) {
            oc->status = SMKI_CS02B_BAD_CERTIFICATE;
            snprintf(oc->why, sizeof oc->why, "certificate role %s/usage 0x%02x does not fit the target cell",
                     f.role >= 0 ? smki_role_name((unsigned)f.role) : "none", f.key_usage);
            goto next;
        }
        if (q->time_checks && !(X509_cmp_time(X509_get0_notBefore(x), &now) < 0 &&
                                X509_cmp_time(X509_get0_notAfter(x), &now) > 0)) {
            oc->status = SMKI_CS02B_BAD_CERTIFICATE;
            snprintf(oc->why, sizeof oc->why, "outside its validity (time-based checks applied)");
            goto next;
        }
        if (chain_to_root(d, x, path, pf, np, o, q->time_checks, now, &w->root_unchecked) < 0) {
            oc->status = SMKI_CS02B_NO_TRUST_ANCHOR;
            snprintf(oc->why, sizeof oc->why, "does not chain to the root cell: %s", smki_error_msg());
            smki_error_clear();
            goto next;
        }
        smki_ta_cell *nc = &w->newcells[i];
        memset(nc, 0, sizeof *nc);
        nc->id = *tid;
        memcpy(nc->subject_id, f.id, 8);
        memcpy(nc->ski, f.ski, 8);
        memcpy(nc->point, f.point, SMKI_POINT_LEN);
        nc->has_key = 1;
        if (q->repl[i].len <= SMKI_CELL_CERT_MAX) {
            memcpy(nc->cert, q->repl[i].cert, q->repl[i].len);
            nc->cert_len = q->repl[i].len;
        } else {
            oc->status = SMKI_CS02B_INSUFFICIENT_MEMORY;
            snprintf(oc->why, sizeof oc->why, "certificate of %zu octets: a cell holds %d", q->repl[i].len,
                     SMKI_CELL_CERT_MAX);
            goto next;
        }
        memcpy(oc->new_subject, f.id, 8);
        memcpy(oc->new_ski, f.ski, 8);
        snprintf(oc->why, sizeof oc->why, "replaced");
    next:
        if (oc->status != SMKI_CS02B_SUCCESS) all_ok = 0;
        X509_free(x);
    }
    for (size_t k = 0; k < np; k++) X509_free(path[k]);
    (void)c;
    return all_ok;
}

/* The CS02b outcome: SEQUENCE { head, SEQUENCE { authSeq, mode, floors, outcomes } } where
 * head is NULL for an immediate response, or (a future-dated execution's alert, as the
 * RTDS 8F66/8F67 alerts carry) INTEGER alertCode, GeneralizedTime executionDateTime. */
static int cs02b_outcome(const smki_rx_result *r, const cs02b_work *w, int applied, uint16_t alert_code,
                         time_t executed, uint8_t **out, size_t *len)
{
    smki_gbcs_derw dw;
    smki_gbcs_derw_init(&dw);
    smki_gbcs_derw_begin(&dw, 0x30);
    if (alert_code) {
        char when[20];
        struct tm tm;
        gmtime_r(&executed, &tm);
        strftime(when, sizeof when, "%Y%m%d%H%M%SZ", &tm);
        smki_gbcs_derw_uint(&dw, 0x02, alert_code);
        smki_gbcs_derw_tlv(&dw, 0x18, when, strlen(when));
    } else {
        uint8_t null[2] = {0x05, 0x00};
        smki_gbcs_derw_raw(&dw, null, 2); /* immediate execution (executionDateTime absent) */
    }
    smki_gbcs_derw_begin(&dw, 0x30);
    smki_gbcs_derw_uint(&dw, 0x02, w->q.auth_seq);
    smki_gbcs_derw_uint(&dw, 0x02, w->q.mode);
    smki_gbcs_derw_begin(&dw, 0x30); /* the floors of other roles that were changed */
    if (applied)
        for (size_t i = 0; i < w->nfloors; i++) {
            if (w->roles[i] == (uint8_t)r->role) continue;
            smki_gbcs_derw_begin(&dw, 0x30);
            smki_gbcs_derw_uint(&dw, 0x02, w->roles[i]);
            smki_gbcs_derw_uint(&dw, 0x02, w->floors[i]);
            smki_gbcs_derw_begin(&dw, 0x30);
            smki_gbcs_derw_end(&dw);
            smki_gbcs_derw_end(&dw);
        }
    smki_gbcs_derw_end(&dw);
    smki_gbcs_derw_begin(&dw, 0x30);
    for (size_t i = 0; i < r->noutcomes; i++) {
        const smki_cs02b_outcome *oc = &r->outcomes[i];
        smki_gbcs_derw_begin(&dw, 0x30);
        smki_gbcs_derw_cell_id(&dw, &oc->id);
        smki_gbcs_derw_uint(&dw, 0x0A, oc->status);
        smki_gbcs_derw_tlv(&dw, 0x04, oc->old_subject, 8);
        smki_gbcs_derw_tlv(&dw, 0x04, oc->old_ski, 8);
        smki_gbcs_derw_tlv(&dw, 0x04, oc->new_subject, 8);
        smki_gbcs_derw_tlv(&dw, 0x04, oc->new_ski, 8);
        smki_gbcs_derw_end(&dw);
    }
    smki_gbcs_derw_end(&dw);
    smki_gbcs_derw_end(&dw);
    smki_gbcs_derw_end(&dw);
    return smki_gbcs_derw_finish(&dw, out, len);
}

/* A future-dated CS02b (reference §6 executionDateTime): verified now, its authoriser's
 * counter spent now, kept until its time (smki_device_run_due), answered SEQUENCE { NULL }
 * as the RTDS FUTURE_DATED responses are. executionDateTime 99991231235959Z cancels the
 * pending ones of the same message code instead (the RTDS CANCELLATION commands). */
static int cs02b_schedule(smki_device *d, smki_store *s, const smki_gbcs_cmd *c, const smki_rx_opts *o, cs02b_work *w,
                          smki_rx_result *r, uint8_t **content, size_t *content_len)
{
    int cancel = w->q.execution_time == DEV_CANCEL_TIME;
    r->action = cancel ? "cs02b-cancel" : "cs02b-scheduled";
    uint8_t role = (uint8_t)r->role;
    uint64_t auth = w->q.auth_seq > c->gs.counter ? w->q.auth_seq : c->gs.counter;
    if (!o->dry_run) {
        /* Two transactions (the pending record, then the floor): a crash between leaves the
         * counter unspent, and the same command again writes the same record (keyed by
         * execution time and counter) or cancels nothing more: no harm either way. */
        if (cancel)
            GUARD(smki_dev_pending_cancel(s, d, c->gs.message_code, &r->cancelled));
        else
            GUARD(smki_dev_pending_put(s, d, (int64_t)w->q.execution_time, c->gs.counter, role, c->gs.originator,
                                  c->gs.message_code, c->gs.content, c->gs.content_len));
        GUARD(smki_dev_store_commit(s, d, NULL, 0, &role, &auth, 1, d->rec.alert_counter));
        r->applied = 1;
    }
    static const uint8_t ack[4] = {0x30, 0x02, 0x05, 0x00};
    *content = malloc(sizeof ack);
    ENSURE(*content, SMKI_E_NOMEM, "response");
    memcpy(*content, ack, sizeof ack);
    *content_len = sizeof ack;
    return 0;
}

static int act_cs02b(smki_device *d, smki_store *s, const smki_gbcs_cmd *c, const smki_rx_opts *o, smki_rx_result *r,
                     uint8_t **content, size_t *content_len)
{
    cs02b_work *w = calloc(1, sizeof *w);
    int rc = 0;
    ENSURE(w != NULL, SMKI_E_NOMEM, "CS02b work");
    r->action = "cs02b-update";
    if (smki_gbcs_cs02b_parse(c->gs.content, c->gs.content_len, &w->q) < 0) {
        refuse(r, SMKI_RX_MALFORMED, "CS02b: %s", smki_error_msg());
        smki_error_clear();
        goto out;
    }
    r->mode = w->q.mode;
    if (c->gs.message_code != SMKI_MC_CS02B(w->q.mode)) {
        refuse(r, SMKI_RX_NO_PERMISSION, "CS02b mode %u under message code 0x%04x", w->q.mode, c->gs.message_code);
        goto out;
    }
    if (w->q.has_auth_cell &&
        (w->q.auth_cell.role != r->role || w->q.auth_cell.key_usage != SMKI_KU_DIGITAL_SIGNATURE)) {
        refuse(r, SMKI_RX_NO_PERMISSION, "authorisingRemotePartyTACellIdentifier names role %u, the signer is %s",
               w->q.auth_cell.role, smki_role_name((unsigned)r->role));
        goto out;
    }
    if (w->q.mode == 9 && !w->q.has_symmetric_key) {
        refuse(r, SMKI_RX_NO_PERMISSION, "anyByContingency without its plaintextSymmetricKey");
        goto out;
    }
    for (size_t i = 0; i < w->q.nrepl; i++)
        if (!mode_may_replace(w->q.mode, w->q.repl[i].target.role)) {
            refuse(r, SMKI_RX_NO_PERMISSION, "mode %u may not replace a %s cell", w->q.mode,
                   smki_role_name(w->q.repl[i].target.role));
            goto out;
        }
    time_t now = o->now ? o->now : time(NULL);
    if (w->q.has_execution_time && (w->q.execution_time == DEV_CANCEL_TIME || w->q.execution_time > now)) {
        rc = cs02b_schedule(d, s, c, o, w, r, content, content_len);
        goto out;
    }
    int all_ok = cs02b_check(d, c, o, w, r);
    /* Floors: the authoriser's to this command; the replaced role's to its new floor; the
     * others as listed. Applied with the cells, in the same transaction, or not at all. */
    uint64_t auth = w->q.auth_seq > c->gs.counter ? w->q.auth_seq : c->gs.counter;
    set_floor(w, (uint8_t)r->role, auth);
    if (w->q.has_new_floor)
        for (size_t i = 0; i < w->q.nrepl; i++) set_floor(w, w->q.repl[i].target.role, w->q.new_floor);
    for (size_t i = 0; i < w->q.nother; i++) set_floor(w, w->q.other[i].role, w->q.other[i].floor);
    if (all_ok && !o->dry_run) {
        GUARD_GOTO(smki_dev_store_commit(s, d, w->newcells, w->q.nrepl, w->roles, w->floors, w->nfloors,
                                    d->rec.alert_counter), out);
        r->applied = 1;
    } else if (!all_ok && !o->dry_run) {
        /* Refused replacements apply nothing; the authoriser's counter is still spent. */
        uint8_t role = (uint8_t)r->role;
        GUARD_GOTO(smki_dev_store_commit(s, d, NULL, 0, &role, &auth, 1, d->rec.alert_counter), out);
    }
    if (!all_ok) refuse(r, SMKI_RX_COMMAND_FAILED, "CS02b: a replacement was refused; none applied");
    GUARD_GOTO(cs02b_outcome(r, w, all_ok, 0, 0, content, content_len), out);
out:
    free(w);
    return rc;
}

/* ---- CS02a, CS02c ---------------------------------------------------------------------------- */

static int act_cs02a(smki_device *d, const smki_gbcs_cmd *c, smki_rx_result *r, uint8_t **content, size_t *content_len)
{
    smki_cursor_t cur = smki_cursor(c->gs.content, c->gs.content_len), top, x, roles;
    smki_gbcs_derw w;
    r->action = "cs02a-details";
    if (smki_gbcs_der_expect(&cur, 0x30, "CS02a content", &top) < 0 || smki_gbcs_der_expect(&top, 0x30, "CS02a cell", &x) < 0 ||
        smki_gbcs_der_expect(&top, 0x30, "CS02a roles", &roles) < 0) {
        refuse(r, SMKI_RX_MALFORMED, "CS02a: %s", smki_error_msg());
        smki_error_clear();
        return 0;
    }
    smki_gbcs_derw_init(&w);
    smki_gbcs_derw_begin(&w, 0x30);
    while (roles.left) {
        uint64_t role;
        if (smki_gbcs_der_expect(&roles, 0x02, "remotePartyRole", &x) < 0 || smki_gbcs_der_uint(&x, "remotePartyRole", &role) < 0 ||
            role > 255) {
            smki_gbcs_derw_free(&w);
            refuse(r, SMKI_RX_MALFORMED, "CS02a: a role is not an INTEGER 0..255");
            smki_error_clear();
            return 0;
        }
        int found = 0;
        for (size_t i = 0; i < d->ncells; i++) found |= d->cells[i].id.role == role;
        smki_gbcs_derw_begin(&w, 0x30);
        smki_gbcs_derw_uint(&w, 0x02, role);
        smki_gbcs_derw_uint(&w, 0x0A, found ? SMKI_CS02B_SUCCESS : SMKI_CS02B_TRUST_ANCHOR_NOT_FOUND);
        smki_gbcs_derw_uint(&w, 0x02, d->floors[role]);
        smki_gbcs_derw_begin(&w, 0x30);
        for (size_t i = 0; i < d->ncells; i++) {
            const smki_ta_cell *cell = &d->cells[i];
            if (cell->id.role != role) continue;
            smki_gbcs_derw_begin(&w, 0x30);
            smki_gbcs_derw_key_usage(&w, cell->id.key_usage);
            if (cell->id.cell_usage) smki_gbcs_derw_uint(&w, 0x02, cell->id.cell_usage);
            smki_gbcs_derw_tlv(&w, 0x04, cell->subject_id, 8);
            smki_gbcs_derw_tlv(&w, 0x04, cell->ski, 8);
            smki_gbcs_derw_end(&w);
        }
        smki_gbcs_derw_end(&w);
        smki_gbcs_derw_end(&w);
    }
    smki_gbcs_derw_end(&w);
    return smki_gbcs_derw_finish(&w, content, content_len);
}

static int act_cs02c(smki_device *d, smki_store *s, const smki_gbcs_cmd *c, const smki_rx_opts *o, smki_rx_result *r,
                     uint8_t **content, size_t *content_len)
{
    smki_cursor_t cur = smki_cursor(c->gs.content, c->gs.content_len), top, x;
    uint8_t ku = 0;
    char hex[17], label[80], ref[SMKI_KEY_URI_MAX];
    smki_key *k = NULL;
    int rc = 0;
    r->action = "cs02c-csr";
    if (smki_gbcs_der_expect(&cur, 0x30, "CS02c content", &top) < 0 || smki_gbcs_der_expect(&top, 0x03, "CS02c keyUsage", &x) < 0 ||
        x.left != 2) {
        refuse(r, SMKI_RX_MALFORMED, "CS02c: content is not SEQUENCE { keyUsage }");
        smki_error_clear();
        return 0;
    }
    ku = x.p[1];
    /* A KA key signs its own CSR at birth and nothing after (smki_cs02c_ka_key). An RTDS
     * model has no token: its CS02c gets the RTDS error response. */
    if ((ku != SMKI_KU_DIGITAL_SIGNATURE && ku != SMKI_KU_KEY_AGREEMENT) || (d->rec.flags & SMKI_DEVICE_FLAG_RTDS) ||
        o->dry_run) {
        /* As the RTDS error response: an INTEGER error code. */
        uint8_t err[3] = {0x02, 0x01, 0x03};
        refuse(r, SMKI_RX_COMMAND_FAILED, "CS02c: %s",
               (d->rec.flags & SMKI_DEVICE_FLAG_RTDS) ? "an RTDS model has no token to make a key in"
               : o->dry_run                           ? "not in a dry run"
                                                      : "keyUsage is neither DS nor KA");
        *content = malloc(3);
        ENSURE(*content != NULL, SMKI_E_NOMEM, "response");
        memcpy(*content, err, 3);
        *content_len = 3;
        return 0;
    }
    smki_key_usage usage = ku == SMKI_KU_KEY_AGREEMENT ? SMKI_USAGE_KA : SMKI_USAGE_DS;
    smki_hex_encode(d->eui.b, 8, hex, 0);
    snprintf(label, sizeof label, "dev-%s-%s-%llu", hex, usage == SMKI_USAGE_DS ? "ds" : "ka",
             (unsigned long long)c->gs.counter);
    const smki_env *env = smki_env_builtin("test");
    if (usage == SMKI_USAGE_KA) {
        GUARD(smki_cs02c_ka_key(&d->hsm, d->rec.token, label, &d->eui, env->hw_type, ref, content, content_len));
    } else {
        GUARD(smki_key_generate(&d->hsm, d->rec.token, label, usage, ref));
        GUARD(smki_key_open(ref, &d->hsm, &k));
        rc = smki_cs02c_csr(k, usage, &d->eui, env->hw_type, content, content_len);
        smki_key_free(k);
        GUARD(rc);
    }
    snprintf(d->rec.pending_ref, sizeof d->rec.pending_ref, "%s", ref);
    uint8_t role = (uint8_t)r->role;
    uint64_t ctr = c->gs.counter;
    GUARD(smki_dev_store_commit(s, d, NULL, 0, &role, &ctr, 1, d->rec.alert_counter));
    r->applied = 1;
    return 0;
}

/* ---- Responses and alerts ---------------------------------------------------------------------- */

/* A response or alert, protected as GBCS has it (and as every RTDS response and alert
 * is): critical ones (the response to a signed, critical command; an alert) are signed
 * with the device's DS key and not wrapped; non-critical ones (the response to an
 * unsigned command) are not signed (00) and wrapped in General Ciphering with the MAC of
 * ECDH(device KA, the recipient's KA management cell) and OtherInfo(device, CRA, counter,
 * recipient), invocation counter 0 as in the RTDS responses. A non-critical answer to a
 * recipient without a KA cell (cannot happen: an unsigned command passes only from a party
 * known by its KA cell) is signed instead. An RTDS model has no keys: its output is
 * unsigned and not wrapped. */
static int sign_out(smki_device *d, int critical, uint8_t cra, uint64_t counter, const uint8_t recipient[8],
                    uint16_t mc, const uint8_t *content, size_t content_len, smki_rx_result *r)
{
    smki_key *ds = NULL, *ka = NULL;
    uint8_t *gs = NULL, z[32];
    size_t gs_len = 0;
    int rc = 0, peer = -1, has_keys = !(d->rec.flags & SMKI_DEVICE_FLAG_RTDS);
    for (size_t i = 0; has_keys && !critical && i < d->ncells && peer < 0; i++)
        if (d->cells[i].id.key_usage == SMKI_KU_KEY_AGREEMENT && d->cells[i].id.cell_usage == SMKI_CELL_MANAGEMENT &&
            d->cells[i].has_key && memcmp(d->cells[i].subject_id, recipient, 8) == 0)
            peer = (int)i;
    if (has_keys && peer < 0) GUARD(smki_dev_own_key(d, 0, &ds));
    r->out_signed = ds != NULL;
    GUARD(smki_gbcs_gs_build(ds, cra, counter, d->eui.b, recipient, mc, content, content_len, &gs, &gs_len));
    if (peer < 0) {
        r->out = gs;
        r->out_len = gs_len;
        return 0;
    }
    GUARD_GOTO(smki_dev_own_key(d, 1, &ka), out);
    GUARD_GOTO(smki_dev_shared_z(d, ka, SMKI_MAC_DEVICE_KEY, d->cell_pub[peer], d->cells[peer].point, z), out);
    GUARD_GOTO(smki_gbcs_wrap_z(gs, gs_len, z, 0, &r->out, &r->out_len), out);
    r->out_maced = 1;
out:
    smki_wipe(z, sizeof z);
    free(gs);
    return rc;
}

static int build_alert(smki_device *d, smki_store *s, const smki_rx_opts *o, smki_rx_result *r)
{
    uint16_t code = 0;
    switch (r->verdict) {
    case SMKI_RX_NOT_RECIPIENT: code = o->alert_a3; break;
    case SMKI_RX_BAD_MAC:
    case SMKI_RX_NO_CELL:
    case SMKI_RX_BAD_SIGNATURE: code = o->alert_a2; break;
    case SMKI_RX_REPLAY: code = o->alert_replay; break;
    case SMKI_RX_NO_PERMISSION: code = o->alert_a4; break;
    default: return 0;
    }
    r->alert_code = code;
    /* SEQUENCE { alertCode INTEGER, alertTime GeneralizedTime, SEQUENCE { counter, messageCode } }
     * (the shape of the RTDS ASN.1 alerts, message code 0x00CB). */
    char when[20];
    time_t now = o->now ? o->now : time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y%m%d%H%M%SZ", &tm);
    smki_gbcs_derw w;
    uint8_t *content = NULL;
    size_t content_len = 0;
    smki_gbcs_derw_init(&w);
    smki_gbcs_derw_begin(&w, 0x30);
    smki_gbcs_derw_uint(&w, 0x02, code);
    smki_gbcs_derw_tlv(&w, 0x18, when, strlen(when));
    smki_gbcs_derw_begin(&w, 0x30);
    smki_gbcs_derw_uint(&w, 0x02, r->counter);
    smki_gbcs_derw_uint(&w, 0x02, r->message_code);
    smki_gbcs_derw_end(&w);
    smki_gbcs_derw_end(&w);
    GUARD(smki_gbcs_derw_finish(&w, &content, &content_len));
    uint64_t ctr = d->rec.alert_counter + 1;
    int rc = sign_out(d, 1, 0x03, ctr, r->originator.b, SMKI_MC_ASN1_ALERT, content, content_len, r);
    free(content);
    GUARD(rc);
    r->out_is_alert = 1;
    if (!o->dry_run) GUARD(smki_dev_store_commit(s, d, NULL, 0, NULL, NULL, 0, ctr));
    return 0;
}

/* One due future-dated CS02b: checked and applied as on receipt (the authoriser's floor
 * was spent then), answered by the 8F66/8F67 alert. */
static int run_one(smki_device *d, smki_store *s, const smki_rx_opts *o, const dev_pending *p, smki_rx_result *r)
{
    cs02b_work *w = calloc(1, sizeof *w);
    uint8_t *content = NULL;
    size_t content_len = 0;
    int rc = 0;
    ENSURE(w != NULL, SMKI_E_NOMEM, "CS02b work");
    r->role = p->role;
    r->counter = p->counter;
    r->message_code = p->message_code;
    r->cra = SMKI_GBCS_CRA_COMMAND;
    memcpy(r->originator.b, p->originator, 8);
    r->recipient = d->eui;
    r->executed = (time_t)p->exec;
    r->action = "cs02b-update";
    r->mac_check = "none";
    GUARD_GOTO(smki_gbcs_cs02b_parse(p->content, p->content_len, &w->q), out); /* it parsed on receipt */
    r->mode = w->q.mode;
    int all_ok = cs02b_check(d, NULL, o, w, r);
    if (w->q.has_new_floor)
        for (size_t i = 0; i < w->q.nrepl; i++) set_floor(w, w->q.repl[i].target.role, w->q.new_floor);
    for (size_t i = 0; i < w->q.nother; i++) set_floor(w, w->q.other[i].role, w->q.other[i].floor);
    uint16_t code = all_ok ? SMKI_ALERT_FUTURE_DATED_OK : SMKI_ALERT_FUTURE_DATED_FAILED;
    if (!all_ok) refuse(r, SMKI_RX_COMMAND_FAILED, "future-dated CS02b: a replacement was refused; none applied");
    if (all_ok && !o->dry_run) {
        GUARD_GOTO(smki_dev_store_commit(s, d, w->newcells, w->q.nrepl, w->roles, w->floors, w->nfloors,
                                    d->rec.alert_counter),
                   out);
        r->applied = 1;
    }
    GUARD_GOTO(cs02b_outcome(r, w, all_ok, code, (time_t)p->exec, &content, &content_len), out);
    r->alert_code = code;
    uint64_t ctr = d->rec.alert_counter + 1;
    GUARD_GOTO(sign_out(d, 1, SMKI_GBCS_CRA_ALERT, ctr, p->originator, SMKI_MC_ASN1_ALERT, content, content_len, r),
               out);
    r->out_is_alert = 1;
    if (!o->dry_run) {
        GUARD_GOTO(smki_dev_pending_del(s, d, p->exec, p->counter), out);
        GUARD_GOTO(smki_dev_store_commit(s, d, NULL, 0, NULL, NULL, 0, ctr), out);
    }
out:
    free(content);
    free(w);
    return rc;
}

int smki_device_run_due(smki_device *d, smki_store *s, const smki_rx_opts *o, smki_rx_result *results, size_t cap,
                        size_t *n)
{
    *n = 0;
    dev_pending *due = NULL;
    size_t count = 0;
    time_t now = o->now ? o->now : time(NULL);
    GUARD(smki_dev_pending_due(s, d, (int64_t)now, &due, &count));
    int rc = 0;
    for (size_t i = 0; i < count && *n < cap; i++) {
        memset(&results[*n], 0, sizeof results[*n]);
        rc = run_one(d, s, o, &due[i], &results[*n]);
        (*n)++;
        if (rc < 0) break;
    }
    smki_dev_pending_free(due, count);
    return rc;
}

int smki_device_receive(smki_device *d, smki_store *s, const uint8_t *msg, size_t len, const smki_rx_opts *o,
                        smki_rx_result *r)
{
    smki_gbcs_cmd c;
    uint8_t *content = NULL;
    size_t content_len = 0;
    int rc = 0;
    memset(r, 0, sizeof *r);
    GUARD(verify_cmd(d, msg, len, o, &c, r));
    if (r->verdict != SMKI_RX_ACCEPTED) return build_alert(d, s, o, r);
    uint16_t mc = c.gs.message_code;
    if (mc >= SMKI_MC_CS02B(2) && mc <= SMKI_MC_CS02B(9)) {
        GUARD(act_cs02b(d, s, &c, o, r, &content, &content_len));
    } else if (mc == SMKI_MC_CS02A) {
        GUARD(act_cs02a(d, &c, r, &content, &content_len));
        uint8_t role = (uint8_t)r->role;
        uint64_t ctr = c.gs.counter;
        if (r->verdict == SMKI_RX_ACCEPTED && !o->dry_run)
            GUARD(smki_dev_store_commit(s, d, NULL, 0, &role, &ctr, 1, d->rec.alert_counter));
    } else if (mc == SMKI_MC_CS02C) {
        GUARD(act_cs02c(d, s, &c, o, r, &content, &content_len));
    } else {
        /* A command the model has no function for: verified, its counter spent, acknowledged. */
        r->action = "acknowledged";
        uint8_t role = (uint8_t)r->role;
        uint64_t ctr = c.gs.counter;
        if (!o->dry_run) GUARD(smki_dev_store_commit(s, d, NULL, 0, &role, &ctr, 1, d->rec.alert_counter));
        r->applied = !o->dry_run;
    }
    if (r->verdict == SMKI_RX_MALFORMED || r->verdict == SMKI_RX_NO_PERMISSION) {
        free(content);
        return build_alert(d, s, o, r);
    }
    rc = sign_out(d, c.gs.has_signature, 0x02, c.gs.counter, c.gs.originator, mc, content, content_len, r);
    free(content);
    return rc;
}
