/* smki duis: DUIS XML Service Requests and Responses: sign (enveloped XML signature
 * with an xmlSign key) and verify (signer by issuer and serial, role, originator,
 * validity, revocation, schema). Argument parsing and output only: the work is in duis/. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "duis/duis.h"
#include "repo/repo.h"

static const char ABOUT[] =
    "smki duis: XML signatures of DUIS Service Requests (xmlSign, Remote Party Role 135,\n"
    "OU 87) and Responses (the DCC's DSP xmlSign, role 137, OU 89).\n"
    "\n"
    "The profile of the DCC's vectors: enveloped ds:Signature as the root's last child,\n"
    "exclusive C14N, ecdsa-sha256, one Reference URI=\"\" with the enveloped-signature\n"
    "transform and a SHA-256 digest, KeyInfo/X509Data/X509IssuerSerial. The XML is read\n"
    "with no DTD, no entities and no network, UTF-8 only, at most 4 MiB.";

static const char SIGN_HELP[] =
    "Usage: smki duis sign --key KEY --cert CERT --in REQUEST.xml --out SIGNED.xml [--at TIME]\n"
    "                      [--force]\n"
    "\n"
    "Sign a DUIS Service Request (or a Response) with KEY, the private key of CERT.\n"
    "A ds:Signature already there (the RTDS placeholders) is replaced in place, else one is\n"
    "appended as the root's last child. The signature value is made by smki's crypto core,\n"
    "so KEY may be a pkcs11: URI (PIN: SMKI_PIN or --pin-file), file:PATH or a label on\n"
    "the home's token.\n"
    "Refused (exit 2), with nothing written, unless CERT is an organisation certificate of\n"
    "role 87 xmlSign (135) for a Request or 89 DSP xmlSign (137) for a Response, with\n"
    "digitalSignature, valid at TIME (default now), whose EUI-64 is the Request's business\n"
    "originator (the first EUI-64 of sr:RequestID), and KEY is CERT's key. Input that is not\n"
    "a DUIS Request or Response, or hostile XML (DTD, entities), is refused (exit 2).\n"
    "'-' is standard input (--in) or output (--out); an existing SIGNED.xml is refused\n"
    "unless --force replaces it.\n"
    "\n"
    "Examples (the DCC's test vectors, from a clone beside ../shared; no home needed):\n"
    "  smki duis sign --key file:../shared/vectors/duis/keystore/90b3d51f30010000-xmlsign.key \\\n"
    "      --cert ../shared/vectors/duis/keystore/90b3d51f30010000-xmlsign.pem --at 2020-01-01 \\\n"
    "      --in ../shared/vectors/duis/requests/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_REQUEST_DUIS.XML \\\n"
    "      --out signed.xml\n"
    "  smki duis verify --trust ../shared/vectors/duis/keystore --at 2020-01-01 signed.xml\n";

static const char VERIFY_HELP[] =
    "Usage: smki duis verify (--trust DIR | --repo URL [--repo-ca PEM]) [--crl FILE]... [--schema DIR]\n"
    "                        [--dcc EUI64] [--at TIME] FILE... [--json]\n"
    "\n"
    "Verify signed DUIS Requests and Responses. The signer is found by the issuer and serial\n"
    "of ds:X509IssuerSerial among the certificates in DIR (*.pem, *.crt, *.cer, *.der), or\n"
    "fetched by serial from a running smki repository at URL (GET /certificates/{serial};\n"
    "https: its server certificate checked against --repo-ca, else the system's CAs).\n"
    "What the trust folder or the repository holds is trusted as it is: no chain is built.\n"
    "Checked: exactly the signature profile (a second ds:Signature, another Reference URI\n"
    "or extra transforms are refused as signature wrapping), the digest and the signature,\n"
    "the signer's role (87 for a Request, 89 for a Response), for a Request that its EUI-64\n"
    "is the first EUI-64 of sr:RequestID, its validity at TIME (default now; e.g.\n"
    "2020-01-01T00:00:00Z), revocation by each --crl (its issuer's certificate must be in\n"
    "DIR to check it), and with --schema the DUIS 5.1 XML Schema (DIR holding\n"
    "'DUIS Schema V5.1.xsd' and what it imports).\n"
    "A Response is signed by the DCC whoever its business originator is (a device's\n"
    "response names the device first in sr:ResponseID), so it binds to role 89; with\n"
    "--dcc EUI64 its signer must also be that EUI-64 (the DCC's).\n"
    "\n"
    "One line per file, then 'N passed, N failed'. Exit 2 if any failed.\n"
    "\n"
    "FILE '-' is standard input.\n"
    "\n"
    "Examples (the DCC's test vectors, from a clone beside ../shared; no home needed):\n"
    "  cd ../shared/vectors/duis\n"
    "  smki duis verify --trust keystore --at 2020-01-01 signed/*.XML responses/*.XML\n"
    "  smki duis verify --trust keystore --at 2020-01-01 --dcc 90-B3-D5-1F-30-00-00-02 \\\n"
    "      --schema schema responses/*.XML\n";

static int read_xml(const char *path, uint8_t **buf, size_t *len)
{
    int rc = cli_read(path, SMKI_DUIS_MAX_XML, buf, len);
    if (rc < 0) smki_error_wrap("%s", path);
    return rc;
}

/* ---- sign --------------------------------------------------------------------------- */
static void print_signed(smki_cli *c, const char *in, const char *out, const smki_duis_info *info, smki_key *k)
{
    char orig[SMKI_EUI64_TEXT_MAX];
    smki_eui64_format(&info->request_id.originator, SMKI_EUI64_HYPHEN, orig);
    const char *kind = info->kind == SMKI_DUIS_RESPONSE ? "response" : "request";
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_str(&w, "in", in);
        json_str(&w, "out", out);
        json_str(&w, "kind", kind);
        json_str(&w, "originator", orig);
        json_str(&w, "variant", info->variant);
        json_str(&w, "key", smki_key_ref(k));
        json_end(&w);
    } else {
        printf("Signed %s %s (originator %s, variant %s) with %s: written to %s.\n", kind, in, orig, info->variant,
               smki_key_ref(k), out);
    }
}

