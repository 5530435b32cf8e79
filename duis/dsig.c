/* duis/dsig.c: the enveloped XML signature of DUIS: the profile check (so wrapping
 * attacks, a second Signature, another URI, extra transforms, are refused before any
 * digest), the signer rules, xmlsec's template, and the two ways of computing the
 * digests and the value: libxml2's C14N directly (c14n.c, what smki uses) and xmlsec's
 * DSig processing (the reference the tests compare it with), where the ecdsa-sha256
 * method is smki's own xmlsec transform, registered ahead of OpenSSL's, so the value
 * is made by smki_key_sign_digest (a token key signs in the token) and checked by
 * smki_verify_digest either way. */
#include <openssl/bn.h>
#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xmlsec/crypto.h>
#include <xmlsec/errors.h>
#include <xmlsec/keys.h>
#include <xmlsec/keysdata.h>
#include <xmlsec/templates.h>
#include <xmlsec/transforms.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlsec.h>

#include "duis_private.h"

#define HREF_EXC_C14N "http://www.w3.org/2001/10/xml-exc-c14n#"
#define HREF_ECDSA_SHA256 "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
#define HREF_ENVELOPED "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
#define HREF_SHA256 "http://www.w3.org/2001/04/xmlenc#sha256"

/* ---- xmlsec's errors: kept per thread for the message, never printed ------------------ */
static _Thread_local char xmlsec_err[256];

static void on_xmlsec_error(const char *file, int line, const char *func, const char *obj, const char *subj,
                            int reason, const char *msg)
{
    (void)file, (void)line, (void)reason;
    if (xmlsec_err[0]) return; /* the first error is the cause; the rest is the unwinding */
    snprintf(xmlsec_err, sizeof xmlsec_err, "%s%s%s%s%s", func ? func : "", obj ? " " : "", obj ? obj : "",
             subj ? ": " : "", subj ? subj : "");
    if (msg && *msg) {
        size_t n = strlen(xmlsec_err);
        snprintf(xmlsec_err + n, sizeof xmlsec_err - n, " (%s)", msg);
    }
}

/* The last xmlsec error reported on this thread ("" if none). */
static const char *duis_xmlsec_error(void) { return xmlsec_err; }
static void duis_xmlsec_error_clear(void) { xmlsec_err[0] = 0; }

/* ---- The key: a private smki_key or a public EVP_PKEY ---------------------------------- */
typedef struct {
    smki_key *priv;
    EVP_PKEY *pub;
} key_obj;

#define KEY_OBJ(d) ((key_obj *)((xmlSecByte *)(d) + sizeof(xmlSecKeyData)))

static int key_init(xmlSecKeyDataPtr d)
{
    memset(KEY_OBJ(d), 0, sizeof(key_obj));
    return 0;
}

static int key_dup(xmlSecKeyDataPtr dst, xmlSecKeyDataPtr src)
{
    *KEY_OBJ(dst) = *KEY_OBJ(src);
    if (KEY_OBJ(dst)->pub) EVP_PKEY_up_ref(KEY_OBJ(dst)->pub);
    return 0;
}

static void key_fin(xmlSecKeyDataPtr d)
{
    EVP_PKEY_free(KEY_OBJ(d)->pub);
    memset(KEY_OBJ(d), 0, sizeof(key_obj));
}

static xmlSecKeyDataType key_type(xmlSecKeyDataPtr d)
{
    return KEY_OBJ(d)->priv ? (xmlSecKeyDataTypePrivate | xmlSecKeyDataTypePublic) : xmlSecKeyDataTypePublic;
}

static xmlSecSize key_size(xmlSecKeyDataPtr d)
{
    (void)d;
    return 256;
}

static xmlSecKeyDataKlass key_klass = {
    sizeof(xmlSecKeyDataKlass),
    sizeof(xmlSecKeyData) + sizeof(key_obj),
    BAD_CAST "smki-key",
    xmlSecKeyDataUsageUnknown, /* never read from or written to KeyInfo */
    NULL, NULL, NULL,
    key_init, key_dup, key_fin, NULL,
    key_type, key_size, NULL,
    NULL, NULL, NULL, NULL,
    NULL, NULL,
    NULL, NULL,
};

/* The xmlsec key for the signature transform: a private smki_key (signing) or a public
 * EVP_PKEY (verifying, up-referenced). */
static struct _xmlSecKey *duis_key_new(smki_key *priv, EVP_PKEY *pub)
{
    xmlSecKeyDataPtr d = xmlSecKeyDataCreate(&key_klass);
    if (!d) return NULL;
    KEY_OBJ(d)->priv = priv;
    if (pub) {
        EVP_PKEY_up_ref(pub);
        KEY_OBJ(d)->pub = pub;
    }
    xmlSecKeyPtr k = xmlSecKeyCreate();
    if (!k || xmlSecKeySetValue(k, d) < 0) {
        xmlSecKeyDataDestroy(d);
        xmlSecKeyDestroy(k);
        return NULL;
    }
    return k;
}

