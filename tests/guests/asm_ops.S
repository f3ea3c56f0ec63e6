// Hand-written AArch64: main in assembly calls leaf routines over a table of inputs and
// prints each result and the NZCV flags with printf. Covers flag-setting arithmetic
// (adds/adcs/sbcs/subs with extended registers), bitfield moves, bit reversal, multiply
// variants, conditional selects, loads/stores with writeback and sign extension, logical
// immediates, wide moves and variable shifts.
    .arch armv8-a
    .text

    .macro FLAGS_TO_X1
    mrs x1, nzcv
    lsr x1, x1, #28
    .endm

op_adds:
    adds x0, x0, x1
    FLAGS_TO_X1
    ret
op_adcs:
    cmp x1, x0              // C = (b >= a) unsigned
    adcs x0, x0, x1
    FLAGS_TO_X1
    ret
op_sbcs32:
    cmp w0, w1
    sbcs w0, w0, w1
    FLAGS_TO_X1
    ret
op_subs_ext:
    subs x2, x0, w1, uxtb #2
    adds x3, x1, w0, sxth #1
    ngcs x4, x2
    eor x0, x2, x3
    eor x0, x0, x4, ror #17
    FLAGS_TO_X1
    ret
op_bitfield:
    ubfx x2, x0, #5, #17
    sbfx x3, x1, #3, #31
    bfi x2, x3, #40, #12
    bfxil x2, x1, #60, #4
    extr x3, x0, x1, #23
    sbfiz w4, w0, #7, #9
    ubfiz x5, x1, #50, #14
    eor x0, x2, x3
    add x0, x0, x4
    eor x0, x0, x5
    mov x1, #0
    ret
op_bits:
    rbit x2, x0
    rev16 x3, x1
    rev32 x4, x0
    clz x5, x1
    cls w6, w0
    rev w7, w1
    cls x8, x1
    add x0, x2, x3
    eor x0, x0, x4
    add x0, x0, x5, lsl #56
    add x0, x0, x6, lsl #48
    eor x0, x0, x7
    add x1, x8, x5
    ret
op_mul:
    madd x2, x0, x1, x0
    msub x3, x0, x1, x1
    smaddl x4, w0, w1, x2
    umsubl x5, w1, w0, x3
    smulh x6, x0, x1
    umulh x7, x0, x1
    mneg w8, w0, w1
    eor x0, x2, x3
    add x0, x0, x4
    eor x0, x0, x5
    add x1, x6, x7
    eor x1, x1, x8
    ret
op_cond:
    cmp x0, x1
    csneg x2, x0, x1, lt
    csinv x3, x1, x0, hi
    cinc x4, x0, vs
    cneg w5, w1, mi
    ccmp x0, #7, #4, ge
    csetm x6, eq
    add x0, x2, x3
    eor x0, x0, x4
    add x0, x0, x5
    mov x1, x6
    ret
