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

#endif