/* ---- The ecdsa-sha256 signature method through hsm/ ------------------------------------- */
typedef struct {
    EVP_MD_CTX *md;
    smki_key *priv;
    EVP_PKEY *pub;
    uint8_t digest[32];
} sig_obj;

#define SIG_OBJ(t) ((sig_obj *)((xmlSecByte *)(t) + sizeof(xmlSecTransform)))

static int sig_init(xmlSecTransformPtr t)
{
    sig_obj *o = SIG_OBJ(t);
    memset(o, 0, sizeof *o);
    o->md = EVP_MD_CTX_new();
    if (!o->md || EVP_DigestInit_ex(o->md, EVP_sha256(), NULL) != 1) return -1;
    return 0;
}

static void sig_fin(xmlSecTransformPtr t)
{
    sig_obj *o = SIG_OBJ(t);
    EVP_MD_CTX_free(o->md);
    EVP_PKEY_free(o->pub);
    memset(o, 0, sizeof *o);
}

static int sig_key_req(xmlSecTransformPtr t, xmlSecKeyReqPtr req)
{
    req->keyId = &key_klass;
    if (t->operation == xmlSecTransformOperationSign) {
        req->keyType = xmlSecKeyDataTypePrivate;
        req->keyUsage = xmlSecKeyUsageSign;
    } else {
        req->keyType = xmlSecKeyDataTypePublic;
        req->keyUsage = xmlSecKeyUsageVerify;
    }
    return 0;
}

static int sig_set_key(xmlSecTransformPtr t, xmlSecKeyPtr key)
{
    xmlSecKeyDataPtr d = xmlSecKeyGetValue(key);
    if (!d || d->id != &key_klass) return -1;
    sig_obj *o = SIG_OBJ(t);
    o->priv = KEY_OBJ(d)->priv;
    if (KEY_OBJ(d)->pub) {
        EVP_PKEY_up_ref(KEY_OBJ(d)->pub);
        o->pub = KEY_OBJ(d)->pub;
    }
    if (t->operation == xmlSecTransformOperationSign ? !o->priv : !o->pub) return -1;
    return 0;
}

static int sig_verify(xmlSecTransformPtr t, const xmlSecByte *data, xmlSecSize size, xmlSecTransformCtxPtr ctx)
{
    (void)ctx;
    if (t->status != xmlSecTransformStatusFinished) return -1;
    /* A wrong or malformed signature is a failed verification, not an error. */
    int rc = smki_verify_digest(SIG_OBJ(t)->pub, SIG_OBJ(t)->digest, SMKI_SIG_RAW, data, size);
    t->status = rc == 0 ? xmlSecTransformStatusOk : xmlSecTransformStatusFail;
    if (rc < 0) smki_error_clear();
    return 0;
}

static int sig_execute(xmlSecTransformPtr t, int last, xmlSecTransformCtxPtr ctx)
{
    (void)ctx;
    sig_obj *o = SIG_OBJ(t);
    xmlSecBufferPtr in = &t->inBuf;
    if (t->status == xmlSecTransformStatusNone) t->status = xmlSecTransformStatusWorking;
    if (t->status != xmlSecTransformStatusWorking) return t->status == xmlSecTransformStatusFinished ? 0 : -1;
    xmlSecSize n = xmlSecBufferGetSize(in);
    if (n > 0) {
        if (EVP_DigestUpdate(o->md, xmlSecBufferGetData(in), n) != 1) return -1;
        if (xmlSecBufferRemoveHead(in, n) < 0) return -1;
    }
    if (!last) return 0;
    unsigned int dlen = 0;
    if (EVP_DigestFinal_ex(o->md, o->digest, &dlen) != 1 || dlen != sizeof o->digest) return -1;
    if (t->operation == xmlSecTransformOperationSign) {
        uint8_t sig[SMKI_SIG_MAX];
        size_t slen = sizeof sig;
        /* smki's error stays recorded for the caller when the token refuses. */
        if (smki_key_sign_digest(o->priv, o->digest, SMKI_SIG_RAW, sig, &slen) < 0) return -1;
        if (xmlSecBufferAppend(&t->outBuf, sig, (xmlSecSize)slen) < 0) return -1;
    }
    t->status = xmlSecTransformStatusFinished;
    return 0;
}

