/*
 * INCRBYFLOAT arithmetic in C `long double`.
 *
 * Redis parses both operands, adds them and prints the sum in `long double`
 * (80-bit extended precision on x86-64). Rust has no such type, so the exact
 * digits Redis replies can only be reproduced here.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest operand accepted, and the size of the output buffer Redis uses. */
#define FERROKV_LD_MAX_CHARS (5 * 1024)

/* Parses `s` the way Redis's string2ld does: the whole input must be one
 * number with no leading space, no embedded NUL, no overflow and no NaN. */
static int parse_ld(const char *s, size_t len, long double *out) {
    char buf[FERROKV_LD_MAX_CHARS];
    char *end;
    long double v;

    if (len == 0 || len >= sizeof(buf)) return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    v = strtold(buf, &end);
    if (isspace((unsigned char)buf[0]) || *end != '\0' || (size_t)(end - buf) != len ||
        (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || fpclassify(v) == FP_ZERO)) ||
        errno == EINVAL || isnan(v))
        return 0;
    *out = v;
    return 1;
}

/* Prints like Redis's "human" long double form: %.17Lf without trailing
 * zeros or a trailing dot, and "-0" as "0". Returns 0 when it does not fit. */
static int format_ld(long double v, char *out, size_t cap) {
    int n = snprintf(out, cap, "%.17Lf", v);
    if (n < 0 || (size_t)n + 1 > cap) return 0;
    if (strchr(out, '.') != NULL) {
        while (out[n - 1] == '0') n--;
        if (out[n - 1] == '.') n--;
    }
    if (n == 2 && out[0] == '-' && out[1] == '0') {
        out[0] = '0';
        n = 1;
    }
    out[n] = '\0';
    return n;
}

/* Returns the length of the sum written to `out`, or
 *   -1 when an operand is not a valid float (`a == NULL` means 0),
 *   -2 when the sum is NaN or infinite. */
int ferrokv_incrbyfloat(const char *a, size_t alen, const char *b, size_t blen, char *out,
                        size_t outcap) {
    long double x = 0, y;
    if (a != NULL && !parse_ld(a, alen, &x)) return -1;
    if (!parse_ld(b, blen, &y)) return -1;
    x += y;
    if (isnan(x) || isinf(x)) return -2;
    return format_ld(x, out, outcap);
}

/* A blocking command's timeout in milliseconds, as Redis 7.0 computes it:
 * seconds parsed as a long double, times 1000, rounded up, converted to a
 * 64-bit integer (a value out of range becomes LLONG_MIN, as the x86
 * conversion does, so Redis then reports it as negative).
 * Returns 0 and sets *ms, or -1 when the text is not a float. */
int ferrokv_timeout_ms(const char *s, size_t len, long long *ms) {
    long double v;
    if (!parse_ld(s, len, &v)) return -1;
    v = ceill(v * 1000.0L);
    if (!(v < 9223372036854775808.0L) || !(v >= -9223372036854775808.0L))
        *ms = (-9223372036854775807LL - 1);
    else
        *ms = (long long)v;
    return 0;
}
