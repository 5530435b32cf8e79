/* hsm: the crypto core. One key abstraction over PKCS#11 tokens (through libp11)
 * and software keys (OpenSSL): sign, verify, ECDH P-256, public key export; token
 * and key management for the embedded SoftHSM; and the GBCS primitives built on
 * them (reference §5): the SP 800-56A KDF and the 12-octet AES-128-GCM MAC.
 * Callers never branch on where a key lives. */
#ifndef SMKI_HSM_H
#define SMKI_HSM_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* ---- Where keys live ---------------------------------------------------------- */
typedef struct {
    const char *module; /* PKCS#11 module path; NULL: the URI's module-path, else
                           $SMKI_PKCS11_MODULE, else SoftHSM 2 */
    const char *pin;    /* user PIN for token keys (from SMKI_PIN or a PIN file,
                           never the command line); NULL to use the key without login */
    int key_copy;       /* smki_key_copy: whether a token key opened for signing or ECDH
                           works on a session copy of itself inside the token */
    const char *init_args; /* the module's initialisation parameters (C_Initialize's
                              pReserved; NSS softokn needs "configdir='sql:DIR' ..."); NULL:
                              none. They apply to the module chosen for these options, from
                              its first use in the process on (a module is initialised once). */
} smki_hsm_opts;

/* Signing with a token key, by default (auto), makes one copy of the private key as a
 * session object inside the same token (C_CopyObject with CKA_TOKEN false; the copy
 * is checked to stay CKA_SENSITIVE, not CKA_EXTRACTABLE, with the original's
 * CKA_SIGN/CKA_DERIVE/CKA_PRIVATE) and signs with that: SoftHSM then skips re-reading
 * its token files on every signature. The copy never leaves the token and is
 * destroyed when the key is freed. A module that refuses the copy is used with the
 * token object, silently. So a running process keeps using the key as it was when
 * it first used it; deleting or changing the token key takes effect for keys opened
 * afterwards. SMKI_KEY_COPY_DEFAULT: $SMKI_HSM_KEY_COPY (auto|off), else auto. */
typedef enum { SMKI_KEY_COPY_DEFAULT = 0, SMKI_KEY_COPY_AUTO = 1, SMKI_KEY_COPY_OFF = 2 } smki_key_copy;
/* "auto" or "off" (what = where the word came from, for the error). */
SMKI_MUST_CHECK int smki_key_copy_parse(const char *word, const char *what, int *out);

/* Point SoftHSM 2 at a token folder of its own: writes dir/softhsm2.conf (tokens in
 * dir/tokens) if missing and sets SOFTHSM2_CONF for this process. */
SMKI_MUST_CHECK int smki_softhsm_prepare(const char *dir);
const char *smki_softhsm_default_module(void);

typedef struct {
    char label[33];
    char manufacturer[33];
    char model[17];
    char serial[17];
    unsigned long slot_id;
    int initialized;
    int login_required;
    int user_pin_set;
    char module[512]; /* the PKCS#11 module that was loaded for it (its path) */
} smki_token_info;

/* Initialise a token with this label in the first free slot (SO PIN and user PIN
 * set). Idempotent: if a token with the label exists, *created = 0 and nothing
 * changes. */
SMKI_MUST_CHECK int smki_token_init(const smki_hsm_opts *o, const char *label, const char *so_pin, const char *user_pin,
                    int *created, smki_token_info *info);
SMKI_MUST_CHECK int smki_token_find(const smki_hsm_opts *o, const char *label, smki_token_info *info);

/* ---- Keys --------------------------------------------------------------------- */
typedef enum { SMKI_USAGE_DS = 1, SMKI_USAGE_KA = 2 } smki_key_usage;
typedef enum { SMKI_SIG_RAW = 0, SMKI_SIG_DER = 1 } smki_sigfmt;

#define SMKI_SIG_RAW_LEN 64   /* r || s, 32 octets each (GBCS, PKCS#11 CKM_ECDSA) */
#define SMKI_SIG_MAX 72       /* DER ECDSA-Sig-Value on P-256 */
#define SMKI_KEY_URI_MAX 512
#define SMKI_POINT_LEN 65     /* uncompressed P-256 point */

typedef struct smki_key smki_key;

