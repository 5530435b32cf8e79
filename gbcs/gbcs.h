/* gbcs: GBCS messages (reference §5). The codec of General Signing APDUs (DF) and of
 * the General Ciphering wrapper (DD) that carries them with a 12-octet MAC; signing a
 * pre-command with a smki_key; verifying the signature and the MAC; and a folder of
 * certificates found by EUI-64. No crypto of its own: hsm.h does the primitives.
 *
 * Parsed messages point into the caller's bytes (no copies): keep the input alive as
 * long as the parsed struct. Every length is checked against the bytes really there.
 * Output buffers (*out) are malloc'd: the caller frees them. Functions keep no state:
 * parse, build, sign, wrap and verify are safe from several threads (a certdir is
 * read-only once open). */
#ifndef SMKI_GBCS_H
#define SMKI_GBCS_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/base.h"
#include "hsm/hsm.h"
#include "policy/policy.h"
#include "store/store.h"

#define SMKI_GBCS_TITLE_LEN 8     /* a system title: an EUI-64 */
#define SMKI_GBCS_DATETIME_LEN 12 /* date-time when present (0C + 12 octets) */
#define SMKI_GBCS_SIG_LEN 64      /* r || s (SMKI_SIG_RAW) */
/* GBCS MAC: SMKI_GBCS_MAC_LEN (12) from hsm.h. */
#define SMKI_GBCS_SC_AUTH 0x11    /* security control: authenticated only */
#define SMKI_GBCS_MAX_MSG (1u << 20) /* refuse files/messages above 1 MiB */

/* The CRA flag of the transaction-id. */
typedef enum {
    SMKI_GBCS_CRA_COMMAND = 1,
    SMKI_GBCS_CRA_RESPONSE = 2,
    SMKI_GBCS_CRA_ALERT = 3,
} smki_gbcs_cra;

/* What the outermost structure is. */
typedef enum {
    SMKI_GBCS_SIGNING = 1,   /* DF...: a General Signing APDU on its own (a pre-command, a
                                signed-not-wrapped command, a response or alert) */
    SMKI_GBCS_CIPHERING = 2, /* DD 00 00 00 00 00 00 <len> 11 <ic> DF... <MAC> */
    SMKI_GBCS_BLOCK = 3,     /* DD 09...: General Block Transfer routing header; only the
                                header fields are decoded (see smki_gbcs_block) */
} smki_gbcs_kind;

/* The signature field of a General Signing APDU. */
typedef enum {
    SMKI_GBCS_SIG_NONE = 0,    /* nothing after the content (a pre-command as the DCC returns it) */
    SMKI_GBCS_SIG_ABSENT = 1,  /* a single 00 (unsigned; some tools end pre-commands so) */
    SMKI_GBCS_SIG_PRESENT = 2, /* 40 || r(32) || s(32) */
} smki_gbcs_sig_state;

/* A General Signing APDU. Pointers point into the parsed input; offsets count from the
 * start of the whole parsed input (so they work for DF inside DD too). */
typedef struct {
    size_t offset;          /* of the DF tag */
    size_t len;             /* DF tag .. end of the signature field (incl. 00 / 40 r s) */
    uint8_t cra;            /* smki_gbcs_cra (1..3; anything else is refused) */
    uint64_t counter;       /* originator counter */
    const uint8_t *originator; /* 8 octets: business originator EUI-64 */
    const uint8_t *recipient;  /* 8 octets: business target EUI-64 */
    const uint8_t *date_time;  /* 12 octets, or NULL when absent (00) */
    const uint8_t *other_info; /* the whole other-information field (after its BER length) */
    size_t other_info_len;
    uint16_t message_code;  /* first 2 octets of other-info (e.g. 0x0019 ECS01a) */
    const uint8_t *supplementary_id; /* 8 octets (Unknown Remote Party messages), or NULL */
    int has_urp_counter;
    uint64_t urp_counter;   /* the counter after the supplementary remote party ID */
    const uint8_t *urp_cert; /* a DER certificate at the end of other-info, or NULL */
    size_t urp_cert_len;
    const uint8_t *other_info_rest; /* octets after the counter that are not one DER
                                       certificate (the URP response carries 8 more):
                                       NOT decoded, the reference does not describe them */
    size_t other_info_rest_len;
    const uint8_t *content; /* the payload (ZigBee, DLMS or ASN.1 DER): not decoded here */
    size_t content_len;
    smki_gbcs_sig_state sig_state;
    const uint8_t *signature; /* 64 octets r||s when SIG_PRESENT, else NULL */
    size_t signed_offset;   /* the signed region: after DF up to the end of content */
    size_t signed_len;
} smki_gbcs_signing;

/* The General Block Transfer routing header (DD 09). The reference (§5) says only that
 * large messages use it and that the header begins DD 09; the fields below are read
 * with the layout of the General Ciphering header (transaction-id, titles, date-time).
 * NOT decoded: everything after date-time (other-information, key-info, the block
 * number, last-block flag and the block data) is reported as body bytes only. */
typedef struct {
    uint8_t cra;
    uint64_t counter;
    const uint8_t *originator;
    const uint8_t *recipient;
    const uint8_t *date_time; /* or NULL */
    size_t body_offset;       /* the undecoded remainder */
    size_t body_len;
} smki_gbcs_block;

typedef struct {
    smki_gbcs_kind kind;
    const uint8_t *data;  /* the whole parsed input */
    size_t len;
    smki_gbcs_signing gsa; /* SIGNING and CIPHERING */
    /* CIPHERING only */
    uint8_t security_control; /* always SMKI_GBCS_SC_AUTH (anything else is refused) */
    uint32_t invocation_counter;
    const uint8_t *mac;       /* 12 octets */
    const uint8_t *aad_header; /* the 6 octets security control + the five empty header
                                  fields (transaction-id .. other-info) = 11 00 00 00 00 00 */
    size_t aad_offset;        /* AAD = aad_header(6) || data[aad_offset .. +aad_len] (the DF APDU) */
    size_t aad_len;
    /* BLOCK only */
    smki_gbcs_block block;
} smki_gbcs_msg;

/* ---- Parsing ---------------------------------------------------------------------
 * Binary bytes. DF: a General Signing APDU whose signature field may be none (the
 * bytes end with the content), 00 or 40 r s, and nothing may follow. DD 00..: the
 * wrapper; its BER length must cover exactly what follows; security control 11; the
 * DF inside must carry 00 or 40 r s and be followed by exactly the 12-octet MAC.
 * DD 09: the block transfer header (see above). Refusals are SMKI_E_INPUT naming the
 * field, the offset and what was expected and found. */
int smki_gbcs_parse(const uint8_t *data, size_t len, smki_gbcs_msg *out);

/* The bytes of a message file: hex text (RTDS style, whitespace anywhere between digit
 * pairs) or binary (anything that is not hex text). *out is malloc'd (caller frees). */
int smki_gbcs_decode_input(const uint8_t *data, size_t len, uint8_t **out, size_t *out_len);
int smki_gbcs_read_file(const char *path, uint8_t **out, size_t *out_len);

/* Names for printing. */
const char *smki_gbcs_kind_name(smki_gbcs_kind k);   /* "general-signing", "general-ciphering", "block-transfer" */
const char *smki_gbcs_cra_name(unsigned cra);       /* "command", "response", "alert", "unknown" */
smki_eui64_t smki_gbcs_eui(const uint8_t title[8]);