op_mem:
    sub sp, sp, #64
    stp x0, x1, [sp, #16]
    str x1, [sp, #-8]!          // pre-index
    ldrsb x2, [sp, #9]
    ldrsh x3, [sp, #18]
    ldrsw x4, [sp, #12]
    ldrb w5, [sp, #31]
    ldur x6, [sp, #11]          // unaligned
    ldr x7, [sp], #8            // post-index
    mov x9, #-3
    add x10, sp, #19
    ldrsh w11, [x10, w9, sxtw]  // register offset, sign-extended index
    mov w12, #1
    add x13, sp, #16
    ldr x14, [x13, w12, uxtw #3]
    strh w0, [sp, #40]
    strb w1, [sp, #42]
    ldr w15, [sp, #40]
    ldp w16, w17, [sp, #16]
    ldpsw x18, x9, [sp, #20]
    add sp, sp, #64
    add x0, x2, x3
    eor x0, x0, x4, lsl #5
    add x0, x0, x5
    eor x0, x0, x6
    add x0, x0, x11, lsl #9
    eor x0, x0, x15, lsl #13
    add x0, x0, x16
    eor x0, x0, x17, lsl #32
    add x0, x0, x18
    eor x0, x0, x9, ror #3
    eor x1, x7, x14
    ret
op_logimm:
    and x2, x0, #0x00ff00ff00ff00ff
    orr x3, x1, #0x5555555555555555
    eor x4, x0, #0xfffffffffffffff0
    and w5, w1, #0x3ffc
    orn x6, x0, x1, lsl #3
    bic w7, w1, w0, asr #2
    eon x8, x0, x1, lsr #7
    add x0, x2, x3
    eor x0, x0, x4
    add x0, x0, x5
    eor x0, x0, x6
    add x0, x0, x7
    eor x0, x0, x8
    tst w1, #0x80000001
    FLAGS_TO_X1
    ret
op_movwide:
    movz x2, #0x1234, lsl #48
    movk x2, #0xabcd, lsl #16
    movn x3, #0x42
    movn w4, #0x7, lsl #16
    add x0, x0, x1, lsl #12
    sub x0, x0, x1, asr #63
    add x0, x0, x2
    eor x0, x0, x3
    add x0, x0, x4
    adds x1, x0, #0xfff, lsl #12
    FLAGS_TO_X1
    ret
op_shiftv:
    lslv x2, x0, x1
    lsrv x3, x1, x0
    asrv w4, w0, w1
    rorv x5, x0, x1
    eor x0, x2, x3
    add x0, x0, x4
    eor x0, x0, x5
    mov x1, x1
    ret

    .globl main
    .type main, %function
main:
    stp x29, x30, [sp, #-64]!
    mov x29, sp
    stp x19, x20, [sp, #16]
    stp x21, x22, [sp, #32]
    stp x23, x24, [sp, #48]
    adrp x19, ops
    add x19, x19, :lo12:ops
1:  ldp x20, x21, [x19], #16        // name, routine
    cbz x20, 9f
    mov x22, #0                     // index of a
2:  mov x23, #0                     // index of b
3:  adrp x9, inputs
    add x9, x9, :lo12:inputs
    ldr x0, [x9, x22, lsl #3]
    ldr x1, [x9, x23, lsl #3]
    blr x21
    mov x5, x1
    mov x4, x0
    mov x3, x23
    mov x2, x22
    mov x1, x20
    adrp x0, fmt
    add x0, x0, :lo12:fmt
    bl printf
    add x23, x23, #1
    cmp x23, #NINPUTS
    b.lo 3b
    add x22, x22, #1
    cmp x22, #NINPUTS
    b.lo 2b
    b 1b
9:  mov w0, #0
    ldp x19, x20, [sp, #16]
    ldp x21, x22, [sp, #32]
    ldp x23, x24, [sp, #48]
    ldp x29, x30, [sp], #64
    ret
    .size main, . - main

    .section .rodata
    .align 3
    .equ NINPUTS, 9
inputs:
    .quad 0, 1, -1, 0x7fffffffffffffff, 0x8000000000000000, 0x00000000ffffffff
    .quad 0x0123456789abcdef, 0xfedcba9876543210, 0x0000000080000000
fmt:
    .asciz "%-10s %u %u %016lx %lx\n"
n_adds: .asciz "adds"
n_adcs: .asciz "adcs"
n_sbcs32: .asciz "sbcs32"
n_subs_ext: .asciz "subs_ext"
n_bitfield: .asciz "bitfield"
n_bits: .asciz "bits"
n_mul: .asciz "mul"
n_cond: .asciz "cond"
n_mem: .asciz "mem"
n_logimm: .asciz "logimm"
n_movwide: .asciz "movwide"
n_shiftv: .asciz "shiftv"

    .section .data.rel.ro, "aw"
    .align 3
ops:
    .quad n_adds, op_adds
    .quad n_adcs, op_adcs
    .quad n_sbcs32, op_sbcs32
    .quad n_subs_ext, op_subs_ext
    .quad n_bitfield, op_bitfield
    .quad n_bits, op_bits
    .quad n_mul, op_mul
    .quad n_cond, op_cond
    .quad n_mem, op_mem
    .quad n_logimm, op_logimm
    .quad n_movwide, op_movwide
    .quad n_shiftv, op_shiftv
    .quad 0, 0

    .section .note.GNU-stack, "", %progbits
