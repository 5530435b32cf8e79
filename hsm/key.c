/* The key abstraction: one smki_key whether the private key is a software key
 * (OpenSSL, from a PEM file) or a token key (PKCS#11 through libp11). Handles are
 * found once at open; signing reuses prepared contexts so that the per-signature
 * cost is the signature itself. */
/* libp11 keys are legacy EC_KEYs: handing them a peer for ECDH takes the EC_KEY
 * calls OpenSSL 3 marks deprecated. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <libp11.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p11.h"
#include "uri.h"

/* A libp11 context per module, shared by every key of the process on that module. */
typedef struct p11_ctx {
    char module[512];
    PKCS11_CTX *ctx;
    PKCS11_SLOT *slots;
    unsigned int nslots;
    int refs;
    struct p11_ctx *next;
} p11_ctx;

static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static p11_ctx *contexts;

#define SIGN_POOL 8

struct smki_key {
    char ref[SMKI_KEY_URI_MAX];
    char token[SMKI_URI_ATTR_MAX];
    int is_token;
    EVP_PKEY *priv; /* software key, or libp11's key whose operations run in the token */
    EVP_PKEY *pub;  /* the public half as a plain OpenSSL key */
    p11_ctx *p11;
    /* Prepared signing contexts (software keys): a signature takes one, uses it and
     * gives it back, so threads never share a context and never build one. */
    pthread_mutex_t pool_lock;
    EVP_PKEY_CTX *pool[SIGN_POOL];
    int pooled;
};

/* ---- libp11 contexts ---------------------------------------------------------- */

static int p11_ctx_load(const char *module, p11_ctx **out)
{
    int rc = 0;
    p11_ctx *c = calloc(1, sizeof *c);
    ENSURE(c != NULL, SMKI_E_NOMEM, "out of memory");
    snprintf(c->module, sizeof c->module, "%s", module);
    c->ctx = PKCS11_CTX_new();
    ENSURE_SSL_GOTO(c->ctx != NULL, SMKI_E_HSM, fail, "libp11: cannot create a context");
    ENSURE_SSL_GOTO(PKCS11_CTX_load(c->ctx, module) == 0, SMKI_E_HSM, fail, "cannot load PKCS#11 module %s", module);
    if (PKCS11_enumerate_slots(c->ctx, &c->slots, &c->nslots) != 0) {
        rc = SMKI_FAIL_SSL(SMKI_E_HSM, "%s: cannot list slots", module);
        PKCS11_CTX_unload(c->ctx);
        goto fail;
    }
    *out = c;
    return 0;
fail:
    if (c->ctx) PKCS11_CTX_free(c->ctx);
    free(c);
    return rc;
}

static int p11_ctx_get(const char *module, p11_ctx **out)
{
    int rc = 0;
    pthread_mutex_lock(&ctx_lock);
    p11_ctx *c = contexts;
    while (c && strcmp(c->module, module) != 0) c = c->next;
    if (!c) {
        GUARD_GOTO(p11_ctx_load(module, &c), out);
        c->next = contexts;
        contexts = c;
    }
    c->refs++;
    *out = c;
out:
    pthread_mutex_unlock(&ctx_lock);
    return rc;
}

/* A context stays loaded once made, even when its last key is freed: unloading calls
 * C_Finalize, which would also end the raw PKCS#11 use of the same module (token and
 * key administration, p11_token.c) in this process. One context per module, so this
 * is bounded. */
/* A token made in this process after the module's context was loaded (the ceremony
 * creates an environment's token when its SO PIN is at hand) is not in that context's
 * slot list: a fresh context for the module is loaded and put first, and c moves to it.
 * The old one stays loaded for the keys that use it (see below). */
static int p11_ctx_reload(p11_ctx **c)
{
    int rc = 0;
    pthread_mutex_lock(&ctx_lock);
    p11_ctx *fresh = NULL;
    GUARD_GOTO(p11_ctx_load((*c)->module, &fresh), out);
    fresh->next = contexts;
    contexts = fresh;
    fresh->refs++;
    (*c)->refs--;
    *c = fresh;
out:
    pthread_mutex_unlock(&ctx_lock);
    return rc;
}

static void p11_ctx_put(p11_ctx *c)
{
    pthread_mutex_lock(&ctx_lock);
    c->refs--;
    pthread_mutex_unlock(&ctx_lock);
}

static int find_slot(p11_ctx *c, const char *token, PKCS11_SLOT **out)
{
    for (unsigned int i = 0; i < c->nslots; i++) {
        PKCS11_SLOT *s = &c->slots[i];
        if (s->token && s->token->initialized && strcmp(s->token->label, token) == 0) {
            *out = s;
            return 0;
        }
    }
    return SMKI_FAIL(SMKI_E_NOTFOUND, "no token labelled '%s' in %s (run 'smki hsm init'?)", token, c->module);
}