/* Generate an EC P-256 key pair inside the token: private key CKA_SENSITIVE,
 * not CKA_EXTRACTABLE, CKA_TOKEN; CKA_SIGN for DS, CKA_DERIVE for KA. Refuses
 * (SMKI_E_EXISTS) a label already on the token. Writes the key's RFC 7512 URI. */
SMKI_MUST_CHECK int smki_key_generate(const smki_hsm_opts *o, const char *token_label, const char *key_label, smki_key_usage usage,
                      char uri[SMKI_KEY_URI_MAX]);

/* A GBCS device's KA key with its CSR (CS02c): a PKCS#10 request's proof of possession
 * is a signature by the requested key, and PKCS#11 has no "may sign only its own CSR"
 * attribute. So the key pair is generated with CKA_DERIVE and, for this call only,
 * CKA_SIGN; sign_once(k, ctx) runs with the new key open (it signs the CSR); then
 * CKA_SIGN is cleared on the private key and read back as false, so from then on the
 * token refuses every signature by it, as for any KA key. If sign_once or the clearing
 * fails, the key pair is destroyed (uri empty). The public key has no CKA_VERIFY. */
typedef int (*smki_key_sign_once_fn)(smki_key *k, void *ctx);
SMKI_MUST_CHECK int smki_key_generate_ka_sign_once(const smki_hsm_opts *o, const char *token_label, const char *key_label,
                                   smki_key_sign_once_fn sign_once, void *ctx, char uri[SMKI_KEY_URI_MAX]);

typedef struct {
    char label[65];
    char id_hex[65];
    char uri[SMKI_KEY_URI_MAX];
    int has_private;
    int usage; /* SMKI_USAGE_DS / _KA bitwise, from CKA_SIGN / CKA_DERIVE */
} smki_key_info;
/* The EC key pairs on a token (caller frees *keys). */
SMKI_MUST_CHECK int smki_key_list(const smki_hsm_opts *o, const char *token_label, smki_key_info **keys, size_t *count);

/* Destroy every token object labelled key_label (the key pair) on the token: the SO
 * PIN is proved first (an SO login and logout), then the objects are destroyed in a
 * session logged in with o->pin. For a half-made ceremony's keys only
 * (smki_ca_orphan_key_remove decides which). */
SMKI_MUST_CHECK int smki_key_destroy(const smki_hsm_opts *o, const char *token_label, const char *key_label, const char *so_pin);

/* Whether any token object (a key pair, or the half of one a kill left) has this label
 * (the user PIN in o, if given, shows the private ones). */
SMKI_MUST_CHECK int smki_key_label_used(const smki_hsm_opts *o, const char *token_label, const char *label, int *used);

/* The RFC 7512 URI of a private key by token and object label (percent-encoded). */
SMKI_MUST_CHECK int smki_p11_uri_format_public(const char *token, const char *object, char *out, size_t cap);
/* A key argument as a person writes it, made a reference for smki_key_open: a pkcs11:
 * URI or file:PATH as it is, a bare name as the label of a key on `token`. A bare name
 * that is an existing file is refused (SMKI_E_USAGE, saying to write file:PATH): a file
 * key is always written file:PATH, so no argument means a label here and a file there. */
SMKI_MUST_CHECK int smki_key_ref_resolve(const char *arg, const char *token, char *ref, size_t cap);

/* Open a key by reference: an RFC 7512 URI "pkcs11:token=T;object=L[;id=..]" or
 * "file:PATH" (PEM private key, software). Token, slot and key handles are found
 * once here, not per operation. Safe to use from several threads (a token key keeps
 * a pool of sessions, one per concurrent signer); after fork() the child opens
 * sessions of its own and never uses or closes its parent's. A token that dropped
 * the sessions or the login is set up again at the next signature, logging in with
 * the PIN given here (kept in memory while the key is open, wiped at free, and
 * forgotten after the token refuses it once, so it is never retried). libp11, which
 * finds the key and is the fallback path, keeps its own copy of the PIN for the life
 * of the process (its slot keeps it to log in again); smki cannot wipe that one.
 * Every set-up (the first signature or ECDH, after a lost session, login or handle,
 * in a forked child) proves that the object found by the URI's label/id is the key
 * opened here (a signature verified with the public half, or for a key that may not
 * sign, ECDH with the base point compared with its public point): a token key
 * replaced under the same name is refused (SMKI_E_HSM, "... is not the key this
 * process opened (replaced under the same name?): reopen it"), never used; a
 * signature libp11 makes is verified with the public half as well. A set-up again
 * keeps the copy it replaces (other threads may be signing with it) until the key is
 * freed or the module drops it with its session; a module that keeps answering "lost"
 * for sessions that are not (8 replaced copies still alive) gets the key signing
 * through libp11 from then on. Keys that want the PIN at every use (CKA_ALWAYS_AUTHENTICATE)
 * always go through libp11.
 * fork(): only from a single-threaded moment of the process: a key's lock is held
 * across module calls and there is no pthread_atfork handler, so a fork while another
 * thread signs can leave the child with that lock held (its next use of the key
 * hangs). */
