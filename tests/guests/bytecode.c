/* A small stack-machine bytecode interpreter (switch dispatch: an indirect-branch-heavy
 * loop). The bytecode program sums the Collatz sequence lengths of 1..N and counts the
 * primes below N by trial division.
 * Usage: bytecode [N]  (default 150000). Prints the results and the instruction count. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { PUSH, LOAD, STORE, ADD, SUB, MUL, DIV, MOD, LT, LE, EQ, JZ, JNZ, JMP, DUP, POP, AND, SHR, HALT };

typedef int64_t word;

static uint64_t run(const word *code, word *vars, uint64_t *executed) {
    word stack[64];
    int sp = 0;
    long pc = 0;
    uint64_t n = 0;
    for (;;) {
        n++;
        word op = code[pc++];
        switch (op) {
        case PUSH: stack[sp++] = code[pc++]; break;
        case LOAD: stack[sp++] = vars[code[pc++]]; break;
        case STORE: vars[code[pc++]] = stack[--sp]; break;
        case ADD: sp--; stack[sp - 1] += stack[sp]; break;
        case SUB: sp--; stack[sp - 1] -= stack[sp]; break;
        case MUL: sp--; stack[sp - 1] *= stack[sp]; break;
        case DIV: sp--; stack[sp - 1] /= stack[sp]; break;
        case MOD: sp--; stack[sp - 1] %= stack[sp]; break;
        case LT: sp--; stack[sp - 1] = stack[sp - 1] < stack[sp]; break;
        case LE: sp--; stack[sp - 1] = stack[sp - 1] <= stack[sp]; break;
        case EQ: sp--; stack[sp - 1] = stack[sp - 1] == stack[sp]; break;
        case JZ: pc = stack[--sp] == 0 ? code[pc] : pc + 1; break;
        case JNZ: pc = stack[--sp] != 0 ? code[pc] : pc + 1; break;
        case JMP: pc = code[pc]; break;
        case DUP: stack[sp] = stack[sp - 1]; sp++; break;
        case POP: sp--; break;
        case AND: sp--; stack[sp - 1] &= stack[sp]; break;
        case SHR: sp--; stack[sp - 1] >>= stack[sp]; break;
        case HALT: *executed = n; return (uint64_t)sp;
        default: printf("bad opcode %lld at %ld\n", (long long)op, pc - 1); exit(2);
        }
    }
}

/* Tiny assembler with labels resolved in a second pass. */
static word code[512];
static int len;
static int labels[32];
static int fix_at[64], fix_label[64], nfix;
static void emit(word w) { code[len++] = w; }
static void emit_jump(int op, int label) { emit(op); fix_at[nfix] = len; fix_label[nfix++] = label; emit(0); }
static void label(int l) { labels[l] = len; }

int main(int argc, char **argv) {
    word n = argc > 1 ? atol(argv[1]) : 150000;
    /* vars: 0 i, 1 x, 2 steps total, 3 n, 4 primes, 5 d, 6 isprime */
    enum { I, X, TOTAL, N, PRIMES, D, ISP };
    /* for (i = 1; i < n; i++) { x = i; while (x != 1) { x = x&1 ? 3x+1 : x>>1; total++; } } */
    emit(PUSH); emit(1); emit(STORE); emit(I);
    label(0);
    emit(LOAD); emit(I); emit(LOAD); emit(N); emit(LT); emit_jump(JZ, 1);
    emit(LOAD); emit(I); emit(STORE); emit(X);
    label(2);
    emit(LOAD); emit(X); emit(PUSH); emit(1); emit(EQ); emit_jump(JNZ, 3);
    emit(LOAD); emit(X); emit(PUSH); emit(1); emit(AND); emit_jump(JZ, 4);
    emit(LOAD); emit(X); emit(PUSH); emit(3); emit(MUL); emit(PUSH); emit(1); emit(ADD); emit(STORE); emit(X); emit_jump(JMP, 5);
    label(4);
    emit(LOAD); emit(X); emit(PUSH); emit(1); emit(SHR); emit(STORE); emit(X);
    label(5);
    emit(LOAD); emit(TOTAL); emit(PUSH); emit(1); emit(ADD); emit(STORE); emit(TOTAL); emit_jump(JMP, 2);
    label(3);
    emit(LOAD); emit(I); emit(PUSH); emit(1); emit(ADD); emit(STORE); emit(I); emit_jump(JMP, 0);
    label(1);
    /* for (i = 2; i < n/8; i++) { isp = 1; for (d = 2; d*d <= i; d++) if (i % d == 0) { isp = 0; break; } primes += isp; } */
    emit(PUSH); emit(2); emit(STORE); emit(I);
    label(6);
    emit(LOAD); emit(I); emit(LOAD); emit(N); emit(PUSH); emit(8); emit(DIV); emit(LT); emit_jump(JZ, 7);
    emit(PUSH); emit(1); emit(STORE); emit(ISP); emit(PUSH); emit(2); emit(STORE); emit(D);
    label(8);
    emit(LOAD); emit(D); emit(DUP); emit(MUL); emit(LOAD); emit(I); emit(LE); emit_jump(JZ, 9);
    emit(LOAD); emit(I); emit(LOAD); emit(D); emit(MOD); emit_jump(JNZ, 10);
    emit(PUSH); emit(0); emit(STORE); emit(ISP); emit_jump(JMP, 9);
    label(10);
    emit(LOAD); emit(D); emit(PUSH); emit(1); emit(ADD); emit(STORE); emit(D); emit_jump(JMP, 8);
    label(9);
    emit(LOAD); emit(PRIMES); emit(LOAD); emit(ISP); emit(ADD); emit(STORE); emit(PRIMES);
    emit(LOAD); emit(I); emit(PUSH); emit(1); emit(ADD); emit(STORE); emit(I); emit_jump(JMP, 6);
    label(7);
    emit(HALT);
    for (int k = 0; k < nfix; k++) code[fix_at[k]] = labels[fix_label[k]];

    word vars[8] = {0};
    vars[N] = n;
    uint64_t executed = 0;
    uint64_t depth = run(code, vars, &executed);
    printf("bytecode n=%lld: %d words, collatz steps %lld, primes below n/8 %lld, executed %llu, final stack %llu\n", (long long)n,
           len, (long long)vars[TOTAL], (long long)vars[PRIMES], (unsigned long long)executed, (unsigned long long)depth);
    return 0;
}
