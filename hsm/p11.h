/* Private to hsm/: the raw PKCS#11 side (module loading, token initialisation, key
 * generation and listing: what libp11 0.4.12 cannot do for EC keys) and the libp11
 * side (opening and using keys). */
#ifndef SMKI_HSM_P11_H
#define SMKI_HSM_P11_H

#include <p11-kit/pkcs11.h>

#include "hsm.h"
#include "uri.h"

typedef struct p11_module p11_module;

/* The process-wide handle of a PKCS#11 module (dlopen + C_Initialize once; again in
 * a forked child). */
int smki_p11_module_get(const char *path, p11_module **out);
CK_FUNCTION_LIST *smki_p11_module_functions(p11_module *m);
/* The initialisation parameters recorded for a module path (by smki_p11_module_choose from
 * smki_hsm_opts.init_args), or NULL. Both C_Initialize here and libp11's get them. */
const char *smki_p11_module_init_args(const char *path);
const char *smki_p11_module_path(const p11_module *m);

/* Name of a CK_RV ("CKR_PIN_INCORRECT") and the smki error class it belongs to. */
const char *smki_p11_rv_name(CK_RV rv);
int smki_p11_rv_class(CK_RV rv);
/* Record "token 'T': <operation>: CKR_X (explanation)". */
int smki_p11_fail_rv(CK_RV rv, const char *token, const char *operation);

/* libp11 reports a failing CK_RV as the reason of an error in a library of its own
 * (ERR_LIB_USER and up). Drain the queue and return that CK_RV, or CKR_GENERAL_ERROR
 * when there is none. */
CK_RV smki_p11_take_libp11_rv(void);

/* The module path to use: opts, else the URI's, else $SMKI_PKCS11_MODULE, else SoftHSM. */
const char *smki_p11_module_choose(const smki_hsm_opts *o, const char *uri_module);

/* The slot holding the initialised token with this label; SMKI_E_NOTFOUND names the
 * labels that are there. */
int smki_p11_find_token(p11_module *m, const char *label, CK_SLOT_ID *slot, CK_TOKEN_INFO *info);
/* An R/W or R/O session, logged in as user when pin is given. */
int smki_p11_open_session(p11_module *m, CK_SLOT_ID slot, const char *token, const char *pin, int rw,
                     CK_SESSION_HANDLE *out);
void smki_p11_close_session(p11_module *m, CK_SESSION_HANDLE s);

/* Objects with this label on the token (count only; up to a few). */
int smki_p11_count_labelled(p11_module *m, CK_SESSION_HANDLE s, const char *token, const char *label, CK_ULONG *found);
/* A public key object's point: CKA_EC_POINT is a DER OCTET STRING around the 65-octet
 * point (PKCS#11 2.40); some modules return the bare point. */
int smki_p11_read_point(p11_module *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub, const char *token,
                        uint8_t point[SMKI_POINT_LEN]);

/* The public-key object named by a URI (label and/or id), read without login, as a
 * P-256 EVP_PKEY. */
int smki_p11_read_public_key(const char *module, const smki_p11_uri *u, EVP_PKEY **out);

/* The GBCS key identifier of an uncompressed point (RFC 5280 4.2.1.2 method 2: 0100b
 * then the low 60 bits of SHA-1 of the point): 8 octets. */

#endif
