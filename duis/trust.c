/* duis/trust.c: what a DUIS verifier trusts: signer certificates found by the issuer
 * name and serial of ds:X509IssuerSerial, CRLs whose signature was checked, and the
 * DUIS XML Schema. */
#include <dirent.h>
#include <pthread.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlschemas.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "duis_private.h"

#define TRUST_FILE_MAX (1u << 20)
#define DN_PARTS_MAX 16

struct smki_duis_trust {
    X509 **certs;
    smki_gbcs_cert_info *infos; /* what each certificate says (linted once, when added) */
    int *has_info;
    smki_duis_signer_ref *refs; /* each one's issuer and serial as smki writes them ("" if it cannot) */
    size_t n, cap;
    X509_CRL **crls;
    size_t ncrl, crlcap;
    xmlSchemaPtr schema;
    int has_dcc;
    smki_eui64_t dcc;
};

int smki_duis_trust_set_dcc(smki_duis_trust *t, const smki_eui64_t *dcc)
{
    t->dcc = *dcc;
    t->has_dcc = 1;
    return 0;
}

int smki_duis_trust_check_dcc(const smki_duis_trust *t, const smki_duis_info *info, const smki_eui64_t *signer)
{
    if (!t->has_dcc || info->kind != SMKI_DUIS_RESPONSE || smki_eui64_cmp(&t->dcc, signer) == 0) return 0;
    char a[SMKI_EUI64_TEXT_MAX], b[SMKI_EUI64_TEXT_MAX];
    smki_eui64_format(signer, SMKI_EUI64_HYPHEN, a);
    smki_eui64_format(&t->dcc, SMKI_EUI64_HYPHEN, b);
    return SMKI_FAIL(SMKI_E_REFUSED, "the Response's signer %s is not the DCC %s", a, b);
}

int smki_duis_trust_new(smki_duis_trust **out)
{
    *out = NULL;
    GUARD(smki_duis_init());
    *out = calloc(1, sizeof **out);
    ENSURE(*out, SMKI_E_NOMEM, "out of memory");
    return 0;
}

void smki_duis_trust_free(smki_duis_trust *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->n; i++) X509_free(t->certs[i]);
    for (size_t i = 0; i < t->ncrl; i++) X509_CRL_free(t->crls[i]);
    free(t->certs);
    free(t->infos);
    free(t->has_info);
    free(t->refs);
    free(t->crls);
    if (t->schema) xmlSchemaFree(t->schema);
    free(t);
}

size_t smki_duis_trust_count(const smki_duis_trust *t) { return t->n; }

int smki_duis_trust_add_cert(smki_duis_trust *t, X509 *cert)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        X509 **c = realloc(t->certs, cap * sizeof *c);
        ENSURE(c, SMKI_E_NOMEM, "out of memory");
        t->certs = c;
        smki_gbcs_cert_info *i = realloc(t->infos, cap * sizeof *i);
        ENSURE(i, SMKI_E_NOMEM, "out of memory");
        t->infos = i;
        int *h = realloc(t->has_info, cap * sizeof *h);
        ENSURE(h, SMKI_E_NOMEM, "out of memory");
        t->has_info = h;
        smki_duis_signer_ref *r = realloc(t->refs, cap * sizeof *r);
        ENSURE(r, SMKI_E_NOMEM, "out of memory");
        t->refs = r;
        t->cap = cap;
    }
    /* A certificate the linter cannot read (a CA's, another PKI's) is kept for CRL
     * checks; as a signer it is refused when found. */
    t->has_info[t->n] = smki_gbcs_cert_info_get(cert, &t->infos[t->n]) == 0;
    if (!t->has_info[t->n]) smki_error_clear();
    smki_duis_signer_ref *r = &t->refs[t->n];
    if (smki_duis_cert_issuer_text(cert, r->issuer, sizeof r->issuer) < 0 ||
        smki_duis_cert_serial_text(cert, r->serial, sizeof r->serial) < 0) {
        smki_error_clear();
        memset(r, 0, sizeof *r);
    }
    X509_up_ref(cert);
    t->certs[t->n++] = cert;
    return 0;
}

static int add_der(void *ctx, size_t index, const uint8_t *der, size_t len)
{
    (void)index;
    X509 *c = NULL;
    GUARD(smki_cert_load(der, len, &c));
    int rc = smki_duis_trust_add_cert(ctx, c);
    X509_free(c);
    return rc;
}

