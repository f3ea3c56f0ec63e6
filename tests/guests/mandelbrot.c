/* Mandelbrot set in double: SIZE x SIZE points, up to 500 iterations each.
 * Usage: mandelbrot [SIZE]  (default 1000). Prints the iteration total and a checksum. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    int size = argc > 1 ? atoi(argv[1]) : 1000;
    const int max_iter = 500;
    if (size < 2) size = 2;
    uint64_t total = 0, hash = 0;
    long inside = 0;
    for (int py = 0; py < size; py++) {
        double ci = -1.25 + 2.5 * py / (size - 1);
        for (int px = 0; px < size; px++) {
            double cr = -2.0 + 2.6 * px / (size - 1);
            double zr = 0, zi = 0, zr2 = 0, zi2 = 0;
            int it = 0;
            while (it < max_iter && zr2 + zi2 <= 4.0) {
                zi = 2.0 * zr * zi + ci;
                zr = zr2 - zi2 + cr;
                zr2 = zr * zr;
                zi2 = zi * zi;
                it++;
            }
            total += (uint64_t)it;
            inside += it == max_iter;
            hash = hash * 1099511628211ULL ^ (uint64_t)it;
        }
    }
    printf("mandelbrot size=%d iterations %llu inside %ld checksum %016llx\n", size, (unsigned long long)total, inside,
           (unsigned long long)hash);
    return 0;
}
