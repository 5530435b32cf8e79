/* ==========================================================================================
 * gbcs device model (branch gbcs-device). A GBCS device as the DCC's tests see it: its
 * EUI-64, its own DS and KA keys (in the token), its trust anchor cells and a
 * sequence-number floor per Remote Party Role, all in the store. It receives commands
 * (General Ciphering around General Signing, reference §5), verifies them in the
 * order a device must (recipient, MAC, signature by the cell of the originator's role,
 * counter above the floor, permission) and acts on CS02a/b/c (reference §6).
 * Refusals produce the GBCS alert they correspond to.
 * ========================================================================================== */
#ifndef SMKI_GBCS_DEVICE_H
#define SMKI_GBCS_DEVICE_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/base.h"
#include "hsm/hsm.h"
#include "policy/policy.h"
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
} smki_device_keys_opts;

/* The store's database names a device uses; open before any transaction. */
int smki_device_dbs(smki_store *s);

/* Create a device with DS and KA keys generated in the token (labels
 * "dev-<eui>-ds" / "dev-<eui>-ka"). Refuses (SMKI_E_EXISTS) a device already there. */
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
    int out_signed;              /* 0 on an RTDS model (no DS key): signature octet 00 */
    int out_maced;               /* wrapped (DD) with the MAC for the recipient's KA cell */
} smki_rx_result;
void smki_rx_result_clear(smki_rx_result *r);

/* Verify a command and act on it. Returns 0 when the message was judged (accepted or
 * refused: r->verdict says which, r->out holds the response or alert), negative on an
 * internal failure (store, token). State changes (cells, floors, counters) are committed
 * in one store transaction or not at all. */
int smki_device_receive(smki_device *d, smki_store *s, const uint8_t *msg, size_t len, const smki_rx_opts *o,
                        smki_rx_result *r);
/* Only the checks (recipient, MAC, signature, floor, permission); nothing built or
 * written. For the bench and the gateway-side tests. */
int smki_device_verify(smki_device *d, const uint8_t *msg, size_t len, const smki_rx_opts *o, smki_rx_result *r);

/* ---- CS02 payloads (reference §6) -------------------------------------------------------- */
/* The CS02c PKCS#10 request of a key: empty subject, extensionRequest with critical
 * keyUsage (DS or KA) and a critical SAN hardwareModuleName {hw_type, EUI-64}. Signed
 * by the key itself. *der is malloc'd. */
int smki_cs02c_csr(smki_key *k, smki_key_usage usage, const smki_eui64_t *eui, const char *hw_type_oid, uint8_t **der,
                   size_t *len);

/* Build a command for tests and the demo: General Signing (signed with ds, raw r||s over
 * the octets after DF) wrapped in General Ciphering with the MAC from acb_ka and the
 * device's KA public key. ds NULL: unsigned (00). acb_ka NULL: the signed APDU alone. */
int smki_gbcs_command_build(smki_key *ds, smki_key *acb_ka, EVP_PKEY *device_ka, const smki_eui64_t *originator,
                            const smki_eui64_t *recipient, uint64_t counter, uint16_t message_code,
                            const uint8_t *content, size_t content_len, uint8_t **out, size_t *out_len);
/* Re-MAC a General Signing APDU (DF ...) as the ACB: wrap it in General Ciphering. */
int smki_gbcs_command_wrap(smki_key *acb_ka, EVP_PKEY *device_ka, const uint8_t *gs, size_t gs_len, uint8_t **out,
                           size_t *out_len);

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

#endif