static xmlSecTransformKlass ecdsa_klass = {
    sizeof(xmlSecTransformKlass),
    sizeof(xmlSecTransform) + sizeof(sig_obj),
    BAD_CAST "smki-ecdsa-sha256",
    BAD_CAST HREF_ECDSA_SHA256,
    xmlSecTransformUsageSignatureMethod,
    sig_init, sig_fin,
    NULL, NULL,
    sig_key_req, sig_set_key, sig_verify,
    xmlSecTransformDefaultGetDataType,
    xmlSecTransformDefaultPushBin, xmlSecTransformDefaultPopBin,
    NULL, NULL,
    sig_execute,
    NULL, NULL,
};

/* ---- Once per process -------------------------------------------------------------------- */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

/* libxml2 prints some errors (C14N's) through its generic handler: smki reports the
 * cause itself, so they are kept off stderr, in every thread that uses libxml2. */
static void quiet(void *ctx, const char *msg, ...)
{
    (void)ctx, (void)msg;
}

static void quiet_structured(void *ctx, xmlErrorPtr e)
{
    (void)ctx, (void)e;
}

static void init_all(void)
{
    xmlInitParser();
    xmlThrDefSetGenericErrorFunc(NULL, quiet);
    xmlThrDefSetStructuredErrorFunc(NULL, quiet_structured);
    xmlSetGenericErrorFunc(NULL, quiet);
    xmlSetStructuredErrorFunc(NULL, quiet_structured);
    xmlSecErrorsSetCallback(on_xmlsec_error);
    if (xmlSecInit() < 0 || xmlSecCheckVersion() != 1) {
        init_rc = -1;
        return;
    }
    /* First in the list, so xmlsec finds smki's ecdsa-sha256 before OpenSSL's. */
    if (xmlSecTransformIdsRegister(&ecdsa_klass) < 0 || xmlSecCryptoInit() < 0) init_rc = -1;
    xmlSecErrorsSetCallback(on_xmlsec_error); /* (again: the crypto back end may set its own) */
}

int smki_duis_init(void)
{
    pthread_once(&init_once, init_all);
    ENSURE(init_rc == 0, SMKI_E_INTERNAL, "libxmlsec1 did not initialise: %s", duis_xmlsec_error());
    return 0;
}

/* ---- The profile ------------------------------------------------------------------------- */
static int expect_el(xmlNodePtr n, const char *name, const char *where)
{
    ENSURE(n, SMKI_E_REFUSED, "signature profile: %s lacks ds:%s", where, name);
    ENSURE(smki_duis_is_el(n, DUIS_DSIG_NS, name), SMKI_E_REFUSED,
           "signature profile: %s holds '%s' where ds:%s belongs (refused: not the DUIS profile)", where,
           (const char *)n->name, name);
    return 0;
}

static int expect_end(xmlNodePtr n, const char *where)
{
    ENSURE(!n, SMKI_E_REFUSED, "signature profile: %s holds an extra element '%s' (refused: not the DUIS profile)",
           where, (const char *)n->name);
    return 0;
}

static int expect_alg(xmlNodePtr n, const char *what, const char *href)
{
    xmlChar *a = xmlGetProp(n, BAD_CAST "Algorithm");
    int ok = a && strcmp((const char *)a, href) == 0;
    char got[160];
    snprintf(got, sizeof got, "%s", a ? (const char *)a : "(none)");
    xmlFree(a);
    ENSURE(ok, SMKI_E_REFUSED, "signature profile: %s is %s; DUIS signs with %s only", what, got, href);
    ENSURE(!smki_duis_next_el(n->children, 1), SMKI_E_REFUSED, "signature profile: %s has child elements (refused)", what);
    return 0;
}


static int text_of(xmlNodePtr n, char *out, size_t cap, const char *what)
{
    xmlChar *s = xmlNodeGetContent(n);
    ENSURE(s, SMKI_E_NOMEM, "out of memory");
    const char *p = (const char *)s;
    size_t len = strlen(p);
    while (len && strchr(" \t\r\n", *p)) p++, len--;
    while (len && strchr(" \t\r\n", p[len - 1])) len--;
    int rc = 0;
    if (len == 0 || len >= cap)
        rc = SMKI_FAIL(SMKI_E_REFUSED, "signature profile: %s is empty or over %zu characters", what, cap - 1);
    else {
        memcpy(out, p, len);
        out[len] = 0;
    }
    xmlFree(s);
    return rc;
}

static int expect_leaf(xmlNodePtr n, const char *what)
{
    ENSURE(!smki_duis_next_el(n->children, 1), SMKI_E_REFUSED, "signature profile: %s has child elements (refused)", what);
    return 0;
}