static int has_cert_suffix(const char *name)
{
    static const char *const ext[] = {".pem", ".crt", ".cer", ".der"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (n > 4 && strcasecmp(name + n - 4, ext[i]) == 0) return 1;
    return 0;
}

int smki_duis_trust_add_dir(smki_duis_trust *t, const char *dir)
{
    DIR *d = opendir(dir);
    ENSURE(d, SMKI_E_NOTFOUND, "cannot open the trust folder %s: give a folder of certificates", dir);
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !has_cert_suffix(e->d_name)) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        uint8_t *buf = NULL;
        size_t len = 0;
        if (smki_file_read(path, TRUST_FILE_MAX, &buf, &len) < 0) {
            rc = smki_error_wrap("trust folder");
            break;
        }
        size_t certs = 0, others = 0;
        /* A file that holds no certificate (a key under .pem) is skipped, not an error. */
        if (smki_cert_each(buf, len, NULL, NULL, &certs, &others) == 0 && certs > 0) {
            rc = smki_cert_each(buf, len, add_der, t, &certs, &others);
            if (rc < 0) smki_error_wrap("%s", path);
        } else {
            X509 *c = NULL;
            if (smki_cert_load(buf, len, &c) == 0) rc = smki_duis_trust_add_cert(t, c);
            X509_free(c);
            smki_error_clear();
        }
        free(buf);
    }
    closedir(d);
    return rc;
}

/* ---- Names and serials ------------------------------------------------------------------ */
int smki_duis_cert_issuer_text(X509 *cert, char *out, size_t cap)
{
    BIO *b = BIO_new(BIO_s_mem());
    ENSURE(b, SMKI_E_NOMEM, "out of memory");
    int n = X509_NAME_print_ex(b, X509_get_issuer_name(cert), 0, XN_FLAG_RFC2253);
    char *p = NULL;
    long len = BIO_get_mem_data(b, &p);
    int rc = 0;
    if (n < 0 || len <= 0 || (size_t)len >= cap)
        rc = SMKI_FAIL(SMKI_E_INPUT, "the certificate's issuer name does not print (or is over %zu characters)", cap);
    else {
        memcpy(out, p, (size_t)len);
        out[len] = 0;
    }
    BIO_free(b);
    return rc;
}

int smki_duis_cert_serial_text(X509 *cert, char *out, size_t cap)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *dec = bn ? BN_bn2dec(bn) : NULL;
    int rc = 0;
    if (!dec || strlen(dec) >= cap)
        rc = SMKI_FAIL_SSL(SMKI_E_INPUT, "the certificate's serial number does not convert to decimal");
    else
        snprintf(out, cap, "%s", dec);
    OPENSSL_free(dec);
    BN_free(bn);
    return rc;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One "type=value" of an RFC 4514 string (already split), into name as the next RDN
 * from the front (the string lists the most specific RDN first). */
static int add_rdn(X509_NAME *name, char *part, const char *whole)
{
    while (*part == ' ') part++;
    char *eq = strchr(part, '=');
    ENSURE(eq && eq != part, SMKI_E_INPUT, "ds:X509IssuerName '%s': '%s' is not type=value", whole, part);
    *eq = 0;
    char *type = part, *v = eq + 1;
    size_t tl = strlen(type);
    while (tl && type[tl - 1] == ' ') type[--tl] = 0;
    int nid = OBJ_txt2nid(type);
    ENSURE(nid != NID_undef, SMKI_E_INPUT, "ds:X509IssuerName '%s': unknown attribute type '%s'", whole, type);
    while (*v == ' ') v++;
    ENSURE(*v != '#' && *v != '"', SMKI_E_INPUT,
           "ds:X509IssuerName '%s': hex-encoded or quoted values are not supported", whole);
    char val[256];
    size_t n = 0;
    for (const char *p = v; *p; p++) {
        char c = *p;
        if (c == '\\') {
            int h1 = hexval(p[1]), h2 = h1 >= 0 ? hexval(p[2]) : -1;
            if (h1 >= 0 && h2 >= 0) {
                c = (char)(h1 * 16 + h2);
                p += 2;
            } else {
                ENSURE(p[1], SMKI_E_INPUT, "ds:X509IssuerName '%s' ends with a lone backslash", whole);
                c = *++p;
            }
        }
        ENSURE(n + 1 < sizeof val, SMKI_E_INPUT, "ds:X509IssuerName '%s': a value is too long", whole);
        val[n++] = c;
    }
    while (n && val[n - 1] == ' ' && (n < 2 || val[n - 2] != '\\')) n--;
    ENSURE(X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, (const unsigned char *)val, (int)n, 0, 0) == 1,
           SMKI_E_INPUT, "ds:X509IssuerName '%s': the value of %s is not allowed", whole, type);
    return 0;
}