typedef struct {
    const char *key, *cert, *in, *out, *at;
    int force;
} sign_opts;

static int sign_run(smki_cli *c, const sign_opts *o, time_t at)
{
    uint8_t *xml = NULL, *signed_xml = NULL;
    size_t len = 0, slen = 0;
    X509 *cert = NULL;
    smki_key *k = NULL;
    smki_duis_info info;
    int rc = read_xml(o->in, &xml, &len);
    if (rc == 0) {
        rc = smki_cert_load_file(o->cert, &cert);
        if (rc < 0) smki_error_wrap("signing certificate %s", o->cert);
    }
    if (rc == 0) rc = cli_open_key(c, o->key, &k);
    if (rc == 0) rc = smki_duis_sign(k, cert, at, xml, len, &signed_xml, &slen);
    if (rc == 0) rc = smki_duis_read(signed_xml, slen, &info);
    if (rc == 0) rc = cli_write(o->out, signed_xml, slen, 0644, o->force);
    if (rc == 0 && strcmp(o->out, "-") != 0) print_signed(c, o->in, o->out, &info, k);
    smki_key_free(k);
    X509_free(cert);
    free(xml);
    free(signed_xml);
    return rc;
}

static int duis_sign(smki_cli *c, int argc, char **argv)
{
    sign_opts o = {NULL, NULL, NULL, NULL, NULL, 0};
    const cli_opt opts[] = {CLI_VALUE("key", &o.key), CLI_VALUE("cert", &o.cert), CLI_VALUE("in", &o.in),
                            CLI_VALUE("out", &o.out), CLI_VALUE("at", &o.at),     CLI_FLAG("force", &o.force),
                            CLI_END};
    const cli_spec spec = {"smki duis sign", SIGN_HELP, opts, "no arguments", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!o.key || !o.cert || !o.in || !o.out)
        return cli_usage(c, "smki duis sign", "--key, --cert, --in and --out are required");
    if (c->json && strcmp(o.out, "-") == 0)
        return cli_usage(c, "smki duis sign", "--out - writes the XML to standard output: not with --json");
    time_t at;
    int rc = smki_gbcs_time_parse(o.at ? o.at : "now", &at);
    if (rc == 0) rc = sign_run(c, &o, at);
    return cli_finish(c, rc);
}

