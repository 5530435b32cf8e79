/* smki repo: the SMKI Repository service (serve) and its command-line client (get,
 * search). Argument parsing and output only: the work is in repo/. */
#include <getopt.h>
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
    "Examples:\n"
    "  smki repo serve --env test --listen 127.0.0.1:8080\n"
    "  smki repo serve --env test --listen 0.0.0.0:8443 --tls-cert repo.pem --tls-key repo.key \\\n"
    "      --client-ca dccki-ca.pem --public dcc,cert,ca,crl,health --access-log\n";

static const char GET_HELP[] =
    "Usage: smki repo get --url URL (SERIAL | --ca NAME | --crl NAME | --arl) [--out FILE] [--pem]\n"
    "\n"
    "Fetch one certificate by serial (hex), a CA certificate, or a CRL/ARL (DER) from a\n"
    "repository. Without --out, PEM is printed (a CRL needs --out). --json prints the\n"
    "certificate's record instead.\n"
    "  --ca-file FILE      https: the trust anchors for the server's certificate\n"
    "  --cert FILE, --key FILE   https: a DCCKI client certificate and its key\n"
    "Exit 2 when the repository has no such thing.\n"
    "\n"
    "Examples:\n"
    "  smki repo get --url http://127.0.0.1:8080 3F2A...9C --out org.der\n"
    "  smki repo get --url http://127.0.0.1:8080 --crl smki-dca --out dca.crl\n";

static const char SEARCH_HELP[] =
    "Usage: smki repo search --url URL [--eui EUI64] [--role ROLE] [--usage ds|ka|ca]\n"
    "                        [--status P|I|N|E|R] [--issuer CA|SKI] [--profile NAME]\n"
    "                        [--limit N] [--offset N]\n"
    "\n"
    "Search a repository's certificates (GET /certificates): one line per certificate\n"
    "(serial, profile, usage, EUI-64, role, status), or the JSON answer with --json.\n"
    "--ca-file, --cert, --key as for get.\n"
    "\n"
    "Example:\n"
    "  smki repo search --url http://127.0.0.1:8080 --eui 00-DB-12-34-56-78-90-A0\n";

static volatile sig_atomic_t g_stop;

/* What `smki repo serve` runs with: [repo] of a configuration, then the flags. */
typedef struct {
    smki_repo_opts ro;
    smki_repo_server_opts so;
    smki_repo_conf_buf cbuf;
    char store_dir[4200];
    char apikey[256];
} serve_parsed;

#define SERVE_USAGE(...) SMKI_FAIL(SMKI_E_USAGE, __VA_ARGS__)

