/* gbcs: GBCS messages (reference §5). The codec of General Signing APDUs (DF) and of
 * the General Ciphering wrapper (DD) that carries them with a 12-octet MAC; signing a
 * pre-command with a smki_key; verifying the signature and the MAC; a folder of
 * certificates found by EUI-64; and the codec of device messages (CS02b, General
 * Signing as a device builds it) that the device model (device/device.h) and the
 * gateway use. No crypto of its own: hsm.h does the primitives.
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
SMKI_MUST_CHECK int smki_gbcs_parse(const uint8_t *data, size_t len, smki_gbcs_msg *out);

/* The bytes of a message file: hex text (RTDS style, whitespace anywhere between digit
 * pairs) or binary (anything that is not hex text). *out is malloc'd (caller frees). */
SMKI_MUST_CHECK int smki_gbcs_decode_input(const uint8_t *data, size_t len, uint8_t **out, size_t *out_len);
SMKI_MUST_CHECK int smki_gbcs_read_file(const char *path, uint8_t **out, size_t *out_len);

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
SMKI_MUST_CHECK int smki_gbcs_build_signing(const smki_gbcs_fields *f, uint8_t **out, size_t *out_len);

/* Sign a pre-command (a DF APDU ending with the content, or with 00): ECDSA P-256 /
 * SHA-256 over the signed region with key, appending 40 || r || s. Refuses an APDU
 * that already carries a signature, a DD wrapper and trailing bytes. */
SMKI_MUST_CHECK int smki_gbcs_sign(smki_key *key, const uint8_t *pre, size_t pre_len, uint8_t **out, size_t *out_len);

/* Verify the General Signing APDU's signature (of a SIGNING or CIPHERING message)
 * with the signer's public key: 0 if it verifies; SMKI_E_VERIFY if it does not or the
 * message carries no signature. */
SMKI_MUST_CHECK int smki_gbcs_verify_signature(const smki_gbcs_msg *m, EVP_PKEY *signer);

/* Wrap a signed General Signing APDU into a command (General Ciphering with a MAC).
 * The MAC key is ECDH(own_ka, peer_ka) and the KDF over the APDU's originator, CRA,
 * counter and recipient (reference §5); IV = originator || invocation_counter. For a
 * command the ACB holds own_ka and peer_ka is the recipient device's KA key. Refuses
 * an APDU without its signature field (a pre-command not signed: use 00 for unsigned). */
SMKI_MUST_CHECK int smki_gbcs_wrap(const uint8_t *gsa, size_t gsa_len, smki_key *own_ka, EVP_PKEY *peer_ka,
                                   uint32_t invocation_counter, uint8_t **out, size_t *out_len);
/* The same MAC and wrap from the shared secret z = ECDH(own KA, peer KA), for callers
 * that keep z per peer (gateway, device model; wiped by them when done). */
SMKI_MUST_CHECK int smki_gbcs_mac_z(const uint8_t z[32], const uint8_t *gsa, size_t gsa_len, uint32_t invocation_counter,
                                    uint8_t mac[SMKI_GBCS_MAC_LEN]);
SMKI_MUST_CHECK int smki_gbcs_wrap_z(const uint8_t *gsa, size_t gsa_len, const uint8_t z[32], uint32_t invocation_counter,
                                     uint8_t **out, size_t *out_len);

/* Verify a CIPHERING message's MAC. The ECDH is symmetric, so either side verifies:
 * the ACB with its KA key and the device's KA public key, the device with its KA key
 * and the ACB's KA public key (responses and alerts: the recipient's KA key and the
 * originator's). 0 on match; SMKI_E_VERIFY on a wrong MAC; SMKI_E_INPUT if m has none. */
