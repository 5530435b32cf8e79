/* Private to hsm/: RFC 7512 PKCS#11 URIs, parsed and written. */
#ifndef SMKI_HSM_URI_H
#define SMKI_HSM_URI_H

#include <stddef.h>
#include <stdint.h>

#define SMKI_URI_ATTR_MAX 256

typedef struct {
    char token[SMKI_URI_ATTR_MAX];   /* token label (CKA: CK_TOKEN_INFO.label) */
    char object[SMKI_URI_ATTR_MAX];  /* CKA_LABEL */
    uint8_t id[64];                  /* CKA_ID */
    size_t id_len;
    char type[16];                   /* private, public, cert, secret-key, data */
    char module_path[SMKI_URI_ATTR_MAX];
    char pin_source[SMKI_URI_ATTR_MAX];
    int has_token, has_object, has_id;
} smki_p11_uri;

/* Parses "pkcs11:" path attributes (token, object, id, type, manufacturer, model,
 * serial, slot-id, library-*: the last ones accepted and ignored) and query
 * attributes (module-path, pin-source). A pin-value is refused: PINs never travel in
 * arguments. Unknown path attributes are refused (RFC 7512 6: a consumer that does
 * not understand an attribute must not match). */
int smki_p11_uri_parse(const char *text, smki_p11_uri *out);
/* pkcs11:token=T;object=L;id=%..;type=private */
int smki_p11_uri_format(const char *token, const char *object, const uint8_t *id, size_t id_len, char *out,
                        size_t cap);

/* SMKI_E_USAGE if arg, a key reference without a scheme, names a regular file
 * ("write file:PATH"); 0 otherwise. */
int smki_key_ref_refuse_file(const char *arg);

#endif
