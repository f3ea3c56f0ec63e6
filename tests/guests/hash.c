/* Hashes a pseudo-random buffer with FNV-1a (64 bit, bytewise) and an xxhash64-like hash
 * (8-byte lanes, multiply-rotate), several passes.
 * Usage: hash [BYTES [PASSES]]  (default 16 MiB, 24 passes). Prints the hashes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint64_t P1 = 0x9E3779B185EBCA87ULL, P2 = 0xC2B2AE3D27D4EB4FULL, P3 = 0x165667B19E3779F9ULL,
                      P4 = 0x85EBCA77C2B2AE63ULL, P5 = 0x27D4EB2F165667C5ULL;
static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t rd64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline uint64_t round1(uint64_t acc, uint64_t in) { return rotl(acc + in * P2, 31) * P1; }

static uint64_t xxh64_like(const unsigned char *p, size_t len, uint64_t seed) {
    const unsigned char *end = p + len;
    uint64_t h;
    if (len >= 32) {
        uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
        while (p + 32 <= end) {
            v1 = round1(v1, rd64(p));
            v2 = round1(v2, rd64(p + 8));
            v3 = round1(v3, rd64(p + 16));
            v4 = round1(v4, rd64(p + 24));
            p += 32;
        }
        h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
        h = (h ^ round1(0, v1)) * P1 + P4;
        h = (h ^ round1(0, v2)) * P1 + P4;
        h = (h ^ round1(0, v3)) * P1 + P4;
        h = (h ^ round1(0, v4)) * P1 + P4;
    } else {
        h = seed + P5;
    }
    h += (uint64_t)len;
    while (p + 8 <= end) {
        h ^= round1(0, rd64(p));
        h = rotl(h, 27) * P1 + P4;
        p += 8;
    }
    while (p < end) {
        h ^= (*p++) * P5;
        h = rotl(h, 11) * P1;
    }
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

static uint64_t fnv1a(const unsigned char *p, size_t len) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

int main(int argc, char **argv) {
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 0) : 16u << 20;
    int passes = argc > 2 ? atoi(argv[2]) : 24;
    unsigned char *buf = malloc(n + 8);
    if (!buf) return 1;
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (unsigned char)(x >> 24);
    }
    uint64_t acc = 0;
    for (int pass = 0; pass < passes; pass++) {
        size_t off = (size_t)pass % 8, len = n - off;
        uint64_t a = fnv1a(buf + off, len / 4);
        uint64_t b = xxh64_like(buf + off, len, (uint64_t)pass);
        if (pass < 3) printf("pass %d: fnv1a %016llx xxh64-like %016llx\n", pass, (unsigned long long)a, (unsigned long long)b);
        acc = acc * 31 + (a ^ b);
    }
    printf("hash n=%zu passes=%d checksum %016llx\n", n, passes, (unsigned long long)acc);
    free(buf);
    return 0;
}
