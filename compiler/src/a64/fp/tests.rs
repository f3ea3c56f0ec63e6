//! Unit tests and the differential test against qemu-aarch64.

use super::soft::{IDC, IOC, IXC, OFC, UFC};
use super::*;
use crate::a64::translate_block_limit;
use crate::interp::{run_block, Exit};
use crate::ir::{Op, TrapKind};
use crate::mem::FlatMemory;

const BASE: u64 = 0x1000;

/// Translates and runs one instruction; `None` when it translates to an Undefined trap.
fn run1(st: &mut CpuState, insn: u32) -> Option<()> {
    let mut fetch = |pc: u64| if pc == BASE { Some(insn) } else { None };
    let block = translate_block_limit(&mut fetch, BASE, 1);
    crate::ir::verify(&block).expect("valid IR");
    if block.ops.iter().any(|op| {
        matches!(
            op,
            Op::Trap {
                kind: TrapKind::Undefined,
                ..
            }
        )
    }) {
        return None;
    }
    st.pc = BASE;
    let mut mem = FlatMemory::new(0x10_0000, 0x1000);
    let mut temps = Vec::new();
    match run_block(&block, st, &mut mem, &mut temps) {
        Exit::Continue(_) => Some(()),
        other => panic!("{insn:08x}: unexpected exit {other:?}"),
    }
}

fn f32v(x: f32) -> u128 {
    x.to_bits() as u128
}
fn f64v(x: f64) -> u128 {
    x.to_bits() as u128
}

#[test]
fn scalar_arith() {
    let mut st = CpuState::default();
    st.v[1] = f64v(1.5) | (0xdead_u128 << 64);
    st.v[2] = f64v(2.0);
    // fadd d0, d1, d2
    run1(&mut st, 0x1e622820).unwrap();
    assert_eq!(st.v[0], f64v(3.5));
    // fnmul d0, d1, d2
    run1(&mut st, 0x1e628820).unwrap();
    assert_eq!(st.v[0], f64v(-3.0));
    // fdiv s0, s1, s2 with s2 = 0: DZC
    st.v[1] = f32v(1.0);
    st.v[2] = f32v(0.0);
    run1(&mut st, 0x1e221820).unwrap();
    assert_eq!(st.v[0], f32v(f32::INFINITY));
    assert_eq!(st.fpsr, 2);
    // fmadd d0, d1, d2, d3
    st.v[1] = f64v(2.0);
    st.v[2] = f64v(3.0);
    st.v[3] = f64v(0.5);
    run1(&mut st, 0x1f420c20).unwrap();
    assert_eq!(st.v[0], f64v(6.5));
    // fsqrt d0, d1
    run1(&mut st, 0x1e61c020).unwrap();
    assert_eq!(st.v[0], f64v(2f64.sqrt()));
    assert_eq!(st.fpsr & IXC as u64, IXC as u64);
}

#[test]
fn nan_rules() {
    let mut st = CpuState::default();
    let qnan = 0x7fc0_1234u128;
    let snan = 0x7f80_5678u128;
    st.v[1] = qnan;
    st.v[2] = snan;
    // fadd s0, s1, s2: the signalling NaN wins, quietened, IOC.
    run1(&mut st, 0x1e222820).unwrap();
    assert_eq!(st.v[0], 0x7fc0_5678);
    assert_eq!(st.fpsr, IOC as u64);
    // FPCR.DN: default NaN.
    st.fpcr = 1 << 25;
    st.fpsr = 0;
    run1(&mut st, 0x1e222820).unwrap();
    assert_eq!(st.v[0], 0x7fc0_0000);
    // fmadd s0, s1(qNaN), s2(sNaN), s3(qNaN addend): sNaN operand first.
    st.fpcr = 0;
    st.v[3] = 0x7fc0_0003;
    run1(&mut st, 0x1f020c20).unwrap();
    assert_eq!(st.v[0], 0x7fc0_5678);
    // 0 * inf + qNaN: default NaN and IOC.
    st.v[1] = 0;
    st.v[2] = f32v(f32::INFINITY);
    st.fpsr = 0;
    run1(&mut st, 0x1f020c20).unwrap();
    assert_eq!(st.v[0], 0x7fc0_0000);
    assert_eq!(st.fpsr, IOC as u64);
}

