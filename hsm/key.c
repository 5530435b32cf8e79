/* The key abstraction: one smki_key whether the private key is a software key
 * (OpenSSL, from a PEM file) or a token key (PKCS#11 through libp11). Handles are
 * found once at open; signing reuses prepared contexts so that the per-signature
 * cost is the signature itself.
 *
 * Token keys: libp11 finds the key, logs in, and is the path for any signature or
 * ECDH the direct path below cannot make. The direct path goes through the module's
 * function list (C_SignInit(CKM_ECDSA) + C_Sign, C_DeriveKey(CKM_ECDH1_DERIVE)) on
 * a session taken from the key's own pool, with the private key's object handle
 * found once: per signature it skips libp11's session pool, the EVP/EC_KEY_METHOD
 * layers and the DER round trip (tests/bench/bench_p11_raw.c measures the module
 * alone; tools/bench.sh prints both). Its sessions belong to the process that opened
 * them: after fork() the child forgets them (never closes the parent's) and opens
 * its own.
 *
 * Session copy (smki_hsm_opts.key_copy, default auto): at set-up the direct path copies
 * the private key into a session object of the same token (C_CopyObject, template
 * CKA_TOKEN false only) and signs with the copy; SoftHSM re-reads its token files and
 * rebuilds the key on every C_SignInit with a token object, not with a session object
 * (tools/bench.sh shows both). The copy is checked (CKA_TOKEN false; CKA_SENSITIVE
 * true, CKA_EXTRACTABLE false, CKA_SIGN, CKA_DERIVE and CKA_PRIVATE as the original's)
 * or destroyed; a module that refuses to copy is used with the token object, and not
 * asked again. The session that made the copy (copy_session) stays open while the
 * copy is in use, since a session object lives as long as the session that made it;
 * the pooled sessions use the copy's handle (session objects are visible to every
 * session of the process). The copy belongs to the process that made it: a forked
 * child makes its own; after a lost session or login the next set-up makes a new one;
 * smki_key_free destroys it. Every raw search for token keys asks for CKA_TOKEN true,
 * so that copies are never taken for token keys.
 *
 * Every set-up finds the token object again by the URI's label/id and proves it (or
 * its copy) is the key opened, k->pub (direct_prove): a key replaced on the token under
 * the same name is refused, never used. Set-ups are numbered (gen): an operation
 * carries the generation it started on, a lost session reported by an operation of an
 * earlier generation does not set up again, and the copy a set-up replaces is retired,
 * not destroyed, while operations of its generation may still use it (destroyed at
 * free, or forgotten once the module dropped it with its session). A copy that reads
 * back right but fails an operation that the token object then makes is given up. */
/* libp11 keys are legacy EC_KEYs: handing them a peer for ECDH takes the EC_KEY
 * calls OpenSSL 3 marks deprecated. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <errno.h>
#include <fcntl.h>
#include <libp11.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

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
#define SESSION_POOL 16
/* Retired session copies a key keeps alive (see p11_direct.retired); a set-up again
 * that would retire one more turns the direct path off for the key (libp11 signs). */
#define RETIRED_MAX 8

/* The direct token signing path (see the top of the file). */
typedef struct {
    pthread_mutex_t lock;
    smki_p11_uri uri;  /* how the key was named: label and/or id */
    char module[512];
    char *pin;         /* for logging in again after the token logged us out; NULL when
                          none was given or it was refused once (never retried) */
    pid_t pid;         /* process the sessions and handle below belong to */
    int ready;         /* set up in that process */
    int off;           /* the raw search does not find the key once: libp11 only */
    p11_module *mod;
    CK_SLOT_ID slot;
    CK_OBJECT_HANDLE obj; /* what signs: the copy when there is one, else the token object */
    CK_SESSION_HANDLE sessions[SESSION_POOL];
    int nsessions;
    int copy_wanted;      /* key_copy auto, and the module has not refused a copy */
    CK_SESSION_HANDLE copy_session; /* made the copy; CK_INVALID_HANDLE when none */
    CK_OBJECT_HANDLE copy;          /* the session copy; CK_INVALID_HANDLE when none */
    CK_OBJECT_HANDLE token_obj;     /* the token object the copy was made from */
    EVP_PKEY *pub;     /* the key's public half as opened (smki_key's): every set-up proves
                          the object it found is this key */
    int wrong;         /* a set-up found another key under the key's name: refuse for good */
    unsigned gen;      /* set-up generation: operations carry the one they started on */
    /* Copies (and the sessions that made them) of earlier generations: operations of
     * those may still be in flight, so they are destroyed only when the key is freed,
     * or forgotten once their session is gone (the module took the copy with it). */
    struct {
        CK_SESSION_HANDLE session;
        CK_OBJECT_HANDLE copy;
    } retired[RETIRED_MAX];
    int nretired;
} p11_direct;

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
    p11_direct *direct; /* token keys only */
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
    const char *init_args = smki_p11_module_init_args(module);
    if (init_args) PKCS11_CTX_init_args(c->ctx, init_args);
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
    if (PKCS11_login(slot, 0, pin) != 0) return smki_p11_fail_rv(smki_p11_take_libp11_rv(), token, "login");
    return 0;
}

static int key_matches(const PKCS11_KEY *k, const smki_p11_uri *u)
{
    if (u->has_object && (!k->label || strcmp(k->label, u->object) != 0)) return 0;
    if (u->has_id && (k->id_len != u->id_len || memcmp(k->id, u->id, u->id_len) != 0)) return 0;
    return 1;
}

