/* Generating an EC P-256 key pair inside a token (never extractable), through raw
 * PKCS#11 (libp11 0.4.12 cannot generate EC keys), and the KA key that signs its own CSR
 * at birth and nothing after. Uses the token side (p11_token.c) to find the token and
 * the key side (key.c) to open the new key once; neither uses this. */
#include <stdio.h>
#include <string.h>

#include "p11.h"
#include "uri.h"

/* DER of the prime256v1 OID: CKA_EC_PARAMS of every key smki makes. */
static const uint8_t P256_PARAMS[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

static int generate_pair(p11_module *m, CK_SESSION_HANDLE s, const char *token, const char *label,
                         smki_key_usage usage, int sign_at_birth, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_BBOOL ds = usage == SMKI_USAGE_DS ? CK_TRUE : CK_FALSE;
    CK_BBOOL ka = usage == SMKI_USAGE_KA ? CK_TRUE : CK_FALSE;
    CK_BBOOL sign = ds || sign_at_birth ? CK_TRUE : CK_FALSE;
    CK_ULONG label_len = strlen(label);
    /* Only what the key's safety rests on, so that any module can honour it: the
     * private half's usage (CKA_SIGN or CKA_DERIVE, never decrypt or unwrap), sensitive
     * and never extractable. The public half's usage flags are left to the module:
     * modules tie them together differently (tpm2-pkcs11 takes CKA_VERIFY for the TPM's
     * decrypt attribute and CKA_ENCRYPT for its sign attribute, and refuses a template
     * that sets them otherwise: CKR_GENERAL_ERROR), and smki never asks a token to
     * verify or encrypt with a public key. */
    CK_ATTRIBUTE pub_tmpl[] = {
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_PRIVATE, &no, sizeof no},
        {CKA_EC_PARAMS, (void *)P256_PARAMS, sizeof P256_PARAMS},
        {CKA_LABEL, (void *)label, label_len},
    };
    /* CKA_DECRYPT is said (false) only for a DS key: on a TPM an EC key's ECDH is its
     * decrypt attribute (TPM2_ECDH_ZGen), so a KA key without it is refused as
     * "inconsistent attributes"; no module offers EC decryption otherwise. */
    CK_ATTRIBUTE priv_tmpl[] = {
        {CKA_TOKEN, &yes, sizeof yes},      {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_SENSITIVE, &yes, sizeof yes},  {CKA_EXTRACTABLE, &no, sizeof no},
        {CKA_SIGN, &sign, sizeof sign},     {CKA_DERIVE, &ka, sizeof ka},
        {CKA_UNWRAP, &no, sizeof no},       {CKA_LABEL, (void *)label, label_len},
        {CKA_DECRYPT, &no, sizeof no}, /* last: left out for a KA key */
    };
    CK_ULONG priv_n = sizeof priv_tmpl / sizeof priv_tmpl[0] - (ds ? 0 : 1);
    CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_RV rv = smki_p11_module_functions(m)->C_GenerateKeyPair(s, &mech, pub_tmpl, sizeof pub_tmpl / sizeof pub_tmpl[0],
                                                          priv_tmpl, priv_n, pub,
                                                          priv);
    if (rv != CKR_OK) return smki_p11_fail_rv(rv, token, "generating an EC P-256 key pair");
    return 0;
}

/* The KA key's one signature: open the new key, let the caller sign with it, close it,
 * then take CKA_SIGN away for good. */
static int sign_once_then_seal(p11_module *m, CK_SESSION_HANDLE s, const smki_hsm_opts *o, const char *token,
                               const char *uri, CK_OBJECT_HANDLE priv, smki_key_sign_once_fn sign_once, void *ctx)
{
    smki_key *k = NULL;
    int rc = smki_key_open(uri, o, &k);
    if (rc == 0) rc = sign_once(k, ctx);
    smki_key_free(k);
    GUARD(rc);
    CK_BBOOL no = CK_FALSE, sign = CK_TRUE;
    CK_ATTRIBUTE off = {CKA_SIGN, &no, sizeof no};
    CK_RV rv = smki_p11_module_functions(m)->C_SetAttributeValue(s, priv, &off, 1);
    ENSURE(rv == CKR_OK, smki_p11_rv_class(rv), "token '%s': clearing CKA_SIGN of %s after its one signature: %s", token, uri,
           smki_p11_rv_name(rv));
    CK_ATTRIBUTE get = {CKA_SIGN, &sign, sizeof sign};
    rv = smki_p11_module_functions(m)->C_GetAttributeValue(s, priv, &get, 1);
    ENSURE(rv == CKR_OK && sign == CK_FALSE, SMKI_E_HSM, "token '%s': %s still has CKA_SIGN after clearing it (%s)",
           token, uri, smki_p11_rv_name(rv));
    return 0;
}

/* A key-agreement key is only of use where the token can do ECDH with it: a module
 * without CKM_ECDH1_DERIVE (tpm2-pkcs11 before 1.9.1) would make a key that fails at
 * its first use, so it is refused at birth instead. */
