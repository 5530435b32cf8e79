/* smki enrol: the enrolment service (RFC 7030 EST and device batches) for Authorised
 * Subscribers over mutual TLS. Argument parsing only: the work is in est/. */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "est/est.h"

static const char ABOUT[] =
    "smki enrol: enrolment over the network for Authorised Subscribers.\n"
    "\n"
    "'smki enrol serve' answers RFC 7030 EST (cacerts, csrattrs, simpleenroll,\n"
    "simplereenroll) and device CSR batches over mutual TLS. The client is the Party\n"
    "named by its DCCKI client certificate's Party Signifier; the service's own RA\n"
    "operator acts on that Party's behalf: a single enrolment in an environment of\n"
    "[ra] direct_issue goes through the RA's gate as 'smki ca issue' does, anything else\n"
    "(and every batch) is an RA request that other operators approve. The RA's rules\n"
    "decide and everything is audited (docs/est.md).";

static const char SERVE_HELP[] =
    "Usage: smki enrol serve --env ENV --listen ADDR:PORT --operator NAME [options]\n"
    "       smki enrol serve            (everything from [enrol] in smki.conf)\n"
    "\n"
    "Serve enrolment into ENV until SIGTERM or SIGINT, in the foreground (for systemd);\n"
    "logs are JSON lines on stderr.\n"
    "\n"
    "Endpoints (under /.well-known/est/; LABEL names the certificate, docs/est.md):\n"
    "  GET  cacerts                     the environment's CA certificates (PKCS#7, base64)\n"
    "  GET  csrattrs                    what a CSR must use (P-256, ECDSA-SHA256)\n"
    "  POST [LABEL/]simpleenroll        base64 DER PKCS#10 in; the certificate as PKCS#7\n"
    "  POST [LABEL/]simplereenroll      certs-only out (at once where [ra] direct_issue lists\n"
    "                                   ENV); 202 + Retry-After while a request awaits\n"
    "                                   operators' approvals: send it again later\n"
    "       LABEL: device (default for a device CSR), dccki-client, dccki-server (with\n"
    "       ?dns=HOST&ip=ADDR), org-<role>-<EUI-64> (e.g. org-supplier-90B3D51F30010000)\n"
    "  POST batch                       device CSRs as concatenated PEM: 202, Location\n"
    "  GET  batch/ID                    202 with progress, then the certificates (PKCS#7)\n"
    "  GET  /health                     JSON: environment, operator, batches queued/running\n"
    "\n"
    "Options:\n"
    "  --operator NAME        the service's registered RA operator (it signs the entries)\n"
    "  --operator-key KEY     its key (else [operators] NAME = KEY in smki.conf)\n"
    "  --tls-cert FILE        PEM: the DCCKI server certificate (and chain)\n"
    "  --tls-key FILE         PEM: its private key\n"
    "  --client-ca FILE       PEM: the DCCKI CAs that client certificates chain to\n"
    "  --require-client-cert  refuse TLS handshakes without a client certificate\n"
    "  --threads N            event loops (default 2)\n"
    "  --max-conns N          open connections; more are closed at once (default 256)\n"
    "  --timeout S            read/write/idle timeout per connection (default 10)\n"
    "  --max-body N           request body octets, a batch's PEM; 413 above (default 8 MiB)\n"
    "  --max-batch N          CSRs in one batch (default 10000)\n"
    "  --retry-after S        what a 202 asks the client to wait (default 30)\n"
    "  --party-attr OID       the subject attribute of the Party Signifier (default 2.5.4.97)\n"
    "  --access-log           one JSON line per request (with the client's Party Signifier)\n"
    "\n"
    "The same settings under [enrol] in smki.conf (a flag overrides the file): env, listen,\n"
    "operator, threads, max_conns, max_body, max_headers, timeout, tls_cert, tls_key,\n"
    "client_ca, client_certs (optional|required), party_attr, access_log, retry_after,\n"
    "max_batch. The token PIN (for the CA keys) comes from SMKI_PIN or --pin-file.\n"
    "\n"
    "Example:\n"
    "  smki enrol serve --env test --listen 127.0.0.1:8444 --operator est \\\n"
    "      --tls-cert tls/est.pem --tls-key tls/est.key --client-ca tls/dccki-ca.pem \\\n"
    "      --require-client-cert\n"
    "  curl --cert c.pem --key c.key --cacert tls/est-ca.pem -H 'Content-Type: application/pkcs10' \\\n"
    "      --data-binary @<(openssl req -in d.csr -outform DER | base64) \\\n"
    "      https://127.0.0.1:8444/.well-known/est/device/simpleenroll\n";

static volatile sig_atomic_t g_stop;

