/* Every A64 condition code after cmp/cmn/tst/adds/subs/ccmp on edge values (64 and 32 bit),
 * through cset (csel family) and through conditional branches, plus the C comparisons the
 * compiler lowers itself. Each line: operation, operand index, one hex mask per second operand
 * (bit k = condition k in the order eq ne cs cc mi pl vs vc hi ls ge lt gt le al nv). */
#include <stdint.h>
#include <stdio.h>
#include <limits.h>

static volatile int64_t vals[] = {
    0, 1, -1, 2, 0x7f, 0x80, 0x7fffffff, (int64_t)0x80000000ULL, (int64_t)0xffffffffULL,
    INT64_MAX, INT64_MIN, INT64_MIN + 1, INT64_MAX - 1, (int64_t)0x8000000080000000ULL, 0x100000000LL, -0x80000000LL,
};
#define NV (sizeof vals / sizeof vals[0])

#ifdef __aarch64__
#define CSETS(res)                                                                              \
    "cset %w[t], eq\n orr %w[r], wzr, %w[t]\n"                                                  \
    "cset %w[t], ne\n orr %w[r], %w[r], %w[t], lsl #1\n"                                        \
    "cset %w[t], cs\n orr %w[r], %w[r], %w[t], lsl #2\n"                                        \
    "cset %w[t], cc\n orr %w[r], %w[r], %w[t], lsl #3\n"                                        \
    "cset %w[t], mi\n orr %w[r], %w[r], %w[t], lsl #4\n"                                        \
    "cset %w[t], pl\n orr %w[r], %w[r], %w[t], lsl #5\n"                                        \
    "cset %w[t], vs\n orr %w[r], %w[r], %w[t], lsl #6\n"                                        \
    "cset %w[t], vc\n orr %w[r], %w[r], %w[t], lsl #7\n"                                        \
    "cset %w[t], hi\n orr %w[r], %w[r], %w[t], lsl #8\n"                                        \
    "cset %w[t], ls\n orr %w[r], %w[r], %w[t], lsl #9\n"                                        \
    "cset %w[t], ge\n orr %w[r], %w[r], %w[t], lsl #10\n"                                       \
    "cset %w[t], lt\n orr %w[r], %w[r], %w[t], lsl #11\n"                                       \
    "cset %w[t], gt\n orr %w[r], %w[r], %w[t], lsl #12\n"                                       \
    "cset %w[t], le\n orr %w[r], %w[r], %w[t], lsl #13\n"                                       \
    "csel %w[t], %w[one], wzr, al\n orr %w[r], %w[r], %w[t], lsl #14\n"                         \
    "csinc %w[t], wzr, wzr, nv\n orr %w[r], %w[r], %w[t], lsl #15\n"

#define FLAGOP(name, setup)                                                                     \
    static unsigned name(uint64_t a, uint64_t b) {                                              \
        unsigned r, t;                                                                          \
        __asm__ volatile(setup "\n" CSETS() : [r] "=&r"(r), [t] "=&r"(t) : [a] "r"(a), [b] "r"(b), [one] "r"(1) : "cc"); \
        return r;                                                                               \
    }
FLAGOP(f_cmp64, "cmp %[a], %[b]")
FLAGOP(f_cmp32, "cmp %w[a], %w[b]")
FLAGOP(f_cmn64, "cmn %[a], %[b]")
FLAGOP(f_cmn32, "cmn %w[a], %w[b]")
FLAGOP(f_tst64, "tst %[a], %[b]")
FLAGOP(f_tst32, "tst %w[a], %w[b]")
FLAGOP(f_adcs64, "cmp %[a], %[b]\n adcs %[t], %[a], %[b]")
FLAGOP(f_sbcs32, "cmn %w[b], %w[a]\n sbcs %w[t], %w[a], %w[b]")
FLAGOP(f_ccmp64, "cmp %[a], #5\n ccmp %[a], %[b], #0xa, ne")
FLAGOP(f_ccmn32, "tst %w[b], #1\n ccmn %w[a], %w[b], #0x5, eq")
FLAGOP(f_negs64, "negs %[t], %[a]\n ccmp %[b], #31, #3, vc")
FLAGOP(f_ands64, "ands %[t], %[a], %[b], ror #7")
FLAGOP(f_cmpext, "cmp %[a], %w[b], sxtw #2")
FLAGOP(f_cmpsh, "cmp %w[a], %w[b], asr #5")

