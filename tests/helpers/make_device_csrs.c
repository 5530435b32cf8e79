/* make_device_csrs: device CSRs for tests, the demo and benchmarks, shaped like the
 * real one in vectors/gbcs/csr/ (a GBCS CS02c response): EC P-256, empty subject, a
 * critical keyUsage of one usage, a critical subjectAltName otherName
 * hardwareModuleName (RFC 4108; OID 1.3.6.1.5.5.7.8.4) with hwType
 * 1.2.826.0.1.8641679.1.2.2.1 and the EUI-64 as its 8-octet hwSerialNum. The
 * private keys are thrown away: only the CA's side is under test. Also makes the
 * bad ones a batch must refuse (--kind), so that no test depends on python.
 *
 * usage: make_device_csrs --out DIR|FILE --count N --start EUI64
 *          [--usage ds|ka|both] [--der] [--bundle] [--kind KIND]
 *   --out DIR     one file per CSR: <eui>-<ds|ka>.csr (PEM) or .csr.der (--der)
 *   --bundle      --out names one FILE of every CSR as concatenated PEM
 *   --usage both  a DS and a KA CSR per EUI-64 (2N CSRs)
 *   --kind good (default) | bad-signature | wrong-curve (P-384) | both-usages |
 *          no-device (subject CN, no hardwareModuleName)
 * EUI-64s run from --start (16 hex digits, hyphens allowed) upwards. */
#include <getopt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef enum { KIND_GOOD, KIND_BAD_SIGNATURE, KIND_WRONG_CURVE, KIND_BOTH_USAGES, KIND_NO_DEVICE } kind_t;

static void die(const char *what)
{
    fprintf(stderr, "make_device_csrs: %s\n", what);
    exit(1);
}

static int parse_eui(const char *text, unsigned long long *out)
{
    char digits[17];
    size_t n = 0;
    for (const char *p = text; *p; p++) {
        if (*p == '-' || *p == ':') continue;
        if (n == 16 || !strchr("0123456789abcdefABCDEF", *p)) return -1;
        digits[n++] = *p;
    }
    if (n != 16) return -1;
    digits[n] = '\0';
    *out = strtoull(digits, NULL, 16);
    return 0;
}

/* One CSR as DER; *len its length. usage_bits: 0x80 digitalSignature, 0x08 keyAgreement. */
static unsigned char *make_csr(kind_t kind, unsigned usage_bits, unsigned long long eui, int *len)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", kind == KIND_WRONG_CURVE ? "P-384" : "P-256");
    X509_REQ *req = X509_REQ_new();
    if (!key || !req || X509_REQ_set_version(req, 0) != 1 || X509_REQ_set_pubkey(req, key) != 1) die("OpenSSL failed");
    if (kind == KIND_NO_DEVICE &&
        X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
                                   (const unsigned char *)"NOT A DEVICE", -1, -1, 0) != 1)
        die("OpenSSL failed on the subject");
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    ASN1_BIT_STRING *bits = ASN1_BIT_STRING_new();
    if (kind == KIND_BOTH_USAGES) usage_bits = 0x80 | 0x08;
    for (int b = 0; b < 8; b++)
        if (usage_bits & (0x80u >> b)) ASN1_BIT_STRING_set_bit(bits, b, 1);
    X509_EXTENSION *ku = X509V3_EXT_i2d(NID_key_usage, 1, bits);
    if (!exts || !ku) die("OpenSSL failed on keyUsage");
    sk_X509_EXTENSION_push(exts, ku);
    ASN1_BIT_STRING_free(bits);
    if (kind != KIND_NO_DEVICE) {
        /* GeneralNames { otherName { hardwareModuleName, [0] { hwType, hwSerialNum } } },
         * octet for octet the real CSR's, the EUI-64 at the end. */
        unsigned char san[] = {0x30, 0x29, 0xa0, 0x27, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08,
                               0x04, 0xa0, 0x1b, 0x30, 0x19, 0x06, 0x0d, 0x2a, 0x86, 0x3a, 0x00, 0x01, 0x84,
                               0x8f, 0xb9, 0x0f, 0x01, 0x02, 0x02, 0x01, 0x04, 0x08, 0, 0, 0, 0, 0, 0, 0, 0};
        for (int i = 0; i < 8; i++) san[sizeof san - 8 + i] = (unsigned char)(eui >> (56 - 8 * i));
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        if (!os || ASN1_OCTET_STRING_set(os, san, sizeof san) != 1) die("OpenSSL failed on the SAN");
        X509_EXTENSION *se = X509_EXTENSION_create_by_NID(NULL, NID_subject_alt_name, 1, os);
        if (!se) die("OpenSSL failed on the SAN");
        sk_X509_EXTENSION_push(exts, se);
        ASN1_OCTET_STRING_free(os);
    }
    if (X509_REQ_add_extensions(req, exts) != 1) die("OpenSSL failed adding the extensions");
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    if (X509_REQ_sign(req, key, EVP_sha256()) <= 0) die("OpenSSL failed signing");
    unsigned char *der = NULL;
    *len = i2d_X509_REQ(req, &der);
    if (*len <= 0) die("OpenSSL failed encoding");
    /* The signature BIT STRING ends the request; its last octet is the end of s. Any
     * change there keeps the DER well formed and breaks the proof of possession. */
    if (kind == KIND_BAD_SIGNATURE) der[*len - 1] ^= 0x01;
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return der;
}