/* ---- Building ----------------------------------------------------------------------
 * Fields for a General Signing APDU. other_info NULL: built from message_code and the
 * optional supplementary_id / urp counter / urp_cert; otherwise copied as given
 * (message_code etc. ignored). sig_state chooses the ending: NONE (a pre-command),
 * ABSENT (00) or PRESENT (signature must point at 64 octets). */
typedef smki_gbcs_signing smki_gbcs_fields;

/* Encode a General Signing APDU (DF ...). *out malloc'd. Round-trips with parse. */
int smki_gbcs_build_signing(const smki_gbcs_fields *f, uint8_t **out, size_t *out_len);

/* Sign a pre-command (a DF APDU ending with the content, or with 00): ECDSA P-256 /
 * SHA-256 over the signed region with key, appending 40 || r || s. Refuses an APDU
 * that already carries a signature, a DD wrapper and trailing bytes. */
int smki_gbcs_sign(smki_key *key, const uint8_t *pre, size_t pre_len, uint8_t **out, size_t *out_len);

/* Verify the General Signing APDU's signature (of a SIGNING or CIPHERING message)
 * with the signer's public key: 0 if it verifies; SMKI_E_VERIFY if it does not or the
 * message carries no signature. */
int smki_gbcs_verify_signature(const smki_gbcs_msg *m, EVP_PKEY *signer);

/* Wrap a signed General Signing APDU into a command (General Ciphering with a MAC).
 * The MAC key is ECDH(own_ka, peer_ka) and the KDF over the APDU's originator, CRA,
 * counter and recipient (reference §5); IV = originator || invocation_counter. For a
 * command the ACB holds own_ka and peer_ka is the recipient device's KA key. Refuses
 * an APDU without its signature field (a pre-command not signed: use 00 for unsigned). */
int smki_gbcs_wrap(const uint8_t *gsa, size_t gsa_len, smki_key *own_ka, EVP_PKEY *peer_ka,
                   uint32_t invocation_counter, uint8_t **out, size_t *out_len);
/* The same MAC and wrap from the shared secret z = ECDH(own KA, peer KA), for callers
 * that keep z per peer (gateway, device model; wiped by them when done). */
int smki_gbcs_mac_z(const uint8_t z[32], const uint8_t *gsa, size_t gsa_len, uint32_t invocation_counter,
                    uint8_t mac[SMKI_GBCS_MAC_LEN]);
int smki_gbcs_wrap_z(const uint8_t *gsa, size_t gsa_len, const uint8_t z[32], uint32_t invocation_counter,
                     uint8_t **out, size_t *out_len);

/* Verify a CIPHERING message's MAC. The ECDH is symmetric, so either side verifies:
 * the ACB with its KA key and the device's KA public key, the device with its KA key
 * and the ACB's KA public key (responses and alerts: the recipient's KA key and the
 * originator's). 0 on match; SMKI_E_VERIFY on a wrong MAC; SMKI_E_INPUT if m has none. */
int smki_gbcs_verify_mac(const smki_gbcs_msg *m, smki_key *own_ka, EVP_PKEY *peer_ka);
/* The same computation, returning the 12 octets (to wrap, or to show what was expected). */
int smki_gbcs_compute_mac(const smki_gbcs_msg *m, smki_key *own_ka, EVP_PKEY *peer_ka,
                          uint8_t mac[SMKI_GBCS_MAC_LEN]);

/* ---- Certificates by EUI-64 ----------------------------------------------------------
 * What a certificate says about its subject, via the policy linter: the EUI-64
 * (organisation x500UniqueIdentifier or device hwSerialNum), DS/KA key usage, role. */
typedef struct {
    smki_eui64_t id;
    int has_id;
    unsigned key_usage;   /* SMKI_KU_* bits */
    int is_device;        /* a Device Certificate (empty subject) */
    int role;             /* Remote Party Role from the OU, -1 if none */
    time_t not_before, not_after;
} smki_gbcs_cert_info;
int smki_gbcs_cert_info_get(X509 *cert, smki_gbcs_cert_info *out);
/* 0 when cert is valid at `at` (notBefore <= at <= notAfter); SMKI_E_REFUSED naming
 * the dates otherwise. */
int smki_gbcs_cert_check_time(X509 *cert, time_t at, const char *what);

/* A folder of certificates, each found by EUI-64 and usage: files named
 * <eui64 lowercase hex>-ds.pem / -ka.pem as in the keystore, and any other *.pem /
 * *.der / *.crt / *.cer certificate in the folder whatever its name (by its EUI-64).
 * Files that hold no certificate (keys) are ignored. */
typedef struct smki_gbcs_certdir smki_gbcs_certdir;
int smki_gbcs_certdir_open(const char *dir, smki_gbcs_certdir **out);
void smki_gbcs_certdir_free(smki_gbcs_certdir *d);
/* usage: SMKI_USAGE_DS or SMKI_USAGE_KA. *cert is borrowed (valid while d is open).
 * SMKI_E_NOTFOUND naming the EUI-64 and usage when there is none. */
int smki_gbcs_certdir_find(const smki_gbcs_certdir *d, const uint8_t title[8], smki_key_usage usage, X509 **cert);
/* The same, with what the certificate says about its subject (borrowed, like *cert). */
int smki_gbcs_certdir_find_info(const smki_gbcs_certdir *d, const uint8_t title[8], smki_key_usage usage, X509 **cert,
                                const smki_gbcs_cert_info **info);
size_t smki_gbcs_certdir_count(const smki_gbcs_certdir *d);

/* ---- Signing as an organisation (what `smki gbcs sign` does) -----------------------
 * Correlation of a pre-command with what the caller meant to sign: each set field must
 * match, else SMKI_E_REFUSED naming the field, what was expected and what was found. */
typedef struct {
    int has_code;
    uint16_t code;            /* message code (other-information's first 2 octets) */
    int has_target;
    smki_eui64_t target;      /* recipient (business target) */
    int has_counter;
    uint64_t counter_min, counter_max; /* originator counter, inclusive */
} smki_gbcs_expect;
int smki_gbcs_check_expect(const smki_gbcs_signing *g, const smki_gbcs_expect *e);

/* The certificate may sign this APDU: an organisation certificate (x500UniqueIdentifier)
 * with digitalSignature, whose EUI-64 is the APDU's originator, and whose public key is
 * key's (when key is given). SMKI_E_REFUSED otherwise, naming what differs. */
int smki_gbcs_check_signer(X509 *cert, smki_key *key, const smki_gbcs_signing *g);

/* Parse, correlate (e may be NULL), check the signer, then smki_gbcs_sign. */
int smki_gbcs_sign_as(smki_key *key, X509 *cert, const smki_gbcs_expect *e, const uint8_t *pre, size_t pre_len,
                      uint8_t **out, size_t *out_len);

/* "2020-01-01T00:00:00Z", "2020-01-01" (midnight UTC) or "now". SMKI_E_USAGE otherwise. */
int smki_gbcs_time_parse(const char *text, time_t *out);

/* ---- Whole-message verification (what `smki gbcs verify` does for each file) ------ */
typedef struct {
    int signature_checked; /* 1 when the signature was verified (all commands carry one) */
    int mac_checked;       /* 1 for a CIPHERING message whose MAC was verified */
    smki_eui64_t signer;   /* the originator whose DS certificate was used */
    smki_eui64_t peer;     /* the KA certificate used for the MAC */
} smki_gbcs_verify_report;
/* A command (CRA 01). Signed (40 r s): the signature with the originator's DS
 * certificate from d, which must be valid at `at`. Unsigned (00; GBCS non-critical
 * commands): the MAC is its only protection, so it must be a CIPHERING message. For a
 * CIPHERING message the MAC is checked with own_ka (the ACB's KA key) and the
 * recipient's KA certificate from d. A device-originated unsigned command (HAN-local,
 * e.g. PCS01 from a PPMID) is MACed under device-to-device KA keys: refused as not
 * verifiable here. own_ka may be NULL for DF-only messages. Failures: SMKI_E_VERIFY
 * (signature/MAC/unverifiable), SMKI_E_REFUSED (expired signer, not a command,
 * ambiguous certificates), SMKI_E_NOTFOUND (no certificate). */