static int login(PKCS11_SLOT *slot, const char *token, const char *pin)
{
    int logged = 0;
    if (PKCS11_is_logged_in(slot, 0, &logged) == 0 && logged) return 0;
    ENSURE(pin != NULL, SMKI_E_USAGE, "token '%s': login needed and no PIN given (set SMKI_PIN or --pin-file)",
           token);
    if (PKCS11_login(slot, 0, pin) != 0) return p11_fail_rv(p11_take_libp11_rv(), token, "login");
    return 0;
}

static int key_matches(const PKCS11_KEY *k, const smki_p11_uri *u)
{
    if (u->has_object && (!k->label || strcmp(k->label, u->object) != 0)) return 0;
    if (u->has_id && (k->id_len != u->id_len || memcmp(k->id, u->id, u->id_len) != 0)) return 0;
    return 1;
}

static int find_private_key(PKCS11_SLOT *slot, const smki_p11_uri *u, PKCS11_KEY **out)
{
    PKCS11_KEY *keys = NULL;
    unsigned int n = 0;
    ENSURE_SSL(PKCS11_enumerate_keys(slot->token, &keys, &n) == 0, SMKI_E_HSM, "token '%s': cannot list keys",
               u->token);
    PKCS11_KEY *found = NULL;
    for (unsigned int i = 0; i < n; i++) {
        if (!keys[i].isPrivate || !key_matches(&keys[i], u)) continue;
        ENSURE(found == NULL, SMKI_E_USAGE, "token '%s': more than one key matches '%s'; add id= to the URI",
               u->token, u->has_object ? u->object : "(id)");
        found = &keys[i];
    }
    ENSURE(found != NULL, SMKI_E_NOTFOUND, "token '%s': no private key '%s' (see 'smki key list')", u->token,
           u->has_object ? u->object : "(by id)");
    *out = found;
    return 0;
}

/* ---- Opening ---------------------------------------------------------------------- */

static int public_half(smki_key *k)
{
    /* Re-encode as SubjectPublicKeyInfo so the public key is an ordinary OpenSSL
     * key, whatever method the private key runs on. */
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(k->priv, &der);
    ENSURE_SSL(len > 0, SMKI_E_CRYPTO, "%s: cannot encode the public key", k->ref);
    const unsigned char *p = der;
    k->pub = d2i_PUBKEY(NULL, &p, len);
    OPENSSL_free(der);
    ENSURE_SSL(k->pub != NULL, SMKI_E_CRYPTO, "%s: cannot decode the public key", k->ref);
    return smki_pub_check_p256(k->pub, k->ref);
}

static int open_token_key(smki_key *k, const char *ref, const smki_hsm_opts *o)
{
    smki_p11_uri u;
    GUARD(smki_p11_uri_parse(ref, &u));
    ENSURE(u.has_token, SMKI_E_USAGE, "PKCS#11 URI names no token (add token=): %s", ref);
    ENSURE(!u.type[0] || strcmp(u.type, "private") == 0, SMKI_E_USAGE, "PKCS#11 URI type must be private: %s", ref);
    snprintf(k->token, sizeof k->token, "%s", u.token);
    char pin[256] = "";
    const char *use_pin = o ? o->pin : NULL;
    if (!use_pin && u.pin_source[0]) {
        const char *path = strncmp(u.pin_source, "file:", 5) == 0 ? u.pin_source + 5 : u.pin_source;
        GUARD(smki_secret_read_file(path, pin, sizeof pin));
        use_pin = pin;
    }
    int rc = 0;
    PKCS11_SLOT *slot = NULL;
    PKCS11_KEY *pk = NULL;
    GUARD_GOTO(p11_ctx_get(p11_module_choose(o, u.module_path), &k->p11), out);
    rc = find_slot(k->p11, u.token, &slot);
    if (rc == SMKI_E_NOTFOUND) { /* perhaps made since the context was loaded */
        smki_error_clear();
        GUARD_GOTO(p11_ctx_reload(&k->p11), out);
        rc = find_slot(k->p11, u.token, &slot);
    }
    GUARD_GOTO(rc, out);
    GUARD_GOTO(login(slot, u.token, use_pin), out);
    GUARD_GOTO(find_private_key(slot, &u, &pk), out);
    k->priv = PKCS11_get_private_key(pk);
    ENSURE_SSL_GOTO(k->priv != NULL, SMKI_E_HSM, out, "token '%s': cannot use key '%s'", u.token, u.object);
    ENSURE_GOTO(EVP_PKEY_get_base_id(k->priv) == EVP_PKEY_EC, SMKI_E_REFUSED, out,
                "token '%s': key '%s' is not an EC key", u.token, u.object);
    k->is_token = 1;
    GUARD_GOTO(public_half(k), out);
out:
    smki_wipe(pin, sizeof pin);
    return rc;
}

