/* Dense matrix multiply in double (i-k-j loop order), C = A * B with N x N matrices.
 * Usage: matmul [N]  (default 800). Prints a checksum. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 800;
    if (n < 1) n = 1;
    double *a = malloc(sizeof(double) * n * n), *b = malloc(sizeof(double) * n * n), *c = calloc((size_t)n * n, sizeof(double));
    if (!a || !b || !c) return 1;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            a[i * n + j] = (double)((i * 31 + j * 17) % 97) / 97.0 - 0.5;
            b[i * n + j] = (double)((i * 13 + j * 7 + 5) % 89) / 89.0 + 0.25;
        }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k++) {
            double aik = a[i * n + k];
            for (int j = 0; j < n; j++) c[i * n + j] += aik * b[k * n + j];
        }
    double sum = 0, diag = 0;
    for (int i = 0; i < n; i++) {
        diag += c[i * n + i];
        for (int j = 0; j < n; j++) sum += c[i * n + j] * (double)((i + j) % 7 + 1);
    }
    printf("matmul n=%d checksum %.12e trace %.12e c[n-1][0] %.17g\n", n, sum, diag, c[(n - 1) * n]);
    free(a);
    free(b);
    free(c);
    return 0;
}
