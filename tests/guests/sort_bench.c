/* Sorts N pseudo-random ints with a hand-written introsort (quicksort, median of three,
 * insertion sort for small ranges, heapsort fallback), several rounds.
 * Usage: sort_bench [N [ROUNDS]]  (default 1000000 ints, 5 rounds). Prints checksums. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void insertion(int *v, long lo, long hi) {
    for (long i = lo + 1; i <= hi; i++) {
        int x = v[i];
        long j = i - 1;
        while (j >= lo && v[j] > x) {
            v[j + 1] = v[j];
            j--;
        }
        v[j + 1] = x;
    }
}
static void sift(int *v, long start, long n, long i) {
    for (;;) {
        long l = 2 * i + 1, m = i;
        if (l < n && v[start + l] > v[start + m]) m = l;
        if (l + 1 < n && v[start + l + 1] > v[start + m]) m = l + 1;
        if (m == i) return;
        int t = v[start + i];
        v[start + i] = v[start + m];
        v[start + m] = t;
        i = m;
    }
}
static void heapsort_range(int *v, long lo, long hi) {
    long n = hi - lo + 1;
    for (long i = n / 2 - 1; i >= 0; i--) sift(v, lo, n, i);
    for (long e = n - 1; e > 0; e--) {
        int t = v[lo];
        v[lo] = v[lo + e];
        v[lo + e] = t;
        sift(v, lo, e, 0);
    }
}
static void introsort(int *v, long lo, long hi, int depth) {
    while (hi - lo > 16) {
        if (depth-- == 0) {
            heapsort_range(v, lo, hi);
            return;
        }
        long mid = lo + (hi - lo) / 2;
        int a = v[lo], b = v[mid], c = v[hi];
        int pivot = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
        long i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot) i++;
            while (v[j] > pivot) j--;
            if (i <= j) {
                int t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                j--;
            }
        }
        if (j - lo < hi - i) {
            introsort(v, lo, j, depth);
            lo = i;
        } else {
            introsort(v, i, hi, depth);
            hi = j;
        }
    }
    insertion(v, lo, hi);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    if (n < 1) n = 1;
    int *v = malloc(sizeof(int) * n);
    if (!v) return 1;
    uint64_t total = 0;
    for (int r = 0; r < rounds; r++) {
        uint64_t x = 0x9e3779b97f4a7c15ULL * (r + 1);
        for (long i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v[i] = (int)(x % (r == 2 ? 1000 : 2000000000u)) - (r == 2 ? 500 : 1000000000);
        }
        int depth = 2;
        for (long m = n; m > 1; m >>= 1) depth += 2;
        introsort(v, 0, n - 1, depth);
        uint64_t h = 0;
        long bad = 0;
        for (long i = 0; i < n; i++) {
            if (i && v[i - 1] > v[i]) bad++;
            h = h * 1000003 + (uint32_t)v[i];
        }
        printf("round %d: n=%ld min %d median %d max %d unsorted pairs %ld hash %016llx\n", r, n, v[0], v[n / 2], v[n - 1], bad,
               (unsigned long long)h);
        total ^= h;
    }
    printf("sort checksum %016llx\n", (unsigned long long)total);
    free(v);
    return 0;
}
