/* String and memory functions on unaligned buffers next to a PROT_NONE page:
 * memcpy memmove memset memcmp memchr memrchr strlen strnlen strchr strrchr strcmp strncmp
 * strstr strcpy, for every start alignment 0..63 and a set of lengths 0..300 (all lengths with
 * the argument "full"). Each buffer ends less than 64 bytes before an inaccessible page, so an
 * over-read past the buffer end crosses into it. Results are checked against plain byte
 * loops; per function the program prints the number of checks, errors and a result hash. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NOVEC __attribute__((noinline, optimize("no-tree-loop-distribute-patterns")))

static size_t page;
static unsigned char *sguard, *dguard; /* first byte of the PROT_NONE pages */
static unsigned lens[400], nlens;
static uint64_t hash;
static unsigned long checks, errors;
static const char *current;

static void mix(uint64_t v) { hash = (hash ^ v) * 0x100000001b3ULL; }
static void fail(unsigned off, unsigned len, const char *what) {
    if (errors++ < 10) printf("  ERROR %s off %u len %u: %s\n", current, off, len, what);
}
static void begin(const char *name) { current = name; hash = 0xcbf29ce484222325ULL; checks = errors = 0; }
static void end(void) { printf("%-8s checks %6lu errors %lu hash %016llx\n", current, checks, errors, (unsigned long long)hash); }

/* Start address with the given alignment (mod 64) such that [p, p+len) ends within 64 bytes
 * of the guard page. */
static unsigned char *place(unsigned char *guard, unsigned off, unsigned len) {
    uintptr_t last = (uintptr_t)guard - len;
    uintptr_t p = (last & ~(uintptr_t)63) + off;
    if (p > last) p -= 64;
    return (unsigned char *)p;
}

static unsigned char *map_with_guard(void) {
    unsigned char *m = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) { perror("mmap"); exit(1); }
    if (mprotect(m + 2 * page, page, PROT_NONE) != 0) { perror("mprotect"); exit(1); }
    return m + 2 * page;
}

NOVEC static void ref_fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(((i + seed) * 37 + (seed >> 3)) % 251 + 1); /* never 0 */
}
NOVEC static int ref_eq(const unsigned char *a, const unsigned char *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}
NOVEC static int ref_all(const unsigned char *a, int c, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (a[i] != (unsigned char)c) return 0;
    return 1;
}
static int sign(int x) { return (x > 0) - (x < 0); }

