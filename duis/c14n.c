/* duis/c14n.c: the DUIS signature checked straight from libxml2's canonicalisation.
 * Once the profile is checked (one Reference URI="" with only the enveloped-signature
 * transform, exclusive C14N of SignedInfo, SHA-256, ecdsa-sha256), what xmlsec computes
 * is fixed: the C14N 1.0 (no comments) of the document minus the ds:Signature subtree,
 * and the exclusive C14N of the SignedInfo subtree. Both come from libxml2's
 * xmlC14NExecute, the function xmlsec calls, streamed into SHA-256 without xmlsec's
 * node sets and transform chain (which cost more than the ECDSA check itself). The
 * signature value is made and checked by hsm/. tests/unit/test_duis.c checks that this
 * and xmlsec's DSig processing agree on every vector and every tampered variant, and
 * sign alike; the integration test verifies what smki signs with the xmlsec1 tool. */
#include <libxml/c14n.h>
#include <libxml/xmlIO.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>
#include <xmlsec/base64.h>

#include "duis_private.h"

/* ---- Canonical form into SHA-256 ------------------------------------------------------- */
static int sink_write(void *md, const char *buf, int len)
{
    return len >= 0 && EVP_DigestUpdate(md, buf, (size_t)len) == 1 ? len : -1;
}

static int c14n_sha256(xmlDocPtr doc, int mode, uint8_t out[32], const char *what, int fail_code)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ENSURE(md, SMKI_E_NOMEM, "out of memory (SHA-256)");
    int rc = 0;
    xmlOutputBufferPtr buf = NULL;
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
        !(buf = xmlOutputBufferCreateIO(sink_write, NULL, md, NULL))) {
        rc = SMKI_FAIL(SMKI_E_NOMEM, "out of memory (canonicalising %s)", what);
    } else {
        int written = xmlC14NExecute(doc, NULL, NULL, mode, NULL, 0, buf);
        int closed = xmlOutputBufferClose(buf); /* flushes what is left into the digest */
        unsigned int n = 0;
        if (written < 0 || closed < 0)
            rc = SMKI_FAIL(fail_code, "%slibxml2 could not canonicalise %s",
                           fail_code == SMKI_E_VERIFY ? "the signature could not be processed: " : "", what);
        else if (EVP_DigestFinal_ex(md, out, &n) != 1 || n != 32)
            rc = SMKI_FAIL(SMKI_E_INTERNAL, "SHA-256 of %s failed", what);
    }
    EVP_MD_CTX_free(md);
    return rc;
}

/* SHA-256 of the canonical forms the profile signs: the document minus sig (C14N 1.0;
 * sig is unlinked for the time of it, so doc is not to be shared meanwhile) and
 * SignedInfo (exclusive C14N); fail_code is the status when libxml2 cannot
 * canonicalise (SMKI_E_INPUT signing, SMKI_E_VERIFY verifying). */
static int duis_reference_digest(xmlDocPtr doc, xmlNodePtr sig, uint8_t out[32], int fail_code)
{
    /* URI="" is the document without comments; enveloped-signature takes ds:Signature
     * out; the digest of a node set is over its C14N 1.0 (XMLDSig 4.4.3.2, 6.6.4).
     * That node set is the document with the Signature element unlinked for the time
     * of the C14N (the text around it stays, as in the node set), which spares libxml2
     * a visibility callback per node; it goes back where it was. */
    xmlNodePtr parent = sig->parent, next = sig->next;
    xmlUnlinkNode(sig);
    int rc = c14n_sha256(doc, XML_C14N_1_0, out, "the document (the Reference)", fail_code);
    if (next) xmlAddPrevSibling(next, sig);
    else xmlAddChild(parent, sig);
    return rc;
}

static int duis_signed_info_digest(xmlNodePtr si, uint8_t out[32], int fail_code)
{
    /* The profile's CanonicalizationMethod: exclusive C14N, no comments, no
     * InclusiveNamespaces (the profile refuses any child of CanonicalizationMethod).
     * libxml2 walks the whole document for a subset, so SignedInfo is copied into a
     * document of its own first: exclusive C14N inherits nothing from the ancestors but
     * the namespaces visibly used, and the copy declares those it uses from outside on
     * its root (libxml2 reconciles them), so its C14N is the subset's (RFC 3741 3). */
    xmlDocPtr alone = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr copy = alone ? xmlDocCopyNode(si, alone, 1) : NULL;
    if (!copy) {
        xmlFreeDoc(alone);
        return SMKI_FAIL(SMKI_E_NOMEM, "out of memory (copying ds:SignedInfo)");
    }
    xmlDocSetRootElement(alone, copy);
    int rc = c14n_sha256(alone, XML_C14N_EXCLUSIVE_1_0, out, "ds:SignedInfo", fail_code);
    xmlFreeDoc(alone);
    return rc;
}

