/* repo: the SMKI Repository service. The request handling (routing, the DCC tool's
 * XML, REST queries, responses) is a pure function of a request and the store, so it
 * is tested without sockets; the HTTP server (h2o with its own event loop, TLS on an
 * OpenSSL SSL_CTX made here) and a small blocking client sit on top of it. */
#ifndef SMKI_REPO_H
#define SMKI_REPO_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "ca/ca.h"

/* ---- The DCC tool's XML ---------------------------------------------------------
 * The requests are tiny and of a fixed shape: a root element holding elements of
 * text. This reader takes exactly that, bounded: at most SMKI_REPO_XML_MAX octets,
 * an optional UTF-8 BOM and <?xml ...?> prolog, attributes read and ignored (xmlns),
 * namespace prefixes dropped from names. Refused (SMKI_E_INPUT): <!DOCTYPE>, <!--,
 * <![CDATA[, any '&' (no entities at all, so no entity expansion), nesting deeper
 * than two, more than SMKI_REPO_XML_CHILDREN children, a name or text over its
 * bound, mismatched tags, anything after the root. */
#define SMKI_REPO_XML_MAX 4096
#define SMKI_REPO_XML_CHILDREN 8
#define SMKI_REPO_XML_NAME_MAX 64 /* NUL included */
#define SMKI_REPO_XML_TEXT_MAX 128

typedef struct {
    char root[SMKI_REPO_XML_NAME_MAX];
    size_t n;
    struct {
        char name[SMKI_REPO_XML_NAME_MAX];
        char text[SMKI_REPO_XML_TEXT_MAX]; /* leading and trailing white space removed */
    } child[SMKI_REPO_XML_CHILDREN];
} smki_repo_xml;

SMKI_MUST_CHECK int smki_repo_xml_parse(const uint8_t *data, size_t len, smki_repo_xml *out);
/* The text of the child named name, or NULL; SMKI_E_INPUT (via *dup) if it occurs twice. */
const char *smki_repo_xml_child(const smki_repo_xml *x, const char *name, int *dup);

/* ---- The repository ---------------------------------------------------------------- */
/* Endpoint groups, for access rules and metrics. */
typedef enum {
    SMKI_REPO_EP_DCC = 0, /* POST /services/certificatesearch, /services/retrievecertificate */
    SMKI_REPO_EP_CERT,    /* GET /certificates/{serial}, GET /certificates?... */
    SMKI_REPO_EP_CA,      /* GET /ca, /ca/{kind} */
    SMKI_REPO_EP_CRL,     /* GET /crl/{ca}, /arl */
    SMKI_REPO_EP_HEALTH,  /* GET /health */
    SMKI_REPO_EP_METRICS, /* GET /metrics */
    SMKI_REPO_EP_OTHER,   /* anything else (404) */
    SMKI_REPO_EP_COUNT
} smki_repo_ep;
const char *smki_repo_ep_name(smki_repo_ep ep); /* "dcc", "cert", "ca", "crl", "health", "metrics", "other" */

/* The largest request body a service of this server may be set to take (--max-body,
 * max_body), for the repository and the enrolment service alike: 64 MiB. Each has its
 * own default far below it (the repository 4096 octets, enrolment 8 MiB for batches). */
#define SMKI_REPO_BODY_LIMIT ((size_t)64 << 20)
#define SMKI_REPO_PARTY_MAX 65
#define SMKI_REPO_ALLOW_MAX 32

typedef struct {
    const char *store_dir; /* the store the CA writes (opened read-only) */
    const char *home;      /* CRLs are read from <home>/ca/<env>/<ca>.crl */
    const char *env;       /* the environment served: one per instance */
    /* Endpoint groups served without a client certificate: bit (1 << smki_repo_ep).
     * The others need a verified client certificate whose Party Signifier is in
     * allow (or any verified one when allow is empty). */
    unsigned public_mask;
    size_t n_allow;
    char allow[SMKI_REPO_ALLOW_MAX][SMKI_REPO_PARTY_MAX];
    const char *apikey;   /* when set, the DCC endpoints need ?apikey= equal to it */
    const char *arl_ca;   /* the CA whose CRL is the ARL; NULL: smki-root */
    size_t max_scan;      /* records one search may examine (more: 400); 0: 100000 */
    const char *version;  /* smki's version, for /metrics' build information; NULL: "unknown" */
    /* An open store to share instead of opening store_dir (a service in this process
     * already has it open, e.g. est/ with the RA): not closed by smki_repo_free. */
    smki_store *store;
} smki_repo_opts;
#define SMKI_REPO_PUBLIC_ALL ((1u << SMKI_REPO_EP_COUNT) - 1)

typedef struct smki_repo smki_repo;

/* The store may be empty (or lack the CA's databases) at open: they are looked for
 * again on each request until they appear. Refused: no environment, a bad env name. */