static int require_ecdh(p11_module *m, CK_SLOT_ID slot, const char *token)
{
    CK_MECHANISM_INFO mi;
    CK_RV rv = smki_p11_module_functions(m)->C_GetMechanismInfo(slot, CKM_ECDH1_DERIVE, &mi);
    ENSURE(rv == CKR_OK && (mi.flags & CKF_DERIVE), SMKI_E_REFUSED,
           "token '%s' in %s offers no ECDH (CKM_ECDH1_DERIVE: %s): a key-agreement key there could never be used; "
           "keep KA keys on a module that has it (SoftHSM, an HSM)",
           token, smki_p11_module_path(m), rv == CKR_OK ? "not for derivation" : smki_p11_rv_name(rv));
    return 0;
}

static int generate(const smki_hsm_opts *o, const char *token_label, const char *key_label, smki_key_usage usage,
                    smki_key_sign_once_fn sign_once, void *ctx, char uri[SMKI_KEY_URI_MAX])
{
    int rc = 0;
    ENSURE(key_label && *key_label && strlen(key_label) <= 64, SMKI_E_USAGE,
           "key label must be 1 to 64 characters: '%.70s'", key_label ? key_label : "");
    ENSURE(usage == SMKI_USAGE_DS || usage == SMKI_USAGE_KA, SMKI_E_USAGE, "key usage must be ds or ka");
    ENSURE(o && o->pin, SMKI_E_USAGE, "generating a key needs the token's user PIN (SMKI_PIN or --pin-file)");
    p11_module *m;
    GUARD(smki_p11_module_get(smki_p11_module_choose(o, NULL), &m));
    CK_SLOT_ID slot;
    GUARD(smki_p11_find_token(m, token_label, &slot, NULL));
    if (usage == SMKI_USAGE_KA) GUARD(require_ecdh(m, slot, token_label));
    CK_SESSION_HANDLE s;
    GUARD(smki_p11_open_session(m, slot, token_label, o->pin, 1, &s));
    CK_ULONG found = 0;
    GUARD_GOTO(smki_p11_count_labelled(m, s, token_label, key_label, &found), out);
    ENSURE_GOTO(found == 0, SMKI_E_EXISTS, out, "token '%s' already has a key labelled '%s'; choose another label",
                token_label, key_label);
    CK_OBJECT_HANDLE pub, priv;
    GUARD_GOTO(generate_pair(m, s, token_label, key_label, usage, sign_once != NULL, &pub, &priv), out);
    /* The key's CKA_ID is its GBCS key identifier, so an operator can match a key to
     * the subjectKeyIdentifier of the certificate issued for it. */
    uint8_t point[SMKI_POINT_LEN], id[SMKI_KEYID_LEN];
    GUARD_GOTO(smki_p11_read_point(m, s, pub, token_label, point), out);
    GUARD_GOTO(smki_keyid_method2(point, SMKI_POINT_LEN, id), out);
    CK_ATTRIBUTE ida = {CKA_ID, id, sizeof id};
    CK_FUNCTION_LIST *f = smki_p11_module_functions(m);
    CK_RV rv = f->C_SetAttributeValue(s, pub, &ida, 1);
    if (rv == CKR_OK) rv = f->C_SetAttributeValue(s, priv, &ida, 1);
    ENSURE_GOTO(rv == CKR_OK, smki_p11_rv_class(rv), out, "token '%s': setting CKA_ID of '%s': %s", token_label, key_label,
                smki_p11_rv_name(rv));
    GUARD_GOTO(smki_p11_uri_format(token_label, key_label, id, sizeof id, uri, SMKI_KEY_URI_MAX), out);
    if (sign_once) {
        rc = sign_once_then_seal(m, s, o, token_label, uri, priv, sign_once, ctx);
        if (rc < 0) { /* a key that might still sign, or whose CSR was never made, does not stay */
            smki_p11_module_functions(m)->C_DestroyObject(s, priv);
            smki_p11_module_functions(m)->C_DestroyObject(s, pub);
            uri[0] = '\0';
        }
    }
out:
    smki_p11_close_session(m, s);
    return rc;
}

int smki_key_generate(const smki_hsm_opts *o, const char *token_label, const char *key_label, smki_key_usage usage,
                      char uri[SMKI_KEY_URI_MAX])
{
    return generate(o, token_label, key_label, usage, NULL, NULL, uri);
}

int smki_key_generate_ka_sign_once(const smki_hsm_opts *o, const char *token_label, const char *key_label,
                                   smki_key_sign_once_fn sign_once, void *ctx, char uri[SMKI_KEY_URI_MAX])
{
    ENSURE(sign_once != NULL, SMKI_E_USAGE, "a sign-once KA key needs the one thing it signs");
    return generate(o, token_label, key_label, SMKI_USAGE_KA, sign_once, ctx, uri);
}