/* Exactly one ds:Signature in the document, the last element child of the root. */
static int check_placement(xmlDocPtr doc, xmlNodePtr *sig_out)
{
    xmlNodePtr root = xmlDocGetRootElement(doc), sig = NULL;
    size_t n = smki_duis_count_signatures(root, &sig);
    ENSURE(n > 0, SMKI_E_REFUSED, "no ds:Signature: the document is not signed");
    ENSURE(n == 1, SMKI_E_REFUSED, "%zu ds:Signature elements: exactly one is allowed (signature wrapping refused)", n);
    xmlNodePtr last = NULL;
    for (xmlNodePtr c = smki_duis_next_el(root->children, 1); c; c = smki_duis_next_el(c, 0)) last = c;
    ENSURE(sig == last, SMKI_E_REFUSED, "ds:Signature is not the last child of the root (signature wrapping refused)");
    *sig_out = sig;
    return 0;
}

/* Reference URI="" (the whole document), the enveloped-signature transform alone, SHA-256. */
static int check_reference(xmlNodePtr rf)
{
    xmlChar *uri = xmlGetProp(rf, BAD_CAST "URI");
    char got[120];
    snprintf(got, sizeof got, "%s", uri ? (const char *)uri : "(no URI)");
    int whole = uri && uri[0] == 0;
    xmlFree(uri);
    ENSURE(whole, SMKI_E_REFUSED,
           "signature profile: ds:Reference URI is '%s'; only URI=\"\" (the whole document) is allowed "
           "(signature wrapping refused)", got);
    ENSURE(!xmlHasProp(rf, BAD_CAST "Type"), SMKI_E_REFUSED, "signature profile: ds:Reference has a Type (refused)");
    xmlNodePtr tr = smki_duis_next_el(rf->children, 1);
    GUARD(expect_el(tr, "Transforms", "ds:Reference"));
    xmlNodePtr t1 = smki_duis_next_el(tr->children, 1);
    GUARD(expect_el(t1, "Transform", "ds:Transforms"));
    GUARD(expect_alg(t1, "the Reference's transform", HREF_ENVELOPED));
    ENSURE(!smki_duis_next_el(t1, 0), SMKI_E_REFUSED,
           "signature profile: the Reference has more than the enveloped-signature transform (extra transforms "
           "refused: signature wrapping)");
    xmlNodePtr dm = smki_duis_next_el(tr, 0);
    GUARD(expect_el(dm, "DigestMethod", "ds:Reference"));
    GUARD(expect_alg(dm, "DigestMethod", HREF_SHA256));
    xmlNodePtr dv = smki_duis_next_el(dm, 0);
    GUARD(expect_el(dv, "DigestValue", "ds:Reference"));
    GUARD(expect_leaf(dv, "ds:DigestValue"));
    return expect_end(smki_duis_next_el(dv, 0), "ds:Reference");
}

/* Exclusive C14N, ecdsa-sha256, one Reference. */
static int check_signed_info(xmlNodePtr si)
{
    xmlNodePtr cm = smki_duis_next_el(si->children, 1);
    GUARD(expect_el(cm, "CanonicalizationMethod", "ds:SignedInfo"));
    GUARD(expect_alg(cm, "CanonicalizationMethod", HREF_EXC_C14N));
    xmlNodePtr sm = smki_duis_next_el(cm, 0);
    GUARD(expect_el(sm, "SignatureMethod", "ds:SignedInfo"));
    GUARD(expect_alg(sm, "SignatureMethod", HREF_ECDSA_SHA256));
    xmlNodePtr rf = smki_duis_next_el(sm, 0);
    GUARD(expect_el(rf, "Reference", "ds:SignedInfo"));
    ENSURE(!smki_duis_next_el(rf, 0) || !smki_duis_is_el(smki_duis_next_el(rf, 0), DUIS_DSIG_NS, "Reference"), SMKI_E_REFUSED,
           "signature profile: more than one ds:Reference (signature wrapping refused)");
    GUARD(expect_end(smki_duis_next_el(rf, 0), "ds:SignedInfo"));
    return check_reference(rf);
}