static int same_key_names(const PKCS11_KEY *a, const PKCS11_KEY *b)
{
    if ((a->label == NULL) != (b->label == NULL) || (a->label && strcmp(a->label, b->label) != 0)) return 0;
    return a->id_len == b->id_len && (a->id_len == 0 || memcmp(a->id, b->id, a->id_len) == 0);
}

/* The private key the URI names, as libp11's EVP_PKEY. libp11 lists the session
 * objects of this process too, and keeps listing those it saw once: the session
 * copies of this key made by other open smki_keys (see the top of the file), live or
 * destroyed since. A copy has the label and id of its original, so matches that share
 * both are one key, and the first of them that libp11 can still use is taken (its
 * public half is the same; signatures go through the direct path, which finds the
 * token object by CKA_TOKEN). Matches that differ are ambiguous. */
static int find_private_key(PKCS11_SLOT *slot, const smki_p11_uri *u, EVP_PKEY **out)
{
    PKCS11_KEY *keys = NULL;
    unsigned int n = 0;
    ENSURE_SSL(PKCS11_enumerate_keys(slot->token, &keys, &n) == 0, SMKI_E_HSM, "token '%s': cannot list keys",
               u->token);
    PKCS11_KEY *found = NULL;
    for (unsigned int i = 0; i < n; i++) {
        if (!keys[i].isPrivate || !key_matches(&keys[i], u)) continue;
        ENSURE(found == NULL || same_key_names(found, &keys[i]), SMKI_E_USAGE,
               "token '%s': more than one key matches '%s'; add id= to the URI", u->token,
               u->has_object ? u->object : "(id)");
        if (!found) found = &keys[i];
    }
    ENSURE(found != NULL, SMKI_E_NOTFOUND, "token '%s': no private key '%s' (see 'smki key list')", u->token,
           u->has_object ? u->object : "(by id)");
    for (unsigned int i = (unsigned int)(found - keys); i < n; i++) {
        if (!keys[i].isPrivate || !same_key_names(found, &keys[i])) continue;
        if ((*out = PKCS11_get_private_key(&keys[i])) != NULL) {
            ERR_clear_error();
            return 0;
        }
    }
    return SMKI_FAIL_SSL(SMKI_E_HSM, "token '%s': cannot use key '%s'", u->token,
                         u->has_object ? u->object : "(by id)");
}

/* ---- The direct token signing path ----------------------------------------------- */

int smki_key_copy_parse(const char *word, const char *what, int *out)
{
    ENSURE(word != NULL, SMKI_E_USAGE, "%s: no value (auto or off)", what);
    if (strcmp(word, "auto") == 0)
        *out = SMKI_KEY_COPY_AUTO;
    else if (strcmp(word, "off") == 0)
        *out = SMKI_KEY_COPY_OFF;
    else
        return SMKI_FAIL(SMKI_E_USAGE, "%s must be auto or off, not '%.40s'", what, word);
    return 0;
}

/* The key_copy in force: the options', else $SMKI_HSM_KEY_COPY, else auto. */
static int key_copy_mode(const smki_hsm_opts *o, int *mode)
{
    if (o && o->key_copy == SMKI_KEY_COPY_AUTO) return *mode = SMKI_KEY_COPY_AUTO, 0;
    if (o && o->key_copy == SMKI_KEY_COPY_OFF) return *mode = SMKI_KEY_COPY_OFF, 0;
    ENSURE(!o || o->key_copy == SMKI_KEY_COPY_DEFAULT, SMKI_E_USAGE, "key_copy option %d is not auto or off",
           o->key_copy);
    const char *env = getenv("SMKI_HSM_KEY_COPY");
    if (env && *env) return smki_key_copy_parse(env, "SMKI_HSM_KEY_COPY", mode);
    *mode = SMKI_KEY_COPY_AUTO;
    return 0;
}

static int direct_new(smki_key *k, const smki_p11_uri *u, const char *module, const char *pin, int copy_mode)
{
    p11_direct *d = calloc(1, sizeof *d);
    ENSURE(d != NULL, SMKI_E_NOMEM, "out of memory");
    pthread_mutex_init(&d->lock, NULL);
    d->pub = k->pub;
    d->copy_wanted = copy_mode == SMKI_KEY_COPY_AUTO;
    d->copy_session = CK_INVALID_HANDLE;
    d->copy = CK_INVALID_HANDLE;
    d->uri = *u;
    snprintf(d->module, sizeof d->module, "%s", module);
    if (pin && !(d->pin = OPENSSL_strdup(pin))) {
        pthread_mutex_destroy(&d->lock);
        free(d);
        return SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    }
    k->direct = d;
    return 0;
}

/* With d->lock held, in the process that made it: destroy the session copy and close
 * the session that made it (either may be gone already: a lost session took both). */
static void copy_destroy(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE cs, CK_OBJECT_HANDLE copy)
{
    if (cs == CK_INVALID_HANDLE) return;
    /* A session the module lost (or a logout) took the copy with it: its handle is
     * not ours to destroy any more (the module may have given it to another object). */
    CK_SESSION_INFO si;
    if (f->C_GetSessionInfo(cs, &si) != CKR_OK) return;
    if (copy != CK_INVALID_HANDLE && (si.state == CKS_RO_USER_FUNCTIONS || si.state == CKS_RW_USER_FUNCTIONS))
        f->C_DestroyObject(cs, copy);
    f->C_CloseSession(cs);
}