int smki_gbcs_verify_command(const smki_gbcs_msg *m, const smki_gbcs_certdir *d, smki_key *own_ka, time_t at,
                             smki_gbcs_verify_report *rep);

/* The same certificate folder, searched by public key: the certificate of d whose key
 * is pub and whose keyUsage has `usage` (borrowed). SMKI_E_NOTFOUND when none. */
int smki_gbcs_certdir_find_pubkey(const smki_gbcs_certdir *d, EVP_PKEY *pub, smki_key_usage usage, X509 **cert,
                                  const smki_gbcs_cert_info **info);

/* ---- Commands, responses and alerts (what `smki gbcs verify` does) --------------------
 * A KA private key of a recipient (a User, the ACB), bound to an EUI-64 by the KA
 * certificate in the folder that holds its public key: a response's MAC is checked with
 * the key of the EUI-64 the message names as recipient. */
typedef struct {
    smki_key *key;     /* borrowed */
    smki_eui64_t id;
} smki_gbcs_ka_key;
/* SMKI_E_NOTFOUND (naming the key) when no KA certificate in d holds key's public key. */
int smki_gbcs_ka_key_bind(const smki_gbcs_certdir *d, smki_key *key, smki_gbcs_ka_key *out);

typedef struct {
    smki_key *acb_ka;                        /* commands' MAC: the ACB's KA key, or NULL */
    const smki_gbcs_ka_key *recipient_keys;  /* responses' and alerts' MAC */
    size_t nrecipient_keys;
    time_t at;                               /* signer certificates must be valid then */
} smki_gbcs_verify_opts;

/* Why a message did not verify: stable names (docs/gbcs-verify.md), "" when it did.
 *   structure.malformed    the bytes are not a GBCS message (CLI: parse failure)
 *   structure.unsupported  a block-transfer message (its body is not decoded)
 *   structure.unprotected  neither a signature nor a MAC to check
 *   cert.not-found         no DS (signature) or KA (MAC) certificate of the party
 *   cert.ambiguous         several certificates of the party and none canonically named
 *   cert.expired           the signer's DS certificate is not valid at `at`
 *   signature.invalid      the signature does not verify with the originator's DS key
 *   mac.no-key             no KA private key for the recipient (--recipient-key/--acb-key)
 *   mac.invalid            the MAC does not verify under the recipient's (or ACB's) KA key
 *   counter.replay         the counter equals the last one seen (see smki_gbcs_counters)
 *   counter.reordered      the counter is below the last one seen */
typedef struct {
    uint8_t cra;
    int signature_checked;    /* the General Signing signature verified */
    int mac_checked;          /* the General Ciphering MAC verified */
    int device_to_device;     /* MACed between two devices (both titles hold Device
                                 Certificates): no remote party's key can check that MAC.
                                 Reported, not a failure; signature_checked still says
                                 whether a signature was verified */
    smki_eui64_t originator, recipient;
    const char *reason;       /* the name above on failure, "" on success */
} smki_gbcs_check;

/* Verify one parsed message of any CRA flag. Command: as smki_gbcs_verify_command (a
 * device-originated HAN-local one is reported device_to_device). Response or alert:
 * signature (40 r s) with the originator's (device's) DS certificate from d, valid at
 * o->at; MAC (DD) with the recipient's KA key from o->recipient_keys and the
 * originator's KA certificate from d; at least one of the two must be there. Returns 0
 * when every protection present verified (or the MAC is device-to-device), else the
 * error with c->reason naming it. */
int smki_gbcs_verify_message(const smki_gbcs_msg *m, const smki_gbcs_certdir *d, const smki_gbcs_verify_opts *o,
                             smki_gbcs_check *c);

/* ---- Counters seen by a receiver ---------------------------------------------------------
 * A User's system keeps, per (originator, recipient, CRA flag), the highest counter of the
 * messages that verified: a device's response echoes the counter of the User's command
 * and the User's commands to a device go out in increasing order; a device's alerts carry
 * its own strictly increasing counter. So a counter at the mark is a replay and one below
 * it is out of order: both refused. The state is a text file the User keeps beside its
 * system (one line per key: `ORIGINATOR RECIPIENT CRA COUNTER`, EUI-64s as 16 hex digits,
 * CRA 1-3, counter decimal; '#' comments), held under an exclusive lock (PATH.lock) from
 * open to free so two verifiers cannot interleave, and rewritten atomically by save. */
typedef struct smki_gbcs_counters smki_gbcs_counters;
#define SMKI_GBCS_COUNTERS_MAX 1000000u /* keys in one file */
/* Bytes of a counters file (name labels errors "NAME:LINE: what"). */
int smki_gbcs_counters_parse(const uint8_t *data, size_t len, const char *name, smki_gbcs_counters **out);
/* Lock PATH.lock (SMKI_E_LOCKED if another process holds it), then read PATH (missing:
 * empty). */
int smki_gbcs_counters_open(const char *path, smki_gbcs_counters **out);
/* 0 when g's counter is above the mark for its key; SMKI_E_REFUSED with *reason
 * "counter.replay" or "counter.reordered" otherwise. */
int smki_gbcs_counters_check(const smki_gbcs_counters *c, const smki_gbcs_signing *g, const char **reason);
/* Raise the mark for g's key to g's counter (after it verified). */
int smki_gbcs_counters_note(smki_gbcs_counters *c, const smki_gbcs_signing *g);
size_t smki_gbcs_counters_count(const smki_gbcs_counters *c);
/* Write the state back to the path it was opened from (atomically). */
int smki_gbcs_counters_save(const smki_gbcs_counters *c);
void smki_gbcs_counters_free(smki_gbcs_counters *c); /* releases the lock */


/* ===================================================================================
 * The device model (gbcs/device.c, device_rx.c, device_der.c; branch gbcs-device).
 * A GBCS device as the DCC's tests see it: its EUI-64, its own DS and KA keys (in the
 * token), its trust anchor cells and a sequence-number floor per Remote Party Role, all
 * in the store. It receives commands (General Ciphering around General Signing,
 * reference §5), verifies them in the order a device must (recipient, MAC, signature by
 * the cell of the originator's role, counter above the floor, permission) and acts on
 * CS02a/b/c (reference §6). Refusals produce the GBCS alert they correspond to.
 * docs/gbcs-device.md has the details (alert and status codes, the RTDS replay mode).
 * ========================================================================================== */
#include "store/store.h"

/* ---- Trust anchor cells (reference §6) ------------------------------------------------- */
typedef enum { SMKI_CELL_MANAGEMENT = 0, SMKI_CELL_PREPAYMENT = 1 } smki_cell_usage;

/* TrustAnchorCellIdentifier ::= SEQUENCE { remotePartyRole INTEGER, keyUsage BIT STRING,
 * cellUsage INTEGER DEFAULT management }. key_usage holds the first octet of the X.509
 * KeyUsage bits: SMKI_KU_DIGITAL_SIGNATURE (0x80), SMKI_KU_KEY_AGREEMENT (0x08) or, for
 * the root cell, SMKI_KU_KEY_CERT_SIGN (0x04). */