/* KeyInfo/X509Data/X509IssuerSerial and nothing else; the issuer and serial into ref. */
static int check_key_info(xmlNodePtr ki, smki_duis_signer_ref *ref)
{
    xmlNodePtr xd = smki_duis_next_el(ki->children, 1);
    GUARD(expect_el(xd, "X509Data", "ds:KeyInfo"));
    GUARD(expect_end(smki_duis_next_el(xd, 0), "ds:KeyInfo"));
    xmlNodePtr is = smki_duis_next_el(xd->children, 1);
    GUARD(expect_el(is, "X509IssuerSerial", "ds:X509Data"));
    GUARD(expect_end(smki_duis_next_el(is, 0), "ds:X509Data"));
    xmlNodePtr in = smki_duis_next_el(is->children, 1);
    GUARD(expect_el(in, "X509IssuerName", "ds:X509IssuerSerial"));
    xmlNodePtr sn = smki_duis_next_el(in, 0);
    GUARD(expect_el(sn, "X509SerialNumber", "ds:X509IssuerSerial"));
    GUARD(expect_end(smki_duis_next_el(sn, 0), "ds:X509IssuerSerial"));
    GUARD(expect_leaf(in, "ds:X509IssuerName"));
    GUARD(expect_leaf(sn, "ds:X509SerialNumber"));
    GUARD(text_of(in, ref->issuer, sizeof ref->issuer, "ds:X509IssuerName"));
    GUARD(text_of(sn, ref->serial, sizeof ref->serial, "ds:X509SerialNumber"));
    ENSURE(strspn(ref->serial, "0123456789") == strlen(ref->serial), SMKI_E_REFUSED,
           "ds:X509SerialNumber '%s' is not a decimal number", ref->serial);
    return 0;
}

/* Everything about ds:Signature that is not a digest or a signature value, checked so
 * that what is verified is exactly the document (the one Reference covers the
 * whole root, minus the signature). */
static int check_profile(xmlDocPtr doc, xmlNodePtr *sig_out, smki_duis_signer_ref *ref)
{
    xmlNodePtr sig = NULL;
    GUARD(check_placement(doc, &sig));
    xmlNodePtr si = smki_duis_next_el(sig->children, 1);
    GUARD(expect_el(si, "SignedInfo", "ds:Signature"));
    xmlNodePtr sv = smki_duis_next_el(si, 0);
    GUARD(expect_el(sv, "SignatureValue", "ds:Signature"));
    GUARD(expect_leaf(sv, "ds:SignatureValue"));
    xmlNodePtr ki = smki_duis_next_el(sv, 0);
    GUARD(expect_el(ki, "KeyInfo", "ds:Signature"));
    GUARD(expect_end(smki_duis_next_el(ki, 0), "ds:Signature"));
    GUARD(check_signed_info(si));
    GUARD(check_key_info(ki, ref));
    *sig_out = sig;
    return 0;
}

/* A decimal X509SerialNumber as hex (BN_bn2hex: upper case, no leading zeros). */
static int serial_to_hex(const char *dec, char *out, size_t cap)
{
    BIGNUM *bn = NULL;
    size_t n = strlen(dec);
    ENSURE(n > 0 && strspn(dec, "0123456789") == n && BN_dec2bn(&bn, dec) == (int)n, SMKI_E_INPUT,
           "X509SerialNumber '%.40s' is not a decimal number", dec);
    char *hex = BN_bn2hex(bn);
    BN_free(bn);
    ENSURE(hex, SMKI_E_NOMEM, "out of memory");
    int fits = strlen(hex) < cap;
    if (fits) memcpy(out, hex, strlen(hex) + 1);
    OPENSSL_free(hex);
    ENSURE(fits, SMKI_E_INPUT, "X509SerialNumber '%.40s' is too long", dec);
    return 0;
}

int smki_duis_signer_ref_get(const uint8_t *xml, size_t len, smki_duis_signer_ref *out)
{
    memset(out, 0, sizeof *out);
    xmlDocPtr doc = NULL;
    GUARD(smki_duis_parse(xml, len, &doc));
    smki_duis_info info;
    int rc = smki_duis_info_read(doc, &info);
    xmlNodePtr sig = NULL;
    if (rc == 0) rc = check_profile(doc, &sig, out);
    xmlFreeDoc(doc);
    if (rc == 0) rc = serial_to_hex(out->serial, out->serial_hex, sizeof out->serial_hex);
    return rc;
}

/* ---- The signer ------------------------------------------------------------------------- */
static int duis_check_signer_info(X509 *cert, const smki_gbcs_cert_info *cip, const smki_duis_info *info, time_t at);

int smki_duis_check_signer(X509 *cert, const smki_duis_info *info, time_t at)
{
    smki_gbcs_cert_info ci;
    int rc = smki_gbcs_cert_info_get(cert, &ci);
    if (rc < 0) return smki_error_wrap("the signer's certificate");
    return duis_check_signer_info(cert, &ci, info, at);
}