static void write_pem(FILE *f, const unsigned char *der, int len)
{
    if (PEM_write(f, "CERTIFICATE REQUEST", "", der, len) <= 0) die("cannot write PEM");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},  {"count", required_argument, NULL, 'n'},
        {"start", required_argument, NULL, 's'}, {"usage", required_argument, NULL, 'u'},
        {"der", no_argument, NULL, 'd'},         {"bundle", no_argument, NULL, 'b'},
        {"kind", required_argument, NULL, 'k'},  {NULL, 0, NULL, 0}};
    const char *out = NULL, *usage = "ds";
    long count = -1;
    unsigned long long start = 0;
    int der = 0, bundle = 0, have_start = 0, ch;
    kind_t kind = KIND_GOOD;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'o') out = optarg;
        else if (ch == 'n') count = strtol(optarg, NULL, 10);
        else if (ch == 's') have_start = parse_eui(optarg, &start) == 0;
        else if (ch == 'u') usage = optarg;
        else if (ch == 'd') der = 1;
        else if (ch == 'b') bundle = 1;
        else if (ch == 'k') {
            if (strcmp(optarg, "good") == 0) kind = KIND_GOOD;
            else if (strcmp(optarg, "bad-signature") == 0) kind = KIND_BAD_SIGNATURE;
            else if (strcmp(optarg, "wrong-curve") == 0) kind = KIND_WRONG_CURVE;
            else if (strcmp(optarg, "both-usages") == 0) kind = KIND_BOTH_USAGES;
            else if (strcmp(optarg, "no-device") == 0) kind = KIND_NO_DEVICE;
            else die("--kind is good, bad-signature, wrong-curve, both-usages or no-device");
        } else {
            die("usage: make_device_csrs --out DIR|FILE --count N --start EUI64 [--usage ds|ka|both] [--der] "
                "[--bundle] [--kind KIND]");
        }
    }
    if (!out || count < 0 || !have_start) die("--out, --count and --start (16 hex digits) are required");
    if (strcmp(usage, "ds") && strcmp(usage, "ka") && strcmp(usage, "both")) die("--usage is ds, ka or both");
    if (bundle && der) die("--bundle is PEM: drop --der");
    FILE *all = NULL;
    if (bundle) {
        all = fopen(out, "w");
        if (!all) die("cannot create the bundle file");
    } else if (mkdir(out, 0755) != 0) {
        struct stat st;
        if (stat(out, &st) != 0 || !S_ISDIR(st.st_mode)) die("cannot create the output folder");
    }
    for (long i = 0; i < count; i++) {
        unsigned long long eui = start + (unsigned long long)i;
        for (int u = 0; u < 2; u++) {
            const char *tag = u == 0 ? "ds" : "ka";
            if (strcmp(usage, "both") && strcmp(usage, tag)) continue;
            int len;
            unsigned char *d = make_csr(kind, u == 0 ? 0x80 : 0x08, eui, &len);
            if (all) {
                write_pem(all, d, len);
            } else {
                char path[4200];
                snprintf(path, sizeof path, "%s/%016llx-%s.csr%s", out, eui, tag, der ? ".der" : "");
                FILE *f = fopen(path, "wb");
                if (!f) die("cannot create a CSR file");
                if (der) {
                    if (fwrite(d, 1, (size_t)len, f) != (size_t)len) die("cannot write a CSR file");
                } else {
                    write_pem(f, d, len);
                }
                if (fclose(f) != 0) die("cannot write a CSR file");
            }
            OPENSSL_free(d);
        }
    }
    if (all && fclose(all) != 0) die("cannot write the bundle file");
    return 0;
}
