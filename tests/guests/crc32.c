/* Software CRC-32 (IEEE, reflected, polynomial 0xEDB88320): slicing-by-1 table, bitwise
 * for a prefix (cross-check), over a pseudo-random buffer, several passes.
 * Usage: crc32 [BYTES [PASSES]]  (default 8 MiB, 12 passes). Prints the CRCs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint32_t table[256];

static void make_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
}
static uint32_t crc_table(uint32_t crc, const unsigned char *p, size_t n) {
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}
static uint32_t crc_bitwise(uint32_t crc, const unsigned char *p, size_t n) {
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

int main(int argc, char **argv) {
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 0) : 8u << 20;
    int passes = argc > 2 ? atoi(argv[2]) : 12;
    make_table();
    printf("crc32(\"123456789\") = %08x (expect cbf43926)\n", crc_table(0, (const unsigned char *)"123456789", 9));
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) return 1;
    uint64_t x = 88172645463325252ULL;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    size_t pre = n < 4096 ? n : 4096;
    printf("bitwise prefix %08x table prefix %08x\n", crc_bitwise(0, buf, pre), crc_table(0, buf, pre));
    uint32_t acc = 0;
    for (int pass = 0; pass < passes; pass++) {
        acc = crc_table(acc, buf + (pass & 3), n - (pass & 3));
        if (pass < 3) printf("pass %d: %08x\n", pass, acc);
    }
    printf("crc32 n=%zu passes=%d checksum %08x\n", n, passes, acc);
    free(buf);
    return 0;
}
