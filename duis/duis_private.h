/* duis internals shared by its files: the hardened reader, the one-time set-up of
 * libxml2 and xmlsec, node helpers, and the trust set's look-ups. */
#ifndef SMKI_DUIS_PRIVATE_H
#define SMKI_DUIS_PRIVATE_H

#include <libxml/tree.h>

#include "duis/duis.h"

#define DUIS_DSIG_NS "http://www.w3.org/2000/09/xmldsig#"

/* libxml2 and xmlsec, once per process (with smki's ecdsa-sha256 transform first). */
int smki_duis_init(void);
/* The hardened parse (see smki_duis_read) into *doc (xmlFreeDoc). */
int smki_duis_parse(const uint8_t *xml, size_t len, xmlDocPtr *doc);
/* The header of a parsed document. */
int smki_duis_info_read(xmlDocPtr doc, smki_duis_info *out);

/* Elements: is node the element local name in ns? The next element sibling (from node
 * itself when self is set), or NULL. */
int smki_duis_is_el(const xmlNode *node, const char *ns, const char *name);
xmlNodePtr smki_duis_next_el(xmlNodePtr node, int self);
/* The ds:Signature elements anywhere in the document: how many and the first. */
size_t smki_duis_count_signatures(xmlNodePtr root, xmlNodePtr *first);

/* The two ways of checking the digests and the signature value once the profile is
 * checked: libxml2's C14N streamed into SHA-256 (c14n.c; what smki_duis_verify uses),
 * or xmlsec's DSig processing (the independent one the tests compare it with). */
typedef enum { DUIS_ENGINE_C14N, DUIS_ENGINE_XMLSEC } duis_engine;
int smki_duis_engine_verify(duis_engine engine, const smki_duis_trust *t, time_t at, const uint8_t *xml, size_t len,
                     smki_duis_report *rep);
int smki_duis_engine_sign(duis_engine engine, const smki_duis_signer *s, time_t at, const uint8_t *xml, size_t len,
                   uint8_t **out, size_t *out_len);
/* sig is a ds:Signature that passed the profile check, pub the signer's P-256 key. */
int smki_duis_verify_c14n(xmlDocPtr doc, xmlNodePtr sig, EVP_PKEY *pub);
/* sig is smki's template in place: DigestValue and SignatureValue are filled in. */
int smki_duis_sign_c14n(xmlDocPtr doc, xmlNodePtr sig, smki_key *key);

/* Trust set look-ups (trust.c). */
/* The signer by issuer and serial, with what it says (NULL when the linter could not
 * read it). */
int smki_duis_trust_find(const smki_duis_trust *t, const char *issuer, const char *serial, X509 **cert,
                    const smki_gbcs_cert_info **info);
/* A Response's signer is the DCC given to smki_duis_trust_set_dcc, when one was. */
int smki_duis_trust_check_dcc(const smki_duis_trust *t, const smki_duis_info *info, const smki_eui64_t *signer);
int smki_duis_trust_check_revoked(const smki_duis_trust *t, X509 *cert, time_t at);
int smki_duis_trust_validate_schema(const smki_duis_trust *t, xmlDocPtr doc, int *checked);
/* "CN=Z1,OU=07": the issuer as RFC 4514 text; the serial in decimal. */
int smki_duis_cert_issuer_text(X509 *cert, char *out, size_t cap);
int smki_duis_cert_serial_text(X509 *cert, char *out, size_t cap);

#endif
