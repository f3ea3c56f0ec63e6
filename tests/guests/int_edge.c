/* Integer edge cases: wraparound, division (by zero gives 0 on A64, INT_MIN/-1), __int128,
 * shifts by >= width through registers, rotates, popcount/clz/ctz/cls, bswap, extensions,
 * multiply-high, overflow builtins. Prints per-operation hashes plus explicit edge lines. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <limits.h>

static volatile int64_t v64[] = {
    0, 1, -1, 2, -2, 3, -3, 7, 63, 64, 65, 127, 128, 255, 256, -256,
    INT64_MAX, INT64_MIN, INT64_MAX - 1, INT64_MIN + 1,
    0x7fffffffLL, 0x80000000LL, -0x80000000LL, 0xffffffffLL, 0x100000000LL,
    0x0123456789abcdefLL, (int64_t)0xfedcba9876543210ULL, 1000000007, -1000000007,
    (int64_t)0x8000000000000001ULL, 0x5555555555555555LL, (int64_t)0xaaaaaaaaaaaaaaaaULL,
};
#define N64 (sizeof v64 / sizeof v64[0])

static uint64_t hash;
static void mix(uint64_t x) {
    hash ^= x;
    hash *= 0x100000001b3ULL;
    hash ^= hash >> 29;
}

#ifdef __aarch64__
#define BIN64(name, insn) \
    static uint64_t name(uint64_t a, uint64_t b) { uint64_t r; __asm__ volatile(insn " %0, %1, %2" : "=r"(r) : "r"(a), "r"(b)); return r; }
#define BIN32(name, insn) \
    static uint32_t name(uint32_t a, uint32_t b) { uint32_t r; __asm__ volatile(insn " %w0, %w1, %w2" : "=r"(r) : "r"(a), "r"(b)); return r; }
BIN64(sdiv64, "sdiv")
BIN64(udiv64, "udiv")
BIN32(sdiv32, "sdiv")
BIN32(udiv32, "udiv")
BIN64(lsl64, "lsl")
BIN64(lsr64, "lsr")
BIN64(asr64, "asr")
BIN64(ror64, "ror")
BIN32(lsl32, "lsl")
BIN32(lsr32, "lsr")
BIN32(asr32, "asr")
BIN32(ror32, "ror")
BIN64(smulh64, "smulh")
BIN64(umulh64, "umulh")
#else
static uint64_t sdiv64(uint64_t a, uint64_t b) { int64_t x = a, y = b; return y == 0 ? 0 : (x == INT64_MIN && y == -1) ? (uint64_t)x : (uint64_t)(x / y); }
static uint64_t udiv64(uint64_t a, uint64_t b) { return b ? a / b : 0; }
static uint32_t sdiv32(uint32_t a, uint32_t b) { int32_t x = a, y = b; return y == 0 ? 0 : (x == INT32_MIN && y == -1) ? (uint32_t)x : (uint32_t)(x / y); }
static uint32_t udiv32(uint32_t a, uint32_t b) { return b ? a / b : 0; }
static uint64_t lsl64(uint64_t a, uint64_t b) { return a << (b & 63); }
static uint64_t lsr64(uint64_t a, uint64_t b) { return a >> (b & 63); }
static uint64_t asr64(uint64_t a, uint64_t b) { return (uint64_t)((int64_t)a >> (b & 63)); }
static uint64_t ror64(uint64_t a, uint64_t b) { b &= 63; return b ? (a >> b) | (a << (64 - b)) : a; }
static uint32_t lsl32(uint32_t a, uint32_t b) { return a << (b & 31); }
static uint32_t lsr32(uint32_t a, uint32_t b) { return a >> (b & 31); }
static uint32_t asr32(uint32_t a, uint32_t b) { return (uint32_t)((int32_t)a >> (b & 31)); }
static uint32_t ror32(uint32_t a, uint32_t b) { b &= 31; return b ? (a >> b) | (a << (32 - b)) : a; }
static uint64_t smulh64(uint64_t a, uint64_t b) { return (uint64_t)(((__int128)(int64_t)a * (int64_t)b) >> 64); }
static uint64_t umulh64(uint64_t a, uint64_t b) { return (uint64_t)(((unsigned __int128)a * b) >> 64); }
#endif

/* C-level operations, kept out of line so -O2 cannot fold them. */
__attribute__((noinline)) static uint64_t c_rotl64(uint64_t x, unsigned n) { n &= 63; return (x << n) | (x >> ((64 - n) & 63)); }
__attribute__((noinline)) static uint32_t c_rotr32(uint32_t x, unsigned n) { n &= 31; return (x >> n) | (x << ((32 - n) & 31)); }
__attribute__((noinline)) static __int128 mul128(__int128 a, __int128 b) { return a * b; }
__attribute__((noinline)) static unsigned __int128 udiv128(unsigned __int128 a, unsigned __int128 b) { return a / b; }
__attribute__((noinline)) static __int128 sdiv128(__int128 a, __int128 b) { return a / b; }
__attribute__((noinline)) static __int128 smod128(__int128 a, __int128 b) { return a % b; }
__attribute__((noinline)) static int64_t smod64(int64_t a, int64_t b) { return a % b; }
__attribute__((noinline)) static uint32_t umod32(uint32_t a, uint32_t b) { return a % b; }