/* conf's [repo], then argv's flags over it, into p (strings point into conf, argv and p). */
static int serve_args(const smki_cli *c, int argc, char **argv, const smki_conf *conf, serve_parsed *p)
{
    enum { O_ENV = 1, O_LISTEN, O_THREADS, O_MAXC, O_TIMEOUT, O_BODY, O_CERT, O_KEY, O_CCA, O_REQ, O_PUBLIC,
           O_ALLOW, O_ATTR, O_APIKEY, O_ARL, O_LOG, O_HEADERS, O_SCAN };
    static const struct option opts[] = {
        {"env", required_argument, NULL, O_ENV},         {"listen", required_argument, NULL, O_LISTEN},
        {"threads", required_argument, NULL, O_THREADS}, {"max-conns", required_argument, NULL, O_MAXC},
        {"timeout", required_argument, NULL, O_TIMEOUT}, {"max-body", required_argument, NULL, O_BODY},
        {"tls-cert", required_argument, NULL, O_CERT},   {"tls-key", required_argument, NULL, O_KEY},
        {"client-ca", required_argument, NULL, O_CCA},   {"require-client-cert", no_argument, NULL, O_REQ},
        {"public", required_argument, NULL, O_PUBLIC},   {"allow-party", required_argument, NULL, O_ALLOW},
        {"party-attr", required_argument, NULL, O_ATTR}, {"apikey-file", required_argument, NULL, O_APIKEY},
        {"arl-ca", required_argument, NULL, O_ARL},      {"access-log", no_argument, NULL, O_LOG},
        {"max-headers", required_argument, NULL, O_HEADERS}, {"max-scan", required_argument, NULL, O_SCAN},
        {NULL, 0, NULL, 0}};
    memset(p, 0, sizeof *p);
    p->ro.public_mask = SMKI_REPO_PUBLIC_ALL;
    GUARD(smki_repo_conf_read(conf, c->home, &p->ro, &p->so, &p->cbuf));
    const char *apikey_file = p->cbuf.apikey_file;
    int ch, rc = 0, allow_flags = 0;
    optind = 1;
    opterr = 0;
    while (rc == 0 && (ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end = NULL;
        long v = 0;
        if (ch == O_THREADS || ch == O_MAXC || ch == O_TIMEOUT || ch == O_BODY || ch == O_HEADERS || ch == O_SCAN) {
            v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > (ch == O_SCAN ? 100000000 : ch == O_BODY ? (long)SMKI_REPO_BODY_LIMIT : 1000000))
                return SERVE_USAGE("a bad number '%s' for --%s (see 'smki repo serve --help')", optarg,
                                   ch == O_THREADS ? "threads" : ch == O_MAXC ? "max-conns" : ch == O_TIMEOUT ? "timeout"
                                   : ch == O_BODY ? "max-body" : ch == O_SCAN ? "max-scan" : "max-headers");
        }
        switch (ch) {
        case O_ENV: p->ro.env = optarg; break;
        case O_LISTEN: p->so.listen = optarg; break;
        case O_THREADS: p->so.threads = (unsigned)v; break;
        case O_MAXC: p->so.max_conns = (unsigned)v; break;
        case O_TIMEOUT: p->so.timeout_s = (int)v; break;
        case O_BODY: p->so.max_body = (size_t)v; break;
        case O_HEADERS: p->so.max_headers = (size_t)v; break;
        case O_SCAN: p->ro.max_scan = (size_t)v; break;
        case O_CERT: p->so.tls_cert = optarg; break;
        case O_KEY: p->so.tls_key = optarg; break;
        case O_CCA: p->so.client_ca = optarg; break;
        case O_REQ: p->so.require_client_cert = 1; break;
        case O_PUBLIC: rc = smki_repo_public_parse(optarg, &p->ro.public_mask); break;
        case O_ALLOW:
            if (!allow_flags++) p->ro.n_allow = 0; /* the flags replace the file's list */
            if (p->ro.n_allow == SMKI_REPO_ALLOW_MAX || strlen(optarg) >= SMKI_REPO_PARTY_MAX || !*optarg)
                return SERVE_USAGE("--allow-party '%s': at most %d, of 1..64 characters", optarg, SMKI_REPO_ALLOW_MAX);
            strcpy(p->ro.allow[p->ro.n_allow++], optarg);
            break;
        case O_ATTR: p->so.party_attr = optarg; break;
        case O_APIKEY: apikey_file = optarg; break;
        case O_ARL: p->ro.arl_ca = optarg; break;
        case O_LOG: p->so.access_log = 1; break;
        default: return SERVE_USAGE("unknown option or missing value: %s (see 'smki repo serve --help')", cli_bad_option(argv));
        }
    }
    GUARD(rc);
    if (optind != argc) return SERVE_USAGE("unexpected argument '%s' (see 'smki repo serve --help')", argv[optind]);
    if (!p->ro.env || !p->so.listen)
        return SERVE_USAGE("--env and --listen are needed (or env and listen under [repo] in %s)", c->conf_path);
    if (p->so.require_client_cert && !p->so.client_ca) return SERVE_USAGE("--require-client-cert needs --client-ca");
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
    int argc;
    char **argv;
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
    int rc = serve_args(x->c, x->argc, x->argv, conf, &x->parsed[next]);
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

static int repo_serve(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, SERVE_HELP)) return EXIT_OK;
    int rc = cli_home(c);
    if (rc < 0) return cli_fail(c, rc);
    static serve_reloader x; /* large; one per process */
    x.c = c;
    x.argc = argc;
    x.argv = argv;
    rc = serve_args(c, argc, argv, c->conf, &x.start);
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
    smki_wipe(x.start.apikey, sizeof x.start.apikey);
    for (int i = 0; i < 2; i++) {
        smki_wipe(x.parsed[i].apikey, sizeof x.parsed[i].apikey);
        smki_conf_free(x.conf[i]);
        x.conf[i] = NULL;
    }
    return cli_finish(c, rc);
}