/* Parse an RFC 4514 (2253) distinguished name such as "CN=Z1,OU=07" or "CN=U1, OU=07". */
static int parse_dn(const char *text, X509_NAME **out)
{
    char buf[512];
    size_t len = strlen(text);
    ENSURE(len > 0 && len < sizeof buf, SMKI_E_INPUT, "ds:X509IssuerName is empty or too long");
    memcpy(buf, text, len + 1);
    X509_NAME *name = X509_NAME_new();
    ENSURE(name, SMKI_E_NOMEM, "out of memory");
    int rc = 0, parts = 0;
    char *start = buf;
    for (char *p = buf;; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            continue;
        }
        if (*p == '+') {
            rc = SMKI_FAIL(SMKI_E_INPUT, "ds:X509IssuerName '%s': multi-valued RDNs are not supported", text);
            break;
        }
        if (*p == ',' || *p == ';' || *p == 0) {
            int end = *p == 0;
            *p = 0;
            if (++parts > DN_PARTS_MAX) {
                rc = SMKI_FAIL(SMKI_E_INPUT, "ds:X509IssuerName '%s' has over %d parts", text, DN_PARTS_MAX);
                break;
            }
            if ((rc = add_rdn(name, start, text)) < 0) break;
            if (end) break;
            start = p + 1;
        }
    }
    if (rc < 0) {
        X509_NAME_free(name);
        return rc;
    }
    *out = name;
    return 0;
}

int smki_duis_trust_find(const smki_duis_trust *t, const char *issuer, const char *serial, X509 **cert,
                    const smki_gbcs_cert_info **info)
{
    /* Written exactly as smki writes this certificate's issuer and serial (what smki
     * signs, and the DCC's vectors): the same certificate, without parsing the name. */
    for (size_t i = 0; i < t->n; i++) {
        if (t->refs[i].serial[0] && strcmp(t->refs[i].serial, serial) == 0 && strcmp(t->refs[i].issuer, issuer) == 0) {
            *cert = t->certs[i];
            *info = t->has_info[i] ? &t->infos[i] : NULL;
            return 0;
        }
    }
    /* Else as X.500 names and integers ("CN=Z1, OU=07" is "CN=Z1,OU=07"). */
    X509_NAME *name = NULL;
    GUARD(parse_dn(issuer, &name));
    BIGNUM *bn = NULL;
    ASN1_INTEGER *ai = NULL;
    int rc = 0;
    if (strlen(serial) > 60 || BN_dec2bn(&bn, serial) <= 0 || !(ai = BN_to_ASN1_INTEGER(bn, NULL)))
        rc = SMKI_FAIL(SMKI_E_INPUT, "ds:X509SerialNumber '%.64s' is not a serial number", serial);
    X509 *found = NULL;
    *info = NULL;
    for (size_t i = 0; rc == 0 && i < t->n; i++) {
        if (ASN1_INTEGER_cmp(X509_get0_serialNumber(t->certs[i]), ai) == 0 &&
            X509_NAME_cmp(X509_get_issuer_name(t->certs[i]), name) == 0) {
            found = t->certs[i];
            *info = t->has_info[i] ? &t->infos[i] : NULL;
            break;
        }
    }
    if (rc == 0 && !found)
        rc = SMKI_FAIL(SMKI_E_NOTFOUND,
                       "no certificate of issuer '%s' and serial %s among the %zu trusted: add the signer's "
                       "certificate (--trust DIR or --repo URL)", issuer, serial, t->n);
    *cert = found;
    X509_NAME_free(name);
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    return rc;
}

/* ---- CRLs ---------------------------------------------------------------------------------- */
static int load_crl(const uint8_t *buf, size_t len, X509_CRL **out)
{
    const unsigned char *p = buf;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
    if (!crl) {
        BIO *b = BIO_new_mem_buf(buf, (int)len);
        if (b) crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
        BIO_free(b);
    }
    ENSURE_SSL(crl, SMKI_E_INPUT, "not a CRL (DER or PEM)");
    *out = crl;
    return 0;
}

