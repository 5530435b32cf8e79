/* device: the GBCS device model. A GBCS device as the DCC's tests see it: its EUI-64,
 * its own DS and KA keys (in the token), its trust anchor cells and a sequence-number
 * floor per Remote Party Role, all in the store. It receives commands (General
 * Ciphering around General Signing, reference §5), verifies them in the order a device
 * must (recipient, MAC, signature by the cell of the originator's role, counter above
 * the floor, permission) and acts on CS02a/b/c (reference §6). Refusals produce the
 * GBCS alert they correspond to. docs/gbcs-device.md has the details (alert and status
 * codes, the RTDS replay mode). The messages' codec is gbcs's (gbcs/gbcs.h). */
#ifndef SMKI_DEVICE_H
#define SMKI_DEVICE_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/base.h"
#include "gbcs/gbcs.h"
#include "hsm/hsm.h"
#include "policy/policy.h"
#include "store/store.h"

/* ---- Trust anchor cells (reference §6; their identifiers: gbcs.h) ------------------------ */
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
SMKI_MUST_CHECK int smki_cell_id_parse(const char *text, smki_ta_cell_id *out);

/* A cell from a certificate (DER or PEM): role from the OU, usage from keyUsage, subject
 * ID, SKI, key. The root cell takes a self-signed root CA certificate. cell_usage is
 * given (a certificate does not say it). */
SMKI_MUST_CHECK int smki_cell_from_cert(const uint8_t *data, size_t len, uint8_t cell_usage, smki_ta_cell *out);

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
SMKI_MUST_CHECK int smki_device_dbs(smki_store *s);

/* Create a device with DS and KA keys generated in the token (labels
 * "dev-<eui>-ds" / "dev-<eui>-ka"; the KA key is a sign-once key that signs only its
 * own CSR, see ko->ka_csr). Refuses (SMKI_E_EXISTS) a device already there. */
SMKI_MUST_CHECK int smki_device_create(smki_store *s, const smki_eui64_t *eui, const smki_device_keys_opts *ko);
/* Create the RTDS replay model of a device from the RTDS keystore folder: its
 * certificates (<eui>-ds.pem, -ka.pem), no private keys, and the cells the RTDS device
 * holds: supplier 90b3d51f30010000 (DS, KA, prepayment KA), network operator
 * 90b3d51f30020000 (DS, KA), ACB 90b3d51f30000002 (DS, KA), transitional CoS
 * 90b3d51f30000004 (DS), recovery 90b3d51f30000001 (DS), WAN provider 90b3d51f30000007
 * (DS), and the root ZA as an anchor by SKI only (the RTDS does not publish ZA). */
SMKI_MUST_CHECK int smki_device_create_rtds(smki_store *s, const smki_eui64_t *eui, const char *keystore_dir);

/* A handle may be shared by threads for smki_device_verify; smki_device_receive (which
 * commits and reloads the handle's cells and floors) must not run beside other calls
 * on the same handle. */
SMKI_MUST_CHECK int smki_device_open(smki_store *s, const smki_eui64_t *eui, const smki_hsm_opts *hsm, smki_device **out);
void smki_device_free(smki_device *d); /* wipes the cached ECDH secrets */

/* Load (replace) one cell directly: provisioning at manufacture, outside GBCS. */
SMKI_MUST_CHECK int smki_device_load_cell(smki_store *s, const smki_eui64_t *eui, const smki_ta_cell *cell);
/* Set a floor directly (provisioning, tests). */
SMKI_MUST_CHECK int smki_device_set_floor(smki_store *s, const smki_eui64_t *eui, uint8_t role, uint64_t floor);

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
SMKI_MUST_CHECK int smki_device_describe(smki_device *d, smki_device_info *out);
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
SMKI_MUST_CHECK int smki_device_receive(smki_device *d, smki_store *s, const uint8_t *msg, size_t len, const smki_rx_opts *o,
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
SMKI_MUST_CHECK int smki_device_run_due(smki_device *d, smki_store *s, const smki_rx_opts *o, smki_rx_result *results, size_t cap,
                                        size_t *n);
/* Only the checks (recipient, MAC, signature, floor, permission); nothing built or
 * written. For the bench and the gateway-side tests. */
SMKI_MUST_CHECK int smki_device_verify(smki_device *d, const uint8_t *msg, size_t len, const smki_rx_opts *o, smki_rx_result *r);

/* ---- CS02 payloads (reference §6) -------------------------------------------------------- */
/* The CS02c PKCS#10 request of a key: empty subject, extensionRequest with critical
 * keyUsage (DS or KA) and a critical SAN hardwareModuleName {hw_type, EUI-64}. Signed
 * by the key itself. *der is malloc'd. */
SMKI_MUST_CHECK int smki_cs02c_csr(smki_key *k, smki_key_usage usage, const smki_eui64_t *eui, const char *hw_type_oid, uint8_t **der,
                                   size_t *len);
/* A new KA key in the token with its CS02c CSR: the key signs that CSR at birth and the
 * token refuses it every signature after (smki_key_generate_ka_sign_once). */
SMKI_MUST_CHECK int smki_cs02c_ka_key(const smki_hsm_opts *hsm, const char *token, const char *label, const smki_eui64_t *eui,
                                      const char *hw_type_oid, char uri[SMKI_KEY_URI_MAX], uint8_t **der, size_t *len);

#endif
