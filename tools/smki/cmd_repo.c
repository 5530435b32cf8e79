/* smki repo: the SMKI Repository service (serve) and its command-line client (get,
 * search). Argument parsing and output only: the work is in repo/. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "repo/repo.h"

static const char ABOUT[] =
    "smki repo: the SMKI Repository, certificates, CRLs and ARLs over HTTP.\n"
    "\n"
    "'smki repo serve' serves one environment's certificates from the store the CA\n"
    "writes (read-only, concurrently; new certificates are seen at once), with the DCC\n"
    "test tools' XML services and a REST API, optionally over TLS with a DCCKI server\n"
    "certificate and DCCKI client certificates. 'smki repo get' and 'smki repo search'\n"
    "are its client.";

static const char SERVE_HELP[] =
    "Usage: smki repo serve --env ENV --listen ADDR:PORT [options]\n"
    "       smki repo serve            (everything from [repo] in smki.conf)\n"
    "\n"
    "Serve ENV's certificates from the home's store until SIGTERM or SIGINT (then it\n"
    "stops accepting, lets answers in flight go, and exits 0). Runs in the foreground\n"
    "(for systemd); logs are JSON lines on stderr.\n"
    "\n"
    "Endpoints:\n"
    "  POST /services/certificatesearch    DCC XML: CertificateSearchRequest with\n"
    "       CertificateSubjectName (organisation EUI-64) or CertificateSubjectAltName\n"
    "       (device EUI-64); 200 with <Result>s, 402 none found, 401 invalid parameters\n"
    "  POST /services/retrievecertificate  DCC XML: CertificateDataRequest/CertificateSerial;\n"
    "       200 with the base64 DER, 402 not found, 401 invalid parameters\n"
    "  GET /certificates/SERIAL            DER (PEM with Accept: application/x-pem-file or\n"
    "       ?format=pem; ?format=json for the record)\n"
    "  GET /certificates?eui=&role=&usage=&status=&issuer=&profile=&limit=&offset=\n"
    "       JSON, paged (limit 1..1000, default 100; next_offset)\n"
    "  GET /ca, /ca/NAME                   the environment's CAs (JSON), a CA certificate\n"
    "  GET /crl/NAME, /arl                 the CRL as the CA published it (DER)\n"
    "  GET /health, /metrics               JSON health, Prometheus metrics\n"
    "\n"
    "Options:\n"
    "  --threads N            event loops (default 2)\n"
    "  --max-conns N          open connections; more get 429 and are closed (default 1024)\n"
    "  --timeout S            idle/read/write timeout per connection (default 10)\n"
    "  --max-body N           request body octets; more is 413 (default 4096)\n"
    "  --tls-cert FILE        PEM: the DCCKI server certificate (and chain): serve HTTPS\n"
    "  --tls-key FILE         PEM: its private key\n"
    "  --client-ca FILE       PEM: DCCKI CAs for client certificates (optional mutual TLS)\n"
    "  --require-client-cert  refuse TLS handshakes without a client certificate\n"
    "  --public LIST          endpoint groups open without a client certificate: dcc, cert,\n"
    "                         ca, crl, health, metrics, all or none (default all)\n"
    "  --allow-party PS       only these Party Signifiers may use the non-public groups\n"
    "                         (repeatable; default: any verified client certificate)\n"
    "  --party-attr OID       the subject attribute of the Party Signifier (default 2.5.4.97)\n"
    "  --apikey-file FILE     the DCC services need ?apikey= equal to this file's first line\n"
    "  --arl-ca NAME          the CA whose CRL /arl serves (default smki-root)\n"
    "  --access-log           one JSON line per request (with the client's Party Signifier)\n"
    "  --max-headers N        request header octets; more is 431 (default 8192)\n"
    "  --max-scan N           records one search may examine; more is 400 (default 100000)\n"
    "\n"
    "Every option can be set under [repo] in the home's smki.conf instead (a flag\n"
    "overrides it): env, listen, threads, max_conns, max_body, max_headers, max_scan, timeout,\n"
    "tls_cert, tls_key, client_ca (paths relative to the home), client_certs\n"
    "(optional|required), public, allow_party (comma-separated), party_attr,\n"
    "apikey_file, arl_ca, access_log (yes|no). An unknown key is refused.\n"
    "\n"
    "Signals: SIGHUP reads smki.conf again (the flags still override it) and the TLS\n"
    "certificate and key, without dropping a connection: new handshakes get the new pair,\n"
    "the access rules and access_log apply from the next request; a reload that fails\n"
    "changes nothing and is logged; listen, threads and the like need a restart (logged).\n"
    "SIGTERM stops accepting, finishes the answers in flight and exits 0.\n"
    "/health: \"degraded\" with its reasons when a CRL or ARL is due (last quarter of its\n"
    "period) or lapsed, the store holds no CA, or the TLS certificate ends within 14 days.\n"
    "\n"
    "Examples (" HELP_TEST_HOME "; its CRLs and ARLs published; ports 8080\n"
    "and 8443 free; each server runs in the background until SIGTERM (kill %1); the TLS one\n"
    "with a DCCKI server certificate from the test CA; curl waits until it answers):\n"
    "  smki repo serve --env test --listen 127.0.0.1:8080 &\n"
    "  curl -sf --retry 20 --retry-connrefused --retry-delay 1 http://127.0.0.1:8080/health\n"
    "  openssl ecparam -name prime256v1 -genkey -noout -out repo.key\n"
    "  openssl req -new -key repo.key -subj /CN=repo \\\n"
    "      -addext keyUsage=critical,digitalSignature -out repo.csr\n"
    "  smki ca issue --env test --profile dccki-server --csr repo.csr --party PARTY0001 \\\n"
    "      --ip 127.0.0.1 --operator tester --out repo.pem\n"
    "  cat \"$SMKI_HOME/ca/test/dccki-ica.pem\" \"$SMKI_HOME/ca/test/dccki-root.pem\" > dccki-ca.pem\n"
    "  smki repo serve --env test --listen 127.0.0.1:8443 --tls-cert repo.pem --tls-key repo.key \\\n"
    "      --client-ca dccki-ca.pem --public dcc,cert,ca,crl,health --access-log &\n"
    "  curl -sf --retry 20 --retry-connrefused --retry-delay 1 --cacert dccki-ca.pem \\\n"
    "      https://127.0.0.1:8443/health\n"
    "  smki repo get --url https://127.0.0.1:8443 --ca-file dccki-ca.pem --ca smki-root --out root.der\n";

static const char GET_HELP[] =
    "Usage: smki repo get --url URL (SERIAL | --ca NAME | --crl NAME | --arl) [--out FILE [--force]] [--pem]\n"
    "\n"
    "Fetch one certificate by serial (hex), a CA certificate, or a CRL/ARL (DER) from a\n"
    "repository. Without --out, PEM is printed (a CRL needs --out; --out - writes the\n"
    "DER to standard output). --out refuses a file that exists unless --force. --json\n"
    "prints the certificate's record instead.\n"
    "  --ca-file FILE      https: the trust anchors for the server's certificate\n"
    "  --cert FILE, --key FILE   https: a DCCKI client certificate and its key\n"
    "Exit 2 when the repository has no such thing.\n"
    "\n"
    "Examples (" HELP_TEST_HOME "; its CRLs and ARLs published; port 8080\n"
    "free; against 'smki repo serve', started in the background as in its --help; a device\n"
    "certificate issued, then fetched by its serial):\n"
    "  smki repo serve --env test --listen 127.0.0.1:8080 &\n"
    "  curl -sf --retry 20 --retry-connrefused --retry-delay 1 http://127.0.0.1:8080/health\n"
    "  smki repo get --url http://127.0.0.1:8080 --ca smki-root --out root.der\n"
    "  smki repo get --url http://127.0.0.1:8080 --crl smki-dca --out dca.crl\n"
    "  openssl crl -inform DER -in dca.crl -noout -issuer\n"
    "  smki ca issue --env test --csr ../shared/vectors/gbcs/csr/00db1234567890a0-ds.csr.der \\\n"
    "      --party GITTEST --operator tester --out device.pem\n"
    "  SERIAL=$(openssl x509 -in device.pem -noout -serial | cut -d= -f2)\n"
    "  smki repo get --url http://127.0.0.1:8080 \"$SERIAL\" --pem --out device-again.pem\n"
    "  cmp device.pem device-again.pem\n";

static const char SEARCH_HELP[] =
    "Usage: smki repo search --url URL [--eui EUI64] [--role ROLE] [--usage ds|ka|ca]\n"
    "                        [--status P|I|N|E|R] [--issuer CA|SKI] [--profile NAME]\n"
    "                        [--limit N] [--offset N]\n"
    "\n"
    "Search a repository's certificates (GET /certificates): one line per certificate\n"
    "(serial, profile, usage, EUI-64, role, status), or the JSON answer with --json.\n"
    "--ca-file, --cert, --key as for get.\n"
    "\n"
    "Examples (" HELP_TEST_HOME "; port 8080 free; a device certificate issued,\n"
    "then found through 'smki repo serve', started in the background as in its --help):\n"
    "  smki ca issue --env test --csr ../shared/vectors/gbcs/csr/00db1234567890a0-ds.csr.der \\\n"
    "      --party GITTEST --operator tester --out device.pem\n"
    "  smki repo serve --env test --listen 127.0.0.1:8080 &\n"
    "  curl -sf --retry 20 --retry-connrefused --retry-delay 1 http://127.0.0.1:8080/health\n"
    "  smki repo search --url http://127.0.0.1:8080 --eui 00-DB-12-34-56-78-90-A0\n"
    "  smki --json repo search --url http://127.0.0.1:8080 --usage ca --limit 2\n";

static volatile sig_atomic_t g_stop;

/* The flags of `smki repo serve` as given (parsed once; applied over smki.conf's [repo]
 * at start and again on every SIGHUP). */