static int open_file_key(smki_key *k, const char *path)
{
    uint8_t *pem = NULL;
    size_t len = 0;
    GUARD(smki_file_read(path, 64 * 1024, &pem, &len));
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    int rc = 0;
    ENSURE_SSL_GOTO(bio != NULL, SMKI_E_NOMEM, out, "out of memory");
    k->priv = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    ENSURE_SSL_GOTO(k->priv != NULL, SMKI_E_INPUT, out, "%s is not a PEM private key", path);
    GUARD_GOTO(smki_pub_check_p256(k->priv, path), out);
    GUARD_GOTO(public_half(k), out);
out:
    BIO_free(bio);
    smki_wipe(pem, len);
    free(pem);
    return rc;
}

int smki_key_open(const char *ref, const smki_hsm_opts *o, smki_key **out)
{
    ENSURE(ref && *ref, SMKI_E_USAGE, "no key given (a pkcs11: URI or file:PATH)");
    ENSURE(strlen(ref) < SMKI_KEY_URI_MAX, SMKI_E_USAGE, "key reference longer than %d characters",
           SMKI_KEY_URI_MAX - 1);
    smki_key *k = calloc(1, sizeof *k);
    ENSURE(k != NULL, SMKI_E_NOMEM, "out of memory");
    strcpy(k->ref, ref);
    pthread_mutex_init(&k->pool_lock, NULL);
    int rc;
    if (strncmp(ref, "pkcs11:", 7) == 0)
        rc = open_token_key(k, ref, o);
    else if (strncmp(ref, "file:", 5) == 0)
        rc = open_file_key(k, ref + 5);
    else
        rc = SMKI_FAIL(SMKI_E_USAGE, "unknown key reference '%.80s': use pkcs11:token=...;object=... or file:PATH",
                       ref);
    if (rc < 0) {
        smki_key_free(k);
        return rc;
    }
    *out = k;
    return 0;
}

void smki_key_free(smki_key *k)
{
    if (!k) return;
    for (int i = 0; i < k->pooled; i++) EVP_PKEY_CTX_free(k->pool[i]);
    EVP_PKEY_free(k->priv);
    EVP_PKEY_free(k->pub);
    if (k->p11) p11_ctx_put(k->p11);
    pthread_mutex_destroy(&k->pool_lock);
    free(k);
}

const char *smki_key_ref(const smki_key *k) { return k->ref; }
int smki_key_is_token(const smki_key *k) { return k->is_token; }
EVP_PKEY *smki_key_public(smki_key *k) { return k->pub; }

/* ---- Signing ------------------------------------------------------------------------ */

