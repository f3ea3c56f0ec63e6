/* qsort of ints, strings and structs (with a fully ordering comparator), bsearch of present
 * and absent keys, and qsort of already sorted / reversed / constant inputs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rng = 12345;
static uint32_t next(void) { rng = rng * 1103515245u + 12345u; return rng >> 1; }

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

struct rec {
    char name[12];
    int16_t group;
    double score;
    uint64_t id;
};
static int cmp_rec(const void *a, const void *b) {
    const struct rec *x = a, *y = b;
    if (x->group != y->group) return x->group < y->group ? -1 : 1;
    if (x->score != y->score) return x->score > y->score ? -1 : 1; /* descending */
    int c = strcmp(x->name, y->name);
    if (c) return c;
    return (x->id > y->id) - (x->id < y->id);
}

static uint64_t hash_ints(const int *v, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint32_t)v[i]) * 1099511628211ULL;
    return h;
}

int main(void) {
    enum { N = 5000 };
    static int v[N];
    for (int i = 0; i < N; i++) v[i] = (int)(next() % 20001) - 10000;
    v[0] = 2147483647;
    v[1] = -2147483647 - 1;
    qsort(v, N, sizeof v[0], cmp_int);
    int sorted = 1;
    for (int i = 1; i < N; i++) sorted &= v[i - 1] <= v[i];
    printf("ints sorted %d first %d %d %d last %d hash %016llx\n", sorted, v[0], v[1], v[2], v[N - 1], (unsigned long long)hash_ints(v, N));
    int found = 0, absent = 0;
    for (int k = -10050; k <= 10050; k += 7) {
        int *p = bsearch(&k, v, N, sizeof v[0], cmp_int);
        if (p) {
            found++;
            if (*p != k) printf("bsearch returned wrong element for %d\n", k);
        } else
            absent++;
    }
    printf("bsearch found %d absent %d\n", found, absent);

    /* Degenerate inputs. */
    static int w[1000];
    for (int pattern = 0; pattern < 4; pattern++) {
        for (int i = 0; i < 1000; i++) w[i] = pattern == 0 ? i : pattern == 1 ? 1000 - i : pattern == 2 ? 7 : (i % 2 ? i : -i);
        qsort(w, 1000, sizeof w[0], cmp_int);
        printf("pattern %d: %d %d %d hash %016llx\n", pattern, w[0], w[500], w[999], (unsigned long long)hash_ints(w, 1000));
    }
    qsort(w, 0, sizeof w[0], cmp_int);
    qsort(w, 1, sizeof w[0], cmp_int);

    /* Strings. */
    enum { S = 600 };
    static char storage[S][16];
    static char *strs[S];
    for (int i = 0; i < S; i++) {
        int len = 1 + (int)(next() % 12);
        for (int j = 0; j < len; j++) storage[i][j] = (char)('a' + next() % (j < 2 ? 3 : 26));
        storage[i][len] = 0;
        strs[i] = storage[i];
    }
    strcpy(storage[7], "");
    strcpy(storage[8], "zzzzzzzzzzzzzz");
    qsort(strs, S, sizeof strs[0], cmp_str);
    printf("strings: [%s] [%s] [%s] ... [%s] [%s]\n", strs[0], strs[1], strs[2], strs[S - 2], strs[S - 1]);
    uint64_t h = 0;
    for (int i = 0; i < S; i++)
        for (const char *p = strs[i]; *p; p++) h = h * 131 + (unsigned char)*p;
    printf("strings hash %016llx\n", (unsigned long long)h);
    const char *keys[] = {"", "abc", strs[S / 2], "zzzzzzzzzzzzzz", "zzzzzzzzzzzzzzz", "b"};
    for (unsigned i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char **p = bsearch(&keys[i], strs, S, sizeof strs[0], cmp_str);
        printf("bsearch \"%s\": %s\n", keys[i], p ? "found" : "absent");
    }

    /* Structs. */
    enum { R = 800 };
    static struct rec recs[R];
    for (int i = 0; i < R; i++) {
        snprintf(recs[i].name, sizeof recs[i].name, "n%03u", next() % 300);
        recs[i].group = (int16_t)(next() % 5) - 2;
        recs[i].score = (double)(next() % 1000) / 8.0;
        recs[i].id = ((uint64_t)next() << 32) | next();
    }
    qsort(recs, R, sizeof recs[0], cmp_rec);
    for (int i = 0; i < R; i += 97)
        printf("rec %3d: %-6s group %2d score %7.3f id %016llx\n", i, recs[i].name, recs[i].group, recs[i].score,
               (unsigned long long)recs[i].id);
    int ok = 1;
    for (int i = 1; i < R; i++) ok &= cmp_rec(&recs[i - 1], &recs[i]) <= 0;
    printf("structs ordered %d\n", ok);
    struct rec key = recs[R / 3];
    struct rec *p = bsearch(&key, recs, R, sizeof recs[0], cmp_rec);
    printf("bsearch struct: %s\n", p == &recs[R / 3] ? "same element" : p ? "other element" : "absent");
    return 0;
}