typedef struct {
    const char *env, *listen, *threads, *max_conns, *timeout, *max_body, *max_headers, *max_scan;
    const char *tls_cert, *tls_key, *client_ca, *public_groups, *party_attr, *apikey_file, *arl_ca;
    int require_client_cert, access_log;
    cli_list allow;
} serve_flags;

/* What `smki repo serve` runs with: [repo] of a configuration, then the flags. */
typedef struct {
    smki_repo_opts ro;
    smki_repo_server_opts so;
    smki_repo_conf_buf cbuf;
    char store_dir[4200];
    char apikey[256];
} serve_parsed;

#define SERVE_USAGE(...) SMKI_FAIL(SMKI_E_USAGE, __VA_ARGS__)

static int serve_flags_parse(smki_cli *c, int argc, char **argv, serve_flags *f)
{
    memset(f, 0, sizeof *f);
    const cli_opt opts[] = {
        CLI_VALUE("env", &f->env),             CLI_VALUE("listen", &f->listen),
        CLI_VALUE("threads", &f->threads),     CLI_VALUE("max-conns", &f->max_conns),
        CLI_VALUE("timeout", &f->timeout),     CLI_VALUE("max-body", &f->max_body),
        CLI_VALUE("max-headers", &f->max_headers), CLI_VALUE("max-scan", &f->max_scan),
        CLI_VALUE("tls-cert", &f->tls_cert),   CLI_VALUE("tls-key", &f->tls_key),
        CLI_VALUE("client-ca", &f->client_ca), CLI_FLAG("require-client-cert", &f->require_client_cert),
        CLI_VALUE("public", &f->public_groups), CLI_LIST("allow-party", &f->allow),
        CLI_VALUE("party-attr", &f->party_attr), CLI_VALUE("apikey-file", &f->apikey_file),
        CLI_VALUE("arl-ca", &f->arl_ca),       CLI_FLAG("access-log", &f->access_log),
        CLI_END};
    const cli_spec spec = {"smki repo serve", SERVE_HELP, opts, NULL, 0, 0};
    return cli_parse(c, &spec, argc, argv, NULL, NULL);
}

