/* smki enrol: the enrolment service (RFC 7030 EST and device batches) for Authorised
 * Subscribers over mutual TLS. Argument parsing only: the work is in est/. */
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
    "                                   certs-only out (at once where [ra] direct_issue lists\n"
    "                                   ENV); 202 + Retry-After while a request awaits\n"
    "                                   operators' approvals: send it again later\n"
    "  POST simplereenroll              renew the DCCKI client certificate of the connection:\n"
    "                                   the CSR names exactly its subject (RFC 7030 4.2.2)\n"
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
    "  --max-body N           request body octets, a batch's PEM; 413 above (default 8 MiB,\n"
    "                         from 1024 to 67108864: the server's limit, as 'smki repo serve')\n"
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
    "Example (" HELP_TEST_HOME "; port 8444 free; GITTEST given a device block\n"
    "and a DCCKI client certificate, the service a DCCKI server certificate, both from the\n"
    "test CA; the service runs in the background until SIGTERM (kill %1); GITTEST's client\n"
    "then enrols the DCC's device CSR vector, from a clone beside ../shared):\n"
    "  smki ra range assign 00DB12345/36 --party GITTEST --kind device --operator tester\n"
    "  smki ra subscriber authorise --party GITTEST --type dccki-client --env test --operator tester\n"
    "  openssl ecparam -name prime256v1 -genkey -noout -out est.key\n"
    "  openssl req -new -key est.key -subj /CN=est -addext keyUsage=critical,digitalSignature -out est.csr\n"
    "  smki ca issue --env test --profile dccki-server --csr est.csr --party PARTY0001 \\\n"
    "      --ip 127.0.0.1 --operator tester --out est.pem\n"
    "  openssl ecparam -name prime256v1 -genkey -noout -out c.key\n"
    "  openssl req -new -key c.key -subj /CN=gittest -addext keyUsage=critical,digitalSignature -out c.csr\n"
    "  smki ca issue --env test --profile dccki-client --csr c.csr --party GITTEST \\\n"
    "      --operator tester --out c.pem\n"
    "  cat \"$SMKI_HOME/ca/test/dccki-ica.pem\" \"$SMKI_HOME/ca/test/dccki-root.pem\" > dccki-ca.pem\n"
    "  smki enrol serve --env test --listen 127.0.0.1:8444 --operator tester \\\n"
    "      --tls-cert est.pem --tls-key est.key --client-ca dccki-ca.pem --require-client-cert &\n"
    "  curl -sf --retry 20 --retry-connrefused --retry-delay 1 --cert c.pem --key c.key \\\n"
    "      --cacert dccki-ca.pem https://127.0.0.1:8444/health\n"
    "  curl -sf --cert c.pem --key c.key --cacert dccki-ca.pem -H 'Content-Type: application/pkcs10' \\\n"
    "      --data-binary @<(base64 ../shared/vectors/gbcs/csr/00db1234567890a0-ds.csr.der) \\\n"
    "      https://127.0.0.1:8444/.well-known/est/device/simpleenroll -o device.p7\n"
    "  base64 -d device.p7 | openssl pkcs7 -inform DER -print_certs\n";

static volatile sig_atomic_t g_stop;

/* The command's words for the service's settings (over what [enrol] gave). */
typedef struct {
    const char *env, *listen, *op, *op_key, *threads, *max_conns, *timeout, *max_body, *max_batch, *retry_after;
    const char *tls_cert, *tls_key, *client_ca, *party_attr;
    int require_client_cert, access_log;
} serve_args;

/* A number option into *out when given, within the bounds [enrol] has for it. */
static int number_opt(const char *opt, const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    return text ? cli_number(opt, text, min, max, out) : 0;
}

static int apply_args(const serve_args *a, smki_est_opts *eo, smki_repo_server_opts *so)
{
    uint64_t threads = so->threads, conns = so->max_conns, timeout = (uint64_t)so->timeout_s, body = so->max_body,
             batch = eo->max_batch, retry = eo->retry_after;
    GUARD(number_opt("--threads", a->threads, 1, 64, &threads));
    GUARD(number_opt("--max-conns", a->max_conns, 1, 1000000, &conns));
    GUARD(number_opt("--timeout", a->timeout, 1, 3600, &timeout));
    GUARD(number_opt("--max-body", a->max_body, SMKI_EST_BODY_MIN, SMKI_REPO_BODY_LIMIT, &body));
    GUARD(number_opt("--max-batch", a->max_batch, 1, 1000000, &batch));
    GUARD(number_opt("--retry-after", a->retry_after, 1, 86400, &retry));
    so->threads = (unsigned)threads, so->max_conns = (unsigned)conns, so->timeout_s = (int)timeout;
    so->max_body = (size_t)body, eo->max_batch = (size_t)batch, eo->retry_after = (unsigned)retry;
    if (a->listen) so->listen = a->listen;
    if (a->tls_cert) so->tls_cert = a->tls_cert;
    if (a->tls_key) so->tls_key = a->tls_key;
    if (a->client_ca) so->client_ca = a->client_ca;
    if (a->party_attr) so->party_attr = a->party_attr;
    if (a->require_client_cert) so->require_client_cert = 1;
    if (a->access_log) so->access_log = 1;
    return 0;
}