/* smki_duis_check_signer over what the certificate says, already read. */
static int duis_check_signer_info(X509 *cert, const smki_gbcs_cert_info *cip, const smki_duis_info *info, time_t at)
{
    ENSURE(cip, SMKI_E_REFUSED, "the signer's certificate is not one of the GB profiles (the linter cannot read it)");
    const smki_gbcs_cert_info ci = *cip;
    uint8_t want = smki_duis_signer_role(info->kind);
    const char *kind = info->kind == SMKI_DUIS_RESPONSE ? "a Response" : "a Request";
    char role[SMKI_ROLE_TEXT_MAX], wrole[SMKI_ROLE_TEXT_MAX];
    smki_role_format(want, wrole);
    ENSURE(!ci.is_device && ci.has_id && ci.role >= 0, SMKI_E_REFUSED,
           "the signer's certificate is not an organisation certificate (%s is signed with an organisation "
           "certificate of role %s %s)", kind, wrole, smki_role_name(want));
    smki_role_format((uint8_t)ci.role, role);
    ENSURE(ci.role == want, SMKI_E_REFUSED,
           "the signer's certificate has Remote Party Role %s (%s); %s is signed with role %s (%s) only", role,
           smki_role_name((unsigned)ci.role), kind, wrole, smki_role_name(want));
    ENSURE(ci.key_usage & SMKI_KU_DIGITAL_SIGNATURE, SMKI_E_REFUSED,
           "the signer's certificate has no digitalSignature key usage");
    if (info->kind == SMKI_DUIS_REQUEST && smki_eui64_cmp(&ci.id, &info->request_id.originator) != 0) {
        char a[SMKI_EUI64_TEXT_MAX], b[SMKI_EUI64_TEXT_MAX];
        smki_eui64_format(&ci.id, SMKI_EUI64_HYPHEN, a);
        smki_eui64_format(&info->request_id.originator, SMKI_EUI64_HYPHEN, b);
        return SMKI_FAIL(SMKI_E_REFUSED,
                         "the signer's EUI-64 %s is not the request's business originator %s (first EUI-64 of "
                         "sr:RequestID)", a, b);
    }
    return smki_gbcs_cert_check_time(cert, at, "the signer's certificate");
}

/* ---- Signing ---------------------------------------------------------------------------- */
static xmlNodePtr make_template(xmlDocPtr doc, const char *issuer, const char *serial)
{
    xmlNodePtr sig = xmlSecTmplSignatureCreateNsPref(doc, xmlSecTransformExclC14NId, &ecdsa_klass, NULL, BAD_CAST "ds");
    if (!sig) return NULL;
    xmlNodePtr ref = xmlSecTmplSignatureAddReference(sig, xmlSecTransformSha256Id, NULL, BAD_CAST "", NULL);
    xmlNodePtr ki = xmlSecTmplSignatureEnsureKeyInfo(sig, NULL);
    xmlNodePtr xd = ki ? xmlSecTmplKeyInfoAddX509Data(ki) : NULL;
    xmlNodePtr is = xd ? xmlSecTmplX509DataAddIssuerSerial(xd) : NULL;
    if (!ref || !xmlSecTmplReferenceAddTransform(ref, xmlSecTransformEnvelopedId) || !is ||
        !xmlSecTmplX509IssuerSerialAddIssuerName(is, BAD_CAST issuer) ||
        !xmlSecTmplX509IssuerSerialAddSerialNumber(is, BAD_CAST serial)) {
        xmlFreeNode(sig);
        return NULL;
    }
    return sig;
}

/* Put the template where the old signature was (the RTDS placeholder), else last. All
 * checks come first: on a refusal the template is still the caller's, unlinked. */
static int place_template(xmlNodePtr root, xmlNodePtr sig)
{
    xmlNodePtr old = NULL;
    size_t n = smki_duis_count_signatures(root, &old);
    ENSURE(n <= 1, SMKI_E_INPUT, "the document holds %zu ds:Signature elements: give it with at most one", n);
    if (!old) {
        xmlAddChild(root, sig);
        return 0;
    }
    ENSURE(old->parent == root, SMKI_E_INPUT, "the document's ds:Signature is not a child of the root");
    ENSURE(!smki_duis_next_el(old, 0), SMKI_E_INPUT,
           "the document's ds:Signature is followed by other elements: it must be last");
    xmlReplaceNode(old, sig);
    xmlFreeNode(old);
    return 0;
}

static int run_sign(xmlNodePtr sig, smki_key *key)
{
    xmlSecDSigCtxPtr ctx = xmlSecDSigCtxCreate(NULL);
    ENSURE(ctx, SMKI_E_NOMEM, "out of memory (xmlsec)");
    int rc = 0;
    ctx->signKey = duis_key_new(key, NULL);
    duis_xmlsec_error_clear();
    smki_error_clear();
    if (!ctx->signKey) {
        rc = SMKI_FAIL(SMKI_E_NOMEM, "out of memory (xmlsec key)");
    } else if (xmlSecDSigCtxSign(ctx, sig) < 0 || ctx->status != xmlSecDSigStatusSucceeded) {
        if (smki_error_code() < 0)
            rc = smki_error_wrap("signing the DUIS document");
        else /* the key signed nothing: xmlsec refused the document (its canonical form) */
            rc = SMKI_FAIL(SMKI_E_INPUT, "xmlsec could not sign the document: %s", duis_xmlsec_error());
    }
    xmlSecDSigCtxDestroy(ctx);
    return rc;
}