int main(int argc, char **argv) {
    page = (size_t)sysconf(_SC_PAGESIZE);
    int full = argc > 1 && strcmp(argv[1], "full") == 0;
    for (unsigned l = 0; l <= 300; l++)
        if (full || l <= 40 || l == 47 || l == 48 || l == 49 || l == 63 || l == 64 || l == 65 || l == 95 || l == 96 ||
            l == 127 || l == 128 || l == 129 || l == 191 || l == 255 || l == 256 || l == 257 || l == 299 || l == 300)
            lens[nlens++] = l;
    printf("page size %zu, %u lengths, offsets 0..63\n", page, nlens);
    sguard = map_with_guard();
    dguard = map_with_guard();
    unsigned char *sbase = sguard - 2 * page, *dbase = dguard - 2 * page;
    unsigned char tmp[400];

    begin("memset");
    for (unsigned off = 0; off < 64; off++)
        for (unsigned k = 0; k < nlens; k++) {
            unsigned len = lens[k];
            unsigned char *d = place(dguard, off, len);
            ref_fill(d - 32, len + 32, off);
            int c = (int)(off * 7 + len) & 0xff;
            void *r = memset(d, c, len);
            checks++;
            if (r != d || !ref_all(d, c, len)) fail(off, len, "wrong bytes or return value");
            ref_fill(tmp, 32, off);
            if (!ref_eq(d - 32, tmp, 32)) fail(off, len, "wrote before the buffer");
            mix(len ? d[len - 1] : 0);
        }
    end();

    begin("memcpy");
    for (unsigned off = 0; off < 64; off++)
        for (unsigned k = 0; k < nlens; k++) {
            unsigned len = lens[k], doff = (off * 5 + len) & 63;
            unsigned char *s = place(sguard, off, len), *d = place(dguard, doff, len);
            ref_fill(s, len, len);
            ref_fill(d - 16, len + 16, 99);
            void *r = memcpy(d, s, len);
            checks++;
            if (r != d || !ref_eq(d, s, len)) fail(off, len, "wrong bytes or return value");
            mix(len ? d[len / 2] + d[len - 1] : 0);
            ref_fill(tmp, 16, 99);
            if (!ref_eq(d - 16, tmp, 16)) fail(off, len, "wrote before the buffer");
        }
    end();

    begin("memmove");
    for (unsigned off = 0; off < 64; off++)
        for (unsigned k = 0; k < nlens; k++) {
            unsigned len = lens[k];
            for (int dir = 0; dir < 2; dir++) {
                unsigned shift = 1 + (off + len) % 37;
                unsigned char *s = place(sguard, off, len + shift);
                ref_fill(s, len + shift, off + len);
                ref_fill(tmp, len + shift, off + len);
                void *r;
                if (dir == 0) {
                    r = memmove(s + shift, s, len); /* forward overlap */
                    checks++;
                    if (r != s + shift || !ref_eq(s + shift, tmp, len) || !ref_eq(s, tmp, shift)) fail(off, len, "forward overlap");
                } else {
                    r = memmove(s, s + shift, len); /* backward overlap */
                    checks++;
                    if (r != s || !ref_eq(s, tmp + shift, len) || !ref_eq(s + len, tmp + len, shift)) fail(off, len, "backward overlap");
                }
            }
        }
    end();

    begin("memcmp");
    for (unsigned off = 0; off < 64; off++)
        for (unsigned k = 0; k < nlens; k++) {
            unsigned len = lens[k];
            unsigned char *a = place(sguard, off, len), *b = place(dguard, (off * 3 + 1) & 63, len);
            ref_fill(a, len, 5);
            ref_fill(b, len, 5);
            checks++;
            if (memcmp(a, b, len) != 0) fail(off, len, "equal buffers compare unequal");
            if (len) {
                unsigned pos = (off * 11 + len / 3) % len;
                b[pos] = (unsigned char)(a[pos] + (off & 1 ? 1 : 255)); /* wraps: tests unsigned compare */
                int want = a[pos] < b[pos] ? -1 : 1;
                int got = sign(memcmp(a, b, len));
                checks++;
                if (got != want) fail(off, len, "wrong sign");
                mix((uint64_t)got + pos);
                if (memcmp(a, b, pos) != 0) fail(off, len, "prefix differs");
            }
        }
    end();

    begin("memchr");
    for (unsigned off = 0; off < 64; off++)
        for (unsigned k = 0; k < nlens; k++) {
            unsigned len = lens[k];
            unsigned char *a = place(sguard, off, len);
            memset(a, 'a', len);
            checks++;
            if (memchr(a, 'b', len) != NULL) fail(off, len, "found absent byte");
            if (memrchr(a, 'b', len) != NULL) fail(off, len, "memrchr found absent byte");
            if (len) {
                unsigned pos = (off * 13 + len) % len;
                a[pos] = 0xb0;
                if (pos + 1 < len) a[len - 1] = 0xb0;
                unsigned char *r = memchr(a, 0xb0, len), *rr = memrchr(a, 0xb0, len);
                checks++;
                if (r != a + pos) fail(off, len, "memchr wrong position");
                if (rr != a + (pos + 1 < len ? len - 1 : pos)) fail(off, len, "memrchr wrong position");
                if (memchr(a, 0xb0, pos) != NULL) fail(off, len, "memchr beyond length");
                mix(r ? (uint64_t)(r - a) : 999);
            }
        }
    end();

    begin("strlen");
    for (unsigned off = 0; off < 64; off++)
        for (unsigned k = 0; k < nlens; k++) {
            unsigned len = lens[k];
            char *s = (char *)place(sguard, off, len + 1);
            ref_fill((unsigned char *)s, len, off);
            s[len] = 0;
            checks++;
            if (strlen(s) != len) fail(off, len, "strlen");
            if (strnlen(s, len / 2) != len / 2) fail(off, len, "strnlen short");
            if (strnlen(s, len + 10) != len) fail(off, len, "strnlen long");
            mix(strlen(s + len / 3));
        }
    end();

    begin("strchr");
    for (unsigned off = 0; off < 64; off++)
        for (unsigned k = 0; k < nlens; k++) {
            unsigned len = lens[k];
            char *s = (char *)place(sguard, off, len + 1);
            memset(s, 'x', len);
            s[len] = 0;
            checks++;
            if (strchr(s, 'y') != NULL || strrchr(s, 'y') != NULL) fail(off, len, "found absent char");
            if (strchr(s, 0) != s + len || strrchr(s, 0) != s + len) fail(off, len, "NUL not found at end");
            if (len) {
                unsigned pos = (off * 17 + len / 2) % len;
                s[pos] = 'y';
                s[len - 1] = 'y';
                char *r = strchr(s, 'y'), *rr = strrchr(s, 'y');
                checks++;
                if (r != s + pos || rr != s + len - 1) fail(off, len, "wrong position");
                char *cn = strchrnul(s, 'q');
                if (cn != s + len) fail(off, len, "strchrnul");
                mix((uint64_t)(r - s) * 1000 + (uint64_t)(rr - s));
            }
        }
    end();

    begin("strcmp");
    for (unsigned off = 0; off < 64; off++)
        for (unsigned k = 0; k < nlens; k++) {
            unsigned len = lens[k];
            char *a = (char *)place(sguard, off, len + 1), *b = (char *)place(dguard, (off * 7 + 3) & 63, len + 1);
            ref_fill((unsigned char *)a, len, 3);
            ref_fill((unsigned char *)b, len, 3);
            a[len] = b[len] = 0;
            checks++;
            if (strcmp(a, b) != 0 || strncmp(a, b, len + 5) != 0) fail(off, len, "equal strings differ");
            if (len) {
                unsigned pos = (off * 5 + len / 2) % len;
                b[pos] = (char)((off & 1) || (unsigned char)a[pos] == 1 ? 0xfe : 0x01); /* high byte: unsigned comparison */
                int want = (unsigned char)a[pos] < (unsigned char)b[pos] ? -1 : 1;
                checks++;
                if (sign(strcmp(a, b)) != want || sign(strncmp(a, b, len)) != want) fail(off, len, "wrong sign");
                if (strncmp(a, b, pos) != 0) fail(off, len, "strncmp prefix");
                b[pos] = 0;
                if (sign(strcmp(a, b)) != 1) fail(off, len, "shorter string not smaller");
                mix((uint64_t)want + pos);
            }
        }
    end();

    begin("strstr");
    for (unsigned off = 0; off < 64; off++)
        for (unsigned k = 0; k < nlens; k++) {
            unsigned len = lens[k];
            char *h = (char *)place(sguard, off, len + 1);
            for (unsigned i = 0; i < len; i++) h[i] = "abcab"[(i * 3 + off) % 5];
            h[len] = 0;
            char needle[8] = "abcabz";
            unsigned nl = 1 + (off + len) % 6;
            needle[nl] = 0;
            char *r = strstr(h, needle);
            char *ref = NULL;
            for (unsigned i = 0; i + nl <= len && !ref; i++)
                if (strncmp(h + i, needle, nl) == 0) ref = h + i;
            checks++;
            if (r != ref) fail(off, len, "strstr differs from naive search");
            if (strstr(h, "") != h) fail(off, len, "empty needle");
            mix(r ? (uint64_t)(r - h) : 7777);
        }
    end();

    begin("strcpy");
    for (unsigned off = 0; off < 64; off++)
        for (unsigned k = 0; k < nlens; k++) {
            unsigned len = lens[k];
            char *s = (char *)place(sguard, off, len + 1), *d = (char *)place(dguard, (off * 9 + 5) & 63, len + 1);
            ref_fill((unsigned char *)s, len, len);
            s[len] = 0;
            char *r = strcpy(d, s);
            checks++;
            if (r != d || !ref_eq((unsigned char *)d, (unsigned char *)s, len + 1)) fail(off, len, "strcpy");
            char *e = stpcpy(d, s);
            if (e != d + len) fail(off, len, "stpcpy end");
        }
    end();

    (void)sbase;
    (void)dbase;
    printf("done\n");
    return 0;
}