static void copy_drop(p11_direct *d)
{
    CK_FUNCTION_LIST *f = smki_p11_module_functions(d->mod);
    copy_destroy(f, d->copy_session, d->copy);
    d->copy = CK_INVALID_HANDLE;
    d->copy_session = CK_INVALID_HANDLE;
}

/* With d->lock held: the current copy out of use but kept (with its session) until
 * the key is freed, for the operations that may still be using it. Retired copies
 * whose session is gone are forgotten first. 0, or -1 when RETIRED_MAX copies are
 * still alive (a module answering "lost" for sessions that are not): the copy is
 * then left as it is. */
static int copy_retire(p11_direct *d)
{
    if (d->copy_session == CK_INVALID_HANDLE) return 0;
    CK_FUNCTION_LIST *f = smki_p11_module_functions(d->mod);
    int n = 0;
    for (int i = 0; i < d->nretired; i++) {
        CK_SESSION_INFO si;
        if (f->C_GetSessionInfo(d->retired[i].session, &si) == CKR_OK) d->retired[n++] = d->retired[i];
    }
    d->nretired = n;
    if (d->nretired == RETIRED_MAX) return -1;
    d->retired[d->nretired].session = d->copy_session;
    d->retired[d->nretired].copy = d->copy;
    d->nretired++;
    d->copy = CK_INVALID_HANDLE;
    d->copy_session = CK_INVALID_HANDLE;
    return 0;
}

static void direct_free(p11_direct *d)
{
    if (!d) return;
    /* Sessions and the copy made by a parent process are the parent's: a child never
     * closes or destroys them. The copy first: closing the pooled sessions may end
     * the login its destruction needs. */
    if (d->mod && d->pid == getpid()) {
        copy_drop(d);
        for (int i = d->nretired - 1; i >= 0; i--)
            copy_destroy(smki_p11_module_functions(d->mod), d->retired[i].session, d->retired[i].copy);
        for (int i = 0; i < d->nsessions; i++) smki_p11_module_functions(d->mod)->C_CloseSession(d->sessions[i]);
    }
    if (d->pin) OPENSSL_clear_free(d->pin, strlen(d->pin));
    pthread_mutex_destroy(&d->lock);
    free(d);
}

/* Not an answer of the module: the direct path cannot be used for this signature. */
#define DIRECT_UNAVAILABLE (CKR_VENDOR_DEFINED | 0x534d4bUL)
/* Not an answer of the module either: the object found under the key's name is not
 * the key this process opened. */
#define DIRECT_WRONG_KEY (CKR_VENDOR_DEFINED | 0x534d4cUL)
/* Nor this: the module answered a signature or secret of the wrong length. */
#define DIRECT_BAD_LENGTH (CKR_VENDOR_DEFINED | 0x534d4dUL)

/* Answers after which the session, the login or the handle is gone but the key may
 * still be there: set up again (or let libp11 try) rather than report. */
static int direct_stale(CK_RV rv)
{
    return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED || rv == CKR_USER_NOT_LOGGED_IN ||
           rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_CRYPTOKI_NOT_INITIALIZED;
}

/* Log in through session s when the token says we are not; a refused PIN is
 * forgotten so that it is never tried twice (a PIN changed under a running process
 * must not count down the token's retry counter). With d->lock held. */
static CK_RV direct_login(p11_direct *d, CK_SESSION_HANDLE s)
{
    CK_FUNCTION_LIST *f = smki_p11_module_functions(d->mod);
    CK_SESSION_INFO si;
    CK_RV rv = f->C_GetSessionInfo(s, &si);
    if (rv != CKR_OK) return rv;
    /* Without a PIN the token decides: a key that needs a login is refused by it. */
    if (si.state == CKS_RO_USER_FUNCTIONS || si.state == CKS_RW_USER_FUNCTIONS || !d->pin) return CKR_OK;
    rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR *)d->pin, strlen(d->pin));
    if (rv == CKR_USER_ALREADY_LOGGED_IN) return CKR_OK;
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_EXPIRED) {
        OPENSSL_clear_free(d->pin, strlen(d->pin));
        d->pin = NULL;
    }
    return rv;
}

/* The attributes a copy must keep, read from an object. */
typedef struct {
    CK_BBOOL token, sensitive, extractable, sign, derive, priv;
} key_flags;

static CK_RV read_flags(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, key_flags *k)
{
    CK_ATTRIBUTE a[] = {{CKA_TOKEN, &k->token, sizeof k->token},
                        {CKA_SENSITIVE, &k->sensitive, sizeof k->sensitive},
                        {CKA_EXTRACTABLE, &k->extractable, sizeof k->extractable},
                        {CKA_SIGN, &k->sign, sizeof k->sign},
                        {CKA_DERIVE, &k->derive, sizeof k->derive},
                        {CKA_PRIVATE, &k->priv, sizeof k->priv}};
    CK_RV rv = f->C_GetAttributeValue(s, h, a, sizeof a / sizeof a[0]);
    for (size_t i = 0; rv == CKR_OK && i < sizeof a / sizeof a[0]; i++)
        if (a[i].ulValueLen != sizeof(CK_BBOOL)) rv = CKR_ATTRIBUTE_TYPE_INVALID;
    return rv;
}

/* With d->lock held, after d->obj was found through s: make the session copy on a
 * session of its own and sign with it from now on. Whatever goes wrong leaves the
 * token object in use; a module that answers a refusal (not a lost session or login)
 * is not asked again by this key. */