typedef struct {
    uint8_t role;
    uint8_t key_usage;
    uint8_t cell_usage;
} smki_ta_cell_id;

#define SMKI_CELL_CERT_MAX 2048
typedef struct {
    smki_ta_cell_id id;
    uint8_t subject_id[8];    /* the holder's EUI-64 (x500UniqueIdentifier) */
    uint8_t ski[8];           /* subjectKeyIdentifier */
    int has_key;              /* point holds the public key */
    uint8_t point[SMKI_POINT_LEN];
    size_t cert_len;          /* 0: anchor without certificate (only the RTDS root) */
    uint8_t cert[SMKI_CELL_CERT_MAX];
} smki_ta_cell;

/* "supplier/DS/management" */
void smki_cell_id_format(const smki_ta_cell_id *id, char *out, size_t cap);
/* "supplier:ds", "02:ka:prepayment", "root", "acb:ka": role (name or 2 hex digits),
 * usage ds|ka|cert (root default cert), cell usage management (default)|prepayment. */
int smki_cell_id_parse(const char *text, smki_ta_cell_id *out);

/* A cell from a certificate (DER or PEM): role from the OU, usage from keyUsage, subject
 * ID, SKI, key. The root cell takes a self-signed root CA certificate. cell_usage is
 * given (a certificate does not say it). */
int smki_cell_from_cert(const uint8_t *data, size_t len, uint8_t cell_usage, smki_ta_cell *out);

/* ---- The device in the store ------------------------------------------------------------ */
typedef struct smki_device smki_device;

#define SMKI_DEVICE_MAX_CELLS 24
#define SMKI_DEVICE_FLAG_RTDS 0x1u /* an RTDS replay model: no private keys of its own */

typedef struct {
    const char *token;          /* token label for the device's keys (create) */
    const smki_hsm_opts *hsm;
    /* Optional out (create): the KA key's CS02c-shaped CSR (malloc'd). The KA key signs
     * that CSR at birth and nothing ever after (smki_key_generate_ka_sign_once), so this
     * is the only moment a CSR for it can be had; NULL: it is made and dropped. */
    uint8_t **ka_csr;
    size_t *ka_csr_len;
    /* Optional out (create): the DS key's CS02c-shaped CSR (malloc'd), made with the same
     * hwType as the KA key's, for 'smki ca issue'; NULL: none is made. */
    uint8_t **ds_csr;
    size_t *ds_csr_len;
} smki_device_keys_opts;

/* The store's database names a device uses; open before any transaction. */
int smki_device_dbs(smki_store *s);

/* Create a device with DS and KA keys generated in the token (labels
 * "dev-<eui>-ds" / "dev-<eui>-ka"; the KA key is a sign-once key that signs only its
 * own CSR, see ko->ka_csr). Refuses (SMKI_E_EXISTS) a device already there. */
int smki_device_create(smki_store *s, const smki_eui64_t *eui, const smki_device_keys_opts *ko);
/* Create the RTDS replay model of a device from the RTDS keystore folder: its
 * certificates (<eui>-ds.pem, -ka.pem), no private keys, and the cells the RTDS device
 * holds: supplier 90b3d51f30010000 (DS, KA, prepayment KA), network operator
 * 90b3d51f30020000 (DS, KA), ACB 90b3d51f30000002 (DS, KA), transitional CoS
 * 90b3d51f30000004 (DS), recovery 90b3d51f30000001 (DS), WAN provider 90b3d51f30000007
 * (DS), and the root ZA as an anchor by SKI only (the RTDS does not publish ZA). */
int smki_device_create_rtds(smki_store *s, const smki_eui64_t *eui, const char *keystore_dir);

/* A handle may be shared by threads for smki_device_verify; smki_device_receive (which
 * commits and reloads the handle's cells and floors) must not run beside other calls
 * on the same handle. */
int smki_device_open(smki_store *s, const smki_eui64_t *eui, const smki_hsm_opts *hsm, smki_device **out);
void smki_device_free(smki_device *d); /* wipes the cached ECDH secrets */

/* Load (replace) one cell directly: provisioning at manufacture, outside GBCS. */
int smki_device_load_cell(smki_store *s, const smki_eui64_t *eui, const smki_ta_cell *cell);
/* Set a floor directly (provisioning, tests). */
int smki_device_set_floor(smki_store *s, const smki_eui64_t *eui, uint8_t role, uint64_t floor);

typedef struct {
    smki_eui64_t eui;
    unsigned flags;
    char ds_ref[SMKI_KEY_URI_MAX];    /* "" for an RTDS model */
    char ka_ref[SMKI_KEY_URI_MAX];
    uint64_t alert_counter;           /* last counter used on a response or alert */
    size_t ncells;
    const smki_ta_cell *cells;        /* borrowed from the device */
    uint64_t floors[256];             /* per Remote Party Role */
    uint8_t has_floor[256];
} smki_device_info;
int smki_device_describe(smki_device *d, smki_device_info *out);
const smki_ta_cell *smki_device_cell(smki_device *d, const smki_ta_cell_id *id);

/* ---- Receiving a command ---------------------------------------------------------------- */
typedef enum {
    SMKI_RX_ACCEPTED = 0,
    SMKI_RX_MALFORMED,       /* not a command the device can read: discarded, no alert */
    SMKI_RX_NOT_RECIPIENT,   /* A3 */
    SMKI_RX_BAD_MAC,         /* A2 */
    SMKI_RX_NO_CELL,         /* A2: no trust anchor of the originator's role holds its key */
    SMKI_RX_BAD_SIGNATURE,   /* A2 */
    SMKI_RX_REPLAY,          /* counter not above the floor: A2 (see docs/gbcs-device.md) */
    SMKI_RX_NO_PERMISSION,   /* A4 */
    SMKI_RX_COMMAND_FAILED,  /* verified, the command ran and failed: a response says how */
} smki_rx_verdict;
const char *smki_rx_verdict_name(smki_rx_verdict v); /* "not-recipient", ... */

/* How the General Ciphering MAC is checked. DEVICE_KEY is the only mode of a real
 * device: ECDH between its own KA key (token) and the ACB's KA cell. RTDS_REPLAY exists
 * because the RTDS does not publish the devices' private keys: the same MAC is
 * recomputed from the ACB side with the ACB's published KA private key and the device's
 * KA certificate. It is refused on a device that has its own keys, and it also accepts a
 * certification path whose top is matched to the root cell by SKI (the RTDS does not
 * publish the root ZA). Results say which mode checked the MAC. */
typedef enum { SMKI_MAC_DEVICE_KEY = 0, SMKI_MAC_RTDS_REPLAY = 1 } smki_mac_mode;

typedef struct {
    smki_mac_mode mac_mode;
    smki_key *rtds_acb_ka;      /* RTDS_REPLAY only: the ACB's KA private key */
    time_t now;                 /* 0: time(NULL); for time-based certificate checks */
    int dry_run;                /* verify and build the response, change nothing */
    /* GBCS alert codes (not in the reference: configuration, [device] alert_a2 ...). */
    uint16_t alert_a2, alert_a3, alert_a4, alert_replay;
} smki_rx_opts;
void smki_rx_opts_default(smki_rx_opts *o);
/* The alert codes of [device] alert_a2, alert_a3, alert_a4, alert_replay in conf (hex,
 * 0001..FFFF) over o's; a key not set leaves o's code. A malformed value is refused
 * (SMKI_E_USAGE, naming the key) rather than silently replaced by the default. */