static EVP_PKEY_CTX *pool_take(smki_key *k)
{
    EVP_PKEY_CTX *ctx = NULL;
    pthread_mutex_lock(&k->pool_lock);
    if (k->pooled > 0) ctx = k->pool[--k->pooled];
    pthread_mutex_unlock(&k->pool_lock);
    if (ctx) return ctx;
    ctx = EVP_PKEY_CTX_new(k->priv, NULL);
    if (ctx && EVP_PKEY_sign_init(ctx) != 1) {
        EVP_PKEY_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

static void pool_give(smki_key *k, EVP_PKEY_CTX *ctx)
{
    pthread_mutex_lock(&k->pool_lock);
    if (k->pooled < SIGN_POOL) {
        k->pool[k->pooled++] = ctx;
        ctx = NULL;
    }
    pthread_mutex_unlock(&k->pool_lock);
    EVP_PKEY_CTX_free(ctx);
}

int smki_key_sign_digest(smki_key *k, const uint8_t digest[32], smki_sigfmt fmt, uint8_t *sig, size_t *sig_len)
{
    uint8_t der[SMKI_SIG_MAX];
    size_t der_len = sizeof der;
    EVP_PKEY_CTX *ctx = pool_take(k);
    ENSURE_SSL(ctx != NULL, k->is_token ? SMKI_E_HSM : SMKI_E_CRYPTO, "%s: cannot prepare signing", k->ref);
    int ok = EVP_PKEY_sign(ctx, der, &der_len, digest, 32) == 1;
    if (ok)
        pool_give(k, ctx);
    else
        EVP_PKEY_CTX_free(ctx);
    if (!ok && k->is_token) {
        CK_RV rv = p11_take_libp11_rv();
        if (rv == CKR_KEY_FUNCTION_NOT_PERMITTED || rv == CKR_KEY_TYPE_INCONSISTENT)
            return SMKI_FAIL(SMKI_E_REFUSED, "token '%s': %s may not sign (%s): is it a key-agreement key?", k->token,
                             k->ref, p11_rv_name(rv));
        char what[SMKI_KEY_URI_MAX + 16];
        snprintf(what, sizeof what, "signing with %s", k->ref);
        return p11_fail_rv(rv, k->token, what);
    }
    ENSURE_SSL(ok, SMKI_E_CRYPTO, "%s: signing failed", k->ref);
    if (fmt == SMKI_SIG_DER) {
        ENSURE(*sig_len >= der_len, SMKI_E_INTERNAL, "signature buffer of %zu octets is too small", *sig_len);
        memcpy(sig, der, der_len);
        *sig_len = der_len;
        return 0;
    }
    ENSURE(*sig_len >= SMKI_SIG_RAW_LEN, SMKI_E_INTERNAL, "signature buffer of %zu octets is too small", *sig_len);
    GUARD(smki_sig_der_to_raw(der, der_len, sig));
    *sig_len = SMKI_SIG_RAW_LEN;
    return 0;
}

int smki_key_sign(smki_key *k, const uint8_t *msg, size_t len, smki_sigfmt fmt, uint8_t *sig, size_t *sig_len)
{
    uint8_t digest[32];
    ENSURE_SSL(EVP_Digest(msg, len, digest, NULL, EVP_sha256(), NULL) == 1, SMKI_E_CRYPTO, "SHA-256 failed");
    return smki_key_sign_digest(k, digest, fmt, sig, sig_len);
}

/* ---- Key agreement --------------------------------------------------------------------- */

int smki_key_ecdh(smki_key *k, EVP_PKEY *peer, uint8_t z[32])
{
    int rc = 0;
    GUARD(smki_pub_check_p256(peer, "peer key"));
    EVP_PKEY *peer_use = peer;
    EVP_PKEY *legacy_peer = NULL;
    if (k->is_token) {
        /* libp11's key is a legacy EC_KEY: give it a peer of the same kind. */
        EC_KEY *ec = EVP_PKEY_get1_EC_KEY(peer);
        ENSURE_SSL(ec != NULL, SMKI_E_CRYPTO, "peer key: cannot convert");
        legacy_peer = EVP_PKEY_new();
        if (!legacy_peer || EVP_PKEY_assign_EC_KEY(legacy_peer, ec) != 1) {
            EC_KEY_free(ec);
            EVP_PKEY_free(legacy_peer);
            return SMKI_FAIL_SSL(SMKI_E_CRYPTO, "peer key: cannot convert");
        }
        peer_use = legacy_peer;
    }
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k->priv, NULL);
    size_t zlen = 32;
    ENSURE_SSL_GOTO(ctx != NULL && EVP_PKEY_derive_init(ctx) == 1, SMKI_E_CRYPTO, out, "%s: cannot prepare ECDH",
                    k->ref);
    ENSURE_SSL_GOTO(EVP_PKEY_derive_set_peer(ctx, peer_use) == 1, SMKI_E_INPUT, out, "%s: ECDH peer refused", k->ref);
    if (EVP_PKEY_derive(ctx, z, &zlen) != 1 || zlen != 32) {
        if (k->is_token) {
            CK_RV rv = p11_take_libp11_rv();
            rc = rv == CKR_KEY_FUNCTION_NOT_PERMITTED || rv == CKR_KEY_TYPE_INCONSISTENT
                     ? SMKI_FAIL(SMKI_E_REFUSED, "token '%s': %s may not derive (%s): is it a signing key?", k->token,
                                 k->ref, p11_rv_name(rv))
                     : p11_fail_rv(rv, k->token, "ECDH (CKM_ECDH1_DERIVE)");
        } else {
            rc = SMKI_FAIL_SSL(SMKI_E_CRYPTO, "%s: ECDH failed", k->ref);
        }
        smki_wipe(z, 32);
    }
out:
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(legacy_peer);
    return rc;
}

/* ---- Public half without the private key ------------------------------------------ */

int smki_key_public_load(const char *ref, const smki_hsm_opts *o, EVP_PKEY **out)
{
    ENSURE(ref && *ref, SMKI_E_USAGE, "no key given (a pkcs11: URI or file:PATH)");
    if (strncmp(ref, "pkcs11:", 7) != 0) {
        smki_key *k = NULL;
        GUARD(smki_key_open(ref, o, &k));
        *out = smki_key_public(k);
        EVP_PKEY_up_ref(*out);
        smki_key_free(k);
        return 0;
    }
    smki_p11_uri u;
    GUARD(smki_p11_uri_parse(ref, &u));
    ENSURE(u.has_token, SMKI_E_USAGE, "PKCS#11 URI names no token (add token=): %s", ref);
    return p11_read_public_key(p11_module_choose(o, u.module_path), &u, out);
}