SMKI_MUST_CHECK int smki_gbcs_verify_mac(const smki_gbcs_msg *m, smki_key *own_ka, EVP_PKEY *peer_ka);
/* The same computation, returning the 12 octets (to wrap, or to show what was expected). */
SMKI_MUST_CHECK int smki_gbcs_compute_mac(const smki_gbcs_msg *m, smki_key *own_ka, EVP_PKEY *peer_ka,
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
SMKI_MUST_CHECK int smki_gbcs_cert_info_get(X509 *cert, smki_gbcs_cert_info *out);
/* 0 when cert is valid at `at` (notBefore <= at <= notAfter); SMKI_E_REFUSED naming
 * the dates otherwise. */
SMKI_MUST_CHECK int smki_gbcs_cert_check_time(X509 *cert, time_t at, const char *what);

/* A folder of certificates, each found by EUI-64 and usage: files named
 * <eui64 lowercase hex>-ds.pem / -ka.pem as in the keystore, and any other *.pem /
 * *.der / *.crt / *.cer certificate in the folder whatever its name (by its EUI-64).
 * Files that hold no certificate (keys) are ignored. */
typedef struct smki_gbcs_certdir smki_gbcs_certdir;
SMKI_MUST_CHECK int smki_gbcs_certdir_open(const char *dir, smki_gbcs_certdir **out);
void smki_gbcs_certdir_free(smki_gbcs_certdir *d);
/* usage: SMKI_USAGE_DS or SMKI_USAGE_KA. *cert is borrowed (valid while d is open).
 * SMKI_E_NOTFOUND naming the EUI-64 and usage when there is none. */
SMKI_MUST_CHECK int smki_gbcs_certdir_find(const smki_gbcs_certdir *d, const uint8_t title[8], smki_key_usage usage, X509 **cert);
/* The same, with what the certificate says about its subject (borrowed, like *cert). */
SMKI_MUST_CHECK int smki_gbcs_certdir_find_info(const smki_gbcs_certdir *d, const uint8_t title[8], smki_key_usage usage, X509 **cert,
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
SMKI_MUST_CHECK int smki_gbcs_check_expect(const smki_gbcs_signing *g, const smki_gbcs_expect *e);

/* The certificate may sign this APDU: an organisation certificate (x500UniqueIdentifier)
 * with digitalSignature, whose EUI-64 is the APDU's originator, and whose public key is
 * key's (when key is given). SMKI_E_REFUSED otherwise, naming what differs. */
SMKI_MUST_CHECK int smki_gbcs_check_signer(X509 *cert, smki_key *key, const smki_gbcs_signing *g);

/* Parse, correlate (e may be NULL), check the signer, then smki_gbcs_sign. */
SMKI_MUST_CHECK int smki_gbcs_sign_as(smki_key *key, X509 *cert, const smki_gbcs_expect *e, const uint8_t *pre, size_t pre_len,
                                      uint8_t **out, size_t *out_len);

/* "2020-01-01T00:00:00Z", "2020-01-01" (midnight UTC) or "now". SMKI_E_USAGE otherwise. */
SMKI_MUST_CHECK int smki_gbcs_time_parse(const char *text, time_t *out);

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
SMKI_MUST_CHECK int smki_gbcs_verify_command(const smki_gbcs_msg *m, const smki_gbcs_certdir *d, smki_key *own_ka, time_t at,
                                             smki_gbcs_verify_report *rep);

/* The same certificate folder, searched by public key: the certificate of d whose key
 * is pub and whose keyUsage has `usage` (borrowed). SMKI_E_NOTFOUND when none. */
SMKI_MUST_CHECK int smki_gbcs_certdir_find_pubkey(const smki_gbcs_certdir *d, EVP_PKEY *pub, smki_key_usage usage, X509 **cert,
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
SMKI_MUST_CHECK int smki_gbcs_ka_key_bind(const smki_gbcs_certdir *d, smki_key *key, smki_gbcs_ka_key *out);

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
SMKI_MUST_CHECK int smki_gbcs_verify_message(const smki_gbcs_msg *m, const smki_gbcs_certdir *d, const smki_gbcs_verify_opts *o,
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
SMKI_MUST_CHECK int smki_gbcs_counters_parse(const uint8_t *data, size_t len, const char *name, smki_gbcs_counters **out);
/* Lock PATH.lock (SMKI_E_LOCKED if another process holds it), then read PATH (missing:
 * empty). */
SMKI_MUST_CHECK int smki_gbcs_counters_open(const char *path, smki_gbcs_counters **out);
/* 0 when g's counter is above the mark for its key; SMKI_E_REFUSED with *reason
 * "counter.replay" or "counter.reordered" otherwise. */
SMKI_MUST_CHECK int smki_gbcs_counters_check(const smki_gbcs_counters *c, const smki_gbcs_signing *g, const char **reason);
/* Raise the mark for g's key to g's counter (after it verified). */
SMKI_MUST_CHECK int smki_gbcs_counters_note(smki_gbcs_counters *c, const smki_gbcs_signing *g);
size_t smki_gbcs_counters_count(const smki_gbcs_counters *c);
/* Write the state back to the path it was opened from (atomically). */
SMKI_MUST_CHECK int smki_gbcs_counters_save(const smki_gbcs_counters *c);
void smki_gbcs_counters_free(smki_gbcs_counters *c); /* releases the lock */


/* ==========================================================================================
 * Device messages: the codec the device model (device/device.h) and the gateway read
 * and write them with. Trust anchor cell identifiers, General Signing as a device reads
 * and builds it, CS02b content (reference §6), and the DER they are made of.
 * ========================================================================================== */

/* ---- Trust anchor cell identifiers (reference §6) ---------------------------------------- */
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

#define SMKI_CS02B_MAX_REPLACEMENTS 8

/* Build a command for tests and the demo: General Signing (signed with ds, raw r||s over
 * the octets after DF) wrapped in General Ciphering with the MAC from acb_ka and the
 * device's KA public key. ds NULL: unsigned (00). acb_ka NULL: the signed APDU alone. */
SMKI_MUST_CHECK int smki_gbcs_command_build(smki_key *ds, smki_key *acb_ka, EVP_PKEY *device_ka, const smki_eui64_t *originator,
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
SMKI_MUST_CHECK int smki_cs02b_build(const smki_cs02b_request *q, uint8_t **der, size_t *len);

/* GBCS message codes the device model knows. CS02b has one code per mode (0x0100+mode,
 * as the RTDS shows for modes 2, 3, 6 and 7). */
#define SMKI_MC_CS02A 0x0008
#define SMKI_MC_CS02C 0x000A
#define SMKI_MC_ECS01A 0x0019
#define SMKI_MC_CS02B(mode) ((uint16_t)(0x0100u + (mode)))
#define SMKI_MC_ASN1_ALERT 0x00CB /* as the RTDS 8F66 CS02b alerts carry */

/* ---- DER as device messages use it ------------------------------------------------------- */
/* base's DER reader with BER's long length forms (a device accepts them: the RTDS
 * responses carry them; see device_der.c). Expect tag; value in *val. */
SMKI_MUST_CHECK int smki_gbcs_der_expect(smki_cursor_t *c, uint8_t tag, const char *what, smki_cursor_t *val);
/* A non-negative INTEGER value (its content octets) of at most 8 octets. */
SMKI_MUST_CHECK int smki_gbcs_der_uint(smki_cursor_t *val, const char *what, uint64_t *out);

/* base's growing writer, with the TLVs begun and not ended (smki_gbcs_derw_end closes the last). */
typedef struct {
    smki_writer_t w;
    smki_der_mark open[12];
    int depth;
} smki_gbcs_derw;
void smki_gbcs_derw_init(smki_gbcs_derw *w);
void smki_gbcs_derw_free(smki_gbcs_derw *w);
void smki_gbcs_derw_begin(smki_gbcs_derw *w, uint8_t tag);
void smki_gbcs_derw_end(smki_gbcs_derw *w);
void smki_gbcs_derw_raw(smki_gbcs_derw *w, const void *p, size_t n);
void smki_gbcs_derw_tlv(smki_gbcs_derw *w, uint8_t tag, const void *p, size_t n);
void smki_gbcs_derw_uint(smki_gbcs_derw *w, uint8_t tag, uint64_t v);
void smki_gbcs_derw_key_usage(smki_gbcs_derw *w, uint8_t ku); /* BIT STRING of the KeyUsage first octet */
void smki_gbcs_derw_cell_id(smki_gbcs_derw *w, const smki_ta_cell_id *id);
/* Hand the buffer over (caller frees); fails if any write failed. */
SMKI_MUST_CHECK int smki_gbcs_derw_finish(smki_gbcs_derw *w, uint8_t **out, size_t *len);

/* General Signing / General Ciphering (reference §5) as the device uses them, read by
 * the codec (smki_gbcs_parse). */
typedef struct {
    uint8_t cra;
    uint64_t counter;
    uint8_t originator[8], recipient[8];
    int has_date;
    uint16_t message_code;
    const uint8_t *other_info;
    size_t other_len;
    const uint8_t *content;
    size_t content_len;
    const uint8_t *signed_part;   /* after DF up to the end of content */
    size_t signed_len;
    int has_signature;
    int sig_none;                 /* no signature field at all (a pre-command) */
    const uint8_t *signature;     /* 64 octets raw r||s */
    const uint8_t *apdu;          /* DF .. end of signature */
    size_t apdu_len;
} smki_gbcs_gs;
typedef struct {
    int wrapped;                  /* 1: DD (MAC present) */
    uint32_t invocation;
    const uint8_t *mac;
    smki_gbcs_gs gs;
} smki_gbcs_cmd;
SMKI_MUST_CHECK int smki_gbcs_cmd_parse(const uint8_t *msg, size_t len, smki_gbcs_cmd *out);
/* Build a General Signing APDU; sign with ds (NULL: unsigned 00). */
SMKI_MUST_CHECK int smki_gbcs_gs_build(smki_key *ds, uint8_t cra, uint64_t counter, const uint8_t originator[8],
                                       const uint8_t recipient[8], uint16_t message_code, const uint8_t *content, size_t content_len, uint8_t **out, size_t *len);

/* CS02b command, parsed (pointers into the message). */
typedef struct {
    uint8_t mode;
    int has_symmetric_key;
    int time_checks;               /* apply(0) -> 1, disapply(1) -> 0; absent -> 1 */
    int has_auth_cell;
    smki_ta_cell_id auth_cell;
    uint64_t auth_seq;
    int has_new_floor;
    uint64_t new_floor;
    size_t nother;
    struct { uint8_t role; uint64_t floor; } other[16];
    size_t nrepl;
    struct { const uint8_t *cert; size_t len; smki_ta_cell_id target; } repl[SMKI_CS02B_MAX_REPLACEMENTS];
    size_t npath;
    struct { const uint8_t *cert; size_t len; } path[8];
    int has_execution_time;
    time_t execution_time;         /* executionDateTime (GeneralizedTime YYYYMMDDHHMMSSZ) */
} smki_gbcs_cs02b;
SMKI_MUST_CHECK int smki_gbcs_cs02b_parse(const uint8_t *content, size_t len, smki_gbcs_cs02b *out);

#endif