static void copy_make(p11_direct *d, CK_SESSION_HANDLE s)
{
    CK_FUNCTION_LIST *f = smki_p11_module_functions(d->mod);
    key_flags orig, got;
    CK_SESSION_HANDLE cs = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE copy = CK_INVALID_HANDLE;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {{CKA_TOKEN, &no, sizeof no}};
    const char *step = "reading the key's attributes";
    CK_RV rv = read_flags(f, s, d->obj, &orig);
    if (rv == CKR_OK) {
        step = "opening a session";
        rv = f->C_OpenSession(d->slot, CKF_SERIAL_SESSION, NULL, NULL, &cs);
    }
    if (rv == CKR_OK) {
        step = "C_CopyObject";
        rv = f->C_CopyObject(cs, d->obj, tmpl, 1, &copy);
    }
    if (rv == CKR_OK) {
        step = "reading the copy's attributes";
        rv = read_flags(f, cs, copy, &got);
    }
    if (rv == CKR_OK) {
        step = "checking the copy";
        if (got.token != CK_FALSE || got.sensitive != CK_TRUE || got.extractable != CK_FALSE ||
            got.sign != orig.sign || got.derive != orig.derive || got.priv != orig.priv)
            rv = CKR_TEMPLATE_INCONSISTENT;
    }
    if (rv == CKR_OK) {
        d->copy_session = cs;
        d->copy = copy;
        d->obj = copy;
        return;
    }
    if (copy != CK_INVALID_HANDLE) f->C_DestroyObject(cs, copy);
    if (cs != CK_INVALID_HANDLE) f->C_CloseSession(cs);
    if (!direct_stale(rv)) d->copy_wanted = 0;
    if (getenv("SMKI_DEBUG"))
        fprintf(stderr, "smki: token '%s': no session copy of the key (%s: %s); signing with the token object\n",
                d->uri.token, step, smki_p11_rv_name(rv));
}

static CK_RV op_sign(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, void *arg);
static CK_RV op_ecdh(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, void *arg);

typedef struct {
    const uint8_t *digest;
    uint8_t *raw;
} sign_arg;

typedef struct {
    uint8_t point[SMKI_POINT_LEN];
    uint8_t *z;
} ecdh_arg;

/* The base point G of P-256, uncompressed. */
static const uint8_t P256_G[SMKI_POINT_LEN] = {
    0x04, 0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2,
    0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96,
    0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16,
    0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5};

/* With d->lock held: that object h is the private half of d->pub, the key this
 * process opened. A signing key signs a fixed digest, verified with d->pub; a key
 * that may not sign (key agreement) derives with the base point G, which gives the
 * x-coordinate of its public point, compared with d->pub's (only the negated key
 * n - d shares it). CKR_OK, DIRECT_WRONG_KEY, or the module's answer. A key that may
 * do neither is not proved: the module refuses every operation with it anyway. */
static CK_RV direct_prove(p11_direct *d, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h)
{
    CK_FUNCTION_LIST *f = smki_p11_module_functions(d->mod);
    CK_BBOOL sign = CK_FALSE, derive = CK_FALSE;
    CK_ATTRIBUTE a[] = {{CKA_SIGN, &sign, sizeof sign}, {CKA_DERIVE, &derive, sizeof derive}};
    CK_RV rv = f->C_GetAttributeValue(s, h, a, 2);
    if (rv != CKR_OK) return rv;
    uint8_t pub[SMKI_POINT_LEN];
    if (smki_pub_point(d->pub, pub) != 0) {
        smki_error_clear();
        return CKR_GENERAL_ERROR;
    }
    if (sign) {
        static const uint8_t digest[32] = "smki: is this the key I opened?";
        uint8_t raw[SMKI_SIG_RAW_LEN];
        rv = op_sign(f, s, h, &(sign_arg){digest, raw});
        if (rv != CKR_OK) return rv;
        int ok = smki_verify_digest(d->pub, digest, SMKI_SIG_RAW, raw, sizeof raw) == 0;
        smki_error_clear();
        return ok ? CKR_OK : DIRECT_WRONG_KEY;
    }
    if (derive) {
        uint8_t x[32];
        ecdh_arg e = {.z = x};
        memcpy(e.point, P256_G, sizeof e.point);
        rv = op_ecdh(f, s, h, &e);
        if (rv != CKR_OK) return rv;
        return memcmp(x, pub + 1, 32) == 0 ? CKR_OK : DIRECT_WRONG_KEY;
    }
    return CKR_OK;
}

/* With d->lock held: the module (initialised again in a forked child), the slot and
 * the key's handle for this process, through a first session that stays pooled, and
 * proved to be the key opened (direct_prove). CKR_OK, or the CK_RV that stopped it;
 * DIRECT_WRONG_KEY when the token has another key under the name (d->wrong: refused
 * from now on); DIRECT_UNAVAILABLE when the module or token is not found (libp11 then
 * reports it), when the key is found more than once by the raw search or not at all
 * while logged in, which turns the direct path off for this key (libp11 found it: it
 * signs), or when RETIRED_MAX retired copies are still alive (off as well).
 * A set-up again starts a new generation: the copy of the last one is retired, not
 * destroyed (other threads may be signing with it). */
