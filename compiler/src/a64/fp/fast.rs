//! Fast paths for the common case of FADD/FSUB/FMUL/FDIV: FPCR in round-to-nearest without
//! flush-to-zero, normal operands, and a result comfortably inside the normal range. The host
//! computes the correctly rounded result in the default (round-to-nearest) environment and
//! error-free transformations decide whether it was inexact, so flags stay exact. Every other
//! case returns `None` and goes through the general software path.

use super::soft::{Env, Fmt, D, IXC, S};

/// FPCR.RMode = RN and FPCR.FZ = 0 (DN does not matter without NaN operands).
fn eligible(env: &Env) -> bool {
    env.fpcr & (3 << 22 | 1 << 24) == 0
}

/// Magnitudes in [2^-900, 2^900]: no overflow, underflow, or denormal in any intermediate.
fn in_range(x: f64) -> bool {
    let a = x.abs();
    (f64::from_bits(0x07b0_0000_0000_0000)..=f64::from_bits(0x7830_0000_0000_0000)).contains(&a)
}

/// Single-precision magnitudes in [2^-100, 2^100].
fn in_range_s(x: f64) -> bool {
    let a = x.abs();
    (f64::from_bits(0x39b0_0000_0000_0000)..=f64::from_bits(0x4630_0000_0000_0000)).contains(&a)
}

/// The operation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// a + b.
    Add,
    /// a - b.
    Sub,
    /// a * b.
    Mul,
    /// a / b.
    Div,
}

/// `Some(result)` when the fast path applies; raises IXC in `env` if inexact.
#[inline]
pub fn binop(fmt: Fmt, x1: u64, x2: u64, op: Op, env: &mut Env) -> Option<u64> {
    if !eligible(env) {
        return None;
    }
    if fmt == D {
        let (a, b) = (f64::from_bits(x1), f64::from_bits(x2));
        if !in_range(a) || !in_range(b) {
            return None;
        }
        let (r, inexact) = match op {
            Op::Add | Op::Sub => {
                let b = if op == Op::Sub { -b } else { b };
                let s = a + b;
                // TwoSum: the exact rounding error of s.
                let bb = s - a;
                let err = (a - (s - bb)) + (b - bb);
                (s, err != 0.0)
            }
            Op::Mul => {
                let p = a * b;
                (p, a.mul_add(b, -p) != 0.0)
            }
            Op::Div => {
                let q = a / b;
                (q, (-q).mul_add(b, a) != 0.0)
            }
        };
        if !in_range(r) {
            return None;
        }
        if inexact {
            env.raise(IXC);
        }
        Some(r.to_bits())
    } else if fmt == S {
        let (a, b) = (
            f32::from_bits(x1 as u32) as f64,
            f32::from_bits(x2 as u32) as f64,
        );
        if !in_range_s(a) || !in_range_s(b) {
            return None;
        }
        // Double rounding through f64 is innocuous for +, -, *, / (53 >= 2 * 24 + 2).
        let (r, inexact) = match op {
            Op::Add | Op::Sub => {
                let b = if op == Op::Sub { -b } else { b };
                let s = a + b;
                let bb = s - a;
                let err = (a - (s - bb)) + (b - bb);
                let r = s as f32;
                (r, err != 0.0 || r as f64 != s)
            }
            Op::Mul => {
                // Exact in double precision (24 + 24 bits).
                let p = a * b;
                let r = p as f32;
                (r, r as f64 != p)
            }
            Op::Div => {
                let r = (a / b) as f32;
                // r * b is exact in double precision.
                (r, r as f64 * b != a)
            }
        };
        if !in_range_s(r as f64) {
            return None;
        }
        if inexact {
            env.raise(IXC);
        }
        Some(r.to_bits() as u64)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::soft::{add, div, mul, Env, D, S};

    /// The fast path (FPCR = 0) must agree with the software path, which FPCR.FZ = 1 forces
    /// and which behaves identically for operands and results far from the denormal range.
    #[test]
    fn fast_matches_soft() {
        let mut s = 0x1234_5678_9abc_def1u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for i in 0..200_000 {
            let r = next();
            // Operands with nearby exponents (and sometimes few mantissa bits) so that exact
            // and tie cases occur.
            let mant_mask = if i % 3 == 0 {
                0xfff0_0000_0000_0000
            } else {
                u64::MAX
            };
            let a = (r & 0x800f_ffff_ffff_ffff & mant_mask) | ((1000 + (r >> 52) % 48) << 52);
            let r2 = next();
            let b = (r2 & 0x800f_ffff_ffff_ffff & mant_mask) | ((1000 + (r2 >> 52) % 48) << 52);
            let a32 = (a >> 32) & 0x807f_ffff | ((100 + (r >> 40) % 48) << 23);
            let b32 = (b >> 32) & 0x807f_ffff | ((100 + (r2 >> 40) % 48) << 23);
            for (fmt, x, y) in [(D, a, b), (S, a32, b32)] {
                let ops: [&dyn Fn(&mut Env) -> u64; 4] = [
                    &|e| add(fmt, x, y, false, e),
                    &|e| add(fmt, x, y, true, e),
                    &|e| mul(fmt, x, y, false, e),
                    &|e| div(fmt, x, y, e),
                ];
                for (k, op) in ops.iter().enumerate() {
                    let (mut e0, mut e1) = (Env::new(0), Env::new(1 << 24));
                    let (r0, r1) = (op(&mut e0), op(&mut e1));
                    assert_eq!((r0, e0.flags), (r1, e1.flags), "op {k} {x:x} {y:x}");
                }
            }
        }
    }
}
