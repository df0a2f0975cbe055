/*
 * fuzz_config.c - libFuzzer target over the config file parser
 * (core/config.c): hv.conf sits on the ESP, which the guest owns, so its
 * bytes are hostile input.  Every problem report must come with a message
 * and a line number inside the input.
 */
#include <stdlib.h>
#include <string.h>

#include "hv_config.h"

static size_t lines;

static void on_error(void *ctx, unsigned line, const char *msg, const char *what)
{
    (void)ctx;
    if (!msg || !what || line == 0 || line > lines)
        abort();
    volatile size_t k = strlen(msg) + strlen(what); /* both NUL-terminated */
    (void)k;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    struct hv_config c;
    lines = 1;
    for (size_t i = 0; i < n; i++)
        lines += d[i] == '\n';
    config_defaults(&c);
    char *text = malloc(n ? n : 1); /* exactly n bytes: a read past them is caught */
    memcpy(text, d, n);
    config_parse(&c, text, n, on_error, NULL);
    free(text);
    return 0;
}
