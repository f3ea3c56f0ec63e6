/* printf and scanf of floating point: %e %f %g %a with many precisions and flags, strtod /
 * strtof / strtold / sscanf of many spellings (hex floats, inf/nan, overflow, underflow,
 * denormals, trailing junk), with errno and the end position. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile double vals[] = {0.0, -0.0, 1.0, -1.0, 0.1, 0.5, 1.5, 2.5, 123.456, -9.87654321e-5, 1e21, 1e22, 1e-7,
                                 3.141592653589793, 2.718281828459045, 1e308, DBL_MAX, DBL_MIN, 4.9406564584124654e-324,
                                 1234567890123456789.0, 0.000123456789, 999999.5, 9.5, 0.05, INFINITY, -INFINITY, NAN};
#define NV (sizeof vals / sizeof vals[0])

static const char *inputs[] = {
    "0", "-0", "1", "+1.5", "  42.125xyz", "1e10", "1E-10", "3.14159265358979323846264338327950288", ".5", "5.", "-.e1",
    "0x1p-2", "0x1.8p3", "0X.8P+1", "0x1.fffffffffffffp1023", "0x1p-1074", "0x1p-1075", "0x1.0000000000000801p0",
    "inf", "-Infinity", "INFINITYx", "nan", "-nan", "nan(123)", "NAN(0x7ff)", "1e400", "-1e400", "1e-400", "4.9e-324",
    "2.4703282292062327e-324", "2.4703282292062328e-324", "2.2250738585072011e-308", "2.2250738585072012e-308",
    "1.7976931348623157e308", "1.7976931348623158e308", "1.7976931348623159e308", "9007199254740993",
    "0.1000000000000000055511151231257827", "123456789012345678901234567890", "1e", "1e+", "e5", "-", "", "   ",
    "0x", "0x.p1", "1,5", "1_000", "00000000000000000000000000001.5", "100000000000000000000000000000000000000000e-42",
};
#define NI (sizeof inputs / sizeof inputs[0])

int main(void) {
    printf("== printf ==\n");
    static const char *fmts[] = {"%e", "%f", "%g", "%a", "%E", "%G", "%A"};
    for (unsigned i = 0; i < NV; i++) {
        double x = vals[i];
        printf("[%u]", i);
        for (unsigned f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
            printf(" ");
            printf(fmts[f], x);
        }
        printf("\n");
        for (int p = 0; p <= 20; p += (p < 6 ? 1 : 7)) {
            printf("   .%-2d %.*e | %.*f | %.*g | %.*a\n", p, p, x, p, fabs(x) > 1e30 ? 1.0 / x : x, p, x, p, x);
        }
        printf("   flags |%+.3e|%- 12.4f|%#.0f|%#g|%012.3f|%-+14.6g|%#.3a|%'.2f|\n", x, x, x, x, x, x, x, x);
    }
    float ff = 0.1f;
    long double ld = 1.0L / 3.0L;
    printf("float %.10f %a  long double %.30Lf %La %Lg\n", (double)ff, (double)ff, ld, ld, ld * 1e300L);
    printf("ints %d %5.3d %-6x| %#o %+ld %llu %hhd %zu\n", -42, 7, 255, 8, 123456789L, 18446744073709551615ULL, (char)300, (size_t)99);
    printf("strings [%s] [%10s] [%-10s] [%.3s] [%c] [%%]\n", "abc", "right", "left", "truncate", 'Z');

    printf("== strtod / strtof / strtold ==\n");
    for (unsigned i = 0; i < NI; i++) {
        const char *s = inputs[i];
        char *end;
        errno = 0;
        double d = strtod(s, &end);
        int e1 = errno;
        long dend = end - s;
        errno = 0;
        float f = strtof(s, &end);
        int e2 = errno;
        long fend = end - s;
        errno = 0;
        long double l = strtold(s, &end);
        int e3 = errno;
        long lend = end - s;
        printf("%-40s d %-25a end %2ld %-6s f %-16a end %2ld %-6s ld %La end %ld %s\n", s, d, dend, e1 == ERANGE ? "ERANGE" : e1 ? "err" : "ok",
               (double)f, fend, e2 == ERANGE ? "ERANGE" : e2 ? "err" : "ok", l, lend, e3 == ERANGE ? "ERANGE" : e3 ? "err" : "ok");
    }
    printf("== sscanf ==\n");
    for (unsigned i = 0; i < NI; i++) {
        double d = -7;
        float f = -7;
        int n1 = -1, n2 = -1;
        int r1 = sscanf(inputs[i], "%lf%n", &d, &n1);
        int r2 = sscanf(inputs[i], "%4f%n", &f, &n2);
        printf("%-40s %d %a %d | %d %a %d\n", inputs[i], r1, d, n1, r2, (double)f, n2);
    }
    double a, b;
    int x;
    char word[16];
    int r = sscanf("3.25e2 , -0x1p4 17 tail", "%lf , %lg %d %15s", &a, &b, &x, word);
    printf("multi %d %g %g %d %s\n", r, a, b, x, word);
    r = sscanf("1.5 2.5", "%le %le", &a, &b);
    printf("multi2 %d %g %g\n", r, a, b);
    char buf[64];
    snprintf(buf, sizeof buf, "%.17g", 0.1);
    printf("roundtrip %s %d\n", buf, strtod(buf, NULL) == 0.1);
    printf("atof %g atoi %d atol %ld\n", atof("  -12.5e1x"), atoi(" -77z"), atol("9223372036854775807"));
    return 0;
}
