/* est/conf: the [enrol] section of smki.conf, the settings of `smki enrol serve`. The
 * command's flags are applied after it, so a flag overrides the file (as [repo]). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "est.h"

static const char *const ENROL_KEYS[] = {"env",       "listen",       "threads",    "max_conns",  "max_body",
                                         "max_headers", "timeout",    "tls_cert",   "tls_key",    "client_ca",
                                         "client_certs", "party_attr", "access_log", "operator",   "retry_after",
                                         "max_batch",  NULL};

static int conf_num(const smki_conf *conf, const char *key, long lo, long hi, long *out)
{
    char full[64];
    snprintf(full, sizeof full, "enrol.%s", key);
    const char *v = smki_conf_get(conf, full, NULL);
    if (!v) return 0;
    char *end = NULL;
    long n = strtol(v, &end, 10);
    ENSURE(*v && *end == 0 && n >= lo && n <= hi, SMKI_E_USAGE, "smki.conf [enrol] %s = '%.40s': a number %ld..%ld",
           key, v, lo, hi);
    *out = n;
    return 1;
}

/* A path from the file, relative to the home unless absolute. */
static const char *conf_path(const smki_conf *conf, const char *key, const char *home, char *buf, size_t cap)
{
    char full[64];
    snprintf(full, sizeof full, "enrol.%s", key);
    const char *v = smki_conf_get(conf, full, NULL);
    if (!v || !*v) return NULL;
    if (v[0] == '/' || !home) return v;
    int n = snprintf(buf, cap, "%s/%s", home, v);
    return n > 0 && (size_t)n < cap ? buf : NULL;
}

int smki_est_conf_read(const smki_conf *conf, const char *home, smki_est_opts *eo, smki_repo_server_opts *so,
                       smki_est_conf_buf *buf)
{
    ENSURE(eo && so && buf, SMKI_E_INTERNAL, "smki_est_conf_read: missing argument");
    memset(buf, 0, sizeof *buf);
    if (!conf) return 0;
    GUARD(smki_conf_check_section(conf, "enrol", ENROL_KEYS));
    const char *v;
    long n = 0;
    int g;
    if ((v = smki_conf_get(conf, "enrol.env", NULL))) buf->env = v;
    if ((v = smki_conf_get(conf, "enrol.operator", NULL))) buf->operator_name = v;
    if ((v = smki_conf_get(conf, "enrol.listen", NULL))) so->listen = v;
    GUARD(g = conf_num(conf, "threads", 1, 64, &n));
    if (g) so->threads = (unsigned)n;
    GUARD(g = conf_num(conf, "max_conns", 1, 1000000, &n));
    if (g) so->max_conns = (unsigned)n;
    GUARD(g = conf_num(conf, "max_body", SMKI_EST_BODY_MIN, (long)SMKI_REPO_BODY_LIMIT, &n));
    if (g) so->max_body = (size_t)n;
    GUARD(g = conf_num(conf, "max_headers", 256, 65536, &n));
    if (g) so->max_headers = (size_t)n;
    GUARD(g = conf_num(conf, "timeout", 1, 3600, &n));
    if (g) so->timeout_s = (int)n;
    GUARD(g = conf_num(conf, "retry_after", 1, 86400, &n));
    if (g) eo->retry_after = (unsigned)n;
    GUARD(g = conf_num(conf, "max_batch", 1, 1000000, &n));
    if (g) eo->max_batch = (size_t)n;
    so->tls_cert = conf_path(conf, "tls_cert", home, buf->tls_cert, sizeof buf->tls_cert);
    so->tls_key = conf_path(conf, "tls_key", home, buf->tls_key, sizeof buf->tls_key);
    so->client_ca = conf_path(conf, "client_ca", home, buf->client_ca, sizeof buf->client_ca);
    if ((v = smki_conf_get(conf, "enrol.client_certs", NULL))) {
        ENSURE(strcmp(v, "optional") == 0 || strcmp(v, "required") == 0, SMKI_E_USAGE,
               "smki.conf [enrol] client_certs = '%.40s': optional or required (with client_ca)", v);
        ENSURE(so->client_ca, SMKI_E_USAGE, "smki.conf [enrol] client_certs = %s needs client_ca", v);
        so->require_client_cert = strcmp(v, "required") == 0;
    }
    if ((v = smki_conf_get(conf, "enrol.party_attr", NULL))) so->party_attr = v;
    if ((v = smki_conf_get(conf, "enrol.access_log", NULL))) {
        ENSURE(strcmp(v, "yes") == 0 || strcmp(v, "no") == 0, SMKI_E_USAGE,
               "smki.conf [enrol] access_log = '%.40s': yes or no", v);
        so->access_log = strcmp(v, "yes") == 0;
    }
    return 0;
}