/* ---- verify ------------------------------------------------------------------------- */
/* The signer from a running repository: GET /certificates/{serial hex}, added to t. */
static int fetch_signer(const char *url, const char *ca_file, const uint8_t *xml, size_t len, smki_duis_trust *t)
{
    smki_duis_signer_ref ref;
    GUARD(smki_duis_signer_ref_get(xml, len, &ref));
    char path[160];
    snprintf(path, sizeof path, "/certificates/%s", ref.serial_hex);
    smki_repo_client_opts o;
    memset(&o, 0, sizeof o);
    o.url = url;
    o.ca_file = ca_file;
    smki_repo_http_resp r;
    memset(&r, 0, sizeof r);
    int rc = smki_repo_http(&o, "GET", path, "application/pkix-cert", NULL, NULL, 0, &r);
    X509 *cert = NULL;
    if (rc == 0 && r.status != 200)
        rc = SMKI_FAIL(SMKI_E_NOTFOUND, "the repository at %s answered %d for the signer (serial %s)", url, r.status,
                       ref.serial);
    if (rc == 0) rc = smki_cert_load(r.body, r.len, &cert);
    if (rc == 0) rc = smki_duis_trust_add_cert(t, cert);
    X509_free(cert);
    smki_repo_http_resp_free(&r);
    return rc;
}

static void print_result(smki_cli *c, json_w *w, const char *file, int r, const smki_duis_report *rep)
{
    char signer[SMKI_EUI64_TEXT_MAX], orig[SMKI_EUI64_TEXT_MAX];
    smki_eui64_format(&rep->signer, SMKI_EUI64_HYPHEN, signer);
    smki_eui64_format(&rep->info.request_id.originator, SMKI_EUI64_HYPHEN, orig);
    const char *kind = rep->info.kind == SMKI_DUIS_RESPONSE ? "response" : "request";
    if (c->json) {
        json_arr_obj(w);
        json_str(w, "file", file);
        json_bool(w, "ok", r == 0);
        if (r == 0) {
            json_str(w, "kind", kind);
            json_str(w, "signer", signer);
            char role[SMKI_ROLE_TEXT_MAX];
            smki_role_format((uint8_t)rep->signer_role, role);
            json_str(w, "signer_role", role);
            json_str(w, "issuer", rep->ref.issuer);
            json_str(w, "serial", rep->ref.serial);
            json_str(w, "originator", orig);
            json_str(w, "variant", rep->info.variant);
            json_bool(w, "schema", rep->schema_checked);
        } else {
            json_error(w, r);
        }
        json_close_obj(w);
    } else if (r == 0) {
        printf("ok   %s: %s %s signed by %s (role %02X, serial %s)%s\n", file, kind, rep->info.variant, signer,
               (unsigned)rep->signer_role, rep->ref.serial, rep->schema_checked ? ", schema valid" : "");
    } else {
        printf("FAIL %s: %s\n", file, smki_error_msg());
    }
}

typedef struct {
    const char *trust, *repo, *repo_ca, *schema, *at, *dcc;
    cli_list crls;
} verify_opts;

