/* Benchmark of DUIS XML signatures on a typical Service Request (the RTDS ECS01a
 * immediate block tariff, 4 KiB): sign (software key) and verify, over N threads, and
 * the parts of the work: the hardened read alone, and the read plus the C14N 1.0 of
 * the whole document (what the enveloped Reference digests), to say how much of a
 * verification is canonicalisation (c14n minus parse: libxml2 alone). sign-xmlsec and
 * verify-xmlsec run the same through xmlsec's own DSig processing (what smki did
 * before it took the digests from libxml2's C14N directly), for comparison.
 * Prints "<op> <threads> <ops/s> <CPU us/op>"; tools/bench.sh puts sign and verify
 * beside `openssl speed ecdsap256`.
 * Usage: bench_duis sign|verify|sign-xmlsec|verify-xmlsec|read|parse|c14n THREADS SECONDS
 * (SMKI_SHARED: the vectors). */
#include <libxml/c14n.h>
#include <libxml/parser.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "duis/duis.h"
#include "duis/duis_private.h"

#define REQ "/vectors/duis/requests/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_REQUEST_DUIS.XML"
#define KS "/vectors/duis/keystore/90b3d51f30010000-xmlsign"
static const time_t AT = 1577836800; /* 2020-01-01 */

static enum { OP_SIGN, OP_VERIFY, OP_SIGN_XMLSEC, OP_VERIFY_XMLSEC, OP_READ, OP_PARSE, OP_C14N } op;
static uint8_t *request, *signed_doc;
static size_t request_len, signed_len;
static smki_key *key;
static X509 *cert;
static smki_duis_trust *trust;
static smki_duis_signer *signer;

typedef struct {
    double seconds, cpu;
    unsigned long done;
    int failed;
} worker;

static int one(void)
{
    switch (op) {
    case OP_SIGN: {
        uint8_t *out = NULL;
        size_t n = 0;
        int rc = smki_duis_sign_with(signer, AT, request, request_len, &out, &n);
        free(out);
        return rc;
    }
    case OP_SIGN_XMLSEC: {
        uint8_t *out = NULL;
        size_t n = 0;
        int rc = smki_duis_engine_sign(DUIS_ENGINE_XMLSEC, signer, AT, request, request_len, &out, &n);
        free(out);
        return rc;
    }
    case OP_VERIFY: return smki_duis_verify(trust, AT, signed_doc, signed_len, NULL);
    case OP_VERIFY_XMLSEC: return smki_duis_engine_verify(DUIS_ENGINE_XMLSEC, trust, AT, signed_doc, signed_len, NULL);
    case OP_READ: {
        smki_duis_info i;
        return smki_duis_read(signed_doc, signed_len, &i);
    }
    case OP_PARSE:
    case OP_C14N: {
        /* libxml2 alone: the parse, and the parse with the C14N 1.0 of the document. */
        int rc = 0;
        xmlDocPtr d = xmlReadMemory((const char *)signed_doc, (int)signed_len, "b.xml", NULL, XML_PARSE_NONET);
        xmlChar *c = NULL;
        if (!d || (op == OP_C14N && xmlC14NDocDumpMemory(d, NULL, XML_C14N_1_0, NULL, 0, &c) < 0)) rc = -1;
        xmlFree(c);
        xmlFreeDoc(d);
        return rc;
    }
    }
    return -1;
}

static void *run(void *arg)
{
    worker *w = arg;
    double end = bench_now() + w->seconds, c0 = bench_thread_cpu();
    unsigned long n = 0;
    while (bench_now() < end) {
        if (one() != 0) {
            fprintf(stderr, "bench_duis: %s\n", smki_error_msg());
            w->failed = 1;
            return NULL;
        }
        n++;
    }
    w->cpu = bench_thread_cpu() - c0;
    w->done = n;
    return NULL;
}

static uint8_t *read_shared(const char *rel, size_t *len)
{
    const char *root = getenv("SMKI_SHARED");
    char path[2048];
    snprintf(path, sizeof path, "%s%s", root && *root ? root : "../shared", rel);
    uint8_t *b = NULL;
    if (smki_file_read(path, SMKI_DUIS_MAX_XML, &b, len) < 0) {
        fprintf(stderr, "bench_duis: %s\n", smki_error_msg());
        exit(3);
    }
    return b;
}

static void setup(void)
{
    const char *root = getenv("SMKI_SHARED");
    char ref[2100], pem[2100];
    snprintf(ref, sizeof ref, "file:%s" KS ".key", root && *root ? root : "../shared");
    snprintf(pem, sizeof pem, "%s" KS ".pem", root && *root ? root : "../shared");
    request = read_shared(REQ, &request_len);
    if (smki_key_open(ref, NULL, &key) < 0 || smki_cert_load_file(pem, &cert) < 0 || smki_duis_trust_new(&trust) < 0 ||
        smki_duis_trust_add_cert(trust, cert) < 0 || smki_duis_signer_new(key, cert, &signer) < 0 ||
        smki_duis_sign(key, cert, AT, request, request_len, &signed_doc, &signed_len) < 0) {
        fprintf(stderr, "bench_duis: setup: %s\n", smki_error_msg());
        exit(3);
    }
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bench_duis sign|verify|sign-xmlsec|verify-xmlsec|read|parse|c14n THREADS SECONDS\n");
        return 1;
    }
    op = strcmp(argv[1], "sign") == 0            ? OP_SIGN
         : strcmp(argv[1], "verify") == 0        ? OP_VERIFY
         : strcmp(argv[1], "sign-xmlsec") == 0   ? OP_SIGN_XMLSEC
         : strcmp(argv[1], "verify-xmlsec") == 0 ? OP_VERIFY_XMLSEC
         : strcmp(argv[1], "read") == 0          ? OP_READ
         : strcmp(argv[1], "parse") == 0         ? OP_PARSE
                                                 : OP_C14N;
    int threads = atoi(argv[2]);
    double secs = atof(argv[3]);
    if (threads < 1 || threads > 64 || secs <= 0) return 1;
    setup();
    pthread_t th[64];
    worker w[64];
    for (int i = 0; i < threads; i++) {
        w[i] = (worker){secs, 0, 0, 0};
        pthread_create(&th[i], NULL, run, &w[i]);
    }
    unsigned long total = 0;
    double cpu = 0;
    int failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        total += w[i].done;
        cpu += w[i].cpu;
        failed |= w[i].failed;
    }
    if (failed) return 2;
    printf("%s %d %.0f %.1f\n", argv[1], threads, (double)total / secs, total ? cpu * 1e6 / (double)total : 0.0);
    smki_duis_trust_free(trust);
    smki_duis_signer_free(signer);
    X509_free(cert);
    smki_key_free(key);
    free(request);
    free(signed_doc);
    return 0;
}