/* A numeric flag, if given, over the configuration's value. */
static int serve_number(const char *opt, const char *text, uint64_t max, uint64_t *out)
{
    if (!text) return 0;
    return cli_number(opt, text, 1, max, out);
}

static int serve_numbers(const serve_flags *f, serve_parsed *p)
{
    uint64_t v[6] = {p->so.threads, p->so.max_conns, (uint64_t)p->so.timeout_s, p->so.max_body, p->so.max_headers,
                     p->ro.max_scan};
    GUARD(serve_number("--threads", f->threads, 1000000, &v[0]));
    GUARD(serve_number("--max-conns", f->max_conns, 1000000, &v[1]));
    GUARD(serve_number("--timeout", f->timeout, 1000000, &v[2]));
    GUARD(serve_number("--max-body", f->max_body, SMKI_REPO_BODY_LIMIT, &v[3]));
    GUARD(serve_number("--max-headers", f->max_headers, 1000000, &v[4]));
    GUARD(serve_number("--max-scan", f->max_scan, 100000000, &v[5]));
    p->so.threads = (unsigned)v[0];
    p->so.max_conns = (unsigned)v[1];
    p->so.timeout_s = (int)v[2];
    p->so.max_body = (size_t)v[3];
    p->so.max_headers = (size_t)v[4];
    p->ro.max_scan = (size_t)v[5];
    return 0;
}

