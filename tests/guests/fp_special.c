/* Floating point: special values (nan, inf, denormals, -0.0), every rounding mode
 * (fesetround), exception flags, fma, sqrt, rounding functions, conversions float<->int
 * including saturation and NaN (through casts = fcvtzs/fcvtzu, and lrint/llround...),
 * float<->double, NaN propagation and payloads, FPCR.FZ / FPCR.DN on AArch64.
 * Values are printed with %a and %.17g and as raw bits. */
#include <fenv.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static uint64_t dbits(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }
static uint32_t fbits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static double dfrom(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }
static float ffrom(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static volatile double dv[16 + 20];
static volatile float fv[24];
static unsigned ndv, nfv;

static void init_values(void) {
    double d[] = {0.0, -0.0, 1.0, -1.0, 0.5, 1.5, 2.5, -2.5, 0.1, 1.0 / 3.0, 1e10, -1e10, 1e19, 1e20, -1e20,
                  4294967295.5, 2147483647.5, -2147483648.5, 9007199254740993.0, 18446744073709551616.0,
                  9223372036854775807.0, DBL_MAX, DBL_MIN, 4.9406564584124654e-324, 2.2250738585072009e-308,
                  INFINITY, -INFINITY, NAN, -NAN, dfrom(0x7ff0000000000001ULL) /* sNaN */,
                  dfrom(0x7ff8000000012345ULL) /* qNaN payload */, 0.49999999999999994, 6.02214076e23, -3.75};
    ndv = sizeof d / sizeof d[0];
    for (unsigned i = 0; i < ndv; i++) dv[i] = d[i];
    float f[] = {0.0f, -0.0f, 1.0f, -1.5f, 0.1f, 16777217.0f, 3.4e38f, FLT_MAX, FLT_MIN, 1.4e-45f, 1e-40f,
                 INFINITY, -INFINITY, NAN, ffrom(0x7f800001u), ffrom(0xffc00123u), 2.5f, -2.5f, 1e10f, -1e10f,
                 4294967296.0f, 0.33333334f};
    nfv = sizeof f / sizeof f[0];
    for (unsigned i = 0; i < nfv; i++) fv[i] = f[i];
}

static void flags(const char *what) {
    int e = fetestexcept(FE_ALL_EXCEPT);
    printf("  flags %-12s %s%s%s%s%s\n", what, e & FE_INVALID ? "I" : "-", e & FE_DIVBYZERO ? "Z" : "-",
           e & FE_OVERFLOW ? "O" : "-", e & FE_UNDERFLOW ? "U" : "-", e & FE_INEXACT ? "X" : "-");
    feclearexcept(FE_ALL_EXCEPT);
}

static void pd(const char *name, double x) { printf("  %-10s %-24a %.17g [%016llx]\n", name, x, x, (unsigned long long)dbits(x)); }
static void pf(const char *name, float x) { printf("  %-10s %-16a %.9g [%08x]\n", name, (double)x, (double)x, fbits(x)); }

/* Conversions through casts (fcvtzs/fcvtzu on A64: saturating, NaN -> 0). The C behaviour is
 * undefined for out-of-range values, so only the A64 build prints the out-of-range ones. */
#ifdef __aarch64__
#define CVT(type, insn, reg, src, x)                                                        \
    ({ type r__; __asm__ volatile(insn " %" reg "0, %" src "1" : "=r"(r__) : "w"(x)); r__; })
#endif

static void conversions(void) {
    printf("== conversions ==\n");
    for (unsigned i = 0; i < ndv; i++) {
        double x = dv[i];
        printf("d %-24a", x);
#ifdef __aarch64__
        printf(" s32 %d u32 %u s64 %lld u64 %llu", CVT(int32_t, "fcvtzs", "w", "d", x), CVT(uint32_t, "fcvtzu", "w", "d", x),
               (long long)CVT(int64_t, "fcvtzs", "x", "d", x), (unsigned long long)CVT(uint64_t, "fcvtzu", "x", "d", x));
        printf(" ns %lld as %lld ps %d ms %d", (long long)CVT(int64_t, "fcvtns", "x", "d", x),
               (long long)CVT(int64_t, "fcvtas", "x", "d", x), CVT(int32_t, "fcvtps", "w", "d", x),
               CVT(int32_t, "fcvtms", "w", "d", x));
#endif
        feclearexcept(FE_ALL_EXCEPT);
        long lr = lrint(x);
        long long llr = llround(x);
        long lro = lround(x);
        int e = fetestexcept(FE_INVALID | FE_INEXACT);
        float f = (float)x;
        printf(" lrint %ld llround %lld lround %ld%s%s f %a [%08x]\n", lr, llr, lro, e & FE_INVALID ? " I" : "",
               e & FE_INEXACT ? " X" : "", (double)f, fbits(f));
    }
    for (unsigned i = 0; i < nfv; i++) {
        float x = fv[i];
        printf("f %-16a", (double)x);
#ifdef __aarch64__
        printf(" s32 %d u32 %u s64 %lld u64 %llu", CVT(int32_t, "fcvtzs", "w", "s", x), CVT(uint32_t, "fcvtzu", "w", "s", x),
               (long long)CVT(int64_t, "fcvtzs", "x", "s", x), (unsigned long long)CVT(uint64_t, "fcvtzu", "x", "s", x));
#endif
        double d = x;
        printf(" d %a [%016llx] lrintf %ld\n", d, (unsigned long long)dbits(d), lrintf(x));
    }
    volatile int64_t iv[] = {0, 1, -1, INT64_MAX, INT64_MIN, 9007199254740993LL, (int64_t)0xfffffffffffff801ULL, 16777217, -16777217, 123456789012345678LL};
    for (unsigned i = 0; i < sizeof iv / sizeof iv[0]; i++) {
        int64_t v = iv[i];
        printf("i %lld -> d %a u->d %a f %a u->f %a i32->f %a u32->d %a\n", (long long)v, (double)v, (double)(uint64_t)v,
               (double)(float)v, (double)(float)(uint64_t)v, (double)(float)(int32_t)v, (double)(uint32_t)v);
    }
    flags("conv");
}

static const int modes[] = {FE_TONEAREST, FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO};
static const char *mode_names[] = {"nearest", "upward", "downward", "towardzero"};

static void arithmetic(void) {
    for (unsigned m = 0; m < 4; m++) {
        fesetround(modes[m]);
        printf("== rounding mode %s (fegetround ok: %d) ==\n", mode_names[m], fegetround() == modes[m]);
        feclearexcept(FE_ALL_EXCEPT);
        volatile double one = 1, three = 3, two = 2, tenth = 0.1, big = 1e308, tiny = 1e-308;
        pd("1/3", one / three);
        pd("-1/3", -one / three);
        pd("2/3", two / three);
        pd("sqrt2", sqrt(two));
        pd("0.1*3", tenth * three);
        pd("0.1+0.2", tenth + 0.2 * one);
        pd("fma", fma(tenth, three, -0.3 * one));
        pd("big*10", big * 10);
        pd("tiny/1e10", tiny / 1e10);
        pd("rint2.5", rint(2.5 * one));
        pd("rint-2.5", rint(-2.5 * one));
        pd("nearbyint", nearbyint(-0.5 * one));
        pd("1e16+1", 1e16 * one + one);
        pf("1/3f", (float)one / (float)three);
        pf("sqrtf2", sqrtf((float)two));
        pf("fmaf", fmaf((float)tenth, 3.0f, -0.3f));
        pf("d->f", (float)(one / three));
        pf("f big", (float)(big));
        printf("  lrint(2.5)=%ld lrint(-2.5)=%ld lrint(3.5)=%ld llrint(1e15+.5)=%lld (int)2.7=%d\n", lrint(2.5 * one),
               lrint(-2.5 * one), lrint(3.5 * one), llrint(1e15 * one + 0.5), (int)(2.7 * one));
        printf("  printf: %.3f %.0f %.0f %.2e %g %.1f\n", one / three, 0.5 * one, 2.5 * one, two / three, one / three, -0.05 * one);
        flags("arith");
    }
    fesetround(FE_TONEAREST);
}

static void specials(void) {
    printf("== binary operations on special values ==\n");
    static const char *opn[] = {"add", "sub", "mul", "div", "min", "max", "fmin", "fmax", "fma", "fmod", "hypot", "pow"};
    for (unsigned op = 0; op < sizeof opn / sizeof opn[0]; op++) {
        uint64_t h = 1469598103934665603ULL;
        feclearexcept(FE_ALL_EXCEPT);
        for (unsigned i = 0; i < ndv; i++)
            for (unsigned j = 0; j < ndv; j++) {
                double a = dv[i], b = dv[j], r;
                switch (op) {
                case 0: r = a + b; break;
                case 1: r = a - b; break;
                case 2: r = a * b; break;
                case 3: r = a / b; break;
                case 4: r = a < b ? a : b; break;
                case 5: r = a > b ? a : b; break;
                case 6: r = fmin(a, b); break;
                case 7: r = fmax(a, b); break;
                case 8: r = fma(a, b, dv[(i + j) % ndv]); break;
                case 9: r = fmod(a, b); break;
                case 10: r = hypot(a, b); break;
                default: r = pow(a, b); break;
                }
                h = (h ^ dbits(r)) * 1099511628211ULL;
                if (i == 27 || (i < 4 && j < 4)) printf("  %s(%a,%a) = %a [%016llx]\n", opn[op], a, b, r, (unsigned long long)dbits(r));
            }
        printf("%-6s hash %016llx\n", opn[op], (unsigned long long)h);
        flags(opn[op]);
    }
    printf("== unary ==\n");
    for (unsigned i = 0; i < ndv; i++) {
        double x = dv[i];
        printf("%-24a sqrt %a floor %a ceil %a trunc %a round %a rint %a neg %a abs %a\n", x, sqrt(x), floor(x), ceil(x),
               trunc(x), round(x), rint(x), -x, fabs(x));
        int ex = 0;
        double fr = frexp(x, &ex);
        printf("    class %d nan %d inf %d sign %d normal %d frexp %a %d ilogb %d logb %a copysign %a nextafter %a\n", fpclassify(x),
               isnan(x) != 0, isinf(x), signbit(x) != 0, isnormal(x), fr, ex, ilogb(x), logb(x), copysign(3.0, x),
               nextafter(x, 0.0));
        float xf = (float)x;
        printf("    f: sqrt %a floor %a round %a nearbyint %a\n", (double)sqrtf(xf), (double)floorf(xf), (double)roundf(xf),
               (double)nearbyintf(xf));
    }
    flags("unary");
    printf("== float ops ==\n");
    uint64_t h = 0;
    for (unsigned i = 0; i < nfv; i++)
        for (unsigned j = 0; j < nfv; j++) {
            float a = fv[i], b = fv[j];
            float r[] = {a + b, a - b, a * b, a / b, fmaf(a, b, 1.0f), fminf(a, b), fmaxf(a, b)};
            for (unsigned k = 0; k < 7; k++) h = (h ^ fbits(r[k])) * 1099511628211ULL + k;
            if (i == 13) printf("  nan op %a: %08x %08x %08x %08x\n", (double)b, fbits(r[0]), fbits(r[2]), fbits(r[3]), fbits(r[5]));
        }
    printf("float hash %016llx\n", (unsigned long long)h);
    flags("float");
    printf("== comparisons with nan ==\n");
    volatile double n = NAN, one = 1.0;
    printf("  n<1 %d n>1 %d n==n %d n!=n %d n<=1 %d isless %d isunordered %d isgreaterequal %d\n", n < one, n > one, n == n,
           n != n, n <= one, isless(n, one), isunordered(n, one), isgreaterequal(one, n));
    flags("cmp");
    volatile double a = 0.0, b = -0.0;
    printf("  0==-0 %d  1/-0 %a  -0+0 %a  -0-0 %a  -0*0 %a  sqrt(-0) %a\n", a == b, one / b, b + a, b - a, b * a, sqrt(b));
    printf("  inf-inf %a  0*inf %a  0/0 [%016llx]  sqrt(-1) [%016llx]\n", (double)INFINITY - (double)INFINITY * one,
           0.0 * one * INFINITY, (unsigned long long)dbits(a / a), (unsigned long long)dbits(sqrt(-one)));
    flags("invalid");
}

#ifdef __aarch64__
static uint64_t get_fpcr(void) { uint64_t r; __asm__ volatile("mrs %0, fpcr" : "=r"(r)); return r; }
static void set_fpcr(uint64_t r) { __asm__ volatile("msr fpcr, %0" : : "r"(r)); }
static void fpcr_modes(void) {
    printf("== FPCR ==\n");
    uint64_t old = get_fpcr();
    printf("  fpcr initial %llx\n", (unsigned long long)old);
    volatile double tiny = 2.2250738585072014e-308, half = 0.5, dn = 4.9406564584124654e-324;
    volatile float tf = 1.17549435e-38f;
    set_fpcr(old | (1u << 24)); /* FZ */
    printf("  FZ: fpcr %llx tiny*0.5 %a denorm+0 %a denorm*1 %a f %a\n", (unsigned long long)get_fpcr(), tiny * half, dn + 0.0,
           dn * 1.0, (double)(tf * 0.5f));
    flags("fz");
    set_fpcr(old | (1u << 25)); /* DN */
    volatile double pay = dfrom(0x7ff8000000012345ULL);
    printf("  DN: nan+1 [%016llx] (payload dropped)\n", (unsigned long long)dbits(pay + 1.0));
    set_fpcr(old);
    printf("  default: nan+1 [%016llx] (payload kept)\n", (unsigned long long)dbits(pay + 1.0));
    set_fpcr(old | (3u << 22)); /* RMode = toward zero */
    printf("  RMode=RZ via fpcr: fegetround==FE_TOWARDZERO %d, 1/3 %a\n", fegetround() == FE_TOWARDZERO, 1.0 / (3.0 * half * 2));
    set_fpcr(old);
    uint64_t fpsr;
    feraiseexcept(FE_OVERFLOW | FE_INEXACT);
    __asm__ volatile("mrs %0, fpsr" : "=r"(fpsr));
    printf("  fpsr after feraiseexcept(OVERFLOW|INEXACT) %llx\n", (unsigned long long)fpsr);
    flags("raised");
}
#endif

int main(void) {
    init_values();
    feclearexcept(FE_ALL_EXCEPT);
    conversions();
    arithmetic();
    specials();
#ifdef __aarch64__
    fpcr_modes();
#endif
    return 0;
}