static int enrol_serve(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, SERVE_HELP)) return EXIT_OK;
    enum { O_ENV = 1, O_LISTEN, O_OP, O_OPKEY, O_THREADS, O_MAXC, O_TIMEOUT, O_BODY, O_BATCH, O_RETRY, O_CERT, O_KEY,
           O_CCA, O_REQ, O_ATTR, O_LOG };
    static const struct option opts[] = {
        {"env", required_argument, NULL, O_ENV},           {"listen", required_argument, NULL, O_LISTEN},
        {"operator", required_argument, NULL, O_OP},       {"operator-key", required_argument, NULL, O_OPKEY},
        {"threads", required_argument, NULL, O_THREADS},   {"max-conns", required_argument, NULL, O_MAXC},
        {"timeout", required_argument, NULL, O_TIMEOUT},   {"max-body", required_argument, NULL, O_BODY},
        {"max-batch", required_argument, NULL, O_BATCH},   {"retry-after", required_argument, NULL, O_RETRY},
        {"tls-cert", required_argument, NULL, O_CERT},     {"tls-key", required_argument, NULL, O_KEY},
        {"client-ca", required_argument, NULL, O_CCA},     {"require-client-cert", no_argument, NULL, O_REQ},
        {"party-attr", required_argument, NULL, O_ATTR},   {"access-log", no_argument, NULL, O_LOG},
        {NULL, 0, NULL, 0}};
    smki_est_opts eo = {0};
    smki_repo_server_opts so = {0};
    static smki_est_conf_buf cbuf;
    const char *env = NULL, *op = NULL, *op_key = NULL;
    int ch, rc = cli_home(c);
    if (rc == 0) rc = smki_est_conf_read(c->conf, c->home, &eo, &so, &cbuf);
    if (rc < 0) return cli_fail(c, rc);
    env = cbuf.env;
    op = cbuf.operator_name;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end = NULL;
        long v = 0;
        if (ch == O_THREADS || ch == O_MAXC || ch == O_TIMEOUT || ch == O_BODY || ch == O_BATCH || ch == O_RETRY) {
            v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > (ch == O_BODY ? (1L << 28) : 1000000))
                return cli_usage(c, "smki enrol serve", "a bad number '%s' for %s", optarg, argv[optind - 2]);
        }
        switch (ch) {
        case O_ENV: env = optarg; break;
        case O_LISTEN: so.listen = optarg; break;
        case O_OP: op = optarg; break;
        case O_OPKEY: op_key = optarg; break;
        case O_THREADS: so.threads = (unsigned)v; break;
        case O_MAXC: so.max_conns = (unsigned)v; break;
        case O_TIMEOUT: so.timeout_s = (int)v; break;
        case O_BODY: so.max_body = (size_t)v; break;
        case O_BATCH: eo.max_batch = (size_t)v; break;
        case O_RETRY: eo.retry_after = (unsigned)v; break;
        case O_CERT: so.tls_cert = optarg; break;
        case O_KEY: so.tls_key = optarg; break;
        case O_CCA: so.client_ca = optarg; break;
        case O_REQ: so.require_client_cert = 1; break;
        case O_ATTR: so.party_attr = optarg; break;
        case O_LOG: so.access_log = 1; break;
        default: return cli_usage(c, "smki enrol serve", "unknown option or missing value: %s", cli_bad_option(argv));
        }
    }
    if (optind != argc) return cli_usage(c, "smki enrol serve", "unexpected argument '%s'", argv[optind]);
    if (!env || !so.listen || !op)
        return cli_usage(c, "smki enrol serve",
                         "--env, --listen and --operator are needed (or env, listen and operator under [enrol] in %s)",
                         c->conf_path);
    if (!so.tls_cert || !so.client_ca)
        return cli_usage(c, "smki enrol serve",
                         "enrolment is over mutual TLS: --tls-cert, --tls-key and --client-ca are needed");
    if (so.require_client_cert && !so.client_ca)
        return cli_usage(c, "smki enrol serve", "--require-client-cert needs --client-ca");
    smki_ra_policy pol;
    smki_store *s = NULL;
    smki_ra *ra = NULL;
    smki_est *e = NULL;
    smki_key *key = NULL;
    rc = smki_ra_policy_load(c->conf, &pol);
    if (rc == 0) rc = ra_cli_actor(c, op, op_key, &key);
    if (rc == 0 && cli_pin(c, 0) < 0) rc = smki_error_code();
    smki_store_opts sto = {0, 0, 0};
    if (rc == 0) rc = smki_store_open(c->store_dir, &sto, &s);
    if (rc == 0) rc = smki_ra_open(s, &pol, &ra);
    if (rc == 0) {
        ra_cli_checkpoint_key(c, ra);
        eo.ra = ra;
        eo.env = env;
        eo.actor.name = op;
        eo.actor.key = key;
        eo.hsm = &c->hsm;
        eo.conf = c->conf;
        rc = smki_est_open(&eo, &e);
    }
    if (rc == 0) {
        so.stop = &g_stop;
        rc = smki_est_serve(e, s, c->home, &so);
    }
    smki_est_free(e);
    smki_ra_close(ra);
    smki_store_close(s);
    smki_key_free(key);
    return cli_finish(c, rc);
}

static const cli_cmd ENROL_COMMANDS[] = {
    {"serve", enrol_serve, "serve EST enrolment and device batches over mutual TLS"},
    {NULL, NULL, NULL}};

int cmd_enrol(smki_cli *c, int argc, char **argv)
{
    return cli_dispatch(c, ENROL_COMMANDS, argc - 1, argv + 1, "smki enrol", ABOUT);
}