/* The service over the home's store until SIGTERM or SIGINT. */
static int run_service(smki_cli *c, const char *env, const char *op, const char *op_key, smki_est_opts *eo,
                       smki_repo_server_opts *so)
{
    smki_ra_policy pol;
    smki_store *s = NULL;
    smki_ra *ra = NULL;
    smki_est *e = NULL;
    smki_key *key = NULL;
    int rc = smki_ra_policy_load(c->conf, &pol);
    if (rc == 0) rc = ra_cli_actor(c, op, op_key, &key);
    if (rc == 0 && cli_pin(c, 0) < 0) rc = smki_error_code();
    smki_store_opts sto = {0, 0, 0};
    if (rc == 0) rc = smki_store_open(c->store_dir, &sto, &s);
    if (rc == 0) rc = smki_ra_open(s, &pol, &ra);
    if (rc == 0) {
        ra_cli_checkpoint_key(c, ra);
        eo->ra = ra, eo->env = env, eo->actor.name = op, eo->actor.key = key;
        eo->hsm = &c->hsm, eo->conf = c->conf;
        rc = smki_est_open(eo, &e);
    }
    if (rc == 0) {
        so->stop = &g_stop;
        rc = smki_est_serve(e, s, c->home, so);
    }
    smki_est_free(e);
    smki_ra_close(ra);
    smki_store_close(s);
    smki_key_free(key);
    return rc;
}

static int enrol_serve(smki_cli *c, int argc, char **argv)
{
    serve_args a = {0};
    const cli_opt opts[] = {CLI_VALUE("env", &a.env), CLI_VALUE("listen", &a.listen), CLI_VALUE("operator", &a.op),
                            CLI_VALUE("operator-key", &a.op_key), CLI_VALUE("threads", &a.threads),
                            CLI_VALUE("max-conns", &a.max_conns), CLI_VALUE("timeout", &a.timeout),
                            CLI_VALUE("max-body", &a.max_body), CLI_VALUE("max-batch", &a.max_batch),
                            CLI_VALUE("retry-after", &a.retry_after), CLI_VALUE("tls-cert", &a.tls_cert),
                            CLI_VALUE("tls-key", &a.tls_key), CLI_VALUE("client-ca", &a.client_ca),
                            CLI_FLAG("require-client-cert", &a.require_client_cert),
                            CLI_VALUE("party-attr", &a.party_attr), CLI_FLAG("access-log", &a.access_log), CLI_END};
    const cli_spec spec = {"smki enrol serve", SERVE_HELP, opts, "no argument", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    smki_est_opts eo = {0};
    smki_repo_server_opts so = {0};
    static smki_est_conf_buf cbuf;
    int rc = cli_home(c);
    if (rc == 0) rc = smki_est_conf_read(c->conf, c->home, &eo, &so, &cbuf);
    if (rc == 0) rc = apply_args(&a, &eo, &so);
    if (rc < 0) return cli_fail(c, rc);
    const char *env = a.env ? a.env : cbuf.env, *op = a.op ? a.op : cbuf.operator_name;
    if (!env || !so.listen || !op)
        return cli_usage(c, "smki enrol serve",
                         "--env, --listen and --operator are needed (or env, listen and operator under [enrol] in %s)",
                         c->conf_path);
    if (!so.tls_cert || !so.client_ca)
        return cli_usage(c, "smki enrol serve",
                         "enrolment is over mutual TLS: --tls-cert, --tls-key and --client-ca are needed");
    return cli_finish(c, run_service(c, env, op, a.op_key, &eo, &so));
}

static const cli_cmd ENROL_COMMANDS[] = {
    {"serve", enrol_serve, "serve EST enrolment and device batches over mutual TLS"},
    {NULL, NULL, NULL}};

int cmd_enrol(smki_cli *c, int argc, char **argv)
{
    return cli_dispatch(c, ENROL_COMMANDS, argc - 1, argv + 1, "smki enrol", ABOUT);
}