/* --allow-party: the flags replace the configuration's list. */
static int serve_allow(const serve_flags *f, smki_repo_opts *ro)
{
    if (f->allow.n == 0) return 0;
    ENSURE(f->allow.n <= SMKI_REPO_ALLOW_MAX, SMKI_E_USAGE, "--allow-party is given %zu times: at most %d", f->allow.n,
           SMKI_REPO_ALLOW_MAX);
    ro->n_allow = 0;
    for (size_t i = 0; i < f->allow.n; i++) {
        const char *ps = f->allow.v[i];
        ENSURE(*ps && strlen(ps) < SMKI_REPO_PARTY_MAX, SMKI_E_USAGE, "--allow-party '%s': 1..%d characters", ps,
               SMKI_REPO_PARTY_MAX - 1);
        strcpy(ro->allow[ro->n_allow++], ps);
    }
    return 0;
}

/* The string flags over the configuration's values. */
static void serve_strings(const serve_flags *f, serve_parsed *p)
{
#define OVER(dst, src) if (src) dst = src
    OVER(p->ro.env, f->env);
    OVER(p->so.listen, f->listen);
    OVER(p->so.tls_cert, f->tls_cert);
    OVER(p->so.tls_key, f->tls_key);
    OVER(p->so.client_ca, f->client_ca);
    OVER(p->so.party_attr, f->party_attr);
    OVER(p->ro.arl_ca, f->arl_ca);
#undef OVER
    if (f->require_client_cert) p->so.require_client_cert = 1;
    if (f->access_log) p->so.access_log = 1;
}

/* conf's [repo], then the flags over it, into p (strings point into conf, argv and p). */
static int serve_apply(const smki_cli *c, const serve_flags *f, const smki_conf *conf, serve_parsed *p)
{
    memset(p, 0, sizeof *p);
    p->ro.public_mask = SMKI_REPO_PUBLIC_ALL;
    GUARD(smki_repo_conf_read(conf, c->home, &p->ro, &p->so, &p->cbuf));
    GUARD(serve_numbers(f, p));
    serve_strings(f, p);
    if (f->public_groups) GUARD(smki_repo_public_parse(f->public_groups, &p->ro.public_mask));
    GUARD(serve_allow(f, &p->ro));
    if (!p->ro.env || !p->so.listen)
        return SERVE_USAGE("--env and --listen are needed (or env and listen under [repo] in %s)", c->conf_path);
    if (p->so.require_client_cert && !p->so.client_ca) return SERVE_USAGE("--require-client-cert needs --client-ca");
    const char *apikey_file = f->apikey_file ? f->apikey_file : p->cbuf.apikey_file;
    if (apikey_file) {
        GUARD(smki_secret_read_file(apikey_file, p->apikey, sizeof p->apikey));
        p->ro.apikey = p->apikey;
    }
    GUARD(smki_store_location(conf, c->conf_path, c->home, p->store_dir, sizeof p->store_dir));
    p->ro.store_dir = p->store_dir;
    p->ro.home = c->home;
    p->ro.version = SMKI_VERSION;
    return 0;
}

