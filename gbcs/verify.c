/* Verifying a GBCS message whatever its CRA flag: a command (the supplier's signature,
 * the ACB's MAC), a response or an alert (the device's signature, the MAC to the
 * recipient's KA key). What is checked follows the message's own structure: its CRA
 * flag, its originator and recipient titles, whether it carries 40 r s and a DD wrapper;
 * never a file name. The KDF and MAC are codec.c's and hsm's (reference §5). */
#include "gbcs.h"

#include <stdio.h>
#include <string.h>

static void eui_text(const uint8_t b[8], char out[SMKI_EUI64_TEXT_MAX])
{
    smki_eui64_t id = smki_gbcs_eui(b);
    smki_eui64_format(&id, SMKI_EUI64_PLAIN, out);
}

/* Record the reason name, pass the error code through. */
static int because(smki_gbcs_check *c, const char *reason, int rc)
{
    c->reason = reason;
    return rc;
}

/* The reason a certificate lookup failed. */
static const char *lookup_reason(int rc)
{
    return rc == SMKI_E_REFUSED ? "cert.ambiguous" : "cert.not-found";
}

int smki_gbcs_ka_key_bind(const smki_gbcs_certdir *d, smki_key *key, smki_gbcs_ka_key *out)
{
    memset(out, 0, sizeof *out);
    EVP_PKEY *pub = smki_key_public(key);
    ENSURE(pub, SMKI_E_INPUT, "key %s has no public key", smki_key_ref(key));
    X509 *cert = NULL;
    const smki_gbcs_cert_info *info = NULL;
    if (smki_gbcs_certdir_find_pubkey(d, pub, SMKI_USAGE_KA, &cert, &info) < 0)
        return smki_error_wrap("key %s: its KA certificate (which names the recipient it is for)", smki_key_ref(key));
    out->key = key;
    out->id = info->id;
    return 0;
}

/* Both titles are devices by their certificates in d (either usage): a MAC between two
 * devices is under device-to-device KA keys (HAN-local, e.g. PPMID and meter), which no
 * remote party holds. A title without a certificate is not taken for a device. */
static int is_device(const smki_gbcs_certdir *d, const uint8_t title[8])
{
    X509 *cert = NULL;
    const smki_gbcs_cert_info *info = NULL;
    int found = smki_gbcs_certdir_find_info(d, title, SMKI_USAGE_KA, &cert, &info) == 0 ||
                smki_gbcs_certdir_find_info(d, title, SMKI_USAGE_DS, &cert, &info) == 0;
    smki_error_clear();
    return found && info->is_device;
}

static int check_signature(const smki_gbcs_msg *m, const smki_gbcs_certdir *d, time_t at, smki_gbcs_check *c)
{
    const smki_gbcs_signing *g = &m->gsa;
    char eui[SMKI_EUI64_TEXT_MAX], what[96];
    eui_text(g->originator, eui);
    X509 *ds = NULL;
    int rc = smki_gbcs_certdir_find(d, g->originator, SMKI_USAGE_DS, &ds);
    if (rc < 0) return because(c, lookup_reason(rc), rc);
    snprintf(what, sizeof what, "the DS certificate of %s", eui);
    rc = smki_gbcs_cert_check_time(ds, at, what);
    if (rc < 0) return because(c, "cert.expired", rc);
    EVP_PKEY *pub = X509_get0_pubkey(ds);
    ENSURE_SSL(pub, SMKI_E_INPUT, "%s has no usable public key", what);
    rc = smki_gbcs_verify_signature(m, pub);
    if (rc < 0) return because(c, "signature.invalid", smki_error_wrap("signature of %s", eui));
    c->signature_checked = 1;
    return 0;
}

/* A command's MAC: the ACB's KA key and the recipient device's KA certificate. */
static int check_command_mac(const smki_gbcs_msg *m, const smki_gbcs_certdir *d, smki_key *acb_ka,
                             smki_gbcs_check *c)
{
    if (!acb_ka)
        return because(c, "mac.no-key",
                       SMKI_FAIL(SMKI_E_USAGE, "a wrapped command: its MAC needs --acb-key (the ACB's KA key)"));
    X509 *ka = NULL;
    int rc = smki_gbcs_certdir_find(d, m->gsa.recipient, SMKI_USAGE_KA, &ka);
    if (rc < 0) return because(c, lookup_reason(rc), rc);
    EVP_PKEY *kpub = X509_get0_pubkey(ka);
    ENSURE_SSL(kpub, SMKI_E_INPUT, "the recipient's KA certificate has no usable public key");
    rc = smki_gbcs_verify_mac(m, acb_ka, kpub);
    if (rc < 0) return because(c, "mac.invalid", rc);
    c->mac_checked = 1;
    return 0;
}

/* A response's or alert's MAC: the recipient's KA private key (bound to the recipient's
 * EUI-64 by its certificate) and the originator's KA certificate. A recipient may hold
 * more than one KA key (e.g. a prepayment cell's): the MAC verifies under one of them. */
