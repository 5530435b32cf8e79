/* repo/conf: the [repo] section of smki.conf, the settings of `smki repo serve`. The
 * command's flags are applied after it, so a flag overrides the file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo.h"

static const char *const REPO_KEYS[] = {"env",         "listen",      "threads",     "max_conns",  "max_body",
                                        "max_headers", "timeout",     "tls_cert",    "tls_key",    "client_ca",
                                        "client_certs", "public",     "allow_party", "party_attr", "apikey_file",
                                        "arl_ca",      "access_log",  "max_scan",   NULL};

static int conf_num(const smki_conf *conf, const char *key, long lo, long hi, long *out)
{
    char full[64];
    snprintf(full, sizeof full, "repo.%s", key);
    const char *v = smki_conf_get(conf, full, NULL);
    if (!v) return 0;
    char *end = NULL;
    long n = strtol(v, &end, 10);
    ENSURE(*v && *end == 0 && n >= lo && n <= hi, SMKI_E_USAGE, "smki.conf [repo] %s = '%.40s': a number %ld..%ld", key,
           v, lo, hi);
    *out = n;
    return 1;
}

/* A path from the file, relative to the home unless absolute. */
static const char *conf_path(const smki_conf *conf, const char *key, const char *home, char *buf, size_t cap)
{
    char full[64];
    snprintf(full, sizeof full, "repo.%s", key);
    const char *v = smki_conf_get(conf, full, NULL);
    if (!v || !*v) return NULL;
    if (v[0] == '/' || !home) return v;
    int n = snprintf(buf, cap, "%s/%s", home, v);
    return n > 0 && (size_t)n < cap ? buf : NULL;
}

int smki_repo_conf_read(const smki_conf *conf, const char *home, smki_repo_opts *ro, smki_repo_server_opts *so,
                        smki_repo_conf_buf *buf)
{
    ENSURE(ro && so && buf, SMKI_E_INTERNAL, "smki_repo_conf_read: missing argument");
    memset(buf, 0, sizeof *buf);
    if (!conf) return 0;
    GUARD(smki_conf_check_section(conf, "repo", REPO_KEYS));
    const char *v;
    long n = 0;
    int g;
    if ((v = smki_conf_get(conf, "repo.env", NULL))) ro->env = v;
    if ((v = smki_conf_get(conf, "repo.listen", NULL))) so->listen = v;
    GUARD(g = conf_num(conf, "threads", 1, 64, &n));
    if (g) so->threads = (unsigned)n;
    GUARD(g = conf_num(conf, "max_conns", 1, 1000000, &n));
    if (g) so->max_conns = (unsigned)n;
    GUARD(g = conf_num(conf, "max_body", 1, (long)SMKI_REPO_BODY_LIMIT, &n));
    if (g) so->max_body = (size_t)n;
    GUARD(g = conf_num(conf, "max_headers", 256, 65536, &n));
    if (g) so->max_headers = (size_t)n;
    GUARD(g = conf_num(conf, "max_scan", 1, 100000000, &n));
    if (g) ro->max_scan = (size_t)n;
    GUARD(g = conf_num(conf, "timeout", 1, 3600, &n));
    if (g) so->timeout_s = (int)n;
    so->tls_cert = conf_path(conf, "tls_cert", home, buf->tls_cert, sizeof buf->tls_cert);
    so->tls_key = conf_path(conf, "tls_key", home, buf->tls_key, sizeof buf->tls_key);
    so->client_ca = conf_path(conf, "client_ca", home, buf->client_ca, sizeof buf->client_ca);
    buf->apikey_file = conf_path(conf, "apikey_file", home, buf->apikey_path, sizeof buf->apikey_path);
    if ((v = smki_conf_get(conf, "repo.client_certs", NULL))) {
        ENSURE(strcmp(v, "optional") == 0 || strcmp(v, "required") == 0, SMKI_E_USAGE,
               "smki.conf [repo] client_certs = '%.40s': optional or required (with client_ca)", v);
        ENSURE(so->client_ca, SMKI_E_USAGE, "smki.conf [repo] client_certs = %s needs client_ca", v);
        so->require_client_cert = strcmp(v, "required") == 0;
    }
    if ((v = smki_conf_get(conf, "repo.public", NULL))) GUARD(smki_repo_public_parse(v, &ro->public_mask));
    if ((v = smki_conf_get(conf, "repo.allow_party", NULL))) {
        ro->n_allow = 0;
        while (*v) {
            while (*v == ',' || *v == ' ') v++;
            size_t l = strcspn(v, ", ");
            if (!l) break;
            ENSURE(ro->n_allow < SMKI_REPO_ALLOW_MAX && l < SMKI_REPO_PARTY_MAX, SMKI_E_USAGE,
                   "smki.conf [repo] allow_party: at most %d Party Signifiers of 1..%d characters ('%.*s')",
                   SMKI_REPO_ALLOW_MAX, SMKI_REPO_PARTY_MAX - 1, (int)(l > 64 ? 64 : l), v);
            memcpy(ro->allow[ro->n_allow], v, l);
            ro->allow[ro->n_allow++][l] = 0;
            v += l;
        }
    }
    if ((v = smki_conf_get(conf, "repo.party_attr", NULL))) so->party_attr = v;
    if ((v = smki_conf_get(conf, "repo.arl_ca", NULL))) ro->arl_ca = v;
    if ((v = smki_conf_get(conf, "repo.access_log", NULL))) {
        ENSURE(strcmp(v, "yes") == 0 || strcmp(v, "no") == 0, SMKI_E_USAGE,
               "smki.conf [repo] access_log = '%.40s': yes or no", v);
        so->access_log = strcmp(v, "yes") == 0;
    }
    return 0;
}