static CK_RV direct_setup(p11_direct *d)
{
    pid_t pid = getpid();
    CK_FUNCTION_LIST *f = d->mod ? smki_p11_module_functions(d->mod) : NULL;
    if (d->pid == pid && d->mod) { /* of an earlier setup */
        for (int i = 0; i < d->nsessions; i++) f->C_CloseSession(d->sessions[i]);
        d->nsessions = 0;
        if (copy_retire(d) != 0) {
            d->ready = 0;
            d->off = 1;
            if (getenv("SMKI_DEBUG"))
                fprintf(stderr,
                        "smki: token '%s': %d session copies retired and still alive; libp11 signs with this key "
                        "from now on\n",
                        d->uri.token, RETIRED_MAX);
            return DIRECT_UNAVAILABLE;
        }
    } else { /* first in this process; in a child: the parent's copies, not ours to use or close */
        d->nretired = 0;
        d->copy = CK_INVALID_HANDLE;
        d->copy_session = CK_INVALID_HANDLE;
    }
    d->nsessions = 0;
    d->pid = pid;
    d->ready = 0;
    d->gen++;
    if (smki_p11_module_get(d->module, &d->mod) != 0 || smki_p11_find_token(d->mod, d->uri.token, &d->slot, NULL) != 0) {
        smki_error_clear();
        return DIRECT_UNAVAILABLE;
    }
    f = smki_p11_module_functions(d->mod);
    CK_SESSION_HANDLE s;
    CK_RV rv = f->C_OpenSession(d->slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK) return rv;
    rv = direct_login(d, s);
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE kt = CKK_EC;
    CK_BBOOL on_token = CK_TRUE; /* never a session copy (ours or another key's) */
    CK_ATTRIBUTE tmpl[5] = {{CKA_CLASS, &cls, sizeof cls},
                            {CKA_KEY_TYPE, &kt, sizeof kt},
                            {CKA_TOKEN, &on_token, sizeof on_token}};
    CK_ULONG nt = 3, n = 0;
    if (d->uri.has_object) tmpl[nt++] = (CK_ATTRIBUTE){CKA_LABEL, d->uri.object, strlen(d->uri.object)};
    if (d->uri.has_id) tmpl[nt++] = (CK_ATTRIBUTE){CKA_ID, d->uri.id, d->uri.id_len};
    CK_OBJECT_HANDLE h[2];
    if (rv == CKR_OK) rv = f->C_FindObjectsInit(s, tmpl, nt);
    if (rv == CKR_OK) {
        rv = f->C_FindObjects(s, h, 2, &n);
        f->C_FindObjectsFinal(s);
        if (rv == CKR_OK && n != 1) {
            /* None found while not logged in (a refused PIN, no PIN) may be a private
             * key hidden by the missing login: libp11 reports it, and the direct path
             * stays on for later. Two, or none while logged in: off for good. */
            CK_SESSION_INFO si;
            int logged = f->C_GetSessionInfo(s, &si) == CKR_OK &&
                         (si.state == CKS_RO_USER_FUNCTIONS || si.state == CKS_RW_USER_FUNCTIONS);
            if (n > 1 || logged) d->off = 1;
            rv = DIRECT_UNAVAILABLE;
        }
    }
    if (rv == CKR_OK) {
        /* A key that wants its PIN at every use (CKA_ALWAYS_AUTHENTICATE) cannot be
         * used from a pooled session: libp11 handles it. */
        CK_BBOOL always = CK_FALSE;
        CK_ATTRIBUTE aa = {CKA_ALWAYS_AUTHENTICATE, &always, sizeof always};
        if (f->C_GetAttributeValue(s, h[0], &aa, 1) == CKR_OK && always) {
            d->off = 1;
            rv = DIRECT_UNAVAILABLE;
        }
    }
    if (rv != CKR_OK) {
        f->C_CloseSession(s);
        return rv;
    }
    d->token_obj = d->obj = h[0];
    if (d->copy_wanted) copy_make(d, s);
    rv = direct_prove(d, s, d->obj);
    if (rv != CKR_OK && rv != DIRECT_WRONG_KEY && !direct_stale(rv) && d->copy != CK_INVALID_HANDLE) {
        /* a copy that passed the attribute check but does not work: the token object */
        if (getenv("SMKI_DEBUG"))
            fprintf(stderr, "smki: token '%s': the session copy of the key fails (%s); signing with the token object\n",
                    d->uri.token, smki_p11_rv_name(rv));
        copy_drop(d);
        d->copy_wanted = 0;
        d->obj = d->token_obj;
        rv = direct_prove(d, s, d->obj);
    }
    if (rv == DIRECT_WRONG_KEY) d->wrong = 1;
    if (rv != CKR_OK) {
        copy_drop(d);
        f->C_CloseSession(s);
        return rv;
    }
    d->sessions[d->nsessions++] = s;
    d->ready = 1;
    return CKR_OK;
}

/* What an operation works with: a pooled session, the object to use, the token
 * object (the same when there is no copy) and the generation they belong to. */
typedef struct {
    CK_FUNCTION_LIST *f;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE obj, token_obj;
    unsigned gen;
} lease;

/* A session of this process for signing, set up first if needed, with the key's
 * handles and the module's functions. */
static CK_RV direct_take(p11_direct *d, lease *l)
{
    CK_RV rv = CKR_OK;
    pthread_mutex_lock(&d->lock);
    if (d->wrong)
        rv = DIRECT_WRONG_KEY;
    else if (d->off)
        rv = DIRECT_UNAVAILABLE;
    else if (!d->ready || d->pid != getpid())
        rv = direct_setup(d);
    if (rv == CKR_OK) {
        l->obj = d->obj;
        l->token_obj = d->token_obj;
        l->gen = d->gen;
        l->f = smki_p11_module_functions(d->mod);
        if (d->nsessions > 0) {
            l->s = d->sessions[--d->nsessions];
        } else {
            rv = l->f->C_OpenSession(d->slot, CKF_SERIAL_SESSION, NULL, NULL, &l->s);
            if (rv == CKR_OK && (rv = direct_login(d, l->s)) != CKR_OK) l->f->C_CloseSession(l->s);
        }
    }
    pthread_mutex_unlock(&d->lock);
    return rv;
}

