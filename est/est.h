/* est: the enrolment service. RFC 7030 EST (cacerts, simpleenroll, simplereenroll,
 * csrattrs) and a batch interface for device CSRs, for Authorised Subscribers who
 * authenticate with their DCCKI client certificate over mutual TLS. It decides
 * nothing itself: every request goes through the RA (ra/ra.h), its gate where the
 * environment issues directly (smki_ra_issue, smki_ra_batch) and its requests and
 * approvals elsewhere, whose rules and audit trail apply as for the command line; the HTTP
 * and TLS plumbing is the repository's server (repo/repo.h). docs/est.md. */
#ifndef SMKI_EST_H
#define SMKI_EST_H

#include <stddef.h>
#include <stdint.h>

#include "ra/ra.h"
#include "repo/repo.h"

#define SMKI_EST_ENROLL_BODY_MAX 16384          /* one enrolment's body (base64 or PEM CSR); 413 above */
#define SMKI_EST_BATCH_MAX 10000                /* CSRs in one batch by default ([enrol] max_batch) */
#define SMKI_EST_BODY_MAX ((size_t)8 << 20)     /* a request body by default (a batch's PEM); 413 above */
#define SMKI_EST_BODY_MIN 1024                  /* the least max_body / --max-body may be: a CSR's body fits */
#define SMKI_EST_RETRY_AFTER 30                 /* seconds a client waits before asking again, by default */
#define SMKI_EST_CONNS 256                      /* open connections by default ([enrol] max_conns) */
#define SMKI_EST_HANDLERS 8                     /* threads that answer requests, off the event loops: enrolments
                                                 * of several clients in flight, sharing group commits */

/* ---- What a client sends: decoded strictly and bounded (fuzzed: tests/fuzz/fuzz_est_decode.c)
 * Base64 (RFC 4648 alphabet, '=' padding only at the end, a multiple of 4 characters)
 * with white space (space, tab, CR, LF) anywhere, as RFC 7030 4.2.1 sends a PKCS#10.
 * SMKI_E_INPUT naming the octet for anything else, or when it would not fit cap. */
SMKI_MUST_CHECK int smki_est_base64_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len);

/* Concatenated PEM CSRs ("-----BEGIN CERTIFICATE REQUEST-----" or "NEW CERTIFICATE
 * REQUEST", white space between blocks, nothing else): the base64 body of each block as
 * (offset, length) into in. At most max blocks, each body at most 2 * SMKI_CSR_MAX
 * octets; SMKI_E_INPUT naming the octet or block that is wrong, SMKI_E_REFUSED for more
 * than max. *n receives the count. */
typedef struct {
    size_t off, len;
} smki_est_span;
SMKI_MUST_CHECK int smki_est_pem_split(const uint8_t *in, size_t len, size_t max, smki_est_span *out, size_t *n);

/* One enrolment's body into the CSR's DER (at most cap octets): base64 of the DER
 * (RFC 7030 4.2.1), or one PEM block. */
SMKI_MUST_CHECK int smki_est_csr_body(const uint8_t *in, size_t len, uint8_t *der, size_t cap, size_t *der_len);

/* A path label (RFC 7030 3.2.2: /.well-known/est/<label>/simpleenroll) into the
 * certificate asked for:
 *   device                      one device certificate (the CSR's hardwareModuleName)
 *   dccki-client, dccki-server  a DCCKI TLS certificate of the client's Party
 *   org-<role>-<EUI-64>         an organisation certificate: a Remote Party Role (name or
 *                               two hex digits) and the organisation's EUI-64, e.g.
 *                               org-supplier-90B3D51F30010000
 * SMKI_E_USAGE naming the label otherwise. */
typedef struct {
    smki_req_type type; /* SMKI_REQ_DEVICE_BATCH (one CSR), _ORGANISATION, _DCCKI_SERVER, _DCCKI_CLIENT */
    int role;
    smki_eui64_t eui;
} smki_est_label;
SMKI_MUST_CHECK int smki_est_label_parse(const char *label, smki_est_label *out);

/* ---- The service ------------------------------------------------------------------------- */
typedef struct {
    smki_ra *ra;              /* over the store the server shares */
    const char *env;          /* the environment enrolled into: one per instance */
    smki_ra_actor actor;      /* the service's registered RA operator and its key (signs the entries) */
    const smki_hsm_opts *hsm; /* the token that holds the CA keys */
    const smki_conf *conf;    /* the environments' settings (may be NULL) */
    unsigned retry_after;     /* seconds; 0: SMKI_EST_RETRY_AFTER */
    size_t max_batch;         /* 0: SMKI_EST_BATCH_MAX */
} smki_est_opts;

typedef struct smki_est smki_est;

/* Starts the worker that executes approved batches, and hands it the service's batches
 * left approved but unfinished (a restart resumes them). */
SMKI_MUST_CHECK int smki_est_open(const smki_est_opts *o, smki_est **out);
/* Waits for a batch being executed to reach its next group commit boundary's end. */
void smki_est_free(smki_est *e);

/* Answer one request (the server's handle callback): always fills resp; an error is an
 * HTTP status and a JSON body naming what was wrong. The client is the Party of a
 * verified, in-use client certificate (req->party), or nobody. */
int smki_est_handle(void *est, const smki_repo_req *req, smki_repo_resp *resp);

/* Serve on the repository's server over store (shared with the RA) until SIGTERM or
 * SIGINT; so->handle is set here. */
SMKI_MUST_CHECK int smki_est_serve(smki_est *e, smki_store *store, const char *home, const smki_repo_server_opts *so);

/* ---- The [enrol] section of smki.conf ------------------------------------------------------
 * As [repo] (docs/repo.md), for `smki enrol serve`: env, listen, threads, max_conns,
 * max_body, max_headers, timeout, tls_cert, tls_key, client_ca (paths relative to home),
 * client_certs (optional|required), party_attr, access_log (yes|no), and operator (the
 * service's RA operator; its key as any operator's: [operators] NAME = KEY),
 * retry_after (seconds), max_batch (CSRs). An unknown key is refused naming file and
 * line; a bad value names its key. Strings point into conf or buf. */
typedef struct {
    char tls_cert[4200], tls_key[4200], client_ca[4200];
    const char *env, *operator_name;
} smki_est_conf_buf;
SMKI_MUST_CHECK int smki_est_conf_read(const smki_conf *conf, const char *home, smki_est_opts *eo, smki_repo_server_opts *so,
                                       smki_est_conf_buf *buf);

#endif
