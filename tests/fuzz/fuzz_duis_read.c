/* libFuzzer target for the hardened DUIS reader (duis/xml.c), the signer reference, the
 * correlation with a pre-command, and signing. Beyond not crashing: reading is
 * deterministic; an accepted document is a Request or a Response with NUL-terminated
 * fields; a DOCTYPE is never accepted; correlating what was read with a fixed
 * pre-command (ECS01a future-dated, from the RTDS) is deterministic; a Request of the
 * User 90-B3-D5-1F-30-01-00-00 is signed or refused as input (never an internal error),
 * and what smki signs verifies (sign, write, read back). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "duis/duis.h"
#include "duis_keystore.h"

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_duis_read: invariant failed: %s\n", what);
    abort();
}

/* A General Signing pre-command: 90B3D51F30010000 -> 00DB1234567890A0, counter 1008,
 * message code 0019, with a DLMS date-time 2030-01-15T09:00:00 in its content. */
static const uint8_t PRE[] = {
    0xDF, 0x09, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xF0, 0x08, 0x90, 0xB3, 0xD5, 0x1F, 0x30,
    0x01, 0x00, 0x00, 0x08, 0x00, 0xDB, 0x12, 0x34, 0x56, 0x78, 0x90, 0xA0, 0x00, 0x02, 0x00, 0x19, 0x10,
    0x09, 0x0C, 0x07, 0xEE, 0x01, 0x0F, 0xFF, 0x09, 0x00, 0x00, 0x00, 0x80, 0x00, 0xFF, 0x00, 0x00};

/* ../shared/vectors/duis/keystore: the User's xmlSign key and certificate (test data,
 * published by the DCC). */
static const char KEY[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgZSBCNVwkyt9Xbi+2\n"
    "aCYoqHenuAu1OTp3oAtIGgv23zmhRANCAASfiKvSIFxEFeHhGzLWEiBlfi045xQ/\n"
    "m4hL+s1+SKlje0Vb//LRzGVaUobobAJaVN5cRd43ZiioDY+0cTTwvUcu\n"
    "-----END PRIVATE KEY-----\n"
    ;
static const char CERT[] = DUIS_USER_XMLSIGN_CERT;
#define T2020 ((time_t)1577836800)

static smki_duis_signer *signer;
static smki_duis_trust *trust;
static smki_key *key;
static X509 *cert;

static void setup(void)
{
    char path[] = "/tmp/fuzz_duis_key.XXXXXX";
    int fd = mkstemp(path);
    require(fd >= 0 && write(fd, KEY, sizeof KEY - 1) == (ssize_t)(sizeof KEY - 1), "the key file");
    close(fd);
    char ref[64];
    snprintf(ref, sizeof ref, "file:%s", path);
    require(smki_key_open(ref, NULL, &key) == 0, "the key opens");
    unlink(path);
    require(smki_cert_load((const uint8_t *)CERT, sizeof CERT - 1, &cert) == 0, "the certificate");
    require(smki_duis_signer_new(key, cert, &signer) == 0, "the signer");
    require(smki_duis_trust_new(&trust) == 0 && smki_duis_trust_add_cert(trust, cert) == 0, "the trust");
}

static int has_doctype(const uint8_t *d, size_t n)
{
    static const char k[] = "<!DOCTYPE";
    for (size_t i = 0; i + sizeof k - 1 <= n; i++)
        if (memcmp(d + i, k, sizeof k - 1) == 0) return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    smki_duis_info a, b;
    int ra = smki_duis_read(data, size, &a);
    int rb = smki_duis_read(data, size, &b);
    require(ra == rb, "deterministic status");
    smki_duis_signer_ref ref;
    (void)smki_duis_signer_ref_get(data, size, &ref);
    smki_error_clear();
    if (ra < 0) return 0;
    require(memcmp(&a, &b, sizeof a) == 0, "deterministic content");
    require(a.kind == SMKI_DUIS_REQUEST || a.kind == SMKI_DUIS_RESPONSE, "a Request or a Response");
    require(memchr(a.variant, 0, sizeof a.variant) && memchr(a.service_reference, 0, sizeof a.service_reference),
            "bounded fields");
    /* A DOCTYPE inside a comment or CDATA is text, not a declaration: only a document
     * that starts with one must have been refused. */
    require(!(size > 9 && has_doctype(data, 9)), "a leading DOCTYPE is refused");
    if (a.kind == SMKI_DUIS_REQUEST && smki_eui64_to_u64(&a.request_id.originator) == 0x90B3D51F30010000ull) {
        if (!signer) setup();
        uint8_t *out = NULL;
        size_t n = 0;
        int rs = smki_duis_sign_with(signer, T2020, data, size, &out, &n);
        if (rs < 0 && rs != SMKI_E_INPUT) fprintf(stderr, "fuzz_duis_read: %s\n", smki_error_msg());
        require(rs == 0 || rs == SMKI_E_INPUT, "signing refuses only for the document (no internal error)");
        if (rs == 0 && smki_duis_verify(trust, T2020, out, n, NULL) != 0) {
            fprintf(stderr, "fuzz_duis_read: %s\n", smki_error_msg());
            require(0, "what smki signs verifies");
        }
        free(out);
        smki_error_clear();
    }
    if (a.kind == SMKI_DUIS_REQUEST) {
        smki_gbcs_msg m;
        require(smki_gbcs_parse(PRE, sizeof PRE, &m) == 0, "the fixed pre-command parses");
        int ca = smki_duis_correlate(&a, &m.gsa), cb = smki_duis_correlate(&b, &m.gsa);
        require(ca == cb, "deterministic correlation");
    }
    smki_error_clear();
    return 0;
}