SMKI_MUST_CHECK int smki_key_open(const char *ref, const smki_hsm_opts *o, smki_key **out);
void smki_key_free(smki_key *k);
/* The public key of a reference without using the private key: for a token key, the
 * public-key object with the same label/id (no login needed); for file:, the key's
 * public half. */
SMKI_MUST_CHECK int smki_key_public_load(const char *ref, const smki_hsm_opts *o, EVP_PKEY **out);
const char *smki_key_ref(const smki_key *k);
SMKI_MUST_CHECK int smki_key_is_token(const smki_key *k);

/* A small record kept beside a key, outside any store, named name (lowercase letters,
 * digits, '-'): for a token key, a private data object on its token (CKO_DATA,
 * CKA_APPLICATION "smki", CKA_PRIVATE: read and written only in a session logged in
 * with the PIN the key was opened with); for a file: key (a lab), the file PATH.name.
 * put replaces: on a token the new object is made, then the old ones destroyed, so a
 * kill in between leaves two, never none. each calls fn with every value there (at
 * most 8; up to 512 octets each) and gives SMKI_E_NOTFOUND (without noise) when there
 * is none. The audit trail's anchor (ra/anchor.c). */
typedef int (*smki_note_fn)(const uint8_t *val, size_t len, void *arg);
SMKI_MUST_CHECK int smki_key_note_put(smki_key *k, const char *name, const uint8_t *val, size_t len);
SMKI_MUST_CHECK int smki_key_note_each(smki_key *k, const char *name, smki_note_fn fn, void *arg);
/* As put, for a record whose reader checks it and keeps two (one name each, the write
 * going to the older): beside a file: key, overwritten in place with one sync
 * (smki_file_overwrite; a crash may tear it); on a token, put. */
SMKI_MUST_CHECK int smki_key_note_overwrite(smki_key *k, const char *name, const uint8_t *val, size_t len);
/* Beside a file: key, an exclusive lock across processes (flock on the file PATH.name,
 * made empty if missing), for a writer that chooses which of its in-place notes to
 * overwrite and overwrites it: two processes on one home then never write the same
 * slot at once, nor one slot while the other is not yet synced. Waits for the holder;
 * the kernel releases it when a holder dies. *fd: to give to smki_key_note_unlock; -1
 * on a token (nothing to lock: a put never tears). */
SMKI_MUST_CHECK int smki_key_note_lock(smki_key *k, const char *name, int *fd);
void smki_key_note_unlock(int fd);
/* The same on a token directly, by the URI of a key on it (o->pin required). */
SMKI_MUST_CHECK int smki_token_note_put(const smki_hsm_opts *o, const char *key_uri, const char *name, const uint8_t *val, size_t len);
SMKI_MUST_CHECK int smki_token_note_each(const smki_hsm_opts *o, const char *key_uri, const char *name, smki_note_fn fn, void *arg);

/* ECDSA P-256 with SHA-256 over msg. fmt selects raw r||s (64 octets) or DER.
 * *sig_len is in: capacity of sig, out: length written. */
SMKI_MUST_CHECK int smki_key_sign(smki_key *k, const uint8_t *msg, size_t len, smki_sigfmt fmt, uint8_t *sig, size_t *sig_len);
/* Same over a 32-octet SHA-256 digest the caller computed. */
SMKI_MUST_CHECK int smki_key_sign_digest(smki_key *k, const uint8_t digest[32], smki_sigfmt fmt, uint8_t *sig, size_t *sig_len);
/* Static ECDH on P-256 (CKM_ECDH1_DERIVE in a token): z = x-coordinate of d*Q. */
SMKI_MUST_CHECK int smki_key_ecdh(smki_key *k, EVP_PKEY *peer, uint8_t z[32]);
/* The public half: a borrowed reference valid while the key is open. */
EVP_PKEY *smki_key_public(smki_key *k);