SMKI_MUST_CHECK int smki_repo_open(const smki_repo_opts *o, smki_repo **out);
void smki_repo_free(smki_repo *r);
/* A configuration read again (SIGHUP): the access rules (public groups, allowed
 * Parties, apikey) and max_scan take effect from the next request. What a running
 * instance cannot change (env, store, home) is refused (SMKI_E_USAGE naming it: restart
 * for that) and nothing changes. */
SMKI_MUST_CHECK int smki_repo_reconfigure(smki_repo *r, const smki_repo_opts *o);
/* The TLS certificate's notAfter (0: no TLS), for /health and /metrics. */
void smki_repo_set_tls_not_after(smki_repo *r, int64_t not_after);
/* Parse "dcc,cert,ca,crl,health,metrics" (or "all", "none") into a public mask. */
SMKI_MUST_CHECK int smki_repo_public_parse(const char *text, unsigned *mask);

typedef struct {
    const char *method;  /* "GET", "POST", "HEAD" */
    const char *path;    /* without the query, e.g. "/certificates/00ab..." */
    const char *query;   /* after '?', or NULL */
    const char *accept;  /* the Accept header, or NULL */
    const uint8_t *body;
    size_t body_len;
    const char *party;   /* a verified client certificate's Party Signifier, or NULL */
    int has_client_cert; /* a verified client certificate was presented */
    const uint8_t *client_issuer_ski; /* with has_client_cert: that certificate in the store (its issuer's SKI, */
    const uint8_t *client_serial;     /* SMKI_KEYID_LEN octets, and its serial, SMKI_SERIAL_LEN); else NULL */
} smki_repo_req;

typedef struct {
    int status;               /* HTTP status */
    const char *content_type; /* static text */
    uint8_t *body;            /* owned; smki_repo_resp_free */
    size_t len, cap;
    smki_repo_ep ep;
    unsigned retry_after;     /* non-zero: a Retry-After header of that many seconds */
    char location[96];        /* non-empty: a Location header */
} smki_repo_resp;

/* Answer one request. Always fills resp (an error is an HTTP status and a short
 * body naming what was wrong); returns 0, or a negative status only when even the
 * error response could not be built (out of memory). Safe from many threads. */
SMKI_MUST_CHECK int smki_repo_handle(smki_repo *r, const smki_repo_req *req, smki_repo_resp *resp);
/* Answers n requests that arrived together, each exactly as smki_repo_handle would
 * (resps[i], its return in rcs[i]), but the searches among them read the store in one
 * transaction, fetched at once where the store can (PostgreSQL: one round trip for
 * all the lookups by EUI-64, not one each). */
void smki_repo_handle_many(smki_repo *r, const smki_repo_req *const *reqs, smki_repo_resp *const *resps, int *rcs,
                           size_t n);
/* 1 when req is worth gathering with others for smki_repo_handle_many: a search
 * (GET /certificates) on a store whose reads wait on a round trip (PostgreSQL). */
int smki_repo_gathers(const smki_repo *r, const smki_repo_req *req);
void smki_repo_resp_free(smki_repo_resp *resp);

/* A request path (without its query) percent-decoded into out (at least len + 1
 * octets), NUL-terminated. Refused (SMKI_E_INPUT): a '%' not followed by two hex
 * digits, or anything that decodes to NUL. Paths are matched decoded (a serial is
 * hex; nothing else needs escapes); the query is decoded by the handler. */
SMKI_MUST_CHECK int smki_repo_path_decode(const char *path, size_t len, char *out);
/* The store's status (SMKI_STATUS_*) of the certificate of (issuer SKI, serial) in the
 * environment served; 0 when the store has no such certificate. */
int smki_repo_cert_status(smki_repo *r, const uint8_t issuer_ski[SMKI_KEYID_LEN], const uint8_t serial[SMKI_SERIAL_LEN]);

/* Connection-level counters the server reports into /metrics. */
void smki_repo_note_conn(smki_repo *r, int opened, int refused);
/* An answer the server gave before the handler (429, 503, 431, 400): counted in the metrics. */
void smki_repo_note_status(smki_repo *r, int status);