/* Back to the pool. A session that answered something unexpected is closed, and so
 * is one of an earlier generation; after a lost session, login or handle (stale) on
 * the current generation the pool is emptied and the next operation sets up again (a
 * stale answer on an earlier generation was already dealt with). */
static void direct_give(p11_direct *d, const lease *l, int keep, int stale)
{
    CK_SESSION_HANDLE s = l->s;
    pthread_mutex_lock(&d->lock);
    int ours = d->pid == getpid();
    int current = ours && l->gen == d->gen;
    if (keep && current && d->ready && d->nsessions < SESSION_POOL) {
        d->sessions[d->nsessions++] = s;
        s = CK_INVALID_HANDLE;
    }
    if (stale && current) {
        for (int i = 0; i < d->nsessions; i++) l->f->C_CloseSession(d->sessions[i]);
        d->nsessions = 0;
        d->ready = 0;
    }
    pthread_mutex_unlock(&d->lock);
    if (s != CK_INVALID_HANDLE && ours) l->f->C_CloseSession(s);
}

/* One operation with the key on a pooled session: CKR_OK, or the module's answer. A
 * lost session, login or handle is set up again once and the operation retried. A
 * copy that fails otherwise is tried once more as the token object: when that works
 * the copy is no longer used (kept until the key is freed) and not made again. */
typedef CK_RV (*direct_op)(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, void *arg);

static CK_RV direct_run(p11_direct *d, direct_op op, void *arg)
{
    CK_RV rv = CKR_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        lease l;
        rv = direct_take(d, &l);
        if (rv == CKR_OK) {
            rv = op(l.f, l.s, l.obj, arg);
            if (rv != CKR_OK && !direct_stale(rv) && l.obj != l.token_obj &&
                op(l.f, l.s, l.token_obj, arg) == CKR_OK) {
                pthread_mutex_lock(&d->lock);
                if (getenv("SMKI_DEBUG") && d->copy_wanted)
                    fprintf(stderr, "smki: token '%s': the session copy of the key fails (%s); using the token object\n",
                            d->uri.token, smki_p11_rv_name(rv));
                if (l.gen == d->gen && d->obj == l.obj) d->obj = d->token_obj;
                d->copy_wanted = 0;
                pthread_mutex_unlock(&d->lock);
                rv = CKR_OK;
            }
            direct_give(d, &l, rv == CKR_OK, direct_stale(rv));
        } else if (direct_stale(rv)) {
            pthread_mutex_lock(&d->lock);
            d->ready = 0;
            pthread_mutex_unlock(&d->lock);
        }
        if (!direct_stale(rv)) break;
    }
    return rv;
}

/* ECDSA over a 32-octet digest, r || s out. */
static CK_RV op_sign(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, void *arg)
{
    sign_arg *a = arg;
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    CK_ULONG len = SMKI_SIG_RAW_LEN;
    CK_RV rv = f->C_SignInit(s, &mech, key);
    if (rv == CKR_OK) rv = f->C_Sign(s, (CK_BYTE *)a->digest, 32, a->raw, &len);
    if (rv == CKR_OK && len != SMKI_SIG_RAW_LEN) rv = DIRECT_BAD_LENGTH;
    return rv;
}

/* CKM_ECDH1_DERIVE with no KDF into a session secret of 32 octets, read out and
 * destroyed: z is the x-coordinate of d*Q. */
static CK_RV op_ecdh(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, void *arg)
{
    ecdh_arg *a = arg;
    CK_ECDH1_DERIVE_PARAMS params = {CKD_NULL, 0, NULL, SMKI_POINT_LEN, a->point};
    CK_MECHANISM mech = {CKM_ECDH1_DERIVE, &params, sizeof params};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG zlen = 32;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls},         {CKA_KEY_TYPE, &kt, sizeof kt},
                           {CKA_TOKEN, &no, sizeof no},           {CKA_SENSITIVE, &no, sizeof no},
                           {CKA_EXTRACTABLE, &yes, sizeof yes},   {CKA_VALUE_LEN, &zlen, sizeof zlen}};
    CK_OBJECT_HANDLE secret;
    CK_RV rv = f->C_DeriveKey(s, &mech, key, tmpl, sizeof tmpl / sizeof tmpl[0], &secret);
    if (rv != CKR_OK) return rv;
    CK_ATTRIBUTE value = {CKA_VALUE, a->z, 32};
    rv = f->C_GetAttributeValue(s, secret, &value, 1);
    if (rv == CKR_OK && value.ulValueLen != 32) rv = DIRECT_BAD_LENGTH;
    f->C_DestroyObject(s, secret);
    return rv;
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
    int copy_mode;
    GUARD(key_copy_mode(o, &copy_mode));
    char pin[256] = "";
    const char *use_pin = o ? o->pin : NULL;
    if (!use_pin && u.pin_source[0]) {
        const char *path = strncmp(u.pin_source, "file:", 5) == 0 ? u.pin_source + 5 : u.pin_source;
        GUARD(smki_secret_read_file(path, pin, sizeof pin));
        use_pin = pin;
    }
    int rc = 0;
    PKCS11_SLOT *slot = NULL;
    GUARD_GOTO(p11_ctx_get(smki_p11_module_choose(o, u.module_path), &k->p11), out);
    rc = find_slot(k->p11, u.token, &slot);
    if (rc == SMKI_E_NOTFOUND) { /* perhaps made since the context was loaded */
        smki_error_clear();
        GUARD_GOTO(p11_ctx_reload(&k->p11), out);
        rc = find_slot(k->p11, u.token, &slot);
    }
    GUARD_GOTO(rc, out);
    GUARD_GOTO(login(slot, u.token, use_pin), out);
    GUARD_GOTO(find_private_key(slot, &u, &k->priv), out);
    ENSURE_GOTO(EVP_PKEY_get_base_id(k->priv) == EVP_PKEY_EC, SMKI_E_REFUSED, out,
                "token '%s': key '%s' is not an EC key", u.token, u.object);
    k->is_token = 1;
    GUARD_GOTO(public_half(k), out);
    GUARD_GOTO(direct_new(k, &u, smki_p11_module_choose(o, u.module_path), use_pin, copy_mode), out);
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
    *out = NULL;
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
    else if ((rc = smki_key_ref_refuse_file(ref)) == 0) /* a path: say to write file:PATH */
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
    direct_free(k->direct);
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