static void print128(const char *name, unsigned __int128 v) {
    printf("%s = %016llx%016llx\n", name, (unsigned long long)(v >> 64), (unsigned long long)v);
}

#define OPHASH(label, expr)                                  \
    do {                                                     \
        hash = 0xcbf29ce484222325ULL;                        \
        for (unsigned i = 0; i < N64; i++)                   \
            for (unsigned j = 0; j < N64; j++) {             \
                uint64_t a = (uint64_t)v64[i], b = (uint64_t)v64[j]; \
                (void)a; (void)b;                            \
                mix((uint64_t)(expr));                       \
            }                                                \
        printf("%-10s %016llx\n", label, (unsigned long long)hash); \
    } while (0)

int main(void) {
    printf("== explicit edge cases ==\n");
    printf("sdiv64(INT64_MIN,-1) = %016llx\n", (unsigned long long)sdiv64(INT64_MIN, -1));
    printf("sdiv64(5,0) = %llx  udiv64(5,0) = %llx\n", (unsigned long long)sdiv64(5, 0), (unsigned long long)udiv64(5, 0));
    printf("sdiv32(INT32_MIN,-1) = %08x\n", sdiv32((uint32_t)INT32_MIN, (uint32_t)-1));
    printf("sdiv32(-7,0) = %x  udiv32(7,0) = %x\n", sdiv32((uint32_t)-7, 0), udiv32(7, 0));
    printf("sdiv64(-7,2) = %lld  sdiv64(7,-2) = %lld\n", (long long)sdiv64(-7, 2), (long long)sdiv64(7, (uint64_t)-2));
    printf("smod64(-7,3) = %lld  smod64(7,-3) = %lld  umod32(0xffffffff,10) = %u\n",
           (long long)smod64(v64[7] * -1, 3), (long long)smod64(v64[7], -3), umod32(0xffffffffu, 10));
    for (unsigned s = 0; s <= 130; s += (s < 70 ? 1 : 29)) {
        uint64_t x = (uint64_t)v64[25];
        printf("shift %3u: lsl %016llx lsr %016llx asr %016llx ror %016llx | w: %08x %08x %08x %08x\n", s,
               (unsigned long long)lsl64(x, s), (unsigned long long)lsr64((uint64_t)v64[26], s),
               (unsigned long long)asr64((uint64_t)v64[26], s), (unsigned long long)ror64(x, s),
               lsl32(0x87654321u, s), lsr32(0x87654321u, s), asr32(0x87654321u, s), ror32(0x87654321u, s));
    }
    volatile int32_t imax = INT32_MAX, imin = INT32_MIN;
    volatile uint32_t umax = UINT32_MAX;
    printf("wrap: %d %d %u %u %d\n", (int32_t)((uint32_t)imax + 1), (int32_t)((uint32_t)imin - 1), umax + 1, 0u - umax,
           (int32_t)((uint32_t)imax * 2u));
    int64_t r64a, r64b, r64c;
    int32_t r32a, r32b;
    uint64_t ru64;
    printf("ovf: add64 %d sub64 %d mul64 %d add32 %d mul32 %d umul64 %d\n",
           __builtin_add_overflow((int64_t)v64[16], (int64_t)v64[1], &r64a),
           __builtin_sub_overflow((int64_t)v64[17], (int64_t)v64[1], &r64b),
           __builtin_mul_overflow((int64_t)v64[21], (int64_t)v64[21], &r64c),
           __builtin_add_overflow((int32_t)imax, 1, &r32a), __builtin_mul_overflow((int32_t)imax, 3, &r32b),
           __builtin_mul_overflow((uint64_t)v64[23], (uint64_t)v64[24], &ru64));
    __int128 big = (__int128)v64[16] * 3 + 12345;
    print128("int128 mul", mul128(big, (__int128)v64[26]));
    print128("int128 mul2", mul128((__int128)v64[17], (__int128)v64[17]));
    print128("uint128 div", udiv128(((unsigned __int128)v64[25] << 64) | (uint64_t)v64[26], (uint64_t)v64[28]));
    print128("uint128 div2", udiv128(~(unsigned __int128)0, ((unsigned __int128)1 << 64) + 3));
    print128("int128 div", sdiv128(-big * 1000, 7));
    print128("int128 mod", smod128(-big * 1000, 1000000007));
    print128("int128 min/-1", sdiv128(-(__int128)(((unsigned __int128)1) << 126), -3));
    printf("bits: popc %d %d clz %d %d ctz %d %d clrsb %d bswap %016llx %08x %04x\n",
           __builtin_popcountll((uint64_t)v64[25]), __builtin_popcount((uint32_t)v64[26]), __builtin_clzll((uint64_t)v64[25]),
           __builtin_clz((uint32_t)v64[1]), __builtin_ctzll((uint64_t)v64[24]), __builtin_ctz(0x80u * (uint32_t)v64[1]),
           __builtin_clrsbll((int64_t)v64[15]), (unsigned long long)__builtin_bswap64((uint64_t)v64[25]),
           __builtin_bswap32((uint32_t)v64[25]), __builtin_bswap16((uint16_t)v64[25]));

    printf("== operation hashes over %u x %u values ==\n", (unsigned)N64, (unsigned)N64);
    OPHASH("add64", a + b);
    OPHASH("sub64", a - b);
    OPHASH("mul64", a * b);
    OPHASH("add32", (uint32_t)a + (uint32_t)b);
    OPHASH("mul32", (uint32_t)a * (uint32_t)b);
    OPHASH("smull", (int64_t)(int32_t)a * (int64_t)(int32_t)b);
    OPHASH("umull", (uint64_t)(uint32_t)a * (uint64_t)(uint32_t)b);
    OPHASH("smulh", smulh64(a, b));
    OPHASH("umulh", umulh64(a, b));
    OPHASH("sdiv64", sdiv64(a, b));
    OPHASH("udiv64", udiv64(a, b));
    OPHASH("sdiv32", sdiv32((uint32_t)a, (uint32_t)b));
    OPHASH("udiv32", udiv32((uint32_t)a, (uint32_t)b));
    OPHASH("lsl64", lsl64(a, b));
    OPHASH("lsr64", lsr64(a, b));
    OPHASH("asr64", asr64(a, b));
    OPHASH("ror64", ror64(a, b));
    OPHASH("lsl32", lsl32((uint32_t)a, (uint32_t)b));
    OPHASH("lsr32", lsr32((uint32_t)a, (uint32_t)b));
    OPHASH("asr32", asr32((uint32_t)a, (uint32_t)b));
    OPHASH("ror32", ror32((uint32_t)a, (uint32_t)b));
    OPHASH("rotl64c", c_rotl64(a, (unsigned)b));
    OPHASH("rotr32c", c_rotr32((uint32_t)a, (unsigned)b));
    OPHASH("and/orr", (a & b) ^ ((a | ~b) << 1) ^ (a ^ b) * 3);
    OPHASH("bic/orn", (a & ~b) + (a | ~b));
    OPHASH("mul128lo", (uint64_t)mul128((__int128)(int64_t)a, (__int128)(int64_t)b));
    OPHASH("mul128hi", (uint64_t)(mul128((__int128)(int64_t)a, (__int128)(int64_t)b) >> 64));
    OPHASH("udiv128", b ? (uint64_t)udiv128(((unsigned __int128)a << 64) | b, b) : 0);
    OPHASH("extend", (uint64_t)(int8_t)a + (uint64_t)(int16_t)b + (uint64_t)(int32_t)(a >> 3) + (uint64_t)(uint8_t)(b >> 5) + (uint64_t)(uint16_t)(a ^ b));
    OPHASH("popcnt", (uint64_t)__builtin_popcountll(a ^ (b << 7)) + __builtin_popcount((uint32_t)(a + b)));
    OPHASH("clz", (a | b) ? __builtin_clzll(a | b) + 64u * ((uint32_t)b ? (unsigned)__builtin_clz((uint32_t)b) : 99) : 1000);
    OPHASH("ctz", (a | b) ? __builtin_ctzll(a | b) + 64u * ((uint32_t)a ? (unsigned)__builtin_ctz((uint32_t)a) : 99) : 1000);
    OPHASH("clrsb", __builtin_clrsbll((int64_t)(a - b)) * 100 + __builtin_clrsb((int32_t)(a + b)));
    OPHASH("bswap", __builtin_bswap64(a + b) ^ __builtin_bswap32((uint32_t)(a - b)) ^ __builtin_bswap16((uint16_t)(a * b)));
    OPHASH("bitfld", ((a >> 13) & 0x7ff) | ((b & 0x3f) << 40) | (uint64_t)((int64_t)(a << 20) >> 50));
    OPHASH("cmpsel", ((int64_t)a < (int64_t)b ? a : b) + (a > b ? 1u : 7u) + ((int32_t)a >= (int32_t)b ? a : ~b));
    OPHASH("abs/neg", (uint64_t)((int64_t)a < 0 ? -(int64_t)a : (int64_t)a) ^ (uint64_t)(-(int32_t)b));
    return 0;
}