SMKI_MUST_CHECK int smki_rx_opts_conf(smki_rx_opts *o, const smki_conf *conf);

/* CS02b status codes (reference §6) */
enum {
    SMKI_CS02B_SUCCESS = 0,
    SMKI_CS02B_BAD_CERTIFICATE = 5,
    SMKI_CS02B_NO_TRUST_ANCHOR = 10,
    SMKI_CS02B_INSUFFICIENT_MEMORY = 17,
    SMKI_CS02B_TRUST_ANCHOR_NOT_FOUND = 25,
    SMKI_CS02B_RESOURCES_BUSY = 30,
    SMKI_CS02B_OTHER = 127,
};
#define SMKI_CS02B_MAX_REPLACEMENTS 8

typedef struct {
    smki_ta_cell_id id;
    uint8_t status;
    char why[160];
    uint8_t old_subject[8], old_ski[8], new_subject[8], new_ski[8];
} smki_cs02b_outcome;

typedef struct {
    smki_rx_verdict verdict;
    char reason[SMKI_ERR_MSG_MAX];
    uint16_t alert_code;         /* 0: no alert */
    uint16_t message_code;
    uint8_t cra;
    uint64_t counter;
    smki_eui64_t originator, recipient;
    int role;                    /* the role whose cell verified the signature, -1 none */
    const char *mac_check;       /* "device-ka", "rtds-replay-acb-ka", "none" */
    const char *action;          /* "cs02b-update", "cs02a-details", "cs02c-csr", "acknowledged" */
    int applied;                 /* state changed (cells, floors) */
    uint8_t mode;                /* CS02b credentialsReplacementMode */
    size_t noutcomes;
    smki_cs02b_outcome outcomes[SMKI_CS02B_MAX_REPLACEMENTS];
    uint8_t *out;                /* the response or alert APDU (General Signing), or NULL */
    size_t out_len;
    int out_is_alert;
    int out_signed;              /* critical (a response to a signed command, an alert): signed
                                    with the device's DS key; 0 when MACed instead, and on an
                                    RTDS model (no keys): signature octet 00 */
    int out_maced;               /* non-critical (a response to an unsigned command): wrapped
                                    (DD) with the MAC for the recipient's KA cell, not signed */
    size_t cancelled;            /* a CS02b cancellation: how many pending ones it removed */
    time_t executed;             /* smki_device_run_due: the execution date-time */
} smki_rx_result;
void smki_rx_result_clear(smki_rx_result *r);

/* Verify a command and act on it. Returns 0 when the message was judged (accepted or
 * refused: r->verdict says which, r->out holds the response or alert), negative on an
 * internal failure (store, token). State changes (cells, floors, counters) are committed
 * in one store transaction or not at all. */
int smki_device_receive(smki_device *d, smki_store *s, const uint8_t *msg, size_t len, const smki_rx_opts *o,
                        smki_rx_result *r);
/* Future-dated commands (a CS02b with an executionDateTime after o->now) are verified and
 * answered SEQUENCE { NULL } on receipt (action "cs02b-scheduled"), their authoriser's
 * counter spent, and kept; one whose executionDateTime is 99991231235959Z cancels the
 * pending ones of its message code ("cs02b-cancel"). This runs those due at o->now, oldest
 * first: each is checked against the cells as they are then, applied or not (all or
 * nothing, as on receipt), and answered by an alert to its originator, signed: 0x8F66
 * (success) or 0x8F67 (a replacement refused), content SEQUENCE { alertCode,
 * executionDateTime, the CS02b outcome } as the RTDS 8F66/8F67 alerts carry. results[i]
 * (cap of them; *n filled) hold the alerts; the rest wait for the next run. */
#define SMKI_ALERT_FUTURE_DATED_OK 0x8F66
#define SMKI_ALERT_FUTURE_DATED_FAILED 0x8F67
int smki_device_run_due(smki_device *d, smki_store *s, const smki_rx_opts *o, smki_rx_result *results, size_t cap,
                        size_t *n);
/* Only the checks (recipient, MAC, signature, floor, permission); nothing built or
 * written. For the bench and the gateway-side tests. */
int smki_device_verify(smki_device *d, const uint8_t *msg, size_t len, const smki_rx_opts *o, smki_rx_result *r);

/* ---- CS02 payloads (reference §6) -------------------------------------------------------- */
/* The CS02c PKCS#10 request of a key: empty subject, extensionRequest with critical
 * keyUsage (DS or KA) and a critical SAN hardwareModuleName {hw_type, EUI-64}. Signed
 * by the key itself. *der is malloc'd. */
int smki_cs02c_csr(smki_key *k, smki_key_usage usage, const smki_eui64_t *eui, const char *hw_type_oid, uint8_t **der,
                   size_t *len);
/* A new KA key in the token with its CS02c CSR: the key signs that CSR at birth and the
 * token refuses it every signature after (smki_key_generate_ka_sign_once). */
int smki_cs02c_ka_key(const smki_hsm_opts *hsm, const char *token, const char *label, const smki_eui64_t *eui,
                      const char *hw_type_oid, char uri[SMKI_KEY_URI_MAX], uint8_t **der, size_t *len);

/* Build a command for tests and the demo: General Signing (signed with ds, raw r||s over
 * the octets after DF) wrapped in General Ciphering with the MAC from acb_ka and the
 * device's KA public key. ds NULL: unsigned (00). acb_ka NULL: the signed APDU alone. */
int smki_gbcs_command_build(smki_key *ds, smki_key *acb_ka, EVP_PKEY *device_ka, const smki_eui64_t *originator,
                            const smki_eui64_t *recipient, uint64_t counter, uint16_t message_code,
                            const uint8_t *content, size_t content_len, uint8_t **out, size_t *out_len);

/* The CS02b command content of a replacement request (tests, demo). */
typedef struct {
    uint8_t mode;
    int has_auth_cell;
    smki_ta_cell_id auth_cell;
    uint64_t auth_seq;
    int has_new_floor;
    uint64_t new_floor;
    int apply_time_checks;       /* 0 disapply (as RTDS), 1 apply */
    const uint8_t *symmetric_key; /* plaintextSymmetricKey [0] (anyByContingency); NULL: absent */
    size_t symmetric_len;
    size_t nother;
    struct { uint8_t role; uint64_t floor; } other[8];
    size_t nrepl;
    struct { const uint8_t *cert; size_t len; smki_ta_cell_id target; } repl[SMKI_CS02B_MAX_REPLACEMENTS];
    size_t npath;
    struct { const uint8_t *cert; size_t len; } path[4];
} smki_cs02b_request;
int smki_cs02b_build(const smki_cs02b_request *q, uint8_t **der, size_t *len);

/* GBCS message codes the device model knows. CS02b has one code per mode (0x0100+mode,
 * as the RTDS shows for modes 2, 3, 6 and 7). */
#define SMKI_MC_CS02A 0x0008
#define SMKI_MC_CS02C 0x000A
#define SMKI_MC_ECS01A 0x0019
#define SMKI_MC_CS02B(mode) ((uint16_t)(0x0100u + (mode)))
#define SMKI_MC_ASN1_ALERT 0x00CB /* as the RTDS 8F66 CS02b alerts carry */

/* ==========================================================================================
 * The gateway (branch gbcs-gateway; gateway.c, registry.c, thresholds.c, quarantine.c,
 * signed_file.c). The DCC User Gateway's checks on a signed pre-command (reference §7), in
 * order, each refusal with a stable reason code (docs/gateway.md); the small registry they
 * read (users, role eligibility, device inventory, counters) in the store; anomaly
 * thresholds from a signed CSV file, quarantine instead of drop; and the ACB's MAC that
 * turns a passing message into a command (reference §5).
 * ========================================================================================== */