static int wrong_key(smki_key *k)
{
    return SMKI_FAIL(SMKI_E_HSM,
                     "token '%s': the key named by %s is not the key this process opened (replaced under the same "
                     "name?): reopen it",
                     k->token, k->ref);
}

static int token_sign_failed(smki_key *k, CK_RV rv)
{
    if (rv == DIRECT_WRONG_KEY) return wrong_key(k);
    if (rv == DIRECT_BAD_LENGTH)
        return SMKI_FAIL(SMKI_E_HSM, "token '%s': signing with %s: the module answered a signature that is not %d octets",
                         k->token, k->ref, SMKI_SIG_RAW_LEN);
    if (rv == CKR_KEY_FUNCTION_NOT_PERMITTED || rv == CKR_KEY_TYPE_INCONSISTENT)
        return SMKI_FAIL(SMKI_E_REFUSED, "token '%s': %s may not sign (%s): is it a key-agreement key?", k->token,
                         k->ref, smki_p11_rv_name(rv));
    char what[SMKI_KEY_URI_MAX + 16];
    snprintf(what, sizeof what, "signing with %s", k->ref);
    return smki_p11_fail_rv(rv, k->token, what);
}

static int sig_out(const uint8_t raw[64], smki_sigfmt fmt, uint8_t *sig, size_t *sig_len)
{
    if (fmt == SMKI_SIG_DER) {
        uint8_t der[SMKI_SIG_MAX];
        size_t der_len = sizeof der;
        GUARD(smki_sig_raw_to_der(raw, der, &der_len));
        ENSURE(*sig_len >= der_len, SMKI_E_INTERNAL, "signature buffer of %zu octets is too small", *sig_len);
        memcpy(sig, der, der_len);
        *sig_len = der_len;
        return 0;
    }
    ENSURE(*sig_len >= SMKI_SIG_RAW_LEN, SMKI_E_INTERNAL, "signature buffer of %zu octets is too small", *sig_len);
    memcpy(sig, raw, SMKI_SIG_RAW_LEN);
    *sig_len = SMKI_SIG_RAW_LEN;
    return 0;
}

int smki_key_sign_digest(smki_key *k, const uint8_t digest[32], smki_sigfmt fmt, uint8_t *sig, size_t *sig_len)
{
    if (k->direct) {
        /* The direct path; whatever it could not settle (no session, login or handle
         * even after setting up again) goes through libp11, which reports it. */
        uint8_t raw[SMKI_SIG_RAW_LEN];
        CK_RV rv = direct_run(k->direct, op_sign, &(sign_arg){digest, raw});
        if (rv == CKR_OK) return sig_out(raw, fmt, sig, sig_len);
        if (!direct_stale(rv) && rv != DIRECT_UNAVAILABLE) return token_sign_failed(k, rv);
    }
    uint8_t der[SMKI_SIG_MAX];
    size_t der_len = sizeof der;
    EVP_PKEY_CTX *ctx = pool_take(k);
    ENSURE_SSL(ctx != NULL, k->is_token ? SMKI_E_HSM : SMKI_E_CRYPTO, "%s: cannot prepare signing", k->ref);
    int ok = EVP_PKEY_sign(ctx, der, &der_len, digest, 32) == 1;
    if (ok)
        pool_give(k, ctx);
    else
        EVP_PKEY_CTX_free(ctx);
    if (!ok && k->is_token) return token_sign_failed(k, smki_p11_take_libp11_rv());
    ENSURE_SSL(ok, SMKI_E_CRYPTO, "%s: signing failed", k->ref);
    if (k->is_token && smki_verify_digest(k->pub, digest, SMKI_SIG_DER, der, der_len) != 0) {
        /* libp11 finds a token key again by its label/id (after fork, a lost
         * session): it may have signed with another key under the same name */
        smki_error_clear();
        return wrong_key(k);
    }
    if (fmt == SMKI_SIG_DER) {
        ENSURE(*sig_len >= der_len, SMKI_E_INTERNAL, "signature buffer of %zu octets is too small", *sig_len);
        memcpy(sig, der, der_len);
        *sig_len = der_len;
        return 0;
    }
    uint8_t raw[SMKI_SIG_RAW_LEN];
    GUARD(smki_sig_der_to_raw(der, der_len, raw));
    return sig_out(raw, fmt, sig, sig_len);
}

