/* The embedded sample guest of `vmrun demo`: a freestanding AArch64 Linux program (no libc)
 * that exercises the translator: arithmetic, division, bit operations, loops, calls,
 * recursion, memory, and the write/exit system calls. Rebuild with ./build.sh. */
typedef unsigned long u64;
typedef long i64;
typedef unsigned int u32;

static i64 sys3(i64 nr, i64 a, i64 b, i64 c) {
    register i64 x8 __asm__("x8") = nr;
    register i64 x0 __asm__("x0") = a;
    register i64 x1 __asm__("x1") = b;
    register i64 x2 __asm__("x2") = c;
    __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return x0;
}

static u64 slen(const char *s) { u64 n = 0; while (s[n]) n++; return n; }
static void puts_(const char *s) { sys3(64, 1, (i64)s, (i64)slen(s)); }

static void put_u64(const char *label, u64 v) {
    char buf[32];
    int i = 31;
    buf[i] = 0;
    do { buf[--i] = '0' + v % 10; v /= 10; } while (v);
    puts_(label);
    puts_(&buf[i]);
    puts_("\n");
}

static u32 crc32(const unsigned char *p, u64 n) {
    u32 c = 0xffffffffu;
    for (u64 i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & -(c & 1));
    }
    return ~c;
}

static void quicksort(i64 *a, i64 lo, i64 hi) {
    while (lo < hi) {
        i64 p = a[(lo + hi) / 2], i = lo, j = hi;
        while (i <= j) {
            while (a[i] < p) i++;
            while (a[j] > p) j--;
            if (i <= j) { i64 t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
        }
        if (j - lo < hi - i) { quicksort(a, lo, j); lo = i; } else { quicksort(a, i, hi); hi = j; }
    }
}

static u64 fib(u64 n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

static i64 data[4096];

void _start(void) {
    puts_("Hello from an AArch64 guest!\n");
    u64 primes = 0;
    for (u64 n = 2; n < 20000; n++) {
        int prime = 1;
        for (u64 d = 2; d * d <= n; d++) if (n % d == 0) { prime = 0; break; }
        primes += prime;
    }
    put_u64("primes below 20000: ", primes);
    put_u64("fib(24) (recursive): ", fib(24));
    const char *msg = "The quick brown fox jumps over the lazy dog";
    put_u64("crc32(\"The quick brown fox...\"): ", crc32((const unsigned char *)msg, slen(msg)));
    u64 seed = 12345;
    for (int i = 0; i < 4096; i++) { seed = seed * 6364136223846793005ul + 1442695040888963407ul; data[i] = (i64)(seed >> 33) - (1l << 30); }
    quicksort(data, 0, 4095);
    int sorted = 1;
    for (int i = 1; i < 4096; i++) sorted &= data[i - 1] <= data[i];
    put_u64("sorted 4096 numbers: ", sorted);
    u64 best = 0, arg = 0;
    for (u64 s = 1; s < 3000; s++) {
        u64 x = s, steps = 0;
        while (x != 1) { x = (x & 1) ? 3 * x + 1 : x >> 1; steps++; }
        if (steps > best) { best = steps; arg = s; }
    }
    put_u64("longest Collatz chain below 3000 starts at ", arg);
    u64 bits = 0;
    for (u64 v = 1; v < 100000; v++) bits += __builtin_popcountl(v) + __builtin_clzl(v) + __builtin_ctzl(v);
    put_u64("bit-count checksum: ", bits);
    sys3(94, 0, 0, 0);
    for (;;) {}
}