/* ---- The HTTP server ----------------------------------------------------------------- */
typedef struct smki_repo_server_opts {
    const char *listen;       /* "127.0.0.1:8080", "[::1]:8443", ":8080" */
    unsigned threads;         /* event loops sharing the listening socket; 0: 2 */
    unsigned max_conns;       /* open connections; more are answered 429 and closed; 0: 1024 */
    size_t max_body;          /* request body octets; more is 413; 0: SMKI_REPO_XML_MAX */
    size_t max_headers;       /* request header octets; more is 431; 0: 8192 */
    int timeout_s;            /* a request's headers and body, idle keep-alive, the TLS handshake; 0: 10 */
    const char *tls_cert;     /* PEM: the DCCKI server certificate (chain may follow) */
    const char *tls_key;      /* PEM private key of it */
    const char *client_ca;    /* PEM: the DCCKI CAs that client certificates must chain to */
    int require_client_cert;  /* with client_ca: refuse the handshake without one */
    int answer_unverified;    /* a client certificate that does not verify (expired, unknown CA) does not end
                               * the handshake: it counts as none, so the handler can answer (EST: 401) */
    const char *party_attr;   /* OID of the Party Signifier attribute; NULL: 2.5.4.97 */
    int access_log;           /* one JSON line per request on stderr */
    volatile sig_atomic_t *stop; /* the server returns when this becomes non-zero (checked often) */
    /* Another service on this server (est/, the enrolment service): when set, every
     * request is answered by handle(handle_arg, ...) instead of the repository's handler.
     * The repository handle still counts connections and vouches for client certificates
     * (its store and environment). */
    int (*handle)(void *arg, const smki_repo_req *req, smki_repo_resp *resp);
    void *handle_arg;
    /* With handle: answer on this many threads of their own instead of on the loop that
     * read the request (a handler that waits for a durable commit then holds up no loop,
     * and requests of several connections are in flight at once); 0: on the loops. */
    unsigned handle_threads;
    /* Called once the socket listens (for tests and scripts that need the port). */
    void (*on_listen)(int port, void *arg);
    void *on_listen_arg;
    /* SIGHUP: fill ro and so afresh (the configuration read again, the command's flags
     * applied); strings must stay valid until the next call. NULL: SIGHUP reloads only
     * the TLS certificate and key from the same files. */
    int (*reload)(void *arg, smki_repo_opts *ro, struct smki_repo_server_opts *so);
    void *reload_arg;
} smki_repo_server_opts;

/* ---- The [repo] section of smki.conf ---------------------------------------------------
 * Settings of `smki repo serve`, applied to ro and so before the command's flags (a
 * flag overrides the file):
 *   env, listen, threads (1..64), max_conns, max_body, max_headers (256..65536),
 *   timeout (seconds), tls_cert, tls_key, client_ca (paths, relative to home),
 *   client_certs (optional|required, with client_ca), public (as --public),
 *   allow_party (comma-separated Party Signifiers), party_attr (an OID),
 *   apikey_file (path), arl_ca, access_log (yes|no).
 * An unknown key is refused naming the file and line (smki_conf_check_section); a bad
 * value names the key. conf may be NULL (no file: nothing changes). Strings point into
 * conf or buf, which must outlive ro and so. */
typedef struct {
    char tls_cert[4200], tls_key[4200], client_ca[4200], apikey_path[4200];
    const char *apikey_file; /* [repo] apikey_file, home-relative resolved, or NULL */
} smki_repo_conf_buf;
SMKI_MUST_CHECK int smki_repo_conf_read(const smki_conf *conf, const char *home, smki_repo_opts *ro, smki_repo_server_opts *so,
                                        smki_repo_conf_buf *buf);

/* Serve until *o->stop or SIGTERM/SIGINT (handled here): then stop accepting, let
 * the loops finish what they were sending (up to a second), and return 0. SIGHUP
 * reloads without a restart and without dropping a connection: the configuration
 * (o->reload: access rules, access_log) and the TLS certificate and key, which new
 * handshakes use while established connections keep theirs. A reload that fails
 * (a key that is not the certificate's, a bad configuration) is logged and changes
 * nothing; a setting only a restart can change (listen, threads, env...) is logged. */
SMKI_MUST_CHECK int smki_repo_serve(smki_repo *r, const smki_repo_server_opts *o);

/* ---- The client (smki repo get/search) ------------------------------------------------ */
typedef struct {
    const char *url;        /* "http://127.0.0.1:8080" or "https://host:8443" */
    const char *ca_file;    /* https: the trust anchors (PEM); NULL: the system's */
    const char *cert_file;  /* mutual TLS: client certificate and key (PEM) */
    const char *key_file;
    int timeout_s;          /* 0: 10 */
    size_t max_body;        /* 0: 16 MiB */
} smki_repo_client_opts;

typedef struct {
    int status;
    char content_type[128];
    uint8_t *body; /* owned, NUL-terminated for convenience */
    size_t len;
} smki_repo_http_resp;

/* One request ("GET"/"POST", a path with its query, an optional body and Accept).
 * Fails with SMKI_E_IO when the server cannot be reached, SMKI_E_VERIFY when its TLS
 * certificate does not verify, SMKI_E_INPUT for a malformed answer. */
SMKI_MUST_CHECK int smki_repo_http(const smki_repo_client_opts *o, const char *method, const char *path, const char *accept,
                                   const char *content_type, const uint8_t *body, size_t body_len, smki_repo_http_resp *out);
void smki_repo_http_resp_free(smki_repo_http_resp *r);

#endif
