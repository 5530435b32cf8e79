/* libFuzzer target for the repository's XML reader (repo/xml.c). Beyond not crashing:
 * parsing is deterministic; an accepted document's names and texts are within their
 * bounds, hold no markup or '&', and the input held no DTD, comment or entity; and a
 * document rebuilt from what was read is accepted again with the same content. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo/repo.h"

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_repo_xml: invariant failed: %s\n", what);
    abort();
}

static int has(const uint8_t *d, size_t n, const char *s)
{
    size_t l = strlen(s);
    for (size_t i = 0; i + l <= n; i++)
        if (memcmp(d + i, s, l) == 0) return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static smki_repo_xml a, b, c;
    int ra = smki_repo_xml_parse(data, size, &a);
    int rb = smki_repo_xml_parse(data, size, &b);
    require(ra == rb, "deterministic status");
    smki_error_clear();
    if (ra < 0) return 0;
    require(memcmp(&a, &b, sizeof a) == 0, "deterministic content");
    require(!has(data, size, "<!") && !has(data, size, "&"), "no DTD, comment, CDATA or entity accepted");
    require(a.n <= SMKI_REPO_XML_CHILDREN && a.root[0], "bounded children, a root");
    char doc[SMKI_REPO_XML_MAX * 2];
    size_t n = (size_t)snprintf(doc, sizeof doc, "<%s>", a.root);
    for (size_t i = 0; i < a.n; i++) {
        require(strlen(a.child[i].name) < SMKI_REPO_XML_NAME_MAX && strlen(a.child[i].text) < SMKI_REPO_XML_TEXT_MAX,
                "bounded name and text");
        require(!strpbrk(a.child[i].text, "<&") && !strchr(a.child[i].name, ':'), "no markup kept");
        n += (size_t)snprintf(doc + n, sizeof doc - n, "<%s>%s</%s>", a.child[i].name, a.child[i].text,
                              a.child[i].name);
    }
    n += (size_t)snprintf(doc + n, sizeof doc - n, "</%s>", a.root);
    if (n <= SMKI_REPO_XML_MAX) {
        require(smki_repo_xml_parse((const uint8_t *)doc, n, &c) == 0, "the rebuilt document is accepted");
        require(c.n == a.n && strcmp(c.root, a.root) == 0, "same shape");
        for (size_t i = 0; i < a.n; i++)
            require(strcmp(c.child[i].name, a.child[i].name) == 0 && strcmp(c.child[i].text, a.child[i].text) == 0,
                    "same content");
    }
    smki_error_clear();
    return 0;
}