int smki_key_sign(smki_key *k, const uint8_t *msg, size_t len, smki_sigfmt fmt, uint8_t *sig, size_t *sig_len)
{
    uint8_t digest[32];
    ENSURE_SSL(EVP_Digest(msg, len, digest, NULL, EVP_sha256(), NULL) == 1, SMKI_E_CRYPTO, "SHA-256 failed");
    return smki_key_sign_digest(k, digest, fmt, sig, sig_len);
}

/* ---- Key agreement --------------------------------------------------------------------- */

static int token_ecdh_failed(smki_key *k, CK_RV rv)
{
    if (rv == DIRECT_WRONG_KEY) return wrong_key(k);
    if (rv == DIRECT_BAD_LENGTH)
        return SMKI_FAIL(SMKI_E_HSM, "token '%s': ECDH with %s: the module answered a secret that is not 32 octets",
                         k->token, k->ref);
    if (rv == CKR_KEY_FUNCTION_NOT_PERMITTED || rv == CKR_KEY_TYPE_INCONSISTENT)
        return SMKI_FAIL(SMKI_E_REFUSED, "token '%s': %s may not derive (%s): is it a signing key?", k->token,
                         k->ref, smki_p11_rv_name(rv));
    return smki_p11_fail_rv(rv, k->token, "ECDH (CKM_ECDH1_DERIVE)");
}

int smki_key_ecdh(smki_key *k, EVP_PKEY *peer, uint8_t z[32])
{
    int rc = 0;
    GUARD(smki_pub_check_p256(peer, "peer key"));
    if (k->direct) { /* as for signing: straight to the module, libp11 when that cannot be */
        ecdh_arg a = {.z = z};
        GUARD(smki_pub_point(peer, a.point));
        CK_RV rv = direct_run(k->direct, op_ecdh, &a);
        if (rv == CKR_OK) return 0;
        smki_wipe(z, 32);
        if (!direct_stale(rv) && rv != DIRECT_UNAVAILABLE) return token_ecdh_failed(k, rv);
    }
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
            rc = token_ecdh_failed(k, smki_p11_take_libp11_rv());
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
    *out = NULL;
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
    return smki_p11_read_public_key(smki_p11_module_choose(o, u.module_path), &u, out);
}

/* ---- Notes beside a key ---------------------------------------------------------------------- */

static int note_file(const smki_key *k, const char *name, char *out, size_t cap)
{
    for (const char *p = name; *p; p++)
        ENSURE((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-', SMKI_E_USAGE,
               "a note name is lowercase letters, digits and '-': '%.64s'", name);
    int n = snprintf(out, cap, "%s.%s", k->ref + 5, name);
    ENSURE(n > 0 && (size_t)n < cap, SMKI_E_USAGE, "path too long: %.64s...", k->ref);
    return 0;
}

int smki_key_note_put(smki_key *k, const char *name, const uint8_t *val, size_t len)
{
    ENSURE(k && name && *name && val && len, SMKI_E_INTERNAL, "smki_key_note_put: missing argument");
    if (k->is_token) {
        p11_direct *d = k->direct;
        smki_hsm_opts o = {.module = d->module, .pin = d->pin, .init_args = smki_p11_module_init_args(d->module)};
        return smki_token_note_put(&o, k->ref, name, val, len);
    }
    char path[4200];
    GUARD(note_file(k, name, path, sizeof path));
    return smki_file_write_atomic(path, val, len, 0600, 0);
}

int smki_key_note_overwrite(smki_key *k, const char *name, const uint8_t *val, size_t len)
{
    ENSURE(k && name && *name && val && len, SMKI_E_INTERNAL, "smki_key_note_overwrite: missing argument");
    if (k->is_token) return smki_key_note_put(k, name, val, len);
    char path[4200];
    GUARD(note_file(k, name, path, sizeof path));
    return smki_file_overwrite(path, val, len, 0600);
}

int smki_key_note_lock(smki_key *k, const char *name, int *fd)
{
    *fd = -1;
    ENSURE(k && name && *name, SMKI_E_INTERNAL, "smki_key_note_lock: missing argument");
    if (k->is_token) return 0;
    char path[4200];
    GUARD(note_file(k, name, path, sizeof path));
    int lfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    ENSURE(lfd >= 0, SMKI_E_IO, "cannot open the lock %s: %s", path, strerror(errno));
    while (flock(lfd, LOCK_EX) != 0) {
        if (errno == EINTR) continue;
        int e = errno;
        close(lfd);
        return SMKI_FAIL(SMKI_E_IO, "cannot lock %s: %s", path, strerror(e));
    }
    *fd = lfd;
    return 0;
}

void smki_key_note_unlock(int fd)
{
    if (fd >= 0) close(fd); /* the lock goes with the descriptor */
}

int smki_key_note_each(smki_key *k, const char *name, smki_note_fn fn, void *arg)
{
    ENSURE(k && name && *name && fn, SMKI_E_INTERNAL, "smki_key_note_each: missing argument");
    if (k->is_token) {
        p11_direct *d = k->direct;
        smki_hsm_opts o = {.module = d->module, .pin = d->pin, .init_args = smki_p11_module_init_args(d->module)};
        return smki_token_note_each(&o, k->ref, name, fn, arg);
    }
    char path[4200];
    GUARD(note_file(k, name, path, sizeof path));
    if (access(path, F_OK) != 0) return SMKI_E_NOTFOUND; /* without noise: callers test for it */
    uint8_t *buf = NULL;
    size_t len = 0;
    GUARD(smki_file_read(path, 4096, &buf, &len));
    int rc = fn(buf, len, arg);
    free(buf);
    return rc;
}