/* SIGHUP: smki.conf read again and the same flags over it. Two sets alternate, so the
 * strings handed out last time stay valid until the next reload; the set the server
 * started with (its smki_repo_server_opts) is never reused. */
typedef struct {
    smki_cli *c;
    serve_flags flags;
    serve_parsed start;
    serve_parsed parsed[2];
    smki_conf *conf[2];
    int cur;
} serve_reloader;

static int serve_reload(void *arg, smki_repo_opts *ro, smki_repo_server_opts *so)
{
    serve_reloader *x = arg;
    smki_conf *conf = NULL;
    GUARD(cli_conf_load(x->c, &conf));
    int next = x->cur ^ 1;
    int rc = serve_apply(x->c, &x->flags, conf, &x->parsed[next]);
    if (rc < 0) {
        smki_conf_free(conf);
        return rc;
    }
    smki_conf_free(x->conf[next]);
    x->conf[next] = conf;
    x->cur = next;
    *ro = x->parsed[next].ro;
    *so = x->parsed[next].so;
    return 0;
}

static void serve_cleanup(serve_reloader *x)
{
    smki_wipe(x->start.apikey, sizeof x->start.apikey);
    for (int i = 0; i < 2; i++) {
        smki_wipe(x->parsed[i].apikey, sizeof x->parsed[i].apikey);
        smki_conf_free(x->conf[i]);
        x->conf[i] = NULL;
    }
}

static int repo_serve(smki_cli *c, int argc, char **argv)
{
    static serve_reloader x; /* large; one per process */
    x.c = c;
    int stop = serve_flags_parse(c, argc, argv, &x.flags);
    if (stop != CLI_GO) return stop;
    int rc = cli_home(c);
    if (rc == 0) rc = serve_apply(c, &x.flags, c->conf, &x.start);
    if (rc < 0) return cli_fail(c, rc);
    serve_parsed *p = &x.start;
    smki_repo *r = NULL;
    rc = smki_repo_open(&p->ro, &r);
    if (rc == 0) {
        p->so.stop = &g_stop;
        p->so.reload = serve_reload;
        p->so.reload_arg = &x;
        rc = smki_repo_serve(r, &p->so);
    }
    smki_repo_free(r);
    serve_cleanup(&x);
    return cli_finish(c, rc);
}

static int http_exit(smki_cli *c, const smki_repo_http_resp *h)
{
    if (h->status == 200) return EXIT_OK;
    int code = h->status >= 500 ? SMKI_E_INTERNAL : SMKI_E_NOTFOUND;
    if (h->status == 400 || h->status == 401) code = SMKI_E_USAGE;
    if (h->status == 403) code = SMKI_E_REFUSED;
    char msg[300];
    snprintf(msg, sizeof msg, "%.280s", h->body ? (const char *)h->body : "");
    size_t l = strlen(msg);
    while (l && (msg[l - 1] == '\n' || msg[l - 1] == '\r')) msg[--l] = 0;
    int rc = SMKI_FAIL(code, "the repository answered HTTP %d: %s", h->status, msg);
    return cli_fail(c, rc);
}

/* GET path from the repository; anything but 200 is the command's failure (exit code
 * returned, *h freed). CLI_GO when h holds the 200 answer. */
static int http_get(smki_cli *c, const smki_repo_client_opts *o, const char *path, const char *accept,
                    smki_repo_http_resp *h)
{
    int rc = smki_repo_http(o, "GET", path, accept, NULL, NULL, 0, h);
    if (rc < 0) return cli_fail(c, rc);
    if (h->status == 200) return CLI_GO;
    int e = http_exit(c, h);
    smki_repo_http_resp_free(h);
    return e;
}

/* A name that goes into a URL path or query: letters, digits, '-' (and extra). */
static int url_safe(const char *s, const char *extra)
{
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '-' ||
              (*p && strchr(extra, *p))))
            return 0;
    return 1;
}

typedef struct {
    smki_repo_client_opts o;
    const char *serial, *ca, *crl, *out;
    int arl, pem, force;
} get_args;