/* ---- Public keys, certificates, verification ------------------------------------- */
/* A P-256 public key from PEM or DER SubjectPublicKeyInfo, or from a certificate
 * (PEM or DER). Anything else, another curve or a point off the curve is refused. */
SMKI_MUST_CHECK int smki_pub_load(const uint8_t *data, size_t len, EVP_PKEY **out);
SMKI_MUST_CHECK int smki_pub_load_file(const char *path, EVP_PKEY **out);
SMKI_MUST_CHECK int smki_cert_load(const uint8_t *data, size_t len, X509 **out);
SMKI_MUST_CHECK int smki_cert_load_file(const char *path, X509 **out);
/* The same certificate as DER (re-encoded from PEM, or the DER checked as it is) in
 * out[cap]; SMKI_E_INPUT naming its size when it does not fit. */
SMKI_MUST_CHECK int smki_cert_der(const uint8_t *data, size_t len, uint8_t *out, size_t cap, size_t *out_len);
/* Refuse anything but an EC key on P-256. */
SMKI_MUST_CHECK int smki_pub_check_p256(EVP_PKEY *pub, const char *what);
SMKI_MUST_CHECK int smki_pub_to_pem(EVP_PKEY *pub, char **pem, size_t *len);
SMKI_MUST_CHECK int smki_pub_point(EVP_PKEY *pub, uint8_t point[SMKI_POINT_LEN]);

/* 0 when the signature verifies; SMKI_E_VERIFY when it does not; SMKI_E_INPUT when
 * the signature is not well formed for fmt. */
SMKI_MUST_CHECK int smki_verify(EVP_PKEY *pub, const uint8_t *msg, size_t len, smki_sigfmt fmt, const uint8_t *sig, size_t sig_len);
SMKI_MUST_CHECK int smki_verify_digest(EVP_PKEY *pub, const uint8_t digest[32], smki_sigfmt fmt, const uint8_t *sig, size_t sig_len);
/* Between the two signature forms. raw is 64 octets. */
SMKI_MUST_CHECK int smki_sig_raw_to_der(const uint8_t raw[64], uint8_t *der, size_t *der_len);
SMKI_MUST_CHECK int smki_sig_der_to_raw(const uint8_t *der, size_t der_len, uint8_t raw[64]);

/* ---- GBCS primitives (reference §5) ---------------------------------------------- */
/* NIST SP 800-56A single-step KDF with SHA-256, one round:
 * key = first 16 octets of SHA-256(00000001 || z || other_info). */
SMKI_MUST_CHECK int smki_kdf_sp800_56a(const uint8_t z[32], const uint8_t *other_info, size_t other_len, uint8_t key[16]);
/* GBCS OtherInfo: 60 85 74 06 08 03 00 || originator(8) || 09 || cra(1) || counter(8) || recipient(8). */
#define SMKI_GBCS_OTHERINFO_LEN 33
void smki_gbcs_other_info(const uint8_t originator[8], uint8_t cra, uint64_t counter, const uint8_t recipient[8],
                          uint8_t out[SMKI_GBCS_OTHERINFO_LEN]);
/* AES-128-GCM over no plaintext: the tag, cut to 12 octets. */
#define SMKI_GBCS_MAC_LEN 12
SMKI_MUST_CHECK int smki_gcm_mac12(const uint8_t key[16], const uint8_t iv[12], const uint8_t *aad, size_t aad_len,
                   uint8_t tag[SMKI_GBCS_MAC_LEN]);
/* Recompute and compare in constant time: 0 on match, SMKI_E_VERIFY otherwise. */
SMKI_MUST_CHECK int smki_gcm_mac12_verify(const uint8_t key[16], const uint8_t iv[12], const uint8_t *aad, size_t aad_len,
                          const uint8_t tag[SMKI_GBCS_MAC_LEN]);
/* The whole GBCS MAC key derivation from a key-agreement key and the peer's KA
 * public key: ECDH, then the KDF with the OtherInfo above. */
SMKI_MUST_CHECK int smki_gbcs_mac_key(smki_key *ka, EVP_PKEY *peer, const uint8_t originator[8], uint8_t cra, uint64_t counter,
                      const uint8_t recipient[8], uint8_t key[16]);

#endif