#[test]
fn flush_to_zero() {
    let mut st = CpuState {
        fpcr: 1 << 24,
        ..Default::default()
    };
    st.v[1] = 1; // denormal
    st.v[2] = f32v(1.0);
    // fmul s0, s1, s2: input flushed (IDC), result +0.
    run1(&mut st, 0x1e220820).unwrap();
    assert_eq!(st.v[0], 0);
    assert_eq!(st.fpsr, IDC as u64);
    // fmul s0, s1, s1 with tiny normals: output flushed (UFC, no IXC).
    st.fpsr = 0;
    st.v[1] = f32v(1e-30);
    run1(&mut st, 0x1e210820).unwrap();
    assert_eq!(st.v[0], 0);
    assert_eq!(st.fpsr, UFC as u64);
    // Without FZ: denormal result, UFC | IXC.
    st.fpcr = 0;
    st.fpsr = 0;
    st.v[1] = f32v(1.1e-20);
    run1(&mut st, 0x1e210820).unwrap();
    assert_eq!(st.v[0], f32v(1.1e-20 * 1.1e-20));
    assert_eq!(st.fpsr, (UFC | IXC) as u64);
    // Overflow.
    st.fpsr = 0;
    st.v[1] = f32v(1e30);
    run1(&mut st, 0x1e210820).unwrap();
    assert_eq!(st.v[0], f32v(f32::INFINITY));
    assert_eq!(st.fpsr, (OFC | IXC) as u64);
}

#[test]
fn compares_and_select() {
    let mut st = CpuState::default();
    st.v[1] = f64v(1.0);
    st.v[2] = f64v(2.0);
    // fcmp d1, d2
    run1(&mut st, 0x1e622020).unwrap();
    assert_eq!(st.nzcv, 0x8000_0000);
    // fcmp d1, #0.0
    run1(&mut st, 0x1e602028).unwrap();
    assert_eq!(st.nzcv, 0x2000_0000);
    // fcmp d1, d1
    run1(&mut st, 0x1e612020).unwrap();
    assert_eq!(st.nzcv, 0x6000_0000);
    // fcsel d0, d1, d2, eq
    run1(&mut st, 0x1e620c20).unwrap();
    assert_eq!(st.v[0], f64v(1.0));
    st.v[2] = 0x7ff8_0000_0000_0000;
    // fcmpe d1, d2 (quiet NaN): unordered and IOC.
    run1(&mut st, 0x1e622030).unwrap();
    assert_eq!(st.nzcv, 0x3000_0000);
    assert_eq!(st.fpsr, IOC as u64);
}

#[test]
fn int_conversions() {
    let mut st = CpuState::default();
    st.v[1] = f64v(-2.5) | (7u128 << 64);
    // fcvtzs w0, d1 / fcvtas x0, d1 / fcvtns x0, d1
    run1(&mut st, 0x1e780020).unwrap();
    assert_eq!(st.x[0], 0xffff_fffe);
    run1(&mut st, 0x9e640020).unwrap();
    assert_eq!(st.x[0], (-3i64) as u64);
    run1(&mut st, 0x9e600020).unwrap();
    assert_eq!(st.x[0], (-2i64) as u64);
    // fmov x0, v1.d[1]
    run1(&mut st, 0x9eae0020).unwrap();
    assert_eq!(st.x[0], 7);
    // scvtf d0, x1 / ucvtf s0, w1
    st.x[1] = u64::MAX;
    run1(&mut st, 0x9e620020).unwrap();
    assert_eq!(st.v[0], f64v(-1.0));
    run1(&mut st, 0x1e230020).unwrap();
    assert_eq!(st.v[0], f32v(4294967296.0));
    // scvtf d0, x1, #1 (fixed point)
    st.x[1] = 3;
    run1(&mut st, 0x9e42fc20).unwrap();
    assert_eq!(st.v[0], f64v(1.5));
}