static int get_parse(smki_cli *c, int argc, char **argv, get_args *g)
{
    memset(g, 0, sizeof *g);
    const cli_opt opts[] = {
        CLI_VALUE("url", &g->o.url),          CLI_VALUE("ca", &g->ca),
        CLI_VALUE("crl", &g->crl),            CLI_FLAG("arl", &g->arl),
        CLI_VALUE("out", &g->out),            CLI_FLAG("force", &g->force),
        CLI_FLAG("pem", &g->pem),             CLI_VALUE("ca-file", &g->o.ca_file),
        CLI_VALUE("cert", &g->o.cert_file),   CLI_VALUE("key", &g->o.key_file),
        CLI_END};
    const cli_spec spec = {"smki repo get", GET_HELP, opts, "at most one SERIAL", 0, 1};
    const char *pos[1];
    int stop = cli_parse(c, &spec, argc, argv, pos, NULL);
    if (stop != CLI_GO) return stop;
    g->serial = pos[0];
    if (!g->o.url) return cli_usage(c, "smki repo get", "--url is needed");
    if ((g->serial != NULL) + (g->ca != NULL) + (g->crl != NULL) + g->arl != 1)
        return cli_usage(c, "smki repo get", "give exactly one of SERIAL, --ca, --crl, --arl");
    const char *what = g->serial ? g->serial : g->ca ? g->ca : g->crl ? g->crl : "";
    if (!url_safe(what, "")) return cli_usage(c, "smki repo get", "'%s': letters, digits and '-' only", what);
    if ((g->crl || g->arl) && !g->out) return cli_usage(c, "smki repo get", "a CRL is DER: give --out FILE (- for standard output)");
    return CLI_GO;
}

static void get_print(const smki_cli *c, const char *path, const char *out, size_t len)
{
    if (strcmp(out, "-") == 0) return; /* standard output holds the answer itself */
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_str(&w, "path", path);
        json_str(&w, "out", out);
        json_int(&w, "bytes", (long long)len);
        json_end(&w);
    } else printf("%s: %zu octets to %s\n", path, len, out);
}

static int repo_get(smki_cli *c, int argc, char **argv)
{
    get_args g;
    int stop = get_parse(c, argc, argv, &g);
    if (stop != CLI_GO) return stop;
    char path[300];
    int is_json = c->json && g.serial && !g.out;
    if (g.serial) snprintf(path, sizeof path, "/certificates/%s%s", g.serial, is_json ? "?format=json" : "");
    else if (g.ca) snprintf(path, sizeof path, "/ca/%s", g.ca);
    else if (g.crl) snprintf(path, sizeof path, "/crl/%s", g.crl);
    else snprintf(path, sizeof path, "/arl");
    int want_pem = !is_json && !(g.crl || g.arl) && (g.pem || !g.out);
    smki_repo_http_resp h;
    stop = http_get(c, &g.o, path, want_pem ? "application/x-pem-file" : NULL, &h);
    if (stop != CLI_GO) return stop;
    int rc = 0;
    if (g.out) {
        rc = cli_write(g.out, h.body, h.len, 0644, g.force);
        if (rc == 0) get_print(c, path, g.out, h.len);
    } else fwrite(h.body, 1, h.len, stdout);
    smki_repo_http_resp_free(&h);
    return cli_finish(c, rc);
}

/* A field of a flat JSON object in text we made ("key":"value" or "key":number). */
static void field(const char *obj, const char *key, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(obj, pat);
    out[0] = 0;
    if (!p) return;
    p += strlen(pat);
    if (*p == '"') p++;
    size_t n = strcspn(p, "\",}");
    if (n >= cap) n = cap - 1;
    memcpy(out, p, n);
    out[n] = 0;
}

/* The search's query string (?eui=...&role=...) from the filters given. */
static int search_query(smki_cli *c, const char *const names[], const char *const values[], size_t n, char *query,
                        size_t cap)
{
    size_t ql = 0;
    query[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (!values[i]) continue;
        if (!url_safe(values[i], ":"))
            return cli_usage(c, "smki repo search", "--%s '%s': letters, digits, '-' and ':' only", names[i], values[i]);
        int w = snprintf(query + ql, cap - ql, "%s%s=%s", ql ? "&" : "?", names[i], values[i]);
        if (w < 0 || (size_t)w >= cap - ql) return cli_usage(c, "smki repo search", "the search is too long");
        ql += (size_t)w;
    }
    return CLI_GO;
}