static int key_matches(smki_key *key, X509 *cert)
{
    EVP_PKEY *pub = smki_key_public(key);
    ENSURE(pub && EVP_PKEY_eq(pub, X509_get0_pubkey(cert)) == 1, SMKI_E_REFUSED,
           "the key %s is not the certificate's key: give the private key of the signing certificate",
           smki_key_ref(key));
    return 0;
}

struct smki_duis_signer {
    smki_key *key;
    X509 *cert;
    smki_gbcs_cert_info ci;
    char issuer[512], serial[64];
};

int smki_duis_signer_new(smki_key *key, X509 *cert, smki_duis_signer **out)
{
    *out = NULL;
    GUARD(smki_duis_init());
    smki_duis_signer *s = calloc(1, sizeof *s);
    ENSURE(s, SMKI_E_NOMEM, "out of memory");
    int rc = smki_gbcs_cert_info_get(cert, &s->ci);
    if (rc < 0) smki_error_wrap("the signer's certificate");
    if (rc == 0) rc = key_matches(key, cert);
    if (rc == 0) rc = smki_duis_cert_issuer_text(cert, s->issuer, sizeof s->issuer);
    if (rc == 0) rc = smki_duis_cert_serial_text(cert, s->serial, sizeof s->serial);
    if (rc < 0) {
        free(s);
        return rc;
    }
    X509_up_ref(cert);
    s->key = key;
    s->cert = cert;
    *out = s;
    return 0;
}

void smki_duis_signer_free(smki_duis_signer *s)
{
    if (!s) return;
    X509_free(s->cert);
    free(s);
}

static int dump_doc(xmlDocPtr doc, uint8_t **out, size_t *out_len)
{
    xmlChar *mem = NULL;
    int size = 0;
    xmlDocDumpMemoryEnc(doc, &mem, &size, "UTF-8");
    int rc = 0;
    if (!mem || size <= 0) {
        rc = SMKI_FAIL(SMKI_E_NOMEM, "out of memory (writing the signed document)");
    } else if (!(*out = malloc((size_t)size))) {
        rc = SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    } else {
        memcpy(*out, mem, (size_t)size);
        *out_len = (size_t)size;
    }
    xmlFree(mem);
    return rc;
}

int smki_duis_engine_sign(duis_engine engine, const smki_duis_signer *s, time_t at, const uint8_t *xml, size_t len,
                   uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    xmlDocPtr doc = NULL;
    GUARD(smki_duis_parse(xml, len, &doc));
    smki_duis_info info;
    int rc = smki_duis_info_read(doc, &info);
    if (rc == 0) rc = duis_check_signer_info(s->cert, &s->ci, &info, at);
    xmlNodePtr sig = NULL;
    if (rc == 0) {
        sig = make_template(doc, s->issuer, s->serial);
        if (!sig) rc = SMKI_FAIL(SMKI_E_INTERNAL, "xmlsec could not build the signature template: %s",
                                 duis_xmlsec_error());
    }
    if (rc == 0) {
        rc = place_template(xmlDocGetRootElement(doc), sig);
        if (rc < 0) xmlFreeNode(sig);
    }
    if (rc == 0) rc = engine == DUIS_ENGINE_XMLSEC ? run_sign(sig, s->key) : smki_duis_sign_c14n(doc, sig, s->key);
    if (rc == 0) rc = dump_doc(doc, out, out_len);
    xmlFreeDoc(doc);
    return rc;
}

int smki_duis_sign_with(const smki_duis_signer *s, time_t at, const uint8_t *xml, size_t len, uint8_t **out,
                        size_t *out_len)
{
    return smki_duis_engine_sign(DUIS_ENGINE_C14N, s, at, xml, len, out, out_len);
}

int smki_duis_sign(smki_key *key, X509 *cert, time_t at, const uint8_t *xml, size_t len, uint8_t **out,
                   size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    smki_duis_signer *s = NULL;
    GUARD(smki_duis_signer_new(key, cert, &s));
    int rc = smki_duis_sign_with(s, at, xml, len, out, out_len);
    smki_duis_signer_free(s);
    return rc;
}