#[test]
fn vector_ops() {
    let mut st = CpuState::default();
    let v4 =
        |a: f32, b: f32, c: f32, d: f32| f32v(a) | f32v(b) << 32 | f32v(c) << 64 | f32v(d) << 96;
    st.v[1] = v4(1.0, 2.0, 3.0, 4.0);
    st.v[2] = v4(10.0, 20.0, 30.0, 40.0);
    // fadd v0.4s, v1.4s, v2.4s
    run1(&mut st, 0x4e22d420).unwrap();
    assert_eq!(st.v[0], v4(11.0, 22.0, 33.0, 44.0));
    // faddp v0.4s, v1.4s, v2.4s
    run1(&mut st, 0x6e22d420).unwrap();
    assert_eq!(st.v[0], v4(3.0, 7.0, 30.0, 70.0));
    // fadd v0.2s, v1.2s, v2.2s: upper half zeroed
    run1(&mut st, 0x0e22d420).unwrap();
    assert_eq!(st.v[0], v4(11.0, 22.0, 0.0, 0.0));
    // fmaxv s0, v1.4s
    run1(&mut st, 0x6e30f820).unwrap();
    assert_eq!(st.v[0], f32v(4.0));
    // fmul v0.4s, v1.4s, v2.s[3]
    run1(&mut st, 0x4fa29820).unwrap();
    assert_eq!(st.v[0], v4(40.0, 80.0, 120.0, 160.0));
    // fcmgt v0.4s, v1.4s, #0.0
    run1(&mut st, 0x4ea0c820).unwrap();
    assert_eq!(st.v[0], u128::MAX);
    // fcvtl v0.2d, v1.2s
    run1(&mut st, 0x0e617820).unwrap();
    assert_eq!(st.v[0], f64v(1.0) | f64v(2.0) << 64);
    // fmov v0.4s, #1.0
    run1(&mut st, 0x4f03f600).unwrap();
    assert_eq!(st.v[0], v4(1.0, 1.0, 1.0, 1.0));
    // scvtf d0, d1 (scalar SIMD)
    st.v[1] = 5;
    run1(&mut st, 0x5e61d820).unwrap();
    assert_eq!(st.v[0], f64v(5.0));
}

#[test]
fn undefined_forms() {
    let mut st = CpuState::default();
    // fadd with type=10, fadd h0, h1, h2 (FP16), fadd v0.1d (Q=0, sz=1), fmov v0.2d Q=0.
    for insn in [0x1ea22820, 0x1ee22820, 0x0e62d420, 0x2f00f400] {
        assert!(run1(&mut st, insn).is_none(), "{insn:08x}");
    }
}

// ---------------------------------------------------------------------------------------
// Differential test against qemu-aarch64.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const INT_SPECIALS: &[u64] = &[
    0,
    1,
    u64::MAX,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    0x001f_ffff_ffff_ffff,
    0x0020_0000_0000_0001,
    0x00ff_ffff,
    0x0100_0001,
    0x0100_0003,
    0xffff_ffff_8000_0000,
    0x4000_0000_0000_0001,
];

/// A float bit pattern of `fmt`, biased towards interesting values.
fn gen_float(r: &mut Rng, fmt: Fmt) -> u64 {
    let emax = fmt.exp_max();
    let bias = fmt.bias() as u64;
    let sign = r.below(2) << (fmt.n - 1);
    let frac = match r.below(6) {
        0 => 0,
        1 => fmt.frac_mask(),
        2 => 1 << (fmt.f - 1),
        3 => r.below(4),
        4 => (r.next() & fmt.frac_mask()) & !0xff,
        _ => r.next() & fmt.frac_mask(),
    };
    let bias = bias as i64;
    let emax_i = emax as i64;
    let ex = |e: i64| sign | ((e.clamp(0, emax_i) as u64) << fmt.f) | frac;
    let mut rb = |n: u64| r.below(n) as i64;
    match rb(12) {
        0 => rb(i64::MAX as u64) as u64 & fmt.mask(),
        1 => INT_SPECIALS[rb(INT_SPECIALS.len() as u64) as usize] & fmt.mask(),
        2 => {
            // Small multiples of 1/4: ties for the rounding modes.
            let k = rb(40);
            let v = (k as f64 - 20.0) / 4.0;
            match fmt.n {
                64 => v.to_bits(),
                32 => (v as f32).to_bits() as u64,
                _ => 0x3c00 | ((k as u64) << 4),
            }
        }
        3 => ex(0),                  // zero / denormal
        4 => ex(emax_i),             // inf / NaN
        5 => ex(emax_i - 1 - rb(3)), // huge
        6 => ex(1 + rb(3)),          // tiny normal
        7 => ex(bias + rb(66)),      // integer range
        8 => ex(bias - 30 + rb(60)),
        9 if fmt.n == 64 => ex(bias - 150 + rb(30)), // single edges
        10 if fmt.n == 64 => ex(bias + 115 + rb(20)),
        9 | 10 if fmt.n == 32 => ex(bias - 27 + rb(46)), // half range
        _ => ex(1 + rb(emax - 1)),
    }
}