static int open_trust(const verify_opts *v, smki_duis_trust **t)
{
    GUARD(smki_duis_trust_new(t));
    int rc = v->trust ? smki_duis_trust_add_dir(*t, v->trust) : 0;
    for (size_t i = 0; rc == 0 && i < v->crls.n; i++) rc = smki_duis_trust_add_crl_file(*t, v->crls.v[i]);
    if (rc == 0 && v->schema) rc = smki_duis_trust_load_schema(*t, v->schema);
    if (rc == 0 && v->dcc) {
        smki_eui64_t dcc;
        rc = smki_eui64_parse(v->dcc, &dcc);
        if (rc == 0) rc = smki_duis_trust_set_dcc(*t, &dcc);
    }
    return rc;
}

/* Each file verified and printed; returns how many failed. */
static int verify_files(smki_cli *c, const verify_opts *v, smki_duis_trust *t, time_t at, const char **files,
                        size_t n)
{
    json_w w;
    if (c->json) {
        json_begin(&w, stdout);
        json_key_arr(&w, "results");
    }
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t *xml = NULL;
        size_t len = 0;
        smki_duis_report rep;
        memset(&rep, 0, sizeof rep);
        int r = read_xml(files[i], &xml, &len);
        if (r == 0 && v->repo) r = fetch_signer(v->repo, v->repo_ca, xml, len, t);
        if (r == 0) r = smki_duis_verify(t, at, xml, len, &rep);
        r < 0 ? failed++ : passed++;
        print_result(c, &w, files[i], r, &rep);
        free(xml);
    }
    if (c->json) {
        json_close_arr(&w);
        json_bool(&w, "ok", failed == 0);
        json_int(&w, "passed", passed);
        json_int(&w, "failed", failed);
        json_end(&w);
    } else {
        printf("%d passed, %d failed\n", passed, failed);
    }
    return failed;
}

static int duis_verify(smki_cli *c, int argc, char **argv)
{
    verify_opts v;
    memset(&v, 0, sizeof v);
    const cli_opt opts[] = {CLI_VALUE("trust", &v.trust),     CLI_VALUE("repo", &v.repo), CLI_LIST("crl", &v.crls),
                            CLI_VALUE("schema", &v.schema),   CLI_VALUE("at", &v.at),     CLI_VALUE("dcc", &v.dcc),
                            CLI_VALUE("repo-ca", &v.repo_ca), CLI_END};
    const cli_spec spec = {"smki duis verify", VERIFY_HELP, opts, "at least one FILE", 1, (size_t)argc};
    const char **files = calloc((size_t)argc, sizeof *files);
    if (!files) return cli_fail(c, SMKI_FAIL(SMKI_E_NOMEM, "out of memory"));
    size_t n = 0;
    int stop = cli_parse(c, &spec, argc, argv, files, &n);
    if (stop == CLI_GO && !v.trust == !v.repo)
        stop = cli_usage(c, "smki duis verify", "give one of --trust DIR or --repo URL");
    time_t at;
    smki_duis_trust *t = NULL;
    int rc = stop == CLI_GO ? smki_gbcs_time_parse(v.at ? v.at : "now", &at) : 0;
    if (stop == CLI_GO && rc == 0) rc = open_trust(&v, &t);
    int failed = stop == CLI_GO && rc == 0 ? verify_files(c, &v, t, at, files, n) : 0;
    smki_duis_trust_free(t);
    free(files);
    if (stop != CLI_GO) return stop;
    if (rc < 0) return cli_fail(c, rc);
    return failed ? EXIT_REFUSED : EXIT_OK;
}

int cmd_duis(smki_cli *c, int argc, char **argv)
{
    static const cli_cmd table[] = {
        {"sign", duis_sign, "sign a DUIS Service Request (xmlSign) or Response (DSP xmlSign)"},
        {"verify", duis_verify, "verify signed DUIS Requests and Responses (signer, role, originator, CRL, schema)"},
        {NULL, NULL, NULL},
    };
    return cli_dispatch(c, table, argc - 1, argv + 1, "smki duis", ABOUT);
}
