/* Small helpers shared by the C examples: argument parsing and C-escape decoding.
 * The examples use nothing of xtnet but include/xtnet.h and the library. */
#ifndef XTNET_EXAMPLES_COMMON_H
#define XTNET_EXAMPLES_COMMON_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Decodes C escapes (\r \n \t \0 \\ \xHH) from `in` into `out` (at most `cap` bytes).
 * Returns the decoded length, or -1 if it does not fit or an escape is malformed. */
static inline long xt_example_unescape(const char *in, unsigned char *out, size_t cap) {
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\\') {
            p++;
            switch (*p) {
            case 'r': c = '\r'; break;
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case '0': c = '\0'; break;
            case '\\': c = '\\'; break;
            case 'x': {
                char hex[3] = {0, 0, 0};
                char *end = NULL;
                if (!p[1] || !p[2]) return -1;
                hex[0] = p[1];
                hex[1] = p[2];
                c = (unsigned char)strtoul(hex, &end, 16);
                if (*end) return -1;
                p += 2;
                break;
            }
            default: return -1;
            }
        }
        if (n == cap) return -1;
        out[n++] = c;
    }
    return (long)n;
}

/* Parses a non-negative integer no larger than `max`; exits with a message otherwise. */
static inline long xt_example_number(const char *flag, const char *text, long max) {
    char *end = NULL;
    long v = strtol(text, &end, 10);
    if (!*text || *end || v < 0 || v > max) {
        fprintf(stderr, "%s: expected a number from 0 to %ld, got \"%s\"\n", flag, max, text);
        exit(2);
    }
    return v;
}

#endif