/// Lane layout used when generating the inputs of an instruction.
#[derive(Clone, Copy, Debug)]
enum Kind {
    S,
    D,
    H,
}

fn gen_reg(r: &mut Rng, kind: Kind) -> u128 {
    let mut v = 0u128;
    let (fmt, n) = match kind {
        Kind::S => (S, 4),
        Kind::D => (D, 2),
        Kind::H => (H, 8),
    };
    for i in 0..n {
        v |= (gen_float(r, fmt) as u128) << (i * fmt.n);
    }
    v
}

const FPCRS: &[u64] = &[
    0,
    0,
    0,
    1 << 22,
    2 << 22,
    3 << 22,
    1 << 24,
    1 << 25,
    (1 << 24) | (1 << 25) | (2 << 22),
    1 << 26,
    (1 << 24) | (1 << 22),
];

/// One test case: input state, instruction index.
#[derive(Clone)]
struct Case {
    idx: usize,
    v: [u128; 8],
    x: [u64; 8],
    fpcr: u64,
    fpsr: u64,
    nzcv: u64,
}

/// The instructions to test, with the lane kind of their inputs.
fn test_words() -> Vec<(u32, Kind)> {
    let mut w = Vec::new();
    let k = |ty: u32| match ty {
        1 => Kind::D,
        3 => Kind::H,
        _ => Kind::S,
    };
    let (rd, rn, rm, ra) = (0u32, 1u32 << 5, 2u32 << 16, 3u32 << 10);
    for ty in 0..4 {
        for op in 0..16 {
            w.push((0x1e20_0800 | ty << 22 | rm | op << 12 | rn | rd, k(ty)));
        }
        for o in 0..4 {
            w.push((
                0x1f00_0000 | ty << 22 | (o >> 1) << 21 | rm | (o & 1) << 15 | ra | rn | rd,
                k(ty),
            ));
        }
        for op in 0..20 {
            w.push((0x1e20_4000 | ty << 22 | op << 15 | rn | rd, k(ty)));
        }
        for opc in 0..4 {
            w.push((0x1e20_2000 | ty << 22 | rm | rn | opc << 3, k(ty)));
        }
        for imm8 in [0, 0x70, 0x7f, 0x80, 0xff, 0x2a] {
            w.push((0x1e20_1000 | ty << 22 | imm8 << 13 | rd, k(ty)));
        }
        for sf in 0..2u32 {
            for rmode in 0..4 {
                for op in 0..8 {
                    w.push((
                        sf << 31 | 0x1e20_0000 | ty << 22 | rmode << 19 | op << 16 | rn | rd,
                        k(ty),
                    ));
                }
            }
            for (rmode, op) in [(0, 2), (0, 3), (3, 0), (3, 1), (1, 2)] {
                for scale in [0, 31, 32, 40, 63] {
                    w.push((
                        sf << 31
                            | 0x1e00_0000
                            | ty << 22
                            | rmode << 19
                            | op << 16
                            | scale << 10
                            | rn
                            | rd,
                        k(ty),
                    ));
                }
            }
        }
    }
    for ty in 0..2 {
        for cond in [0, 1, 10, 12, 14, 15] {
            w.push((
                0x1e20_0400 | ty << 22 | rm | cond << 12 | rn | (cond & 1) << 4 | 0b1010,
                k(ty),
            ));
            w.push((0x1e20_0c00 | ty << 22 | rm | cond << 12 | rn | rd, k(ty)));
        }
    }
    // XZR as source or destination, and aliased registers.
    for (sf, ty) in [(0u32, 0u32), (1, 1), (1, 0)] {
        for op in [0, 1, 2, 3, 4, 6, 7] {
            // Rn = 31 is XZR only for the integer-source forms (V31 is not loaded).
            let rn31 = if matches!(op, 2 | 3 | 7) {
                31 << 5 | 1
            } else {
                1 << 5
            };
            for regs in [rn31, 1 << 5 | 31, 1 << 5 | 1] {
                w.push((sf << 31 | 0x1e20_0000 | ty << 22 | op << 16 | regs, k(ty)));
            }
        }
    }
    // fmla v1.4s, v1.4s, v1.s[1]; fmla v1.2d, v1.2d, v1.2d; fcvtn2 v1.4s, v1.2d; fcvtl2 v1.2d, v1.4s
    w.extend([
        (0x4fa11021, Kind::S),
        (0x4e61cc21, Kind::D),
        (0x4e616821, Kind::D),
        (0x4e617821, Kind::S),
    ]);
    let sk = |sz: u32| if sz == 1 { Kind::D } else { Kind::S };
    for scalar in [false, true] {
        let base = |b: u32| if scalar { b | 0x5000_0000 } else { b };
        for q in 0..2u32 {
            if scalar && q == 0 {
                continue;
            }
            let q = if scalar { 0 } else { q << 30 };
            for u in 0..2u32 {
                for a in 0..2u32 {
                    for sz in 0..2u32 {
                        let f = q | u << 29 | a << 23 | sz << 22;
                        for op in 0x18..0x20 {
                            w.push((base(0x0e20_0400) | f | rm | op << 11 | rn | rd, sk(sz)));
                        }
                        for op in (0x0c..0x10).chain(0x16..0x20) {
                            let kind = if op == 0x17 && sz == 0 {
                                Kind::H
                            } else {
                                sk(sz)
                            };
                            w.push((base(0x0e20_0800) | f | op << 12 | rn | rd, kind));
                        }
                        for op in [0x0c, 0x0d, 0x0f] {
                            w.push((base(0x0e30_0800) | f | op << 12 | rn | rd, sk(sz)));
                        }
                    }
                    for size in 0..4u32 {
                        for lh in 0..4u32 {
                            for op in [1, 5, 9] {
                                let f = q | u << 29 | size << 22 | (lh & 1) << 21 | (lh >> 1) << 11;
                                w.push((
                                    base(0x0f00_0000) | f | rm | op << 12 | rn | rd,
                                    sk(size & 1),
                                ));
                            }
                        }
                    }
                }
                for immh in [1, 2, 4, 5, 7, 8, 12, 15] {
                    for immb in [0, 5] {
                        for op in [0x1c, 0x1f] {
                            let f = q | u << 29 | immh << 19 | immb << 16 | op << 11;
                            w.push((base(0x0f00_0400) | f | rn | rd, sk((immh >= 8) as u32)));
                        }
                    }
                }
            }
            if !scalar {
                for op in 0..2u32 {
                    for o2 in 0..2u32 {
                        for imm in [0x00u32, 0x70, 0xff] {
                            let f = q
                                | op << 29
                                | (imm >> 5) << 16
                                | 0xf << 12
                                | o2 << 11
                                | (imm & 31) << 5;
                            w.push((0x0f00_0400 | f | rd, Kind::S));
                        }
                    }
                }
            }
        }
    }
    w
}

