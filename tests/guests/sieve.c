/* Sieve of Eratosthenes (byte array) up to N, repeated.
 * Usage: sieve [N [ROUNDS]]  (default 20000000, 3 rounds). Prints the prime count and checksum. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 20000000;
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    if (n < 2) n = 2;
    unsigned char *composite = malloc((size_t)n + 1);
    if (!composite) return 1;
    long count = 0;
    uint64_t sum = 0;
    for (int r = 0; r < rounds; r++) {
        memset(composite, 0, (size_t)n + 1);
        for (long i = 2; i * i <= n; i++)
            if (!composite[i])
                for (long j = i * i; j <= n; j += i) composite[j] = 1;
        count = 0;
        sum = 0;
        for (long i = 2; i <= n; i++)
            if (!composite[i]) {
                count++;
                sum = sum * 3 + (uint64_t)i;
            }
    }
    long last = n;
    while (composite[last]) last--;
    printf("sieve n=%ld primes %ld largest %ld checksum %016llx\n", n, count, last, (unsigned long long)sum);
    free(composite);
    return 0;
}