/* ---- Signed files ------------------------------------------------------------------------
 * Detached signatures over text files (anomaly-threshold CSV): ECDSA P-256 with SHA-256
 * over the file's CANONICAL bytes, where every CRLF and every lone CR becomes LF (so a file
 * that passed through Windows or an old Mac still verifies). The signature file is the
 * binary DER ECDSA-Sig-Value, as `openssl dgst -sha256 -sign` writes it: over a file that
 * already has LF line ends, `openssl dgst -sha256 -verify pub.pem -signature SIG FILE`
 * verifies it. */
#define SMKI_SIGNED_FILE_MAX (16u << 20)

/* The canonical form (fresh buffer, caller frees; an empty input gives an empty buffer). */
int smki_signed_file_canonical(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len);
/* Sign / verify the canonical form of data. sig holds SMKI_SIG_MAX octets. verify: 0, or
 * SMKI_E_VERIFY (does not verify), SMKI_E_INPUT (signature not DER). */
int smki_signed_file_sign(smki_key *k, const uint8_t *data, size_t len, uint8_t *sig, size_t *sig_len);
int smki_signed_file_verify(EVP_PKEY *pub, const uint8_t *data, size_t len, const uint8_t *sig, size_t sig_len);

/* ---- Anomaly thresholds ------------------------------------------------------------------
 * CSV, one rule a line:   user,message_code,window_seconds,max_count[,kind]
 *   user            EUI-64 (16 hex digits or hyphenated)
 *   message_code    4 hex digits (GBCS message code, e.g. 0019 for ECS01a) or * for all
 *   window_seconds  1 .. 31622400 (a leap year)
 *   max_count       1 .. 10000: at most this many messages of the user (and code) pass in
 *                   any window of that length; the next is quarantined
 *   kind            command (default), response or alert: a command rule counts the
 *                   commands the user sends; a response or alert rule counts the responses
 *                   or alerts addressed to the user (Stage 2 ¶136: their own thresholds)
 * Lines starting with '#' and blank lines are ignored; the first other line may be the
 * exact header (with or without ",kind"). No blanks around fields, no quoting. LF, CRLF or
 * CR line ends. The same (user, code, window, kind) twice is refused. Errors say
 * "NAME:LINE:COLUMN: what". */
#define SMKI_THRESHOLD_MAX_COUNT 10000u
#define SMKI_THRESHOLD_MAX_WINDOW 31622400u
#define SMKI_THRESHOLD_MAX_RULES 4096u
#define SMKI_CODE_ANY 0xFFFFFFFFu

typedef struct {
    smki_eui64_t user;
    uint32_t code; /* 0..0xFFFF, or SMKI_CODE_ANY */
    uint32_t window;
    uint32_t max_count;
    uint8_t kind;  /* smki_gbcs_cra: what it counts (commands sent, responses or alerts received) */
} smki_threshold;

typedef struct {
    size_t count;
    smki_threshold *rules;
} smki_thresholds;

int smki_thresholds_parse(const uint8_t *data, size_t len, const char *name, smki_thresholds *out);
void smki_thresholds_free(smki_thresholds *t);

/* ---- The registry (store databases "gw.*"; the RA will own users later) ------------------ */
/* Open the gateway's databases; call before any transaction on the store. */
int smki_gw_dbs(smki_store *s);

#define SMKI_GW_CERT_MAX 2048
#define SMKI_GW_USER_ROLES_MAX 64
typedef struct {
    smki_eui64_t id;
    uint8_t role;       /* Remote Party Role (reference §3) of this User ID */
    int suspended;
    size_t cert_len;    /* the User's DS certificate (DER) */
    uint8_t cert[SMKI_GW_CERT_MAX];
    char user_roles[SMKI_GW_USER_ROLES_MAX]; /* User Roles, "EIS,GIS"; "" none given */
} smki_gw_user;

/* cert: DER or PEM of the User's digital-signature certificate. Refuses (SMKI_E_EXISTS) a
 * User ID already there, and (SMKI_E_REFUSED) a certificate whose subject EUI-64 is not id. */
int smki_gw_user_add(smki_store *s, const smki_eui64_t *id, uint8_t role, const uint8_t *cert, size_t cert_len);
int smki_gw_user_get(smki_store *s, const smki_eui64_t *id, smki_gw_user *out);
int smki_gw_user_set_suspended(smki_store *s, const smki_eui64_t *id, int suspended);
/* The User Roles of a User ID (reference §2: EIS, EES, GIS, ENO, GNO, OU, and the DCC's
 * roles, named as the Service Request eligibility table names them): comma-separated
 * codes, each [A-Z][A-Z0-9]{0,7}, any case (kept upper case), at most 8. "" clears. */
int smki_gw_user_set_roles(smki_store *s, const smki_eui64_t *id, const char *user_roles);
/* "eis, Gis" -> "EIS,GIS"; SMKI_E_USAGE naming a malformed code. */
int smki_user_roles_canon(const char *text, char *out, size_t cap);

/* ---- Eligibility by User Role per Service Reference Variant (data) --------------------------
 * The DCC's Service Request eligibility, as a CSV file the operator loads:
 *   srv,use_case,message_code,user_roles
 *   1.1.1,ECS01a,0019,EIS
 *   1.1.1,GCS01a,006B,GIS
 * srv: the Service Reference Variant (digits and dots); use_case: the GBCS use case;
 * message_code: 4 hex digits (what the pre-command carries); user_roles: the User Roles
 * eligible, separated by blanks. '#' comments, blank lines and that exact header allowed;
 * LF or CRLF. The same (srv, message_code) twice is refused. Errors say "NAME:LINE: what".
 * Once a table is loaded, a command passes eligibility only when one of its sender's User
 * Roles is listed for a Service Reference Variant whose message code it carries: an Import
 * Supplier and a Gas Supplier no longer look alike. Without a table the Remote Party Role
 * table applies (smki_gw_elig_*). */
#define SMKI_SRV_MAX_ROWS 4096u
#define SMKI_SRV_MAX_ROLE_NAMES 32u
typedef struct {
    char srv[17];
    char use_case[25];
    uint16_t code;
    uint32_t roles; /* bits over smki_srv_table.role_names */
} smki_srv_row;
typedef struct {
    size_t count;
    smki_srv_row *rows;
    size_t nroles;
    char role_names[SMKI_SRV_MAX_ROLE_NAMES][9];
} smki_srv_table;
int smki_srv_table_parse(const uint8_t *data, size_t len, const char *name, smki_srv_table *out);
void smki_srv_table_free(smki_srv_table *t);
/* The table's bits for a User's roles ("EIS,GIS"; names the table does not use: none). */
uint32_t smki_srv_roles_mask(const smki_srv_table *t, const char *user_roles);
/* Store (replace) the table, after parsing it; an empty file removes it. *rows: how many. */
int smki_gw_srv_load(smki_store *s, const uint8_t *csv, size_t len, size_t *rows);
/* The table in force (count 0: none loaded). Caller frees with smki_srv_table_free. */
int smki_gw_srv_get(smki_store *s, smki_srv_table *out);
typedef int (*smki_gw_user_fn)(const smki_gw_user *u, void *arg);
int smki_gw_user_list(smki_store *s, smki_gw_user_fn fn, void *arg);

/* Message-code eligibility per role. Until the first change the built-in default applies
 * (the RTDS message codes, see gateway.c: the full GBCS table is configuration); the first
 * add/remove copies the default into the store, which then holds the whole table. */