/* Client options shared by get and search. */
typedef struct {
    smki_repo_client_opts o;
} client_args;

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

static int repo_get(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, GET_HELP)) return EXIT_OK;
    enum { O_URL = 1, O_CA, O_CRL, O_ARL, O_OUT, O_PEM, O_CAF, O_CERT, O_KEY };
    static const struct option opts[] = {
        {"url", required_argument, NULL, O_URL},     {"ca", required_argument, NULL, O_CA},
        {"crl", required_argument, NULL, O_CRL},     {"arl", no_argument, NULL, O_ARL},
        {"out", required_argument, NULL, O_OUT},     {"pem", no_argument, NULL, O_PEM},
        {"ca-file", required_argument, NULL, O_CAF}, {"cert", required_argument, NULL, O_CERT},
        {"key", required_argument, NULL, O_KEY},     {NULL, 0, NULL, 0}};
    smki_repo_client_opts o = {0};
    const char *ca = NULL, *crl = NULL, *out = NULL;
    int arl = 0, pem = 0, ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case O_URL: o.url = optarg; break;
        case O_CA: ca = optarg; break;
        case O_CRL: crl = optarg; break;
        case O_ARL: arl = 1; break;
        case O_OUT: out = optarg; break;
        case O_PEM: pem = 1; break;
        case O_CAF: o.ca_file = optarg; break;
        case O_CERT: o.cert_file = optarg; break;
        case O_KEY: o.key_file = optarg; break;
        default: return cli_usage(c, "smki repo get", "unknown option or missing value: %s", cli_bad_option(argv));
        }
    }
    const char *serial = optind < argc ? argv[optind++] : NULL;
    if (optind != argc) return cli_usage(c, "smki repo get", "unexpected argument '%s'", argv[optind]);
    if (!o.url) return cli_usage(c, "smki repo get", "--url is needed");
    if ((serial != NULL) + (ca != NULL) + (crl != NULL) + arl != 1)
        return cli_usage(c, "smki repo get", "give exactly one of SERIAL, --ca, --crl, --arl");
    const char *what = serial ? serial : ca ? ca : crl ? crl : "";
    for (const char *p = what; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '-'))
            return cli_usage(c, "smki repo get", "'%s': letters, digits and '-' only", what);
    if ((crl || arl) && !out) return cli_usage(c, "smki repo get", "a CRL is DER: give --out FILE");
    char path[300];
    int is_json = c->json && serial && !out;
    if (serial) snprintf(path, sizeof path, "/certificates/%s%s", serial, is_json ? "?format=json" : "");
    else if (ca) snprintf(path, sizeof path, "/ca/%s", ca);
    else if (crl) snprintf(path, sizeof path, "/crl/%s", crl);
    else snprintf(path, sizeof path, "/arl");
    int want_pem = !is_json && !(crl || arl) && (pem || !out);
    smki_repo_http_resp h;
    int rc = smki_repo_http(&o, "GET", path, want_pem ? "application/x-pem-file" : NULL, NULL, NULL, 0, &h);
    if (rc < 0) return cli_fail(c, rc);
    if (h.status != 200) {
        int e = http_exit(c, &h);
        smki_repo_http_resp_free(&h);
        return e;
    }
    if (out) {
        rc = smki_file_write_atomic(out, h.body, h.len, 0644, 0);
        if (rc == 0 && c->json) {
            json_w w;
            json_begin(&w, stdout);
            json_bool(&w, "ok", 1);
            json_str(&w, "path", path);
            json_str(&w, "out", out);
            json_int(&w, "bytes", (long long)h.len);
            json_end(&w);
        } else if (rc == 0) printf("%s: %zu octets to %s\n", path, h.len, out);
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

static int repo_search(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, SEARCH_HELP)) return EXIT_OK;
    enum { O_URL = 1, O_EUI, O_ROLE, O_USAGE, O_STATUS, O_ISSUER, O_PROFILE, O_LIMIT, O_OFFSET, O_CAF, O_CERT, O_KEY };
    static const struct option opts[] = {
        {"url", required_argument, NULL, O_URL},         {"eui", required_argument, NULL, O_EUI},
        {"role", required_argument, NULL, O_ROLE},       {"usage", required_argument, NULL, O_USAGE},
        {"status", required_argument, NULL, O_STATUS},   {"issuer", required_argument, NULL, O_ISSUER},
        {"profile", required_argument, NULL, O_PROFILE}, {"limit", required_argument, NULL, O_LIMIT},
        {"offset", required_argument, NULL, O_OFFSET},   {"ca-file", required_argument, NULL, O_CAF},
        {"cert", required_argument, NULL, O_CERT},       {"key", required_argument, NULL, O_KEY},
        {NULL, 0, NULL, 0}};
    static const char *const NAMES[] = {"", "", "eui", "role", "usage", "status", "issuer", "profile", "limit", "offset"};
    smki_repo_client_opts o = {0};
    char query[1024] = "";
    size_t ql = 0;
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == O_URL) o.url = optarg;
        else if (ch == O_CAF) o.ca_file = optarg;
        else if (ch == O_CERT) o.cert_file = optarg;
        else if (ch == O_KEY) o.key_file = optarg;
        else if (ch >= O_EUI && ch <= O_OFFSET) {
            for (const char *p = optarg; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '-' ||
                      *p == ':'))
                    return cli_usage(c, "smki repo search", "--%s '%s': letters, digits, '-' and ':' only", NAMES[ch],
                                     optarg);
            int n = snprintf(query + ql, sizeof query - ql, "%s%s=%s", ql ? "&" : "?", NAMES[ch], optarg);
            if (n < 0 || (size_t)n >= sizeof query - ql) return cli_usage(c, "smki repo search", "the search is too long");
            ql += (size_t)n;
        } else return cli_usage(c, "smki repo search", "unknown option or missing value: %s", cli_bad_option(argv));
    }
    if (optind != argc) return cli_usage(c, "smki repo search", "unexpected argument '%s'", argv[optind]);
    if (!o.url) return cli_usage(c, "smki repo search", "--url is needed");
    char path[1100];
    snprintf(path, sizeof path, "/certificates%s", query);
    smki_repo_http_resp h;
    int rc = smki_repo_http(&o, "GET", path, "application/json", NULL, NULL, 0, &h);
    if (rc < 0) return cli_fail(c, rc);
    if (h.status != 200) {
        int e = http_exit(c, &h);
        smki_repo_http_resp_free(&h);
        return e;
    }
    if (c->json) fwrite(h.body, 1, h.len, stdout);
    else {
        /* One line per result object of the answer (which this server wrote). */
        const char *p = strstr((const char *)h.body, "\"results\":[");
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
        field((const char *)h.body, "next_offset", next, sizeof next);
        printf("%zu certificate(s)%s%s\n", n, strcmp(next, "null") ? ", more from --offset " : "",
               strcmp(next, "null") ? next : "");
    }
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
