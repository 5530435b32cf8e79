/* Unit tests for repo without sockets: the strict XML reader (every form it takes and
 * every refusal), and smki_repo_handle over a store of records: the DCC services, the
 * REST endpoints, query refusals, access rules, an empty store. */
#include "helpers.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ca/crl.h"
#include "repo/repo.h"

/* ---- XML --------------------------------------------------------------------------- */
static int xml(const char *text, smki_repo_xml *x) { return smki_repo_xml_parse((const uint8_t *)text, strlen(text), x); }

static void test_xml_reads_prolog_namespaces_attributes_and_children(void **state)
{
    (void)state;
    smki_repo_xml x;
    assert_ok(xml("\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"
                  "<ns2:CertificateSearchRequest xmlns:ns2='urn:x' a=\"1\">\n"
                  "  <ns2:CertificateSubjectAltName> 00-DB-12-34-56-78-90-A0 </ns2:CertificateSubjectAltName>\n"
                  "  <Empty/><Other attr=\"v\"></Other >\n"
                  "</ns2:CertificateSearchRequest >\n",
                  &x));
    assert_string_equal(x.root, "CertificateSearchRequest");
    assert_int_equal(x.n, 3);
    assert_string_equal(x.child[0].name, "CertificateSubjectAltName");
    assert_string_equal(x.child[0].text, "00-DB-12-34-56-78-90-A0");
    assert_string_equal(x.child[1].name, "Empty");
    assert_string_equal(x.child[1].text, "");
    assert_string_equal(x.child[2].text, "");
    int dup = 0;
    assert_string_equal(smki_repo_xml_child(&x, "Empty", &dup), "");
    assert_int_equal(dup, 0);
    assert_null(smki_repo_xml_child(&x, "Missing", &dup));
    assert_ok(xml("<CertificateSearchRequest/>", &x));
    assert_int_equal(x.n, 0);
}

static void test_xml_refuses_dtd_entities_comments_and_bad_shapes(void **state)
{
    (void)state;
    smki_repo_xml x;
    static const struct {
        const char *text, *needle;
    } BAD[] = {
        {"<!DOCTYPE r [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><r>&e;</r>", "document type declaration"},
        {"<?xml version=\"1.0\"?><!DOCTYPE r><r/>", "document type declaration"},
        {"<r><a>&amp;</a></r>", "entity references"},
        {"<r><a>&#65;</a></r>", "entity references"},
        {"<r a=\"&x;\"/>", "entity references"},
        {"<!-- c --><r/>", "comments"},
        {"<r><!-- c --></r>", "comments"},
        {"<r><a><![CDATA[x]]></a></r>", "only text"},
        {"<r><![CDATA[x]]></r>", "CDATA"},
        {"<r><a><b>1</b></a></r>", "only text"},
        {"<r>text</r>", "text directly"},
        {"<r><a>1</b></r>", "does not match"},
        {"<r><a>1</a></s>", "does not match"},
        {"<r><a>1</a></r><r/>", "after the end"},
        {"<r><a>1</a>", "not closed"},
        {"<r><a>1", "not closed"},
        {"<r", "not closed"},
        {"<r a=1/>", "not quoted"},
        {"<r a/>", "has no '='"},
        {"<r a=\"1\"b=\"2\"/>", "white space"},
        {"", "no element"},
        {"   ", "no element"},
        {"hello", "must start with an element"},
        {"<?xml version=\"1.0\"", "not closed"},
        {"<r><?pi x?></r>", "processing instructions"},
        {"<r><a>\x01</a></r>", "control character"},
        {"<r><:>1</:></r>", "no local part"},
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        print_message("refusing: %s\n", BAD[i].text);
        assert_fails(xml(BAD[i].text, &x), SMKI_E_INPUT, BAD[i].needle);
    }
    /* Bounds: children, name, text, document. */
    char buf[SMKI_REPO_XML_MAX + 64];
    size_t n = (size_t)snprintf(buf, sizeof buf, "<r>");
    for (int i = 0; i <= SMKI_REPO_XML_CHILDREN; i++) n += (size_t)snprintf(buf + n, sizeof buf - n, "<a>%d</a>", i);
    snprintf(buf + n, sizeof buf - n, "</r>");
    assert_fails(xml(buf, &x), SMKI_E_INPUT, "more than 8 elements");
    memset(buf, 'n', 100);
    buf[0] = '<';
    snprintf(buf + 70, sizeof buf - 70, "/>");
    assert_fails(xml(buf, &x), SMKI_E_INPUT, "element name of");
    n = (size_t)snprintf(buf, sizeof buf, "<r><a>");
    memset(buf + n, '7', 200);
    snprintf(buf + n + 200, sizeof buf - n - 200, "</a></r>");
    assert_fails(xml(buf, &x), SMKI_E_INPUT, "the text of <a> is 200 characters");
    memset(buf, ' ', sizeof buf);
    memcpy(buf, "<r/>", 4);
    assert_fails(smki_repo_xml_parse((const uint8_t *)buf, SMKI_REPO_XML_MAX + 1, &x), SMKI_E_INPUT, "at most 4096");
    assert_ok(smki_repo_xml_parse((const uint8_t *)buf, SMKI_REPO_XML_MAX, &x));
}