/* One line per result object of the answer (which this server wrote). */
static void search_print(const char *body)
{
    const char *p = strstr(body, "\"results\":[");
    size_t n = 0;
    while (p && (p = strstr(p, "{\"serial\""))) {
        const char *e = strchr(p, '}');
        if (!e) break;
        char obj[1024], ser[40], prof[32], usage[8], eui[32], role[8], status[4];
        size_t ol = (size_t)(e - p + 1) < sizeof obj ? (size_t)(e - p + 1) : sizeof obj - 1;
        memcpy(obj, p, ol);
        obj[ol] = 0;
        field(obj, "serial", ser, sizeof ser);
        field(obj, "profile", prof, sizeof prof);
        field(obj, "usage", usage, sizeof usage);
        field(obj, "eui", eui, sizeof eui);
        field(obj, "role", role, sizeof role);
        field(obj, "status", status, sizeof status);
        printf("%s  %-13s %-4s %-23s role %-4s %s\n", ser, prof, usage, eui, role, status);
        n++;
        p = e;
    }
    char next[24];
    field(body, "next_offset", next, sizeof next);
    int more = next[0] && strcmp(next, "null") != 0;
    printf("%zu certificate(s)%s%s\n", n, more ? ", more from --offset " : "", more ? next : "");
}

static int repo_search(smki_cli *c, int argc, char **argv)
{
    static const char *const NAMES[] = {"eui", "role", "usage", "status", "issuer", "profile", "limit", "offset"};
    enum { NF = sizeof NAMES / sizeof NAMES[0] };
    const char *v[NF] = {0};
    smki_repo_client_opts o = {0};
    const cli_opt opts[] = {
        CLI_VALUE("url", &o.url),       CLI_VALUE("eui", &v[0]),       CLI_VALUE("role", &v[1]),
        CLI_VALUE("usage", &v[2]),      CLI_VALUE("status", &v[3]),    CLI_VALUE("issuer", &v[4]),
        CLI_VALUE("profile", &v[5]),    CLI_VALUE("limit", &v[6]),     CLI_VALUE("offset", &v[7]),
        CLI_VALUE("ca-file", &o.ca_file), CLI_VALUE("cert", &o.cert_file), CLI_VALUE("key", &o.key_file),
        CLI_END};
    const cli_spec spec = {"smki repo search", SEARCH_HELP, opts, NULL, 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!o.url) return cli_usage(c, "smki repo search", "--url is needed");
    uint64_t num;
    int rc = v[6] ? cli_number("--limit", v[6], 1, 1000, &num) : 0;
    if (rc == 0 && v[7]) rc = cli_number("--offset", v[7], 0, UINT32_MAX, &num);
    if (rc < 0) return cli_fail(c, rc);
    char query[1024], path[1100];
    stop = search_query(c, NAMES, v, NF, query, sizeof query);
    if (stop != CLI_GO) return stop;
    snprintf(path, sizeof path, "/certificates%s", query);
    smki_repo_http_resp h;
    stop = http_get(c, &o, path, "application/json", &h);
    if (stop != CLI_GO) return stop;
    if (c->json) fwrite(h.body, 1, h.len, stdout);
    else search_print((const char *)h.body);
    smki_repo_http_resp_free(&h);
    return EXIT_OK;
}

static const cli_cmd REPO_COMMANDS[] = {
    {"serve", repo_serve, "serve one environment's certificates, CRLs and ARL over HTTP(S)"},
    {"get", repo_get, "fetch a certificate by serial, a CA certificate or a CRL from a repository"},
    {"search", repo_search, "search a repository's certificates by EUI-64, role, usage, status, issuer"},
    {NULL, NULL, NULL}};

int cmd_repo(smki_cli *c, int argc, char **argv)
{
    c->no_token = 1; /* the repository signs nothing: its home needs no token folder */
    return cli_dispatch(c, REPO_COMMANDS, argc - 1, argv + 1, "smki repo", ABOUT);
}