int smki_duis_trust_add_crl_file(smki_duis_trust *t, const char *path)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    GUARD(smki_file_read(path, TRUST_FILE_MAX, &buf, &len));
    X509_CRL *crl = NULL;
    int rc = load_crl(buf, len, &crl);
    free(buf);
    if (rc < 0) return smki_error_wrap("CRL %s", path);
    X509 *ca = NULL;
    for (size_t i = 0; i < t->n && !ca; i++)
        if (X509_NAME_cmp(X509_get_subject_name(t->certs[i]), X509_CRL_get_issuer(crl)) == 0 &&
            X509_CRL_verify(crl, X509_get0_pubkey(t->certs[i])) == 1)
            ca = t->certs[i];
    ERR_clear_error();
    if (!ca)
        rc = SMKI_FAIL(SMKI_E_REFUSED,
                       "CRL %s: no trusted certificate of its issuer verifies its signature: add the issuing CA's "
                       "certificate to the trust folder (a CRL that cannot be checked is not used)", path);
    if (rc == 0 && t->ncrl == t->crlcap) {
        size_t cap = t->crlcap ? 2 * t->crlcap : 4;
        X509_CRL **c = realloc(t->crls, cap * sizeof *c);
        if (!c)
            rc = SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
        else {
            t->crls = c;
            t->crlcap = cap;
        }
    }
    if (rc < 0) {
        X509_CRL_free(crl);
        return rc;
    }
    t->crls[t->ncrl++] = crl;
    return 0;
}

int smki_duis_trust_check_revoked(const smki_duis_trust *t, X509 *cert, time_t at)
{
    for (size_t i = 0; i < t->ncrl; i++) {
        X509_REVOKED *r = NULL;
        if (X509_NAME_cmp(X509_CRL_get_issuer(t->crls[i]), X509_get_issuer_name(cert)) != 0) continue;
        /* A list past its nextUpdate says nothing about `at`: refused, not trusted. */
        const ASN1_TIME *next = X509_CRL_get0_nextUpdate(t->crls[i]);
        if (next && X509_cmp_time(next, &at) < 0) {
            char when[64] = "?";
            BIO *b = BIO_new(BIO_s_mem());
            if (b && ASN1_TIME_print(b, next) == 1) {
                int n = BIO_read(b, when, sizeof when - 1);
                when[n > 0 ? n : 0] = 0;
            }
            BIO_free(b);
            return SMKI_FAIL(SMKI_E_REFUSED, "the CRL of the signer's issuer is out of date at the time asked "
                                             "(nextUpdate %s): give a current one", when);
        }
        if (X509_CRL_get0_by_cert(t->crls[i], &r, cert) == 1 && r) {
            const ASN1_TIME *when = X509_REVOKED_get0_revocationDate(r);
            /* Revoked before `at`: refused. A revocation after `at` did not yet apply. */
            if (!when || X509_cmp_time(when, &at) <= 0) {
                char serial[64] = "?";
                smki_duis_cert_serial_text(cert, serial, sizeof serial);
                return SMKI_FAIL(SMKI_E_REFUSED, "the signer's certificate (serial %s) is revoked (by the CRL given)",
                                 serial);
            }
        }
    }
    return 0;
}

/* ---- The schema ------------------------------------------------------------------------------ */
#define DUIS_SCHEMA_FILE "DUIS Schema V5.1.xsd"

typedef struct {
    char msg[240];
} schema_err;

static void on_schema_error(void *ctx, const xmlError *e)
{
    schema_err *s = ctx;
    if (s->msg[0] || !e || !e->message) return;
    snprintf(s->msg, sizeof s->msg, "line %d: %s", e->line, e->message);
    s->msg[strcspn(s->msg, "\r\n")] = 0;
}

/* While a schema loads, every file it names (imports, the DTDs the XML-DSig schema
 * mentions) is read from the schema folder by its base name, percent-decoded: the DCC's
 * file names have spaces, which libxml2's own URI resolution does not find, and nothing
 * is ever fetched from a network or outside the folder. */
static pthread_mutex_t schema_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *schema_dir;

static xmlParserInputPtr schema_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
    (void)id;
    if (!url || !schema_dir) return NULL;
    const char *base = strrchr(url, '/');
    base = base ? base + 1 : url;
    char name[256];
    size_t n = 0;
    for (const char *p = base; *p && n + 1 < sizeof name; p++) {
        int h1, h2;
        if (*p == '%' && (h1 = hexval(p[1])) >= 0 && (h2 = hexval(p[2])) >= 0) {
            name[n++] = (char)(h1 * 16 + h2);
            p += 2;
        } else {
            name[n++] = *p;
        }
    }
    name[n] = 0;
    if (n == 0 || name[0] == '.' || strchr(name, '/')) return NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", schema_dir, name);
    return xmlNewInputFromFile(ctxt, path);
}