fn which(cmd: &str) -> bool {
    std::process::Command::new(cmd)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

fn c_source(words: &[u32]) -> String {
    let mut s = String::from(
        r#"#include <stdio.h>
#include <stdint.h>
#include <signal.h>
#include <setjmp.h>
struct rec { uint64_t idx; uint64_t v[16]; uint64_t x[8]; uint64_t fpcr, fpsr, nzcv; };
static sigjmp_buf jb;
static void on_ill(int sig) { (void)sig; siglongjmp(jb, 1); }
#define RUN(name, word) static void name(uint64_t *s) { asm volatile( \
 "ldp q0, q1, [%0]\n ldp q2, q3, [%0, #32]\n ldp q4, q5, [%0, #64]\n ldp q6, q7, [%0, #96]\n" \
 "ldp x0, x1, [%0, #128]\n ldp x2, x3, [%0, #144]\n ldp x4, x5, [%0, #160]\n ldp x6, x7, [%0, #176]\n" \
 "ldr x10, [%0, #192]\n msr fpcr, x10\n ldr x10, [%0, #200]\n msr fpsr, x10\n ldr x10, [%0, #208]\n msr nzcv, x10\n" \
 ".inst " #word "\n" \
 "mrs x10, nzcv\n str x10, [%0, #208]\n mrs x10, fpsr\n str x10, [%0, #200]\n msr fpcr, xzr\n" \
 "stp q0, q1, [%0]\n stp q2, q3, [%0, #32]\n stp q4, q5, [%0, #64]\n stp q6, q7, [%0, #96]\n" \
 "stp x0, x1, [%0, #128]\n stp x2, x3, [%0, #144]\n stp x4, x5, [%0, #160]\n stp x6, x7, [%0, #176]\n" \
 : : "r"(s) : "x0","x1","x2","x3","x4","x5","x6","x7","x10","v0","v1","v2","v3","v4","v5","v6","v7","memory","cc"); }
"#,
    );
    for (i, w) in words.iter().enumerate() {
        s += &format!("RUN(f{i}, 0x{w:08x})\n");
    }
    s += "static void (*const fns[])(uint64_t *) = {";
    for i in 0..words.len() {
        s += &format!("f{i},");
    }
    s += r#"};