/* ---- Verifying -------------------------------------------------------------------------- */
static int verify_xmlsec(xmlNodePtr sig, EVP_PKEY *pub)
{
    xmlSecDSigCtxPtr ctx = xmlSecDSigCtxCreate(NULL);
    ENSURE(ctx, SMKI_E_NOMEM, "out of memory (xmlsec)");
    int rc = 0;
    ctx->flags = XMLSEC_DSIG_FLAGS_IGNORE_MANIFESTS | XMLSEC_DSIG_FLAGS_STORE_SIGNEDINFO_REFERENCES;
    ctx->signKey = duis_key_new(NULL, pub);
    duis_xmlsec_error_clear();
    if (!ctx->signKey || xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformEnvelopedId) < 0 ||
        xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha256Id) < 0 ||
        xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformExclC14NId) < 0 ||
        xmlSecDSigCtxEnableSignatureTransform(ctx, &ecdsa_klass) < 0) {
        rc = SMKI_FAIL(SMKI_E_NOMEM, "out of memory (xmlsec)");
    } else if (xmlSecDSigCtxVerify(ctx, sig) < 0) {
        rc = SMKI_FAIL(SMKI_E_VERIFY, "the signature could not be processed: %s", duis_xmlsec_error());
    } else if (ctx->status != xmlSecDSigStatusSucceeded) {
        int digest_bad = 0;
        xmlSecSize n = xmlSecPtrListGetSize(&ctx->signedInfoReferences);
        for (xmlSecSize i = 0; i < n; i++) {
            xmlSecDSigReferenceCtxPtr r = xmlSecPtrListGetItem(&ctx->signedInfoReferences, i);
            if (r && r->status != xmlSecDSigStatusSucceeded) digest_bad = 1;
        }
        rc = digest_bad ? SMKI_FAIL(SMKI_E_VERIFY, "the Reference digest does not match: the document was changed "
                                                   "after it was signed")
                        : SMKI_FAIL(SMKI_E_VERIFY, "the signature value does not verify with the signer's key "
                                                   "(SignedInfo changed, or signed by another key)");
    } else if (xmlSecPtrListGetSize(&ctx->signedInfoReferences) != 1) {
        rc = SMKI_FAIL(SMKI_E_REFUSED, "the signature holds %u references: exactly one is allowed",
                       (unsigned)xmlSecPtrListGetSize(&ctx->signedInfoReferences));
    }
    xmlSecDSigCtxDestroy(ctx);
    return rc;
}

static int run_verify(duis_engine engine, xmlDocPtr doc, xmlNodePtr sig, X509 *cert)
{
    EVP_PKEY *pub = X509_get0_pubkey(cert);
    ENSURE(pub, SMKI_E_INPUT, "the signer's certificate has no readable public key");
    GUARD(smki_pub_check_p256(pub, "the signer's key"));
    return engine == DUIS_ENGINE_XMLSEC ? verify_xmlsec(sig, pub) : smki_duis_verify_c14n(doc, sig, pub);
}

static int verify_doc(const smki_duis_trust *t, time_t at, xmlDocPtr doc, smki_duis_report *rep, duis_engine engine)
{
    GUARD(smki_duis_info_read(doc, &rep->info));
    xmlNodePtr sig = NULL;
    GUARD(check_profile(doc, &sig, &rep->ref));
    X509 *cert = NULL;
    const smki_gbcs_cert_info *ci = NULL;
    GUARD(smki_duis_trust_find(t, rep->ref.issuer, rep->ref.serial, &cert, &ci));
    if (ci) {
        rep->signer = ci->id;
        rep->signer_role = ci->role;
    }
    GUARD(duis_check_signer_info(cert, ci, &rep->info, at));
    GUARD(smki_duis_trust_check_dcc(t, &rep->info, &ci->id));
    GUARD(smki_duis_trust_check_revoked(t, cert, at));
    GUARD(run_verify(engine, doc, sig, cert));
    return smki_duis_trust_validate_schema(t, doc, &rep->schema_checked);
}

int smki_duis_engine_verify(duis_engine engine, const smki_duis_trust *t, time_t at, const uint8_t *xml, size_t len,
                     smki_duis_report *rep)
{
    smki_duis_report local;
    if (!rep) rep = &local;
    memset(rep, 0, sizeof *rep);
    rep->signer_role = -1;
    xmlDocPtr doc = NULL;
    GUARD(smki_duis_parse(xml, len, &doc));
    int rc = verify_doc(t, at, doc, rep, engine);
    xmlFreeDoc(doc);
    return rc;
}

int smki_duis_verify(const smki_duis_trust *t, time_t at, const uint8_t *xml, size_t len, smki_duis_report *rep)
{
    return smki_duis_engine_verify(DUIS_ENGINE_C14N, t, at, xml, len, rep);
}