typedef struct {
    uint8_t role;
    uint16_t code;
    const char *name; /* "ECS01a" for a default row, "" otherwise */
} smki_gw_elig;
int smki_gw_elig_set(smki_store *s, uint8_t role, uint16_t code, int allow);
int smki_gw_elig_allows(smki_store *s, uint8_t role, uint16_t code, int *allowed);
/* Every row (caller frees *rows); *from_default when the built-in table is in force. */
int smki_gw_elig_list(smki_store *s, smki_gw_elig **rows, size_t *count, int *from_default);

/* Device inventory. Commands are allowed to installed and commissioned devices only. */
typedef enum {
    SMKI_DEV_PENDING = 1,
    SMKI_DEV_INSTALLED = 2,
    SMKI_DEV_COMMISSIONED = 3,
    SMKI_DEV_SUSPENDED = 4,
    SMKI_DEV_DECOMMISSIONED = 5,
} smki_dev_status;
const char *smki_dev_status_name(int status);
int smki_dev_status_parse(const char *text, int *status);
int smki_dev_status_allows_commands(int status);

#define SMKI_GW_SPKI_MAX 128
typedef struct {
    smki_eui64_t id;
    int status;
    uint32_t invocation; /* the next General Ciphering invocation counter for this device */
    size_t ka_len;       /* the device's KA public key, DER SubjectPublicKeyInfo; 0: none */
    uint8_t ka_spki[SMKI_GW_SPKI_MAX];
    char policy[SMKI_OID_TEXT_MAX]; /* the certificate policy of its KA certificate: its
                                       environment; "" when added by public key alone */
} smki_gw_device;

/* ka: the device's KA certificate or public key (PEM or DER), or NULL. A certificate's
 * first policy OID is kept: the gateway checks the device's environment against its own. */
int smki_gw_device_add(smki_store *s, const smki_eui64_t *id, int status, const uint8_t *ka, size_t ka_len);
int smki_gw_device_get(smki_store *s, const smki_eui64_t *id, smki_gw_device *out);
int smki_gw_device_set_status(smki_store *s, const smki_eui64_t *id, int status);
typedef int (*smki_gw_device_fn)(const smki_gw_device *d, void *arg);
int smki_gw_device_list(smki_store *s, smki_gw_device_fn fn, void *arg);

/* The last counter that passed from an originator (0 and *seen = 0 if none). */
int smki_gw_counter_get(smki_store *s, const smki_eui64_t *originator, uint64_t *counter, int *seen);

/* Load a user's thresholds from a signed CSV file: the signature must verify against the
 * user's registered DS certificate, or, when signer is given (the configured signer,
 * e.g. the DCC's own), against signer. Every rule must name `user` unless signer is given.
 * Replaces the user's rules (those of other users named by a configured signer's file are
 * replaced too). SMKI_E_VERIFY when the signature does not verify: nothing changes. */
int smki_gw_thresholds_load(smki_store *s, const smki_eui64_t *user, const uint8_t *csv, size_t csv_len,
                            const uint8_t *sig, size_t sig_len, EVP_PKEY *signer, size_t *loaded);
/* The rules in force for a user (caller frees out->rules). */
int smki_gw_thresholds_get(smki_store *s, const smki_eui64_t *user, smki_thresholds *out);

/* ---- The check ---------------------------------------------------------------------------
 * Reason codes (stable; docs/gateway.md lists them with their meaning):
 *   structure.malformed   not a General Signing APDU (tag, lengths, fields)
 *   structure.unsigned    no signature (a pre-command that was never signed)
 *   future-dated.too-far  the execution date-time (CS02b executionDateTime, else the APDU's
 *                         date-time) is more than max_future_seconds after the check time
 *   user.unknown          originator User ID not in the registry
 *   user.not-eligible     the User's role may not send this message code (with a Service
 *                         Request eligibility table: none of its User Roles is eligible for
 *                         a Service Reference Variant with this message code)
 *   user.suspended        the User is suspended
 *   device.unknown        target device not in the inventory
 *   device.status         target device's status does not allow commands
 *   device.no-ka-key      (with an ACB key) the inventory has no KA key for the device
 *   cert.untrusted        signer certificate does not chain to the trust anchors
 *   cert.not-yet-valid    ... or not valid yet at the given time
 *   cert.expired          ... or no longer valid
 *   cert.revoked          signer (or a CA above it) is on the CRL
 *   cert.role             certificate's role (OU) is not the User's role
 *   cert.key-usage        certificate is not a digital-signature certificate
 *   cert.subject          certificate's EUI-64 is not the originator
 *   cert.environment      (with an environment) the signer certificate's policy OID is
 *                         not the environment's organisation policy
 *   device.environment    (with an environment) the target device's certificate is of
 *                         another environment (a device added without a certificate has
 *                         none to judge)
 *   user.environment      (with an environment; responses and alerts) the recipient User's
 *                         registered certificate is of another environment
 *   signature.invalid     the signature does not verify under the User's certificate
 *   counter.replay        counter not above the last one that passed from the originator
 *   threshold.exceeded    an anomaly threshold was reached: QUARANTINED, not rejected
 * Responses and alerts (CRA 02/03) take the return path: the originator must be a device
 * in the inventory (device.unknown) and the recipient a registered User (user.unknown),
 * then the recipient's response or alert thresholds apply (threshold.exceeded); nothing
 * else (the recipient verifies the device's signature or MAC: smki gbcs verify). A
 * passing one is delivered as received (no command is made, no counter recorded). */
typedef enum { SMKI_GW_PASS = 0, SMKI_GW_REJECT = 1, SMKI_GW_QUARANTINE = 2 } smki_gw_verdict;

/* The quarantine notification hook (gbcs/quarantine_hook.c): `/bin/sh -c command` run once
 * for each quarantined message after the quarantine is committed, the record as one JSON
 * object on stdin (id, at, kind, reason, detail, originator, target, message_code, counter,
 * message in hex) and SMKI_QUARANTINE_ID in its environment (SMKI_PIN, SMKI_SO_PIN removed); killed
 * after timeout_seconds (0: 30). Exit 0 is a notification; anything else is counted as
 * failed and kept for smki_gwq_notify_pending. The strings are borrowed. */
typedef struct {
    const char *command; /* NULL or "": no hook */
    unsigned timeout_seconds;
} smki_gwq_hook;

typedef struct smki_gateway smki_gateway;

typedef struct {
    const char *trust_dir;  /* folder of trusted CA certificates (PEM/DER, each file one or more) */
    const char *oca_file;   /* or: the organisation CA certificate(s), trusted as anchors */
    const char *crl_file;   /* CRL (DER or PEM) of the issuing CA; required unless no_crl */
    int no_crl;             /* explicitly check without revocation (RTDS: no CRL is published) */
    smki_key *acb_ka;       /* the ACB's KA key: passing messages are MACed into commands; NULL: check only */
    /* The registration authority's word on the sender (gbcs knows nothing of the RA: the
     * caller wires it). Returns 1 when the User ID or its Party is suspended, with the
     * reason in why; 0 when not (or the RA does not know the ID: the gateway's own
     * registry judges unknown users); negative on failure. NULL: not consulted. Called
     * outside any store transaction. */
    int (*sender_suspended)(void *arg, const smki_eui64_t *id, char *why, size_t cap);
    void *sender_arg;
    /* The registration authority's User Roles of the sender ("EIS,GIS", and "DCC" for a
     * DCC ID): 1 with them in roles when the RA knows the ID, 0 when it does not, negative
     * on failure. With a Service Request eligibility table loaded, the RA's roles decide
     * (one source of truth); the gateway's own (user set-roles) serve IDs the RA does not
     * know. NULL: not consulted. Called outside any store transaction, with sender_arg. */
    int (*sender_roles)(void *arg, const smki_eui64_t *id, char *roles, size_t cap);
    /* A command whose execution date-time is more than this many seconds after the check
     * time is refused (future-dated.too-far). 0: 30 days (SEC Stage 4 consultation Q22). */
    uint32_t max_future_seconds;
    smki_gwq_hook hook;     /* run for each message quarantined by a check */
    /* The gateway's environment (test or live): a signer certificate, a User's registered
     * certificate or a device certificate whose policy OID is not this environment's is
     * refused (cert.environment, user.environment, device.environment), whatever the trust
     * anchors. NULL: not checked (library callers that check elsewhere). */
    const smki_env *env;
} smki_gateway_opts;