/* ---- The handler over a store --------------------------------------------------------- */
static const uint8_t DEV_EUI[8] = {0x00, 0xdb, 0x12, 0x34, 0x56, 0x78, 0x90, 0xa0};
static const uint8_t ORG_EUI[8] = {0x90, 0xb3, 0xd5, 0x1f, 0x30, 0x01, 0x00, 0x00};
static const uint8_t DCA_SKI[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static const uint8_t OCA_SKI[8] = {8, 7, 6, 5, 4, 3, 2, 1};

typedef struct {
    char dir[1024];
    smki_repo *repo;
    uint8_t *dev_der, *org_der;
    size_t dev_len, org_len;
} fixture;

/* The puts go through one write transaction. */
typedef struct {
    smki_ca_db *db;
    smki_cert *certs;
    size_t n;
} batch_arg;
static int put_all(smki_txn *t, void *arg)
{
    batch_arg *b = arg;
    for (size_t i = 0; i < b->n; i++) GUARD(smki_ca_cert_put(t, b->db, &b->certs[i]));
    return 0;
}

static void fill(smki_cert *c, const uint8_t issuer[8], uint8_t serial_last, smki_profile_id profile, int usage,
                 int role, const uint8_t *eui, smki_cert_status status, const char *env, const uint8_t *der, size_t len)
{
    memset(c, 0, sizeof *c);
    memcpy(c->issuer_ski, issuer, 8);
    c->serial[0] = 0x40;
    c->serial[15] = serial_last;
    c->ski[0] = serial_last;
    c->profile = profile;
    c->usage = usage;
    c->role = role;
    c->has_eui = eui != NULL;
    if (eui) memcpy(c->eui.b, eui, 8);
    c->status = status;
    snprintf(c->env, sizeof c->env, "%s", env);
    c->not_before = 1700000000;
    c->not_after = 253402300799;
    memcpy(c->der, der, len);
    c->der_len = len;
}

static smki_repo *open_repo(fixture *f, unsigned public_mask, const char *apikey, const char *allow)
{
    char store[1100];
    snprintf(store, sizeof store, "%s/store", f->dir);
    smki_repo_opts o = {0};
    o.store_dir = store;
    o.home = f->dir;
    o.env = "test";
    o.public_mask = public_mask;
    o.apikey = apikey;
    if (allow) {
        snprintf(o.allow[0], sizeof o.allow[0], "%s", allow);
        o.n_allow = 1;
    }
    smki_repo *r = NULL;
    assert_ok(smki_repo_open(&o, &r));
    return r;
}

/* A keystore certificate (PEM) as DER. */
static uint8_t *keystore_der(const char *rel, size_t *len)
{
    size_t plen = 0;
    uint8_t *pem = test_read_shared(rel, &plen);
    BIO *bio = BIO_new_mem_buf(pem, (int)plen);
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    assert_non_null(x);
    uint8_t *der = NULL;
    int n = i2d_X509(x, &der);
    assert_true(n > 0);
    uint8_t *out = malloc((size_t)n);
    memcpy(out, der, (size_t)n);
    *len = (size_t)n;
    OPENSSL_free(der);
    X509_free(x);
    BIO_free(bio);
    free(pem);
    return out;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s", test_tmpdir("repo"));
    f->dev_der = keystore_der("vectors/gbcs/keystore/00db1234567890a0-ds.pem", &f->dev_len);
    f->org_der = keystore_der("vectors/gbcs/keystore/90b3d51f30010000-ds.pem", &f->org_len);
    char store[1100];
    snprintf(store, sizeof store, "%s/store", f->dir);
    smki_store *s = NULL;
    smki_ca_db db;
    assert_ok(smki_store_open(store, NULL, &s));
    assert_ok(smki_ca_db_open(s, &db));
    static smki_cert certs[5];
    fill(&certs[0], DCA_SKI, 1, SMKI_PROFILE_DEVICE, SMKI_USAGE_DS, -1, DEV_EUI, SMKI_STATUS_IN_USE, "test", f->dev_der,
         f->dev_len);
    fill(&certs[1], DCA_SKI, 2, SMKI_PROFILE_DEVICE, SMKI_USAGE_KA, -1, DEV_EUI, SMKI_STATUS_REVOKED, "test",
         f->dev_der, f->dev_len);
    certs[1].not_after = -1; /* a device certificate never expires */
    fill(&certs[2], OCA_SKI, 3, SMKI_PROFILE_ORGANISATION, SMKI_USAGE_DS, 2, ORG_EUI, SMKI_STATUS_IN_USE, "test",
         f->org_der, f->org_len);
    /* The same EUI in another environment: never served by this one. */
    fill(&certs[3], OCA_SKI, 4, SMKI_PROFILE_ORGANISATION, SMKI_USAGE_KA, 2, ORG_EUI, SMKI_STATUS_IN_USE,
         "production", f->org_der, f->org_len);
    fill(&certs[4], OCA_SKI, 5, SMKI_PROFILE_ORGANISATION, SMKI_USAGE_KA, 2, ORG_EUI, SMKI_STATUS_PENDING, "test",
         f->org_der, f->org_len);
    batch_arg b = {&db, certs, 5};
    assert_ok(smki_store_write(s, put_all, &b));
    smki_store_close(s);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    smki_repo_free(f->repo);
    free(f->dev_der);
    free(f->org_der);
    free(f);
    return 0;
}

static smki_repo_resp call(smki_repo *r, const char *method, const char *path, const char *query, const char *body)
{
    smki_repo_req q = {0};
    q.method = method;
    q.path = path;
    q.query = query;
    q.body = (const uint8_t *)body;
    q.body_len = body ? strlen(body) : 0;
    smki_repo_resp w;
    assert_ok(smki_repo_handle(r, &q, &w));
    assert_non_null(w.body);
    return w;
}

#define HAS(w, text) assert_non_null(strstr((const char *)(w).body, (text)))
#define HASNT(w, text) assert_null(strstr((const char *)(w).body, (text)))

static const char SERIAL1[] = "40000000000000000000000000000001";

static void test_dcc_search_finds_a_device_by_eui_and_filters(void **state)
{
    fixture *f = *state;
    f->repo = open_repo(f, SMKI_REPO_PUBLIC_ALL, NULL, NULL);
    smki_repo_resp w = call(f->repo, "POST", "/services/certificatesearch", NULL,
                            "<?xml version=\"1.0\"?><CertificateSearchRequest><CertificateSubjectAltName>"
                            "00-DB-12-34-56-78-90-A0</CertificateSubjectAltName></CertificateSearchRequest>");
    assert_int_equal(w.status, 200);
    assert_string_equal(w.content_type, "application/xml");
    HAS(w, "<CertificateSearchResponse><Result><CertificateSerial>40000000000000000000000000000001</CertificateSerial>"
           "<CertificateUsage>DS</CertificateUsage><CertificateStatus>I</CertificateStatus></Result><Result>");
    HAS(w, "<CertificateUsage>KA</CertificateUsage><CertificateStatus>R</CertificateStatus>");
    smki_repo_resp_free(&w);
    w = call(f->repo, "POST", "/services/certificatesearch", NULL,
             "<CertificateSearchRequest><CertificateSubjectAltName>00DB1234567890A0</CertificateSubjectAltName>"
             "<CertificateStatus>R</CertificateStatus></CertificateSearchRequest>");
    assert_int_equal(w.status, 200);
    HAS(w, "40000000000000000000000000000002");
    HASNT(w, "40000000000000000000000000000001");
    smki_repo_resp_free(&w);
}

static void test_dcc_search_of_an_organisation_stays_in_its_environment(void **state)
{
    fixture *f = *state;
    f->repo = open_repo(f, SMKI_REPO_PUBLIC_ALL, NULL, NULL);
    smki_repo_resp w = call(f->repo, "POST", "/services/certificatesearch", NULL,
                            "<CertificateSearchRequest><CertificateSubjectName>90-B3-D5-1F-30-01-00-00"
                            "</CertificateSubjectName><CertificateRole>2</CertificateRole></CertificateSearchRequest>");
    assert_int_equal(w.status, 200);
    HAS(w, "<CertificateRole>2</CertificateRole>");
    HAS(w, "40000000000000000000000000000003");
    HAS(w, "40000000000000000000000000000005");
    HASNT(w, "40000000000000000000000000000004"); /* production's */
    smki_repo_resp_free(&w);
    /* A device EUI is not an organisation's. */
    w = call(f->repo, "POST", "/services/certificatesearch", NULL,
             "<CertificateSearchRequest><CertificateSubjectName>00-DB-12-34-56-78-90-A0</CertificateSubjectName>"
             "</CertificateSearchRequest>");
    assert_int_equal(w.status, 402);
    smki_repo_resp_free(&w);
}

static void test_dcc_refuses_invalid_parameters_with_401(void **state)
{
    fixture *f = *state;
    f->repo = open_repo(f, SMKI_REPO_PUBLIC_ALL, NULL, NULL);
    static const struct {
        const char *path, *body, *needle;
    } BAD[] = {
        {"/services/certificatesearch", "", "no XML body"},
        {"/services/certificatesearch", "<CertificateSearchRequest/>", "exactly one of"},
        {"/services/certificatesearch",
         "<CertificateSearchRequest><CertificateSubjectAltName>00-DB</CertificateSubjectAltName>"
         "</CertificateSearchRequest>",
         "invalid parameters"},
        {"/services/certificatesearch",
         "<CertificateSearchRequest><CertificateSubjectAltName>00-DB-12-34-56-78-90-A0</CertificateSubjectAltName>"
         "<CertificateSubjectAltName>00-DB-12-34-56-78-90-A0</CertificateSubjectAltName></CertificateSearchRequest>",
         "given twice"},
        {"/services/certificatesearch",
         "<CertificateSearchRequest><CertificateSubjectAltName>00-DB-12-34-56-78-90-A0</CertificateSubjectAltName>"
         "<CertificateUsage>XX</CertificateUsage></CertificateSearchRequest>",
         "DS or KA"},
        {"/services/certificatesearch",
         "<CertificateSearchRequest><CertificateSubjectAltName>00-DB-12-34-56-78-90-A0</CertificateSubjectAltName>"
         "<CertificateRole>300</CertificateRole></CertificateSearchRequest>",
         "over 255"},
        {"/services/certificatesearch", "<Foo/>", "the root element is &lt;Foo&gt;"},
        {"/services/certificatesearch", "<!DOCTYPE x><x/>", "document type"},
        {"/services/retrievecertificate", "<CertificateDataRequest/>", "exactly one CertificateSerial"},
        {"/services/retrievecertificate",
         "<CertificateDataRequest><CertificateSerial>G1</CertificateSerial></CertificateDataRequest>",
         "not hexadecimal"},
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        smki_repo_resp w = call(f->repo, "POST", BAD[i].path, NULL, BAD[i].body);
        print_message("%s: %s\n", BAD[i].body, (const char *)w.body);
        assert_int_equal(w.status, 401);
        assert_string_equal(w.content_type, "application/xml");
        HAS(w, BAD[i].needle);
        smki_repo_resp_free(&w);
    }
    smki_repo_resp w = call(f->repo, "GET", "/services/certificatesearch", NULL, NULL);
    assert_int_equal(w.status, 405);
    smki_repo_resp_free(&w);
    w = call(f->repo, "POST", "/services/other", NULL, "<x/>");
    assert_int_equal(w.status, 404);
    smki_repo_resp_free(&w);
}

static void test_dcc_retrieve_answers_base64_der_and_the_subject_kind(void **state)
{
    fixture *f = *state;
    f->repo = open_repo(f, SMKI_REPO_PUBLIC_ALL, NULL, NULL);
    smki_repo_resp w = call(f->repo, "POST", "/services/retrievecertificate", NULL,
                            "<CertificateDataRequest><CertificateSerial>40000000000000000000000000000001"
                            "</CertificateSerial></CertificateDataRequest>");
    assert_int_equal(w.status, 200);
    char b64[4096];
    EVP_EncodeBlock((unsigned char *)b64, f->dev_der, (int)f->dev_len);
    char want[8300];
    snprintf(want, sizeof want,
             "<CertificateDataResponse><CertificateResponse><CertificateBody>%s</CertificateBody>"
             "<CertificateSubjectAltName>00-DB-12-34-56-78-90-A0</CertificateSubjectAltName>",
             b64);
    HAS(w, want);
    smki_repo_resp_free(&w);
    /* Leading zeros may be left out, case does not matter. */
    w = call(f->repo, "POST", "/services/retrievecertificate", NULL,
             "<CertificateDataRequest><CertificateSerial>40000000000000000000000000000003</CertificateSerial>"
             "</CertificateDataRequest>");
    HAS(w, "<CertificateSubjectName>90-B3-D5-1F-30-01-00-00</CertificateSubjectName>");
    smki_repo_resp_free(&w);
    w = call(f->repo, "POST", "/services/retrievecertificate", NULL,
             "<CertificateDataRequest><CertificateSerial>40000000000000000000000000000004</CertificateSerial>"
             "</CertificateDataRequest>");
    assert_int_equal(w.status, 402); /* production's, not served here */
    smki_repo_resp_free(&w);
}

static void test_rest_certificate_by_serial_as_der_pem_or_json(void **state)
{
    fixture *f = *state;
    f->repo = open_repo(f, SMKI_REPO_PUBLIC_ALL, NULL, NULL);
    char path[100];
    snprintf(path, sizeof path, "/certificates/%s", SERIAL1);
    smki_repo_resp w = call(f->repo, "GET", path, NULL, NULL);
    assert_int_equal(w.status, 200);
    assert_string_equal(w.content_type, "application/pkix-cert");
    assert_int_equal(w.len, f->dev_len);
    assert_memory_equal(w.body, f->dev_der, f->dev_len);
    smki_repo_resp_free(&w);
    smki_repo_req q = {"GET", path, NULL, "text/html, application/x-pem-file", NULL, 0, NULL, 0, NULL, NULL};
    assert_ok(smki_repo_handle(f->repo, &q, &w));
    assert_int_equal(w.status, 200);
    HAS(w, "-----BEGIN CERTIFICATE-----\n");
    smki_repo_resp_free(&w);
    w = call(f->repo, "GET", "/certificates/40000000000000000000000000000002", "format=json", NULL);
    HAS(w, "\"serial\":\"40000000000000000000000000000002\"");
    HAS(w, "\"usage\":\"KA\"");
    HAS(w, "\"status\":\"R\",\"status_name\":\"revoked\"");
    HAS(w, "\"not_after\":\"9999-12-31T23:59:59Z\"");
    smki_repo_resp_free(&w);
    w = call(f->repo, "HEAD", "/certificates/4000000000000000000000000000000F", NULL, NULL);
    assert_int_equal(w.status, 404);
    smki_repo_resp_free(&w);
}

static void test_rest_search_filters_and_pages(void **state)
{
    fixture *f = *state;
    f->repo = open_repo(f, SMKI_REPO_PUBLIC_ALL, NULL, NULL);
    smki_repo_resp w = call(f->repo, "GET", "/certificates", "eui=90-B3-D5-1F-30-01-00-00&usage=ka", NULL);
    assert_int_equal(w.status, 200);
    HAS(w, "\"count\":1,");
    HAS(w, "40000000000000000000000000000005");
    smki_repo_resp_free(&w);
    w = call(f->repo, "GET", "/certificates", "issuer=0102030405060708&limit=1", NULL);
    HAS(w, "\"count\":1,\"offset\":0,\"limit\":1,\"next_offset\":1}");
    smki_repo_resp_free(&w);
    w = call(f->repo, "GET", "/certificates", "issuer=0102030405060708&limit=1&offset=1", NULL);
    HAS(w, "40000000000000000000000000000002");
    HAS(w, "\"next_offset\":null}");
    smki_repo_resp_free(&w);
    w = call(f->repo, "GET", "/certificates", "status=pending&role=supplier", NULL);
    HAS(w, "\"count\":1,");
    HAS(w, "\"role\":2,\"role_name\":");
    smki_repo_resp_free(&w);
    w = call(f->repo, "GET", "/certificates", "eui=00%2DDB%2D12%2D34%2D56%2D78%2D90%2DA0", NULL);
    HAS(w, "\"count\":2,");
    smki_repo_resp_free(&w);
}


/* ---- Many requests at once ------------------------------------------------------------------ */
static const struct {
    const char *method, *path, *query, *body;
} MIX[] = {
    {"GET", "/certificates", "eui=90-B3-D5-1F-30-01-00-00&usage=ka", NULL},
    {"GET", "/certificates", "eui=00-DB-12-34-56-78-90-A0", NULL},
    {"GET", "/certificates", "eui=00-DB-12-34-56-78-90-A0&limit=1", NULL},
    {"GET", "/certificates", "eui=00-DB-12-34-56-78-90-A0&limit=1&offset=1&status=revoked", NULL},
    {"GET", "/certificates", "eui=11-22-33-44-55-66-77-88", NULL},
    {"GET", "/certificates", "eui=not-an-eui", NULL},
    {"GET", "/certificates", "issuer=0102030405060708&limit=1", NULL},
    {"GET", "/certificates", "issuer=smki-zca", NULL},
    {"GET", "/certificates", "status=pending&role=supplier", NULL},
    {"GET", "/certificates", "colour=red", NULL},
    {"GET", "/certificates/40000000000000000000000000000001", "format=json", NULL},
    {"HEAD", "/certificates/4000000000000000000000000000000F", NULL, NULL},
    {"POST", "/certificates", NULL, NULL},
    {"GET", "/nothing-here", NULL, NULL},
    {"GET", "no-slash", NULL, NULL},
    {"POST", "/services/certificatesearch", NULL,
     "<CertificateSearchRequest><CertificateSubjectAltName>00DB1234567890A0</CertificateSubjectAltName>"
     "</CertificateSearchRequest>"},
    {"GET", "/certificates", "eui=90-B3-D5-1F-30-01-00-00", NULL},
};
#define MIX_N (sizeof MIX / sizeof MIX[0])

/* Each request of MIX answered alone and then all together: the same answers, and the
 * searches counted in /metrics as alone. */
static void many_as_one(smki_repo *r, int expect_status_0)
{
    smki_repo_req q[MIX_N];
    smki_repo_resp one[MIX_N], many[MIX_N];
    const smki_repo_req *qs[MIX_N];
    smki_repo_resp *ws[MIX_N];
    int rcs[MIX_N];
    for (size_t i = 0; i < MIX_N; i++) {
        q[i] = (smki_repo_req){.method = MIX[i].method, .path = MIX[i].path, .query = MIX[i].query};
        q[i].body = (const uint8_t *)MIX[i].body;
        q[i].body_len = MIX[i].body ? strlen(MIX[i].body) : 0;
        assert_ok(smki_repo_handle(r, &q[i], &one[i]));
        qs[i] = &q[i], ws[i] = &many[i], rcs[i] = -99;
    }
    smki_repo_resp before = call(r, "GET", "/metrics", NULL, NULL);
    smki_repo_handle_many(r, qs, ws, rcs, MIX_N);
    smki_repo_resp after = call(r, "GET", "/metrics", NULL, NULL);
    assert_int_equal(many[0].status, expect_status_0);
    for (size_t i = 0; i < MIX_N; i++) {
        assert_int_equal(rcs[i], 0);
        assert_int_equal(many[i].status, one[i].status);
        assert_int_equal(many[i].ep, one[i].ep);
        assert_string_equal(many[i].content_type, one[i].content_type);
        assert_int_equal(many[i].len, one[i].len);
        assert_memory_equal(many[i].body, one[i].body, one[i].len);
        smki_repo_resp_free(&one[i]);
        smki_repo_resp_free(&many[i]);
    }
    /* the counters moved by what was answered: every request is in the latency count */
    const char *c0 = strstr((const char *)before.body, "smki_repo_handle_seconds_count ");
    const char *c1 = strstr((const char *)after.body, "smki_repo_handle_seconds_count ");
    assert_non_null(c0);
    assert_non_null(c1);
    assert_int_equal(strtoull(c1 + 31, NULL, 10), strtoull(c0 + 31, NULL, 10) + MIX_N + 1);
    smki_repo_resp_free(&before);
    smki_repo_resp_free(&after);
}

static void test_many_requests_at_once_are_answered_each_as_alone(void **state)
{
    fixture *f = *state;
    f->repo = open_repo(f, SMKI_REPO_PUBLIC_ALL, NULL, NULL);
    many_as_one(f->repo, 200);
    /* the server gathers only searches, and only where a read waits on a round trip */
    smki_repo_req search = {.method = "GET", .path = "/certificates", .query = "eui=00-DB-12-34-56-78-90-A0"};
    smki_repo_req ca = {.method = "GET", .path = "/ca"}, post = {.method = "POST", .path = "/certificates"};
    assert_int_equal(smki_repo_gathers(f->repo, &search), test_engine_is_pg());
    assert_int_equal(smki_repo_gathers(f->repo, &ca), 0);
    assert_int_equal(smki_repo_gathers(f->repo, &post), 0);
    assert_int_equal(smki_repo_gathers(f->repo, NULL), 0);
    /* none at once: nothing to do */
    smki_repo_handle_many(f->repo, NULL, NULL, NULL, 0);
}

static void test_many_requests_at_once_meet_the_access_rules_each(void **state)
{
    fixture *f = *state;
    /* the searches need a client certificate here; /metrics stays public for the count */
    f->repo = open_repo(f, 1u << SMKI_REPO_EP_METRICS, NULL, NULL);
    many_as_one(f->repo, 403);
}

static smki_repo *open_repo_scan(fixture *f, size_t max_scan)
{
    char store[1100];
    snprintf(store, sizeof store, "%s/store", f->dir);
    smki_repo_opts o = {0};
    o.store_dir = store;
    o.home = f->dir;
    o.env = "test";
    o.public_mask = SMKI_REPO_PUBLIC_ALL;
    o.max_scan = max_scan;
    smki_repo *r = NULL;
    assert_ok(smki_repo_open(&o, &r));
    return r;
}

/* A search stops past max_scan examined records (a profile, which no index holds, or a
 * deep offset would otherwise scan the environment on the event loop): 400 saying how
 * to narrow it. An offset past 10000 is 400 too. */
static void test_rest_search_refuses_scans_over_max_scan_and_deep_offsets(void **state)
{
    fixture *f = *state;
    f->repo = open_repo_scan(f, 2);
    smki_repo_resp w = call(f->repo, "GET", "/certificates", "profile=device", NULL);
    assert_int_equal(w.status, 400);
    HAS(w, "the query would scan more than 2 records: narrow it (eui, serial, ski, status, role, usage, issuer)");
    smki_repo_resp_free(&w);
    w = call(f->repo, "GET", "/certificates", "offset=3", NULL);
    assert_int_equal(w.status, 400);
    HAS(w, "would scan more than 2 records");
    smki_repo_resp_free(&w);
    w = call(f->repo, "GET", "/certificates", "eui=90-B3-D5-1F-30-01-00-00&usage=ka", NULL);
    assert_int_equal(w.status, 200);
    HAS(w, "\"count\":1,");
    smki_repo_resp_free(&w);
    smki_repo_free(f->repo);
    f->repo = open_repo_scan(f, 4); /* the environment holds 4: a profile search may see them all */
    w = call(f->repo, "GET", "/certificates", "profile=device", NULL);
    assert_int_equal(w.status, 200);
    HAS(w, "\"count\":2,");
    smki_repo_resp_free(&w);
    w = call(f->repo, "GET", "/certificates", "offset=10001", NULL);
    assert_int_equal(w.status, 400);
    HAS(w, "offset");
    smki_repo_resp_free(&w);
    w = call(f->repo, "GET", "/certificates", "offset=10000&usage=ds", NULL);
    assert_int_equal(w.status, 200);
    HAS(w, "\"count\":0,");
    smki_repo_resp_free(&w);
}

/* The server's client-certificate check: the store's status of (issuer SKI, serial) in
 * the environment served, 0 for one it does not hold (or holds for another environment). */
static void test_cert_status_reads_the_store_for_client_certificates(void **state)
{
    fixture *f = *state;
    f->repo = open_repo(f, SMKI_REPO_PUBLIC_ALL, NULL, NULL);
    uint8_t serial[SMKI_SERIAL_LEN] = {0x40};
    serial[15] = 1;
    assert_int_equal(smki_repo_cert_status(f->repo, DCA_SKI, serial), SMKI_STATUS_IN_USE);
    serial[15] = 2;
    assert_int_equal(smki_repo_cert_status(f->repo, DCA_SKI, serial), SMKI_STATUS_REVOKED);
    serial[15] = 5;
    assert_int_equal(smki_repo_cert_status(f->repo, OCA_SKI, serial), SMKI_STATUS_PENDING);
    serial[15] = 4; /* production's */
    assert_int_equal(smki_repo_cert_status(f->repo, OCA_SKI, serial), 0);
    serial[15] = 1; /* the DCA's serial under the OCA */
    assert_int_equal(smki_repo_cert_status(f->repo, OCA_SKI, serial), 0);
    serial[15] = 9;
    assert_int_equal(smki_repo_cert_status(f->repo, DCA_SKI, serial), 0);
}

static void test_rest_refuses_bad_queries_with_400(void **state)
{
    fixture *f = *state;
    f->repo = open_repo(f, SMKI_REPO_PUBLIC_ALL, NULL, NULL);
    static const struct {
        const char *query, *needle;
    } BAD[] = {
        {"eui=nope", "bad eui"},          {"role=emperor", "bad role"},
        {"usage=sign", "bad usage"},      {"status=Z", "bad status"},
        {"limit=0", "at least 1"},        {"limit=1001", "over 1000"},
        {"offset=x", "not a number"},     {"issuer=01", "16-digit SKI"},
        {"what=1", "unknown query parameter 'what'"},
        {"eui=1&eui=2", "given twice"},   {"eui=%4", "bad %-escape"},
        {"eui=%00", "a NUL"},             {"profile=other", "bad profile"},
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        smki_repo_resp w = call(f->repo, "GET", "/certificates", BAD[i].query, NULL);
        print_message("%s: %s\n", BAD[i].query, (const char *)w.body);
        assert_int_equal(w.status, 400);
        assert_string_equal(w.content_type, "application/json");
        HAS(w, BAD[i].needle);
        smki_repo_resp_free(&w);
    }
    smki_repo_resp w = call(f->repo, "GET", "/certificates/12345678901234567890123456789012345", NULL, NULL);
    assert_int_equal(w.status, 400);
    smki_repo_resp_free(&w);
    w = call(f->repo, "GET", "/certificates", "issuer=smki-oca", NULL);
    assert_int_equal(w.status, 404); /* this store has no CA records */
    smki_repo_resp_free(&w);
    w = call(f->repo, "DELETE", "/certificates", NULL, NULL);
    assert_int_equal(w.status, 405);
    smki_repo_resp_free(&w);
    w = call(f->repo, "GET", "/nowhere", NULL, NULL);
    assert_int_equal(w.status, 404);
    smki_repo_resp_free(&w);
}

static void test_access_rules_public_groups_client_certs_parties_and_apikey(void **state)
{
    fixture *f = *state;
    unsigned mask = 0;
    assert_ok(smki_repo_public_parse("health, metrics", &mask));
    assert_fails(smki_repo_public_parse("health,everything", &mask), SMKI_E_USAGE, "'everything'");
    assert_ok(smki_repo_public_parse("health,metrics", &mask));
    f->repo = open_repo(f, mask, "k3y", "PS-1");
    smki_repo_resp w = call(f->repo, "GET", "/health", NULL, NULL);
    assert_int_equal(w.status, 200);
    HAS(w, "\"certificates\":5");
    smki_repo_resp_free(&w);
    w = call(f->repo, "GET", "/certificates", NULL, NULL);
    assert_int_equal(w.status, 403);
    HAS(w, "needs a DCCKI client certificate");
    smki_repo_resp_free(&w);
    smki_repo_req q = {"GET", "/certificates", "eui=00DB1234567890A0", NULL, NULL, 0, "PS-2", 1, NULL, NULL};
    assert_ok(smki_repo_handle(f->repo, &q, &w));
    assert_int_equal(w.status, 403);
    HAS(w, "Party Signifier is not allowed");
    smki_repo_resp_free(&w);
    q.party = "PS-1";
    assert_ok(smki_repo_handle(f->repo, &q, &w));
    assert_int_equal(w.status, 200);
    smki_repo_resp_free(&w);
    /* The DCC services need the apikey too. */
    static const char BODY[] = "<CertificateSearchRequest><CertificateSubjectAltName>00-DB-12-34-56-78-90-A0"
                               "</CertificateSubjectAltName></CertificateSearchRequest>";
    smki_repo_req d = {"POST", "/services/certificatesearch", "apikey=wrong", NULL, (const uint8_t *)BODY,
                       sizeof BODY - 1, "PS-1", 1, NULL, NULL};
    assert_ok(smki_repo_handle(f->repo, &d, &w));
    assert_int_equal(w.status, 403);
    HAS(w, "apikey");
    smki_repo_resp_free(&w);
    d.query = "apikey=k3y";
    assert_ok(smki_repo_handle(f->repo, &d, &w));
    assert_int_equal(w.status, 200);
    smki_repo_resp_free(&w);
    w = call(f->repo, "GET", "/metrics", NULL, NULL);
    HAS(w, "smki_repo_requests_total{env=\"test\",endpoint=\"cert\",code=\"4xx\"} 2");
    HAS(w, "smki_repo_certificates 5");
    HAS(w, "smki_repo_handle_seconds_count");
    smki_repo_resp_free(&w);
}

/* Publish env test's list of CA k as at `now` (store only), on a store opened for it. */
static void publish_list(const char *dir, smki_ca_kind k, int64_t now)
{
    smki_store *s = NULL;
    smki_ca_db db;
    char store[1100];
    snprintf(store, sizeof store, "%s/store", dir);
    assert_ok(smki_store_open(store, NULL, &s));
    assert_ok(smki_ca_db_open(s, &db));
    smki_hsm_opts hsm = {0};
    smki_crl_opts o = {&hsm, NULL, now, 0, NULL, NULL};
    smki_crl crl;
    memset(&crl, 0, sizeof crl);
    assert_ok(smki_ca_crl_publish(&db, "test", k, &o, &crl));
    smki_crl_clear(&crl);
    smki_store_close(s);
}

static smki_repo *open_health_repo(const char *dir)
{
    char store[1100];
    snprintf(store, sizeof store, "%s/store", dir);
    smki_repo_opts o = {0};
    o.store_dir = store;
    o.home = dir;
    o.env = "test";
    o.public_mask = SMKI_REPO_PUBLIC_ALL;
    o.version = "9.8.7";
    smki_repo *r = NULL;
    assert_ok(smki_repo_open(&o, &r));
    return r;
}

static void test_health_degrades_for_lists_missing_due_lapsed_and_tls_near_expiry(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("repo-health");
    smki_store *s = NULL;
    smki_ca_db db;
    assert_ok(test_software_hierarchy(dir, NULL, &s, &db));
    smki_store_close(s);
    int64_t now = (int64_t)time(NULL);

    smki_repo *r = open_health_repo(dir);
    smki_repo_resp w = call(r, "GET", "/health", NULL, NULL);
    assert_int_equal(w.status, 200);
    HAS(w, "\"status\":\"degraded\"");
    HAS(w, "\"smki-oca has published no CRL\"");
    HAS(w, "\"smki-root has published no ARL\"");
    HAS(w, "{\"ca\":\"smki-oca\",\"list\":\"crl\",\"state\":\"missing\"");
    smki_repo_resp_free(&w);
    smki_repo_free(r);

    for (int k = 0; k < SMKI_CA_KIND_COUNT; k++) publish_list(dir, (smki_ca_kind)k, now);
    r = open_health_repo(dir);
    w = call(r, "GET", "/health", NULL, NULL);
    HAS(w, "\"status\":\"ok\"");
    HAS(w, "\"reasons\":[]");
    HAS(w, "{\"ca\":\"smki-oca\",\"list\":\"crl\",\"state\":\"ok\",\"number\":1");
    smki_repo_resp_free(&w);
    w = call(r, "GET", "/metrics", NULL, NULL);
    char line[200];
    snprintf(line, sizeof line, "smki_repo_list_next_update_seconds{env=\"test\",ca=\"smki-oca\",list=\"crl\"} %lld\n",
             (long long)(now + 7 * 86400));
    HAS(w, line); /* the CRL's default period: 7 days */
    snprintf(line, sizeof line, "smki_repo_list_next_update_seconds{env=\"test\",ca=\"smki-root\",list=\"arl\"} %lld\n",
             (long long)(now + 30 * 86400));
    HAS(w, line);
    HAS(w, "smki_repo_list_number{env=\"test\",ca=\"dccki-ica\",list=\"crl\"} 1\n");
    HAS(w, "smki_repo_list_age_seconds{env=\"test\",ca=\"smki-dca\",list=\"crl\"} ");
    HAS(w, "smki_repo_build_info{version=\"9.8.7\",openssl=\"OpenSSL 3.");
    HASNT(w, "smki_repo_tls_cert_not_after_seconds"); /* no TLS */
    smki_repo_resp_free(&w);

    /* TLS: near its end within 14 days, not at 30. */
    smki_repo_set_tls_not_after(r, now + 3 * 86400);
    w = call(r, "GET", "/health", NULL, NULL);
    HAS(w, "\"status\":\"degraded\"");
    HAS(w, "\"the TLS certificate expires at ");
    smki_repo_resp_free(&w);
    smki_repo_set_tls_not_after(r, now + 30 * 86400);
    w = call(r, "GET", "/health", NULL, NULL);
    HAS(w, "\"status\":\"ok\"");
    smki_repo_resp_free(&w);
    w = call(r, "GET", "/metrics", NULL, NULL);
    snprintf(line, sizeof line, "smki_repo_tls_cert_not_after_seconds %lld\n", (long long)(now + 30 * 86400));
    HAS(w, line);
    smki_repo_resp_free(&w);
    smki_repo_free(r);

    /* The OCA's CRL made 6 of its 7 days ago: due; 8 days ago: lapsed. */
    publish_list(dir, SMKI_CA_OCA, now - 6 * 86400);
    r = open_health_repo(dir);
    w = call(r, "GET", "/health", NULL, NULL);
    HAS(w, "\"status\":\"degraded\"");
    HAS(w, "\"the CRL of smki-oca is due: nextUpdate ");
    HAS(w, "{\"ca\":\"smki-oca\",\"list\":\"crl\",\"state\":\"due\",\"number\":2");
    HASNT(w, "smki-dca is due");
    smki_repo_resp_free(&w);
    smki_repo_free(r);
    publish_list(dir, SMKI_CA_OCA, now - 8 * 86400);
    r = open_health_repo(dir);
    w = call(r, "GET", "/health", NULL, NULL);
    HAS(w, "\"the CRL of smki-oca lapsed at ");
    HAS(w, "\"state\":\"lapsed\",\"number\":3");
    smki_repo_resp_free(&w);
    smki_repo_free(r);
}

static void test_reconfigure_replaces_access_rules_and_refuses_restart_only_changes(void **state)
{
    fixture *f = *state;
    f->repo = open_repo(f, SMKI_REPO_PUBLIC_ALL, NULL, NULL);
    smki_repo_resp w = call(f->repo, "GET", "/certificates", NULL, NULL);
    assert_int_equal(w.status, 200);
    smki_repo_resp_free(&w);
    char store[1100];
    snprintf(store, sizeof store, "%s/store", f->dir);
    smki_repo_opts o = {0};
    o.store_dir = store;
    o.env = "test";
    assert_ok(smki_repo_public_parse("health", &o.public_mask));
    o.apikey = "n3w";
    assert_ok(smki_repo_reconfigure(f->repo, &o));
    w = call(f->repo, "GET", "/certificates", NULL, NULL);
    assert_int_equal(w.status, 403); /* no longer public */
    HAS(w, "needs a DCCKI client certificate");
    smki_repo_resp_free(&w);
    w = call(f->repo, "GET", "/health", NULL, NULL);
    assert_int_equal(w.status, 200);
    smki_repo_resp_free(&w);
    smki_repo_opts bad = o;
    bad.env = "production";
    assert_fails(smki_repo_reconfigure(f->repo, &bad), SMKI_E_USAGE, "env test -> production needs a restart");
    bad = o;
    bad.store_dir = "/elsewhere";
    assert_fails(smki_repo_reconfigure(f->repo, &bad), SMKI_E_USAGE, "needs a restart");
    bad = o;
    assert_ok(smki_repo_public_parse("all", &bad.public_mask));
    bad.env = "production";
    assert_fails(smki_repo_reconfigure(f->repo, &bad), SMKI_E_USAGE, "restart");
    w = call(f->repo, "GET", "/certificates", NULL, NULL);
    assert_int_equal(w.status, 403); /* a refused reconfiguration changed nothing */
    smki_repo_resp_free(&w);
}

static void test_an_empty_store_answers_not_found_until_the_ca_writes(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("repo-empty");
    char store[1100];
    snprintf(store, sizeof store, "%s/store", dir);
    smki_store *s = NULL;
    assert_ok(smki_store_open(store, NULL, &s)); /* the folder, no CA databases */
    smki_store_close(s);
    smki_repo_opts o = {0};
    o.store_dir = store;
    o.home = dir;
    o.env = "test";
    o.public_mask = SMKI_REPO_PUBLIC_ALL;
    smki_repo *r = NULL;
    assert_ok(smki_repo_open(&o, &r));
    smki_repo_resp w = call(r, "GET", "/health", NULL, NULL);
    HAS(w, "\"store\":\"empty\",\"certificates\":0");
    smki_repo_resp_free(&w);
    w = call(r, "POST", "/services/retrievecertificate", NULL,
             "<CertificateDataRequest><CertificateSerial>01</CertificateSerial></CertificateDataRequest>");
    assert_int_equal(w.status, 402);
    smki_repo_resp_free(&w);
    w = call(r, "GET", "/crl/smki-root", NULL, NULL);
    assert_int_equal(w.status, 404);
    HAS(w, "published no CRL");
    smki_repo_resp_free(&w);
    w = call(r, "GET", "/arl/smki-oca", NULL, NULL);
    assert_int_equal(w.status, 404);
    HAS(w, "an ARL is a root's");
    smki_repo_resp_free(&w);
    w = call(r, "GET", "/crl/..", NULL, NULL);
    assert_int_equal(w.status, 404);
    smki_repo_resp_free(&w);
    /* A CRL file larger than an answer may be (8 MiB) is refused by its size, before it
     * is read (it used to be read whole, up to 64 MiB, then refused). */
    char crl[1200];
    snprintf(crl, sizeof crl, "%s/ca", dir);
    mkdir(crl, 0700);
    snprintf(crl, sizeof crl, "%s/ca/test", dir);
    mkdir(crl, 0700);
    snprintf(crl, sizeof crl, "%s/ca/test/smki-dca.crl", dir);
    FILE *big = fopen(crl, "wb");
    assert_non_null(big);
    assert_int_equal(ftruncate(fileno(big), 9 << 20), 0); /* sparse: no 9 MiB written */
    fclose(big);
    w = call(r, "GET", "/crl/smki-dca", NULL, NULL);
    assert_int_equal(w.status, 500);
    HAS(w, "over the limit of");
    smki_repo_resp_free(&w);
    smki_repo_free(r);
    o.env = "../x";
    assert_fails(smki_repo_open(&o, &r), SMKI_E_USAGE, "letters, digits");
}

/* [repo] in smki.conf: every setting into the options, paths relative to the home,
 * and refusals naming the file and line or the key. */
static void test_repo_conf_sets_every_option_and_refuses_typos_and_bad_values(void **state)
{
    (void)state;
    smki_repo_opts ro = {0};
    smki_repo_server_opts so = {0};
    smki_repo_conf_buf buf;
    smki_conf *c = test_conf("[store]\npath = store\n[repo]\nenv = test\nlisten = 127.0.0.1:8443\nthreads = 4\n"
                             "max_conns = 300\nmax_body = 2048\nmax_headers = 4096\nmax_scan = 5000\ntimeout = 7\n"
                             "tls_cert = tls/s.pem\ntls_key = /abs/s.key\nclient_ca = ca.pem\nclient_certs = required\n"
                             "public = health,crl\nallow_party = PS-A, PS-B\nparty_attr = 2.5.4.10\n"
                             "apikey_file = key.txt\narl_ca = dccki-root\naccess_log = yes\n");
    assert_ok(smki_repo_conf_read(c, "/home/x", &ro, &so, &buf));
    assert_string_equal(ro.env, "test");
    assert_string_equal(so.listen, "127.0.0.1:8443");
    assert_int_equal(so.threads, 4);
    assert_int_equal(so.max_conns, 300);
    assert_int_equal(so.max_body, 2048);
    assert_int_equal(so.max_headers, 4096);
    assert_int_equal(ro.max_scan, 5000);
    assert_int_equal(so.timeout_s, 7);
    assert_string_equal(so.tls_cert, "/home/x/tls/s.pem");
    assert_string_equal(so.tls_key, "/abs/s.key");
    assert_string_equal(so.client_ca, "/home/x/ca.pem");
    assert_int_equal(so.require_client_cert, 1);
    assert_int_equal(ro.public_mask, (1u << SMKI_REPO_EP_HEALTH) | (1u << SMKI_REPO_EP_CRL) | (1u << SMKI_REPO_EP_OTHER));
    assert_int_equal(ro.n_allow, 2);
    assert_string_equal(ro.allow[0], "PS-A");
    assert_string_equal(ro.allow[1], "PS-B");
    assert_string_equal(so.party_attr, "2.5.4.10");
    assert_string_equal(buf.apikey_file, "/home/x/key.txt");
    assert_string_equal(ro.arl_ca, "dccki-root");
    assert_int_equal(so.access_log, 1);
    smki_conf_free(c);

    /* No file, or no [repo]: nothing changes. */
    smki_repo_opts ro2 = {0};
    smki_repo_server_opts so2 = {0};
    assert_ok(smki_repo_conf_read(NULL, "/home/x", &ro2, &so2, &buf));
    assert_null(ro2.env);
    assert_null(so2.listen);

    static const struct {
        const char *text, *needle;
    } BAD[] = {
        {"[repo]\nenv = test\nthread = 2\n", "smki.conf:3: unknown setting 'thread' under [repo] (did you mean 'threads'?)"},
        {"[repo]\nthreads = 0\n", "threads = '0': a number 1..64"},
        {"[repo]\nmax_conns = 12x\n", "max_conns = '12x'"},
        {"[repo]\ntimeout = \n", "timeout = ''"},
        {"[repo]\nmax_scan = 0\n", "max_scan = '0'"},
        {"[repo]\nclient_certs = sometimes\nclient_ca = a.pem\n", "optional or required"},
        {"[repo]\nclient_certs = optional\n", "needs client_ca"},
        {"[repo]\naccess_log = 1\n", "yes or no"},
        {"[repo]\npublic = dcc,everything\n", "'everything' is not one of"},
        {"[repo]\nallow_party = A,B,C,D,E,F,G,H,I,J,K,L,M,N,O,P,Q,R,S,T,U,V,W,X,Y,Z,a,b,c,d,e,f,g\n", "at most 32"},
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        smki_repo_opts r3 = {0};
        smki_repo_server_opts s3 = {0};
        c = test_conf(BAD[i].text);
        assert_fails(smki_repo_conf_read(c, "/home/x", &r3, &s3, &buf), SMKI_E_USAGE, BAD[i].needle);
        smki_conf_free(c);
    }
}

static void test_path_decode_unescapes_and_refuses_bad_escapes_and_nul(void **state)
{
    (void)state;
    char out[64];
    assert_ok(smki_repo_path_decode("/crl/%2e%2E%2fsmki-dca", 22, out));
    assert_string_equal(out, "/crl/../smki-dca");
    assert_ok(smki_repo_path_decode("/health?x", 7, out)); /* only len octets */
    assert_string_equal(out, "/health");
    assert_ok(smki_repo_path_decode("", 0, out));
    assert_string_equal(out, "");
    assert_fails(smki_repo_path_decode("/certificates/%00", 17, out), SMKI_E_INPUT, "NUL");
    assert_fails(smki_repo_path_decode("/a%zz", 5, out), SMKI_E_INPUT, "bad escape at octet 2");
    assert_fails(smki_repo_path_decode("/a%4", 4, out), SMKI_E_INPUT, "bad escape");
    assert_fails(smki_repo_path_decode("/a%", 3, out), SMKI_E_INPUT, "bad escape");
    assert_fails(smki_repo_path_decode("/a\0b", 4, out), SMKI_E_INPUT, "NUL");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xml_reads_prolog_namespaces_attributes_and_children),
        cmocka_unit_test(test_xml_refuses_dtd_entities_comments_and_bad_shapes),
        cmocka_unit_test_setup_teardown(test_dcc_search_finds_a_device_by_eui_and_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dcc_search_of_an_organisation_stays_in_its_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dcc_refuses_invalid_parameters_with_401, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dcc_retrieve_answers_base64_der_and_the_subject_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rest_certificate_by_serial_as_der_pem_or_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rest_search_filters_and_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_requests_at_once_are_answered_each_as_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_requests_at_once_meet_the_access_rules_each, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rest_refuses_bad_queries_with_400, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rest_search_refuses_scans_over_max_scan_and_deep_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cert_status_reads_the_store_for_client_certificates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_rules_public_groups_client_certs_parties_and_apikey, setup,
                                        teardown),
        cmocka_unit_test(test_an_empty_store_answers_not_found_until_the_ca_writes),
        cmocka_unit_test(test_health_degrades_for_lists_missing_due_lapsed_and_tls_near_expiry),
        cmocka_unit_test_setup_teardown(test_reconfigure_replaces_access_rules_and_refuses_restart_only_changes, setup,
                                        teardown),
        cmocka_unit_test(test_repo_conf_sets_every_option_and_refuses_typos_and_bad_values),
        cmocka_unit_test(test_path_decode_unescapes_and_refuses_bad_escapes_and_nul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