int main(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_ill;
    sigaction(SIGILL, &sa, 0);
    struct rec r;
    while (fread(&r, sizeof r, 1, stdin) == 1) {
        uint64_t status = 0;
        if (sigsetjmp(jb, 1) == 0) {
            fns[r.idx](r.v);
        } else {
            status = 1;
            asm volatile("msr fpcr, xzr");
        }
        fwrite(&status, 8, 1, stdout);
        fwrite(r.v, 8, 27, stdout);
    }
    return 0;
}
"#;
    s
}

#[test]
fn differential_vs_qemu() {
    if !which("qemu-aarch64") || !which("aarch64-linux-gnu-gcc") {
        eprintln!("skipping: qemu-aarch64 or aarch64-linux-gnu-gcc not installed");
        return;
    }
    // Keep only words whose yaxpeax opcode routes to this module (or that it cannot decode).
    let mut words = Vec::new();
    let mut kinds = Vec::new();
    for (w, kind) in test_words() {
        let ours = match crate::a64::decode(w) {
            Some(i) => handler_for(&i.opcode).is_some(),
            None => true,
        };
        if ours && !words.contains(&w) {
            words.push(w);
            kinds.push(kind);
        }
    }
    // VMC_FP_DIFF_CASES / VMC_FP_DIFF_SEED scale up the run for manual soak testing.
    let env_num = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let per_word = env_num("VMC_FP_DIFF_CASES", 40) as usize;
    let mut rng =
        Rng(0x9e37_79b9_7f4a_7c15
            ^ env_num("VMC_FP_DIFF_SEED", 0).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut cases = Vec::new();
    for (idx, &w) in words.iter().enumerate() {
        let n = if decode(w).is_some() { per_word } else { 1 };
        for c in 0..n {
            let mut v = [0u128; 8];
            for r in v.iter_mut() {
                *r = gen_reg(&mut rng, kinds[idx]);
            }
            let mut x = [0u64; 8];
            for r in x.iter_mut() {
                *r = if rng.below(2) == 0 {
                    rng.pick(INT_SPECIALS)
                } else {
                    rng.next() >> rng.below(64)
                };
                if rng.below(4) == 0 {
                    *r = r.wrapping_neg();
                }
            }
            let fpcr = FPCRS[c % FPCRS.len()];
            let fpsr = if rng.below(8) == 0 { 0x10 } else { 0 };
            let nzcv = rng.below(16) << 28;
            cases.push(Case {
                idx,
                v,
                x,
                fpcr,
                fpsr,
                nzcv,
            });
        }
    }
    let dir = std::env::temp_dir().join(format!("vmc-fp-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("t.c");
    let bin = dir.join("t");
    std::fs::write(&src, c_source(&words)).unwrap();
    let out = std::process::Command::new("aarch64-linux-gnu-gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cross compile failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut input = Vec::new();
    for c in &cases {
        input.extend_from_slice(&(c.idx as u64).to_le_bytes());
        for v in c.v {
            input.extend_from_slice(&(v as u64).to_le_bytes());
            input.extend_from_slice(&((v >> 64) as u64).to_le_bytes());
        }
        for x in c.x {
            input.extend_from_slice(&x.to_le_bytes());
        }
        for y in [c.fpcr, c.fpsr, c.nzcv] {
            input.extend_from_slice(&y.to_le_bytes());
        }
    }
    let in_path = dir.join("in.bin");
    std::fs::write(&in_path, &input).unwrap();
    let out = std::process::Command::new("qemu-aarch64")
        .args(["-cpu", "cortex-a57"])
        .arg(&bin)
        .stdin(std::fs::File::open(&in_path).unwrap())
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "qemu run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let o = &out.stdout;
    assert_eq!(o.len(), cases.len() * 28 * 8, "short output from qemu");
    let rd = |i: usize| u64::from_le_bytes(o[i * 8..i * 8 + 8].try_into().unwrap());
    let mut failures = Vec::new();
    let mut yax_gaps = Vec::new();
    let mut both_ill = 0;
    for (ci, c) in cases.iter().enumerate() {
        let b = ci * 28;
        let w = words[c.idx];
        let qemu_ill = rd(b) != 0;
        let mut st = CpuState::default();
        for (i, v) in c.v.iter().enumerate() {
            st.v[i] = *v;
        }
        st.x[..8].copy_from_slice(&c.x);
        st.fpcr = c.fpcr;
        st.fpsr = c.fpsr;
        st.nzcv = c.nzcv;
        let ours = run1(&mut st, w);
        let dis = crate::a64::disasm(w, 0);
        match (ours, qemu_ill) {
            (None, true) => {
                both_ill += 1;
                continue;
            }
            (None, false) => {
                if crate::a64::decode(w).is_none() {
                    yax_gaps.push(format!("{w:08x}"));
                } else {
                    failures.push(format!("{w:08x} `{dis}`: Undefined here, qemu executes it"));
                }
                continue;
            }
            (Some(()), true) => {
                failures.push(format!("{w:08x} `{dis}`: executed here, SIGILL under qemu"));
                continue;
            }
            (Some(()), false) => {}
        }
        let mut diffs = Vec::new();
        for i in 0..8 {
            let q = rd(b + 1 + 2 * i) as u128 | (rd(b + 2 + 2 * i) as u128) << 64;
            if st.v[i] != q {
                diffs.push(format!(
                    "v{i}: ours {:032x} qemu {q:032x} (in {:032x})",
                    st.v[i], c.v[i]
                ));
            }
        }
        for i in 0..8 {
            let q = rd(b + 17 + i);
            if st.x[i] != q {
                diffs.push(format!(
                    "x{i}: ours {:016x} qemu {q:016x} (in {:016x})",
                    st.x[i], c.x[i]
                ));
            }
        }
        let (qfpsr, qnzcv) = (rd(b + 26), rd(b + 27));
        if st.fpsr != qfpsr {
            diffs.push(format!("fpsr: ours {:x} qemu {qfpsr:x}", st.fpsr));
        }
        if st.nzcv != qnzcv {
            diffs.push(format!("nzcv: ours {:x} qemu {qnzcv:x}", st.nzcv));
        }
        if !diffs.is_empty() {
            failures.push(format!(
                "{w:08x} `{dis}` fpcr={:x} v1={:032x} v2={:032x} v3={:032x} x1={:x}\n    {}",
                c.fpcr,
                c.v[1],
                c.v[2],
                c.v[3],
                c.x[1],
                diffs.join("\n    ")
            ));
        }
    }
    yax_gaps.dedup();
    if !yax_gaps.is_empty() {
        eprintln!(
            "note: {} words qemu executes but yaxpeax-arm does not decode: {}",
            yax_gaps.len(),
            yax_gaps.join(" ")
        );
    }
    eprintln!(
        "{} words, {} cases compared, {} undefined on both",
        words.len(),
        cases.len(),
        both_ill
    );
    if !failures.is_empty() {
        let mut by_word = std::collections::BTreeMap::new();
        for f in &failures {
            by_word
                .entry(f[..8].to_string())
                .or_insert_with(Vec::new)
                .push(f.clone());
        }
        for fs in by_word.values() {
            for f in fs.iter().take(2) {
                eprintln!("{f}");
            }
        }
        panic!(
            "{} mismatches against qemu in {} words",
            failures.len(),
            by_word.len()
        );
    }
}

#[test]
fn routed_by_yaxpeax() {
    // Every encoding this module implements must reach it through yaxpeax-arm's opcode.
    let mut missing = Vec::new();
    for (w, _) in test_words() {
        if decode(w).is_some() {
            let routed = crate::a64::decode(w).is_some_and(|i| handler_for(&i.opcode).is_some());
            if !routed {
                missing.push(format!("{w:08x} `{}`", crate::a64::disasm(w, 0)));
            }
        }
    }
    assert!(missing.is_empty(), "not routed here: {missing:?}");
}

#[test]
#[ignore]
fn bench_soft() {
    let mut rng = Rng(12345);
    let xs: Vec<u64> = (0..4096)
        .map(|_| (1.0 + (rng.next() >> 12) as f64 / 1e15).to_bits())
        .collect();
    let t = std::time::Instant::now();
    let mut env = soft::Env::new(0);
    let mut acc = 0u64;
    let n = 4_000_000;
    for i in 0..n {
        let (a, b, c) = (xs[i & 4095], xs[(i + 1) & 4095], xs[(i + 7) & 4095]);
        acc ^= soft::muladd(D, c, a, b, &mut env);
    }
    eprintln!(
        "muladd: {:.1} ns/op ({acc:x})",
        t.elapsed().as_nanos() as f64 / n as f64
    );
    let t = std::time::Instant::now();
    for i in 0..n {
        acc ^= soft::add(D, xs[i & 4095], xs[(i + 3) & 4095], false, &mut env);
    }
    eprintln!(
        "add: {:.1} ns/op ({acc:x})",
        t.elapsed().as_nanos() as f64 / n as f64
    );
    let t = std::time::Instant::now();
    for i in 0..n {
        acc ^= soft::mul(D, xs[i & 4095], xs[(i + 3) & 4095], false, &mut env);
    }
    eprintln!(
        "mul: {:.1} ns/op ({acc:x})",
        t.elapsed().as_nanos() as f64 / n as f64
    );
    let t = std::time::Instant::now();
    for i in 0..n {
        acc ^= soft::div(D, xs[i & 4095], xs[(i + 3) & 4095], &mut env);
    }
    eprintln!(
        "div: {:.1} ns/op ({acc:x})",
        t.elapsed().as_nanos() as f64 / n as f64
    );
    let t = std::time::Instant::now();
    for i in 0..n {
        acc ^= soft::sqrt(D, xs[i & 4095], &mut env);
    }
    eprintln!(
        "sqrt: {:.1} ns/op ({acc:x})",
        t.elapsed().as_nanos() as f64 / n as f64
    );
    let mut st = CpuState::default();
    st.v[1] = xs[0] as u128;
    st.v[2] = xs[1] as u128;
    let mut mem = FlatMemory::new(0, 0);
    let t = std::time::Instant::now();
    for _ in 0..n {
        execute(&mut st, &mut mem, 0x1e622820).unwrap();
    }
    eprintln!(
        "fadd helper via execute: {:.1} ns/op",
        t.elapsed().as_nanos() as f64 / n as f64
    );
}