typedef struct {
    smki_gw_verdict verdict;
    const char *reason;      /* static, stable; "" when passed */
    char detail[320];        /* what exactly, with which values */
    int parsed;              /* the fields below are set */
    uint8_t cra;
    uint64_t counter;
    smki_eui64_t originator, target;
    uint16_t code;
    uint64_t quarantine_id;  /* SMKI_GW_QUARANTINE: the record's id */
    int notified;            /* SMKI_GW_QUARANTINE with a hook: 1 it ran and exited 0, -1 it failed
                                (the record is kept either way; notify_error says why) */
    char notify_error[160];
    uint8_t *command;        /* SMKI_GW_PASS with an ACB key: the MACed command (caller frees) */
    size_t command_len;
} smki_gw_result;

/* Loads the trust anchors and the CRL (its signature checked against them) once. */
int smki_gateway_open(smki_store *s, const smki_gateway_opts *o, smki_gateway **out);
void smki_gateway_free(smki_gateway *g);

/* Check n messages (signed General Signing APDUs, or General Ciphering commands whose
 * inner APDU is taken) at time `at`, in order. The read-only checks run first (any number
 * of threads may call this at once); then one write transaction records, for each message
 * in order, the counter of those that pass, threshold events and quarantine records: the
 * command leaves only after that commit. Returns 0 when every message got a verdict
 * (results[i]), negative on an internal failure (store, token). */
int smki_gateway_check(smki_gateway *g, const uint8_t *const *msgs, const size_t *lens, size_t n, time_t at,
                       smki_gw_result *results);
void smki_gw_result_clear(smki_gw_result *r);

/* ---- Quarantine ---------------------------------------------------------------------------- */
typedef enum { SMKI_GWQ_HELD = 0, SMKI_GWQ_RELEASED = 1, SMKI_GWQ_REJECTED = 2 } smki_gwq_state;
typedef struct {
    uint64_t id;
    int state;
    int64_t at;             /* when it was quarantined (the check's time) */
    char reason[40];
    char detail[320];
    char note[200];         /* reject: the operator's reason */
    smki_eui64_t originator, target;
    uint16_t code;
    uint64_t counter;
    size_t msg_len;
    uint8_t *msg;           /* the General Signing APDU of a command; a response or alert as
                               received (caller frees via smki_gwq_clear) */
    int notify_state;       /* SMKI_GWQ_NOTIFY_*: what the hook made of it */
    uint32_t notify_attempts;
} smki_gwq_record;
enum { SMKI_GWQ_NOTIFY_NONE = 0, SMKI_GWQ_NOTIFY_OK = 1, SMKI_GWQ_NOTIFY_FAILED = 2 };
void smki_gwq_clear(smki_gwq_record *r);
typedef int (*smki_gwq_fn)(const smki_gwq_record *r, void *arg);
int smki_gwq_list(smki_store *s, smki_gwq_fn fn, void *arg);
int smki_gwq_get(smki_store *s, uint64_t id, smki_gwq_record *out);
/* Release a command: MAC the held message into a command with the ACB key (counter must
 * still be above the originator's last: SMKI_E_REFUSED otherwise) and record its counter.
 * Release a response or alert: *command is the message as the device sent it (acb_ka is
 * not used and may be NULL). */
int smki_gwq_release(smki_store *s, uint64_t id, smki_key *acb_ka, uint8_t **command, size_t *command_len);
int smki_gwq_reject(smki_store *s, uint64_t id, const char *note);

/* Run the hook for record id now and record the outcome: 0 (*ok = 1) when it exited 0;
 * SMKI_E_REFUSED (*ok = 0) naming how it failed. */
int smki_gwq_notify(smki_store *s, const smki_gwq_hook *h, uint64_t id, int *ok);
/* Run it for every held record not notified yet (failed before, or quarantined while no
 * hook was configured): once each. */
int smki_gwq_notify_pending(smki_store *s, const smki_gwq_hook *h, size_t *fired, size_t *failed);
/* The record as the hook reads it (one JSON object and a newline; caller frees). */
int smki_gwq_record_json(const smki_gwq_record *q, char **json);
typedef struct {
    uint64_t quarantined;   /* messages quarantined, ever */
    uint64_t notified;      /* hook runs that exited 0 */
    uint64_t notify_failed; /* hook runs that did not */
} smki_gwq_stats;
int smki_gwq_stats_get(smki_store *s, smki_gwq_stats *out);

/* ---- The record of checked messages (gbcs/gwlog.c) ---------------------------------------------
 * Every message a check judged (store database gw.log), kept online for a period the
 * operator sets (default three months), then archived and pruned. */
#define SMKI_GW_LOG_KEEP_DAYS 92
typedef struct {
    int64_t at;             /* the check's time */
    uint64_t seq;           /* order of recording */
    uint8_t verdict;        /* smki_gw_verdict */
    uint8_t cra;
    int parsed;             /* 0: the message did not parse (the fields below are zero) */
    char reason[40];        /* "" when passed */
    smki_eui64_t originator, target;
    uint16_t code;
    uint64_t counter;
} smki_gw_log_record;
typedef int (*smki_gw_log_fn)(const smki_gw_log_record *r, void *arg);
/* The records of checks made before `before`, oldest first. */
int smki_gw_log_list(smki_store *s, int64_t before, smki_gw_log_fn fn, void *arg);
/* One record as the archive holds it: a JSON object and a newline; returns its length. */
int smki_gw_log_record_json(const smki_gw_log_record *r, char *out, size_t cap);
/* Write the records of checks made before `before` to a new file at path (refused if it
 * exists), signed with key, then prune exactly those from the store. The file: a header
 * line {"smki_gateway_archive":1,"created","before","first","last","records"}, one JSON
 * object a record, and "signature <hex>": DER ECDSA P-256/SHA-256 over every octet before
 * that line (smki_signed_file_sign; `openssl dgst -sha256 -verify` checks it too). No
 * records: no file, *archived = 0. */
int smki_gw_log_archive(smki_store *s, int64_t before, time_t now, smki_key *key, const char *path,
                        size_t *archived);
/* 0 when data is an archive whose signature verifies under pub and whose record count is
 * what its header says (*records); SMKI_E_VERIFY when the signature does not verify;
 * SMKI_E_INPUT when it is not an archive. */
int smki_gw_archive_verify(const uint8_t *data, size_t len, EVP_PKEY *pub, size_t *records);

/* Parse a time: "2020-01-01", "2020-01-01T12:00:00Z" or "@UNIXSECONDS". */
int smki_gw_time_parse(const char *text, time_t *out);

#endif