/* xs:import schemaLocation="MMC Schema V5.1.xsd": libxml2 resolves no location with a
 * space in it, so spaces become %20 (the loader above decodes them). */
static void escape_locations(xmlNodePtr root)
{
    for (xmlNodePtr n = root ? root->children : NULL; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) continue;
        xmlChar *loc = xmlGetProp(n, BAD_CAST "schemaLocation");
        if (!loc) continue;
        char out[512];
        size_t k = 0;
        for (const xmlChar *p = loc; *p && k + 4 < sizeof out; p++) {
            if (*p == ' ') {
                memcpy(out + k, "%20", 3);
                k += 3;
            } else {
                out[k++] = (char)*p;
            }
        }
        out[k] = 0;
        xmlSetProp(n, BAD_CAST "schemaLocation", BAD_CAST out);
        xmlFree(loc);
    }
}

int smki_duis_trust_load_schema(smki_duis_trust *t, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, DUIS_SCHEMA_FILE);
    FILE *f = fopen(path, "rb");
    ENSURE(f, SMKI_E_NOTFOUND, "no '%s' in %s: give the folder of the DUIS 5.1 schemas", DUIS_SCHEMA_FILE, dir);
    fclose(f);
    pthread_mutex_lock(&schema_lock);
    xmlExternalEntityLoader prev = xmlGetExternalEntityLoader();
    schema_dir = dir;
    xmlSetExternalEntityLoader(schema_loader);
    schema_err err = {{0}};
    xmlSchemaPtr s = NULL;
    xmlDocPtr doc = xmlReadFile(path, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (doc) escape_locations(xmlDocGetRootElement(doc));
    xmlSchemaParserCtxtPtr pc = doc ? xmlSchemaNewDocParserCtxt(doc) : NULL;
    if (pc) {
        xmlSchemaSetParserStructuredErrors(pc, (xmlStructuredErrorFunc)on_schema_error, &err);
        s = xmlSchemaParse(pc);
        xmlSchemaFreeParserCtxt(pc);
    }
    xmlFreeDoc(doc);
    xmlSetExternalEntityLoader(prev);
    schema_dir = NULL;
    pthread_mutex_unlock(&schema_lock);
    ENSURE(s, SMKI_E_INPUT, "the DUIS schema %s does not load: %s", path, err.msg[0] ? err.msg : "parse failed");
    if (t->schema) xmlSchemaFree(t->schema);
    t->schema = s;
    return 0;
}

static void mask_serials(xmlNodePtr n, unsigned depth)
{
    for (; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) continue;
        if (smki_duis_is_el(n, DUIS_DSIG_NS, "X509SerialNumber"))
            xmlNodeSetContent(n, BAD_CAST "0");
        else if (depth < 512)
            mask_serials(n->children, depth + 1);
    }
}

int smki_duis_trust_validate_schema(const smki_duis_trust *t, xmlDocPtr doc, int *checked)
{
    *checked = 0;
    if (!t->schema) return 0;
    xmlSchemaValidCtxtPtr vc = xmlSchemaNewValidCtxt(t->schema);
    ENSURE(vc, SMKI_E_NOMEM, "out of memory (schema)");
    /* libxml2's xs:integer holds at most 24 digits; an X509SerialNumber (a 128-bit serial
     * has 39) was already checked to be decimal digits, so the schema sees it as 0. */
    xmlDocPtr copy = xmlCopyDoc(doc, 1);
    if (!copy) {
        xmlSchemaFreeValidCtxt(vc);
        return SMKI_FAIL(SMKI_E_NOMEM, "out of memory (schema)");
    }
    mask_serials(xmlDocGetRootElement(copy), 0);
    schema_err err = {{0}};
    xmlSchemaSetValidStructuredErrors(vc, (xmlStructuredErrorFunc)on_schema_error, &err);
    int v = xmlSchemaValidateDoc(vc, copy);
    xmlSchemaFreeValidCtxt(vc);
    xmlFreeDoc(copy);
    ENSURE(v == 0, SMKI_E_REFUSED, "the document is not valid against the DUIS schema: %s",
           err.msg[0] ? err.msg : "validation failed");
    *checked = 1;
    return 0;
}