/* The same conditions through b.cond branches. */
#define BR(cond, bit) "b." #cond " 1f\n b 2f\n1: orr %w[r], %w[r], #" #bit "\n2:\n"
static unsigned b_cmp64(uint64_t a, uint64_t b) {
    unsigned r = 0;
    __asm__ volatile("mov %w[r], wzr\n cmp %[a], %[b]\n"
        BR(eq, 0x1) BR(ne, 0x2) BR(cs, 0x4) BR(cc, 0x8) BR(mi, 0x10) BR(pl, 0x20) BR(vs, 0x40) BR(vc, 0x80)
        BR(hi, 0x100) BR(ls, 0x200) BR(ge, 0x400) BR(lt, 0x800) BR(gt, 0x1000) BR(le, 0x2000) BR(al, 0x4000)
        : [r] "=&r"(r) : [a] "r"(a), [b] "r"(b) : "cc");
    return r;
}
static unsigned b_cbz(uint64_t a, uint64_t b) {
    unsigned r = 0;
    __asm__ volatile("mov %w[r], wzr\n"
        "cbz %[a], 1f\n orr %w[r], %w[r], #1\n1:\n"
        "cbnz %w[a], 1f\n orr %w[r], %w[r], #2\n1:\n"
        "tbz %[a], #63, 1f\n orr %w[r], %w[r], #4\n1:\n"
        "tbnz %[b], #31, 1f\n orr %w[r], %w[r], #8\n1:\n"
        "tbz %[b], #0, 1f\n orr %w[r], %w[r], #16\n1:\n"
        "tbnz %[a], #32, 1f\n orr %w[r], %w[r], #32\n1:\n"
        : [r] "=&r"(r) : [a] "r"(a), [b] "r"(b) : "cc");
    return r;
}
#endif

/* Comparisons lowered by the compiler (portable). */
__attribute__((noinline)) static unsigned c_cmp(int64_t a, int64_t b) {
    uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
    int32_t a32 = (int32_t)a, b32 = (int32_t)b;
    uint32_t u32a = (uint32_t)a, u32b = (uint32_t)b;
    unsigned r = 0;
    r |= (a == b) << 0;
    r |= (a != b) << 1;
    r |= (a < b) << 2;
    r |= (a <= b) << 3;
    r |= (a > b) << 4;
    r |= (a >= b) << 5;
    r |= (ua < ub) << 6;
    r |= (ua <= ub) << 7;
    r |= (ua > ub) << 8;
    r |= (ua >= ub) << 9;
    r |= (a32 < b32) << 10;
    r |= (a32 >= b32) << 11;
    r |= (u32a < u32b) << 12;
    r |= (u32a > u32b) << 13;
    r |= (a32 == b32) << 14;
    if (a < 0) r |= 1u << 15;
    if (b32 <= 0) r |= 1u << 16;
    if ((int64_t)(a + b) < a) r |= 1u << 17;
    return r;
}
__attribute__((noinline)) static int64_t c_select(int64_t a, int64_t b) {
    int64_t x = a < b ? a : b;
    x += (uint64_t)a > (uint64_t)b ? 3 : -5;
    x ^= (int32_t)a == (int32_t)b ? b : ~a;
    x += (a & b) ? a + 1 : b - 1;
    return x;
}

typedef unsigned (*flagfn)(uint64_t, uint64_t);
static void table(const char *name, flagfn f) {
    for (unsigned i = 0; i < NV; i++) {
        printf("%-7s %2u:", name, i);
        for (unsigned j = 0; j < NV; j++) printf(" %04x", f((uint64_t)vals[i], (uint64_t)vals[j]));
        printf("\n");
    }
}
static unsigned c_cmp_u(uint64_t a, uint64_t b) { return c_cmp((int64_t)a, (int64_t)b); }
static unsigned c_sel_u(uint64_t a, uint64_t b) { return (unsigned)(c_select((int64_t)a, (int64_t)b) * 0x9e3779b1u >> 12) & 0xffff; }

int main(void) {
#ifdef __aarch64__
    table("cmp64", f_cmp64);
    table("cmp32", f_cmp32);
    table("cmn64", f_cmn64);
    table("cmn32", f_cmn32);
    table("tst64", f_tst64);
    table("tst32", f_tst32);
    table("adcs64", f_adcs64);
    table("sbcs32", f_sbcs32);
    table("ccmp64", f_ccmp64);
    table("ccmn32", f_ccmn32);
    table("negs64", f_negs64);
    table("ands64", f_ands64);
    table("cmpext", f_cmpext);
    table("cmpsh", f_cmpsh);
    table("bcond", b_cmp64);
    table("cbz/tbz", b_cbz);
#endif
    table("c_cmp", c_cmp_u);
    table("c_sel", c_sel_u);
    return 0;
}