static int check_return_mac(const smki_gbcs_msg *m, const smki_gbcs_certdir *d, const smki_gbcs_verify_opts *o,
                            smki_gbcs_check *c)
{
    const smki_gbcs_signing *g = &m->gsa;
    char who[SMKI_EUI64_TEXT_MAX], from[SMKI_EUI64_TEXT_MAX];
    eui_text(g->recipient, who);
    eui_text(g->originator, from);
    X509 *oka = NULL;
    int rc = smki_gbcs_certdir_find(d, g->originator, SMKI_USAGE_KA, &oka);
    if (rc < 0) return because(c, lookup_reason(rc), rc);
    EVP_PKEY *opub = X509_get0_pubkey(oka);
    ENSURE_SSL(opub, SMKI_E_INPUT, "the KA certificate of %s has no usable public key", from);
    size_t tried = 0;
    for (size_t i = 0; i < o->nrecipient_keys; i++) {
        const smki_gbcs_ka_key *k = &o->recipient_keys[i];
        if (memcmp(k->id.b, g->recipient, 8) != 0) continue;
        tried++;
        rc = smki_gbcs_verify_mac(m, k->key, opub);
        if (rc == 0) {
            c->mac_checked = 1;
            return 0;
        }
        if (rc != SMKI_E_VERIFY) return because(c, "mac.invalid", rc);
        smki_error_clear();
    }
    if (!tried)
        return because(c, "mac.no-key",
                       SMKI_FAIL(SMKI_E_NOTFOUND,
                                 "no KA private key of recipient %s to check the MAC of %s's %s: give it with "
                                 "--recipient-key",
                                 who, from, smki_gbcs_cra_name(g->cra)));
    return because(c, "mac.invalid",
                   SMKI_FAIL(SMKI_E_VERIFY,
                             "MAC does not verify under the KA key%s of recipient %s and the KA key of %s",
                             tried > 1 ? "s" : "", who, from));
}

int smki_gbcs_verify_message(const smki_gbcs_msg *m, const smki_gbcs_certdir *d, const smki_gbcs_verify_opts *o,
                             smki_gbcs_check *c)
{
    memset(c, 0, sizeof *c);
    c->reason = "";
    if (m->kind != SMKI_GBCS_SIGNING && m->kind != SMKI_GBCS_CIPHERING)
        return because(c, "structure.unsupported",
                       SMKI_FAIL(SMKI_E_REFUSED, "a %s message is not verified here (its body is not decoded)",
                                 smki_gbcs_kind_name(m->kind)));
    const smki_gbcs_signing *g = &m->gsa;
    c->cra = g->cra;
    c->originator = smki_gbcs_eui(g->originator);
    c->recipient = smki_gbcs_eui(g->recipient);
    char from[SMKI_EUI64_TEXT_MAX];
    eui_text(g->originator, from);
    int is_signed = g->sig_state == SMKI_GBCS_SIG_PRESENT, is_wrapped = m->kind == SMKI_GBCS_CIPHERING;
    int d2d = is_wrapped && is_device(d, g->originator) && is_device(d, g->recipient);
    if (!is_signed && !is_wrapped)
        return because(c, "structure.unprotected",
                       SMKI_FAIL(SMKI_E_VERIFY, "%s from %s carries neither a signature nor a MAC",
                                 smki_gbcs_cra_name(g->cra), from));
    if (is_signed) GUARD(check_signature(m, d, o->at, c));
    if (!is_wrapped) return 0;
    if (d2d) {
        c->device_to_device = 1;
        return 0;
    }
    if (g->cra == SMKI_GBCS_CRA_COMMAND) return check_command_mac(m, d, o->acb_ka, c);
    return check_return_mac(m, d, o, c);
}

/* The command-only check of round 1, kept for its callers: a response or alert is
 * refused, and a device-to-device command (nothing the ACB can check) too. */
int smki_gbcs_verify_command(const smki_gbcs_msg *m, const smki_gbcs_certdir *d, smki_key *own_ka, time_t at,
                             smki_gbcs_verify_report *rep)
{
    memset(rep, 0, sizeof *rep);
    if (m->kind == SMKI_GBCS_SIGNING || m->kind == SMKI_GBCS_CIPHERING)
        ENSURE(m->gsa.cra == SMKI_GBCS_CRA_COMMAND, SMKI_E_REFUSED, "not a command: CRA flag %02x (%s)", m->gsa.cra,
               smki_gbcs_cra_name(m->gsa.cra));
    smki_gbcs_verify_opts o = {.acb_ka = own_ka, .at = at};
    smki_gbcs_check c;
    GUARD(smki_gbcs_verify_message(m, d, &o, &c));
    rep->signer = c.originator;
    rep->peer = c.recipient;
    rep->signature_checked = c.signature_checked;
    rep->mac_checked = c.mac_checked;
    if (c.device_to_device && !c.signature_checked) {
        char eui[SMKI_EUI64_TEXT_MAX];
        smki_eui64_format(&c.originator, SMKI_EUI64_PLAIN, eui);
        return SMKI_FAIL(SMKI_E_VERIFY,
                         "unsigned command from device %s: a HAN-local message MACed under device-to-device KA keys, "
                         "which the ACB's key cannot verify",
                         eui);
    }
    return 0;
}