/* ---- base64 values ----------------------------------------------------------------------- */
/* The element's text decoded from base64 in place (*out, xmlFree), whatever its length:
 * a value of the wrong length is a failed check, as in xmlsec, not an error. */
static int read_base64(xmlNodePtr n, xmlChar **out, size_t *len, const char *what)
{
    *out = NULL;
    xmlChar *s = xmlNodeGetContent(n);
    ENSURE(s, SMKI_E_NOMEM, "out of memory");
    xmlSecSize w = 0;
    if (xmlSecBase64DecodeInPlace(s, &w) < 0) {
        xmlFree(s);
        return SMKI_FAIL(SMKI_E_VERIFY, "the signature could not be processed: %s is not base64", what);
    }
    *out = s;
    *len = w;
    return 0;
}

static int write_base64(xmlNodePtr n, const uint8_t *data, size_t len)
{
    /* As xmlsec writes it: lines of 64 characters. */
    xmlChar *b64 = xmlSecBase64Encode(data, (xmlSecSize)len, xmlSecBase64GetDefaultLineSize());
    ENSURE(b64, SMKI_E_NOMEM, "out of memory (base64)");
    xmlNodeSetContent(n, b64);
    xmlFree(b64);
    return 0;
}

/* ---- The signature's parts ------------------------------------------------------------------ */
typedef struct {
    xmlNodePtr signed_info, signature_value, digest_value;
} sig_parts;

/* sig has passed the profile check (or is smki's own template): SignedInfo(
 * CanonicalizationMethod, SignatureMethod, Reference(Transforms, DigestMethod,
 * DigestValue)), SignatureValue, KeyInfo. */
static int find_parts(xmlNodePtr sig, sig_parts *p)
{
    p->signed_info = smki_duis_next_el(sig->children, 1);
    p->signature_value = smki_duis_next_el(p->signed_info, 0);
    xmlNodePtr rf = p->signed_info ? smki_duis_next_el(smki_duis_next_el(smki_duis_next_el(p->signed_info->children, 1), 0), 0) : NULL;
    p->digest_value = rf ? smki_duis_next_el(smki_duis_next_el(smki_duis_next_el(rf->children, 1), 0), 0) : NULL;
    ENSURE(smki_duis_is_el(p->signed_info, DUIS_DSIG_NS, "SignedInfo") &&
               smki_duis_is_el(p->signature_value, DUIS_DSIG_NS, "SignatureValue") &&
               smki_duis_is_el(p->digest_value, DUIS_DSIG_NS, "DigestValue"),
           SMKI_E_INTERNAL, "the ds:Signature's elements are not where the DUIS profile puts them");
    return 0;
}

/* ---- Signing ------------------------------------------------------------------------------- */
int smki_duis_sign_c14n(xmlDocPtr doc, xmlNodePtr sig, smki_key *key)
{
    sig_parts p;
    GUARD(find_parts(sig, &p));
    uint8_t digest[32], si_digest[32], value[SMKI_SIG_MAX];
    size_t value_len = sizeof value;
    GUARD(duis_reference_digest(doc, sig, digest, SMKI_E_INPUT));
    GUARD(write_base64(p.digest_value, digest, sizeof digest));
    GUARD(duis_signed_info_digest(p.signed_info, si_digest, SMKI_E_INPUT));
    if (smki_key_sign_digest(key, si_digest, SMKI_SIG_RAW, value, &value_len) < 0)
        return smki_error_wrap("signing the DUIS document");
    return write_base64(p.signature_value, value, value_len);
}

/* ---- Verifying ------------------------------------------------------------------------------ */
int smki_duis_verify_c14n(xmlDocPtr doc, xmlNodePtr sig, EVP_PKEY *pub)
{
    sig_parts p;
    GUARD(find_parts(sig, &p));
    uint8_t got[32], si_digest[32];
    xmlChar *want = NULL, *value = NULL;
    size_t want_len = 0, value_len = 0;
    GUARD(read_base64(p.digest_value, &want, &want_len, "ds:DigestValue"));
    int rc = duis_reference_digest(doc, sig, got, SMKI_E_VERIFY);
    if (rc == 0 && (want_len != sizeof got || CRYPTO_memcmp(want, got, sizeof got) != 0))
        rc = SMKI_FAIL(SMKI_E_VERIFY, "the Reference digest does not match: the document was changed after it was signed");
    if (rc == 0) rc = read_base64(p.signature_value, &value, &value_len, "ds:SignatureValue");
    if (rc == 0) rc = duis_signed_info_digest(p.signed_info, si_digest, SMKI_E_VERIFY);
    if (rc == 0 && smki_verify_digest(pub, si_digest, SMKI_SIG_RAW, value, value_len) < 0) {
        smki_error_clear();
        rc = SMKI_FAIL(SMKI_E_VERIFY, "the signature value does not verify with the signer's key "
                                      "(SignedInfo changed, or signed by another key)");
    }
    xmlFree(want);
    xmlFree(value);
    return rc;
}
