//! Software IEEE 754 arithmetic with the exact semantics of the ARM pseudocode
//! (`FPUnpack`, `FPRound`, `FPProcessNaNs`, `FPAdd`, `FPMulAdd`, `FPToFixed`, ...).
//!
//! Values are raw bit patterns in a `u64` whose format is given by [`Fmt`]. Every operation
//! takes an [`Env`] holding FPCR and accumulating the FPSR cumulative exception flags.
//! Intermediate exact values are `mant * 2^exp` with a `u128` mantissa; when bits must be
//! dropped before rounding, a sticky bit is OR-ed into bit 0 while keeping enough precision
//! above it that rounding decisions are unaffected.

/// FPSR.IOC: invalid operation.
pub const IOC: u32 = 1 << 0;
/// FPSR.DZC: divide by zero.
pub const DZC: u32 = 1 << 1;
/// FPSR.OFC: overflow.
pub const OFC: u32 = 1 << 2;
/// FPSR.UFC: underflow.
pub const UFC: u32 = 1 << 3;
/// FPSR.IXC: inexact.
pub const IXC: u32 = 1 << 4;
/// FPSR.IDC: input denormal.
pub const IDC: u32 = 1 << 7;

/// Rounding modes of the pseudocode (`FPRounding`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    /// Round to nearest, ties to even.
    TieEven,
    /// Towards plus infinity.
    PosInf,
    /// Towards minus infinity.
    NegInf,
    /// Towards zero.
    Zero,
    /// Round to nearest, ties away from zero.
    TieAway,
    /// Round to odd (von Neumann), used by FCVTXN.
    Odd,
}

impl Rounding {
    /// Decodes FPCR.RMode or the `rmode` field of FCVT*/FRINT* (0 N, 1 P, 2 M, 3 Z).
    pub fn from_rmode(r: u32) -> Rounding {
        match r & 3 {
            0 => Rounding::TieEven,
            1 => Rounding::PosInf,
            2 => Rounding::NegInf,
            _ => Rounding::Zero,
        }
    }
}

/// A binary floating-point format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fmt {
    /// Total width in bits.
    pub n: u32,
    /// Exponent bits.
    pub e: u32,
    /// Fraction bits.
    pub f: u32,
}

/// IEEE half precision.
pub const H: Fmt = Fmt { n: 16, e: 5, f: 10 };
/// Single precision.
pub const S: Fmt = Fmt { n: 32, e: 8, f: 23 };
/// Double precision.
pub const D: Fmt = Fmt {
    n: 64,
    e: 11,
    f: 52,
};

impl Fmt {
    /// Exponent bias.
    pub fn bias(self) -> i32 {
        (1 << (self.e - 1)) - 1
    }
    /// Mask of all `n` bits.
    pub fn mask(self) -> u64 {
        if self.n == 64 {
            u64::MAX
        } else {
            (1u64 << self.n) - 1
        }
    }
    /// The sign bit.
    pub fn sign_bit(self) -> u64 {
        1u64 << (self.n - 1)
    }
    /// Mask of the fraction field.
    pub fn frac_mask(self) -> u64 {
        (1u64 << self.f) - 1
    }
    /// The all-ones exponent field value.
    pub fn exp_max(self) -> u64 {
        (1u64 << self.e) - 1
    }
    /// The exponent field of `x`.
    pub fn exp_field(self, x: u64) -> u64 {
        (x >> self.f) & self.exp_max()
    }
    /// The quiet bit (top fraction bit).
    pub fn quiet_bit(self) -> u64 {
        1u64 << (self.f - 1)
    }
    /// `FPDefaultNaN()`.
    pub fn default_nan(self) -> u64 {
        (self.exp_max() << self.f) | self.quiet_bit()
    }
    /// `FPInfinity(sign)`.
    pub fn inf(self, sign: bool) -> u64 {
        self.zero(sign) | (self.exp_max() << self.f)
    }
    /// `FPZero(sign)`.
    pub fn zero(self, sign: bool) -> u64 {
        if sign {
            self.sign_bit()
        } else {
            0
        }
    }
    /// `FPMaxNormal(sign)`.
    pub fn max_normal(self, sign: bool) -> u64 {
        self.zero(sign) | ((self.exp_max() - 1) << self.f) | self.frac_mask()
    }
    /// `FPNeg`.
    pub fn neg(self, x: u64) -> u64 {
        (x ^ self.sign_bit()) & self.mask()
    }
    /// `FPAbs`.
    pub fn abs(self, x: u64) -> u64 {
        x & self.mask() & !self.sign_bit()
    }
    /// The constant `sign * 2^k * 1.frac_top` where `frac_top` gives the top fraction bits,
    /// used for FPTwo, FPOnePointFive etc.
    pub fn constant(self, sign: bool, unbiased_exp: i32, frac_top2: u64) -> u64 {
        self.zero(sign)
            | (((unbiased_exp + self.bias()) as u64) << self.f)
            | (frac_top2 << (self.f - 2))
    }
    /// True if `x` is a NaN.
    pub fn is_nan(self, x: u64) -> bool {
        self.exp_field(x) == self.exp_max() && x & self.frac_mask() != 0
    }
}

/// FPCR plus the cumulative flags raised by the current instruction.
#[derive(Clone, Copy, Debug, Default)]
pub struct Env {
    /// FPCR.
    pub fpcr: u32,
    /// FPSR cumulative flags raised (IOC..IDC bits).
    pub flags: u32,
}

impl Env {
    /// An environment for FPCR value `fpcr`.
    pub fn new(fpcr: u64) -> Env {
        Env {
            fpcr: fpcr as u32,
            flags: 0,
        }
    }
    /// FPCR.FZ.
    pub fn fz(&self) -> bool {
        self.fpcr >> 24 & 1 != 0
    }
    /// FPCR.DN.
    pub fn dn(&self) -> bool {
        self.fpcr >> 25 & 1 != 0
    }
    /// FPCR.AHP.
    pub fn ahp(&self) -> bool {
        self.fpcr >> 26 & 1 != 0
    }
    /// `FPRoundingMode(FPCR)`.
    pub fn rounding(&self) -> Rounding {
        Rounding::from_rmode(self.fpcr >> 22)
    }
    /// `FPProcessException` with all traps disabled: sets the cumulative flag.
    pub fn raise(&mut self, flag: u32) {
        self.flags |= flag;
    }
}

/// `FPType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// ±0, or a denormal flushed to zero.
    Zero,
    /// A nonzero finite value (normal or denormal).
    Finite,
    /// ±infinity.
    Inf,
    /// Quiet NaN.
    QNaN,
    /// Signalling NaN.
    SNaN,
}

/// The result of `FPUnpack`: for `Finite`, value = (-1)^sign * mant * 2^exp.
#[derive(Clone, Copy, Debug)]
pub struct Unpacked {
    /// Kind of value.
    pub class: Class,
    /// Sign bit.
    pub sign: bool,
    /// Exponent of the integer mantissa.
    pub exp: i32,
    /// Integer mantissa (nonzero for `Finite`).
    pub mant: u64,
}

impl Unpacked {
    /// True for either kind of NaN.
    pub fn is_nan(&self) -> bool {
        matches!(self.class, Class::QNaN | Class::SNaN)
    }
}

/// `FPUnpackBase`. `fz` says whether denormal inputs are flushed (FPCR.FZ for single and
/// double precision; half precision is never flushed here since FP16 arithmetic is not
/// implemented and conversions use `FPUnpackCV`). `ahp` selects the alternative half format.
fn unpack_base(fmt: Fmt, x: u64, env: &mut Env, fz: bool, ahp: bool) -> Unpacked {
    let x = x & fmt.mask();
    let sign = x & fmt.sign_bit() != 0;
    let e = fmt.exp_field(x);
    let frac = x & fmt.frac_mask();
    let bias = fmt.bias();
    let f = fmt.f as i32;
    let (class, exp, mant) = if e == 0 {
        if frac == 0 {
            (Class::Zero, 0, 0)
        } else if fz {
            env.raise(IDC);
            (Class::Zero, 0, 0)
        } else {
            (Class::Finite, 1 - bias - f, frac)
        }
    } else if e == fmt.exp_max() && !(fmt.n == 16 && ahp) {
        if frac == 0 {
            (Class::Inf, 0, 0)
        } else if frac & fmt.quiet_bit() != 0 {
            (Class::QNaN, 0, 0)
        } else {
            (Class::SNaN, 0, 0)
        }
    } else {
        (Class::Finite, e as i32 - bias - f, frac | (1u64 << fmt.f))
    };
    Unpacked {
        class,
        sign,
        exp,
        mant,
    }
}

/// `FPUnpack` for arithmetic (FZ applies to single and double precision).
pub fn unpack(fmt: Fmt, x: u64, env: &mut Env) -> Unpacked {
    let fz = fmt.n != 16 && env.fz();
    unpack_base(fmt, x, env, fz, false)
}

/// `FPUnpackCV` for conversions between precisions (FZ16 ignored, AHP honoured).
pub fn unpack_cv(fmt: Fmt, x: u64, env: &mut Env) -> Unpacked {
    let fz = fmt.n != 16 && env.fz();
    let ahp = env.ahp();
    unpack_base(fmt, x, env, fz, ahp)
}

/// How far the bits dropped by a right shift are from the retained integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Err {
    /// Exact.
    None,
    /// Strictly between 0 and one half unit.
    Below,
    /// Exactly one half unit.
    Half,
    /// Strictly above one half unit.
    Above,
}

/// `mant >> shift` together with the classification of the dropped bits.
pub fn shr_err(mant: u128, shift: u32) -> (u128, Err) {
    if shift == 0 {
        return (mant, Err::None);
    }
    if shift > 128 {
        return (0, if mant == 0 { Err::None } else { Err::Below });
    }
    let int = if shift == 128 { 0 } else { mant >> shift };
    let rem = if shift == 128 {
        mant
    } else {
        mant & ((1u128 << shift) - 1)
    };
    let half = 1u128 << (shift - 1);
    let err = if rem == 0 {
        Err::None
    } else if rem < half {
        Err::Below
    } else if rem == half {
        Err::Half
    } else {
        Err::Above
    };
    (int, err)
}

/// Whether to increment the magnitude `int` (dropped bits `err`) for a value of sign `sign`.
pub fn round_up_mag(rm: Rounding, sign: bool, int_odd: bool, err: Err) -> bool {
    match rm {
        Rounding::TieEven => err == Err::Above || (err == Err::Half && int_odd),
        Rounding::TieAway => err >= Err::Half,
        Rounding::PosInf => err != Err::None && !sign,
        Rounding::NegInf => err != Err::None && sign,
        Rounding::Zero | Rounding::Odd => false,
    }
}

/// `FPRound` (`FPRoundBase`): rounds the nonzero value (-1)^sign * mant * 2^exp to `fmt`.
/// If bits below the exact value were discarded, bit 0 of `mant` must be a sticky bit and
/// `mant` must carry at least `fmt.f + 3` significant bits.
pub fn round(fmt: Fmt, sign: bool, exp: i32, mant: u128, env: &mut Env, rm: Rounding) -> u64 {
    if mant == 0 {
        return fmt.zero(sign);
    }
    let msb = 127 - mant.leading_zeros() as i32;
    let e = exp + msb;
    let min_exp = 1 - fmt.bias();
    let f = fmt.f as i32;
    if fmt.n != 16 && env.fz() && e < min_exp {
        env.raise(UFC);
        return fmt.zero(sign);
    }
    let mut biased = (e - min_exp + 1).max(0) as u64;
    let q = e.max(min_exp) - f;
    let shift = q - exp;
    let (int, mut err) = if shift <= 0 {
        (mant << (-shift) as u32, Err::None)
    } else {
        shr_err(mant, shift as u32)
    };
    let mut int = int as u64;
    if biased == 0 && err != Err::None {
        env.raise(UFC);
    }
    let round_up = round_up_mag(rm, sign, int & 1 != 0, err);
    let overflow_to_inf = match rm {
        Rounding::TieEven | Rounding::TieAway => true,
        Rounding::PosInf => !sign,
        Rounding::NegInf => sign,
        Rounding::Zero | Rounding::Odd => false,
    };
    if round_up {
        int += 1;
        if int == 1u64 << f {
            biased = 1;
        }
        if int == 1u64 << (f + 1) {
            biased += 1;
            int >>= 1;
        }
    }
    if err != Err::None && rm == Rounding::Odd {
        int |= 1;
    }
    let result;
    if !(fmt.n == 16 && env.ahp()) {
        if biased >= fmt.exp_max() {
            result = if overflow_to_inf {
                fmt.inf(sign)
            } else {
                fmt.max_normal(sign)
            };
            env.raise(OFC);
            err = Err::Above;
        } else {
            result = fmt.zero(sign) | (biased << f) | (int & fmt.frac_mask());
        }
    } else if biased > fmt.exp_max() {
        result = fmt.zero(sign) | (fmt.mask() >> 1);
        env.raise(IOC);
        err = Err::None;
    } else {
        result = fmt.zero(sign) | (biased << f) | (int & fmt.frac_mask());
    }
    if err != Err::None {
        env.raise(IXC);
    }
    result
}

/// `FPProcessNaN`.
pub fn process_nan(fmt: Fmt, class: Class, x: u64, env: &mut Env) -> u64 {
    let mut r = x & fmt.mask();
    if class == Class::SNaN {
        r |= fmt.quiet_bit();
        env.raise(IOC);
    }
    if env.dn() {
        fmt.default_nan()
    } else {
        r
    }
}

/// `FPProcessNaNs`: `Some(result)` if either operand is a NaN.
pub fn process_nans(
    fmt: Fmt,
    u1: &Unpacked,
    u2: &Unpacked,
    x1: u64,
    x2: u64,
    env: &mut Env,
) -> Option<u64> {
    if u1.class == Class::SNaN {
        Some(process_nan(fmt, u1.class, x1, env))
    } else if u2.class == Class::SNaN {
        Some(process_nan(fmt, u2.class, x2, env))
    } else if u1.class == Class::QNaN {
        Some(process_nan(fmt, u1.class, x1, env))
    } else if u2.class == Class::QNaN {
        Some(process_nan(fmt, u2.class, x2, env))
    } else {
        None
    }
}

/// `FPProcessNaNs3`.
pub fn process_nans3(fmt: Fmt, u: [&Unpacked; 3], x: [u64; 3], env: &mut Env) -> Option<u64> {
    for class in [Class::SNaN, Class::QNaN] {
        for i in 0..3 {
            if u[i].class == class {
                return Some(process_nan(fmt, class, x[i], env));
            }
        }
    }
    None
}

/// An exact (or sticky-jammed) signed value `mant * 2^exp`, `mant < 2^127`.
#[derive(Clone, Copy, Debug)]
struct Val {
    sign: bool,
    exp: i32,
    mant: u128,
}

/// The sum of two nonzero values; `None` when it is exactly zero.
fn add_vals(a: Val, b: Val) -> Option<Val> {
    // Normalise both so the top bit is at position 126, then align the smaller.
    let norm = |v: Val| {
        let sh = v.mant.leading_zeros() as i32 - 1;
        Val {
            sign: v.sign,
            exp: v.exp - sh,
            mant: v.mant << sh,
        }
    };
    let (mut x, mut y) = (norm(a), norm(b));
    if y.exp > x.exp {
        std::mem::swap(&mut x, &mut y);
    }
    let d = (x.exp - y.exp) as u32;
    let (ym, err) = shr_err(y.mant, d);
    let ym = ym | (err != Err::None) as u128;
    let (sign, mant) = if x.sign == y.sign {
        (x.sign, x.mant + ym)
    } else if x.mant >= ym {
        (x.sign, x.mant - ym)
    } else {
        (y.sign, ym - x.mant)
    };
    if mant == 0 {
        None
    } else {
        Some(Val {
            sign,
            exp: x.exp,
            mant,
        })
    }
}

fn val(u: &Unpacked) -> Val {
    Val {
        sign: u.sign,
        exp: u.exp,
        mant: u.mant as u128,
    }
}

fn round_val(fmt: Fmt, v: Val, env: &mut Env) -> u64 {
    let rm = env.rounding();
    round(fmt, v.sign, v.exp, v.mant, env, rm)
}

/// `FPAdd` (or `FPSub` when `sub`).
pub fn add(fmt: Fmt, x1: u64, x2: u64, sub: bool, env: &mut Env) -> u64 {
    let op = if sub {
        super::fast::Op::Sub
    } else {
        super::fast::Op::Add
    };
    if let Some(r) = super::fast::binop(fmt, x1, x2, op, env) {
        return r;
    }
    let u1 = unpack(fmt, x1, env);
    let mut u2 = unpack(fmt, x2, env);
    if let Some(r) = process_nans(fmt, &u1, &u2, x1, x2, env) {
        return r;
    }
    u2.sign ^= sub;
    let (inf1, inf2) = (u1.class == Class::Inf, u2.class == Class::Inf);
    let (zero1, zero2) = (u1.class == Class::Zero, u2.class == Class::Zero);
    if inf1 && inf2 && u1.sign != u2.sign {
        env.raise(IOC);
        fmt.default_nan()
    } else if (inf1 && !u1.sign) || (inf2 && !u2.sign) {
        fmt.inf(false)
    } else if (inf1 && u1.sign) || (inf2 && u2.sign) {
        fmt.inf(true)
    } else if zero1 && zero2 && u1.sign == u2.sign {
        fmt.zero(u1.sign)
    } else {
        let sum = match (zero1, zero2) {
            (true, true) => None,
            (true, false) => Some(val(&u2)),
            (false, true) => Some(val(&u1)),
            (false, false) => add_vals(val(&u1), val(&u2)),
        };
        match sum {
            None => fmt.zero(env.rounding() == Rounding::NegInf),
            Some(v) => round_val(fmt, v, env),
        }
    }
}

/// `FPMul`, or `FPMulX` when `mulx` (infinity times zero gives ±2.0).
pub fn mul(fmt: Fmt, x1: u64, x2: u64, mulx: bool, env: &mut Env) -> u64 {
    if let Some(r) = super::fast::binop(fmt, x1, x2, super::fast::Op::Mul, env) {
        return r;
    }
    let u1 = unpack(fmt, x1, env);
    let u2 = unpack(fmt, x2, env);
    if let Some(r) = process_nans(fmt, &u1, &u2, x1, x2, env) {
        return r;
    }
    let (inf1, inf2) = (u1.class == Class::Inf, u2.class == Class::Inf);
    let (zero1, zero2) = (u1.class == Class::Zero, u2.class == Class::Zero);
    let sign = u1.sign ^ u2.sign;
    if (inf1 && zero2) || (zero1 && inf2) {
        if mulx {
            fmt.constant(sign, 1, 0)
        } else {
            env.raise(IOC);
            fmt.default_nan()
        }
    } else if inf1 || inf2 {
        fmt.inf(sign)
    } else if zero1 || zero2 {
        fmt.zero(sign)
    } else {
        let v = Val {
            sign,
            exp: u1.exp + u2.exp,
            mant: u1.mant as u128 * u2.mant as u128,
        };
        round_val(fmt, v, env)
    }
}

/// `FPDiv`.
pub fn div(fmt: Fmt, x1: u64, x2: u64, env: &mut Env) -> u64 {
    if let Some(r) = super::fast::binop(fmt, x1, x2, super::fast::Op::Div, env) {
        return r;
    }
    let u1 = unpack(fmt, x1, env);
    let u2 = unpack(fmt, x2, env);
    if let Some(r) = process_nans(fmt, &u1, &u2, x1, x2, env) {
        return r;
    }
    let (inf1, inf2) = (u1.class == Class::Inf, u2.class == Class::Inf);
    let (zero1, zero2) = (u1.class == Class::Zero, u2.class == Class::Zero);
    let sign = u1.sign ^ u2.sign;
    if (inf1 && inf2) || (zero1 && zero2) {
        env.raise(IOC);
        fmt.default_nan()
    } else if inf1 || zero2 {
        if !inf1 {
            env.raise(DZC);
        }
        fmt.inf(sign)
    } else if zero1 || inf2 {
        fmt.zero(sign)
    } else {
        let sh = (u1.mant as u128).leading_zeros();
        let n = (u1.mant as u128) << sh;
        let d = u2.mant as u128;
        let q = n / d;
        let r = n % d;
        let v = Val {
            sign,
            exp: u1.exp - sh as i32 - u2.exp,
            mant: q | (r != 0) as u128,
        };
        round_val(fmt, v, env)
    }
}

/// Floor square root of `n` and whether it is exact.
fn isqrt(n: u128) -> (u128, bool) {
    if n == 0 {
        return (0, true);
    }
    // A host estimate (about 50 correct bits), one integer Newton step, then exact fix-up.
    let mut r = (n as f64).sqrt() as u128;
    if r == 0 {
        r = 1;
    }
    r = (r + n / r) / 2;
    while r * r > n {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= n {
        r += 1;
    }
    (r, r * r == n)
}

/// `FPSqrt`.
pub fn sqrt(fmt: Fmt, x: u64, env: &mut Env) -> u64 {
    let u = unpack(fmt, x, env);
    match u.class {
        Class::QNaN | Class::SNaN => process_nan(fmt, u.class, x, env),
        Class::Zero => fmt.zero(u.sign),
        Class::Inf if !u.sign => fmt.inf(false),
        _ if u.sign => {
            env.raise(IOC);
            fmt.default_nan()
        }
        _ => {
            let mut m = u.mant as u128;
            let mut e = u.exp;
            if e & 1 != 0 {
                m <<= 1;
                e -= 1;
            }
            // Shift by an even amount so the mantissa has 125 or 126 bits.
            let sh = (m.leading_zeros() as i32 - 2) & !1;
            m <<= sh;
            e -= sh;
            let (r, exact) = isqrt(m);
            let v = Val {
                sign: false,
                exp: e / 2,
                mant: r | (!exact) as u128,
            };
            round_val(fmt, v, env)
        }
    }
}

/// `FPMulAdd(addend, op1, op2)`: addend + op1 * op2 with a single rounding.
pub fn muladd(fmt: Fmt, xa: u64, x1: u64, x2: u64, env: &mut Env) -> u64 {
    let ua = unpack(fmt, xa, env);
    let u1 = unpack(fmt, x1, env);
    let u2 = unpack(fmt, x2, env);
    let (inf1, inf2) = (u1.class == Class::Inf, u2.class == Class::Inf);
    let (zero1, zero2) = (u1.class == Class::Zero, u2.class == Class::Zero);
    let nan = process_nans3(fmt, [&ua, &u1, &u2], [xa, x1, x2], env);
    if ua.class == Class::QNaN && ((inf1 && zero2) || (zero1 && inf2)) {
        env.raise(IOC);
        return fmt.default_nan();
    }
    if let Some(r) = nan {
        return r;
    }
    let (infa, zeroa) = (ua.class == Class::Inf, ua.class == Class::Zero);
    let signp = u1.sign ^ u2.sign;
    let infp = inf1 || inf2;
    let zerop = zero1 || zero2;
    if (inf1 && zero2) || (zero1 && inf2) || (infa && infp && ua.sign != signp) {
        env.raise(IOC);
        fmt.default_nan()
    } else if (infa && !ua.sign) || (infp && !signp) {
        fmt.inf(false)
    } else if (infa && ua.sign) || (infp && signp) {
        fmt.inf(true)
    } else if zeroa && zerop && ua.sign == signp {
        fmt.zero(ua.sign)
    } else {
        let p = Val {
            sign: signp,
            exp: u1.exp + u2.exp,
            mant: u1.mant as u128 * u2.mant as u128,
        };
        let sum = match (zeroa, zerop) {
            (true, true) => None,
            (true, false) => Some(p),
            (false, true) => Some(val(&ua)),
            (false, false) => add_vals(val(&ua), p),
        };
        match sum {
            None => fmt.zero(env.rounding() == Rounding::NegInf),
            Some(v) => round_val(fmt, v, env),
        }
    }
}

/// `FPRecipStepFused` (`rsqrt` false: 2 - op1*op2) and `FPRSqrtStepFused`
/// (`rsqrt`: (3 - op1*op2) / 2).
pub fn step_fused(fmt: Fmt, x1: u64, x2: u64, rsqrt: bool, env: &mut Env) -> u64 {
    let x1 = fmt.neg(x1);
    let u1 = unpack(fmt, x1, env);
    let u2 = unpack(fmt, x2, env);
    if let Some(r) = process_nans(fmt, &u1, &u2, x1, x2, env) {
        return r;
    }
    let (inf1, inf2) = (u1.class == Class::Inf, u2.class == Class::Inf);
    let (zero1, zero2) = (u1.class == Class::Zero, u2.class == Class::Zero);
    if (inf1 && zero2) || (zero1 && inf2) {
        // FPTwo or FPOnePointFive.
        if rsqrt {
            fmt.constant(false, 0, 2)
        } else {
            fmt.constant(false, 1, 0)
        }
    } else if inf1 || inf2 {
        fmt.inf(u1.sign ^ u2.sign)
    } else {
        let c = Val {
            sign: false,
            exp: 0,
            mant: if rsqrt { 3 } else { 2 },
        };
        let sum = if zero1 || zero2 {
            Some(c)
        } else {
            let p = Val {
                sign: u1.sign ^ u2.sign,
                exp: u1.exp + u2.exp,
                mant: u1.mant as u128 * u2.mant as u128,
            };
            add_vals(c, p)
        };
        match sum {
            None => fmt.zero(env.rounding() == Rounding::NegInf),
            Some(mut v) => {
                if rsqrt {
                    v.exp -= 1;
                }
                round_val(fmt, v, env)
            }
        }
    }
}

/// Total order key of a non-NaN unpacked value's bits (flushed denormals compare as zero).
fn order_key(fmt: Fmt, u: &Unpacked, x: u64) -> i128 {
    let mag = if u.class == Class::Zero {
        0
    } else {
        (fmt.abs(x)) as i128
    };
    if u.sign {
        -mag
    } else {
        mag
    }
}

/// `FPMax` (`max`) or `FPMin`.
pub fn maxmin(fmt: Fmt, x1: u64, x2: u64, max: bool, env: &mut Env) -> u64 {
    let u1 = unpack(fmt, x1, env);
    let u2 = unpack(fmt, x2, env);
    if let Some(r) = process_nans(fmt, &u1, &u2, x1, x2, env) {
        return r;
    }
    let (k1, k2) = (order_key(fmt, &u1, x1), order_key(fmt, &u2, x2));
    let first = if max { k1 > k2 } else { k1 < k2 };
    let (u, x) = if first { (u1, x1) } else { (u2, x2) };
    match u.class {
        Class::Zero => {
            let sign = if max {
                u1.sign && u2.sign
            } else {
                u1.sign || u2.sign
            };
            fmt.zero(sign)
        }
        _ => x & fmt.mask(),
    }
}

/// `FPMaxNum` (`max`) or `FPMinNum`.
pub fn maxmin_num(fmt: Fmt, x1: u64, x2: u64, max: bool, env: &mut Env) -> u64 {
    let c1 = unpack(fmt, x1, env).class;
    let c2 = unpack(fmt, x2, env).class;
    let (mut x1, mut x2) = (x1, x2);
    // A single quiet NaN is treated as the infinity that loses.
    if c1 == Class::QNaN && c2 != Class::QNaN {
        x1 = fmt.inf(max);
    } else if c1 != Class::QNaN && c2 == Class::QNaN {
        x2 = fmt.inf(max);
    }
    maxmin(fmt, x1, x2, max, env)
}

/// `FPCompare`: NZCV (as a 4-bit value, N in bit 3).
pub fn compare(fmt: Fmt, x1: u64, x2: u64, signal_nans: bool, env: &mut Env) -> u32 {
    let u1 = unpack(fmt, x1, env);
    let u2 = unpack(fmt, x2, env);
    if u1.is_nan() || u2.is_nan() {
        if u1.class == Class::SNaN || u2.class == Class::SNaN || signal_nans {
            env.raise(IOC);
        }
        0b0011
    } else {
        let (k1, k2) = (order_key(fmt, &u1, x1), order_key(fmt, &u2, x2));
        if k1 == k2 {
            0b0110
        } else if k1 < k2 {
            0b1000
        } else {
            0b0010
        }
    }
}

/// The vector comparisons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// `FPCompareEQ`.
    Eq,
    /// `FPCompareGE`.
    Ge,
    /// `FPCompareGT`.
    Gt,
}

/// `FPCompareEQ`/`GE`/`GT`.
pub fn compare_cond(fmt: Fmt, x1: u64, x2: u64, cmp: Cmp, env: &mut Env) -> bool {
    let u1 = unpack(fmt, x1, env);
    let u2 = unpack(fmt, x2, env);
    if u1.is_nan() || u2.is_nan() {
        if u1.class == Class::SNaN || u2.class == Class::SNaN || cmp != Cmp::Eq {
            env.raise(IOC);
        }
        false
    } else {
        let (k1, k2) = (order_key(fmt, &u1, x1), order_key(fmt, &u2, x2));
        match cmp {
            Cmp::Eq => k1 == k2,
            Cmp::Ge => k1 >= k2,
            Cmp::Gt => k1 > k2,
        }
    }
}

/// `FPRoundInt(op, rounding, exact)`.
pub fn round_int(fmt: Fmt, x: u64, rm: Rounding, exact: bool, env: &mut Env) -> u64 {
    let u = unpack(fmt, x, env);
    match u.class {
        Class::QNaN | Class::SNaN => process_nan(fmt, u.class, x, env),
        Class::Inf => fmt.inf(u.sign),
        Class::Zero => fmt.zero(u.sign),
        Class::Finite => {
            if u.exp >= 0 {
                return x & fmt.mask();
            }
            let (int, err) = shr_err(u.mant as u128, (-u.exp) as u32);
            let int = int + round_up_mag(rm, u.sign, int & 1 != 0, err) as u128;
            let r = if int == 0 {
                fmt.zero(u.sign)
            } else {
                round(fmt, u.sign, 0, int, env, Rounding::Zero)
            };
            if err != Err::None && exact {
                env.raise(IXC);
            }
            r
        }
    }
}

/// `FPToFixed(op, fbits, unsigned, rounding)` to an `m`-bit integer (zero-extended to 64 bits).
pub fn to_fixed(
    fmt: Fmt,
    x: u64,
    fbits: u32,
    unsigned: bool,
    m: u32,
    rm: Rounding,
    env: &mut Env,
) -> u64 {
    let u = unpack(fmt, x, env);
    let (max, min): (i128, i128) = if unsigned {
        ((1i128 << m) - 1, 0)
    } else {
        ((1i128 << (m - 1)) - 1, -(1i128 << (m - 1)))
    };
    let mask = if m == 64 { u64::MAX } else { (1u64 << m) - 1 };
    let sat = |v: i128| (v.clamp(min, max) as u64) & mask;
    match u.class {
        Class::QNaN | Class::SNaN => {
            env.raise(IOC);
            0
        }
        Class::Zero => 0,
        Class::Inf => {
            env.raise(IOC);
            sat(if u.sign { min - 1 } else { max + 1 })
        }
        Class::Finite => {
            let e = u.exp + fbits as i32;
            let msb = 63 - u.mant.leading_zeros() as i32;
            let (mag, err) = if e >= 0 {
                if msb + e > 100 {
                    env.raise(IOC);
                    return sat(if u.sign { min - 1 } else { max + 1 });
                }
                ((u.mant as u128) << e, Err::None)
            } else {
                shr_err(u.mant as u128, (-e) as u32)
            };
            let mag = mag + round_up_mag(rm, u.sign, mag & 1 != 0, err) as u128;
            let v = if u.sign { -(mag as i128) } else { mag as i128 };
            if v > max || v < min {
                env.raise(IOC);
            } else if err != Err::None {
                env.raise(IXC);
            }
            sat(v)
        }
    }
}

/// `FixedToFP(op, fbits, unsigned, rounding)` from the low `m` bits of `x`.
pub fn from_fixed(
    fmt: Fmt,
    x: u64,
    m: u32,
    fbits: u32,
    unsigned: bool,
    rm: Rounding,
    env: &mut Env,
) -> u64 {
    let mask = if m == 64 { u64::MAX } else { (1u64 << m) - 1 };
    let x = x & mask;
    let neg = !unsigned && x >> (m - 1) & 1 != 0;
    let mag = if neg { (x.wrapping_neg()) & mask } else { x };
    let mag = if neg && mag == 0 {
        1u128 << (m - 1)
    } else {
        mag as u128
    };
    if mag == 0 {
        return fmt.zero(false);
    }
    // A 64-bit magnitude with a format of at most 53 bits: when bits are dropped the
    // shr inside `round` keeps an exact remainder, so no jamming is needed.
    round(fmt, neg, -(fbits as i32), mag, env, rm)
}

/// `FPConvertNaN` from `from` to `to`.
fn convert_nan(from: Fmt, to: Fmt, x: u64) -> u64 {
    let sign = x & from.sign_bit() != 0;
    // The payload below the quiet bit, left-aligned in 51 bits.
    let frac51 = (x & (from.quiet_bit() - 1)) << (51 - (from.f - 1));
    let payload = frac51 >> (51 - (to.f - 1));
    to.zero(sign) | (to.exp_max() << to.f) | to.quiet_bit() | payload
}

/// `FPConvert(op, rounding)` between half, single and double precision.
pub fn convert(from: Fmt, to: Fmt, x: u64, rm: Rounding, env: &mut Env) -> u64 {
    let u = unpack_cv(from, x, env);
    let alt_hp = to.n == 16 && env.ahp();
    match u.class {
        Class::QNaN | Class::SNaN => {
            let r = if alt_hp {
                to.zero(u.sign)
            } else if env.dn() {
                to.default_nan()
            } else {
                convert_nan(from, to, x)
            };
            if u.class == Class::SNaN || alt_hp {
                env.raise(IOC);
            }
            r
        }
        Class::Inf => {
            if alt_hp {
                env.raise(IOC);
                to.zero(u.sign) | (to.mask() >> 1)
            } else {
                to.inf(u.sign)
            }
        }
        Class::Zero => to.zero(u.sign),
        Class::Finite => round(to, u.sign, u.exp, u.mant as u128, env, rm),
    }
}

fn recip_estimate(a: u64) -> u64 {
    let a = a * 2 + 1;
    let b = (1u64 << 19) / a;
    b.div_ceil(2)
}

fn recip_sqrt_estimate(a: u64) -> u64 {
    let a = if a < 256 {
        a * 2 + 1
    } else {
        (((a >> 1) << 1) + 1) * 2
    };
    let mut b = 512u64;
    while a * (b + 1) * (b + 1) < (1u64 << 28) {
        b += 1;
    }
    b.div_ceil(2)
}

/// `FPRecipEstimate` (FRECPE) for single and double precision.
pub fn recip_estimate_fp(fmt: Fmt, x: u64, env: &mut Env) -> u64 {
    let u = unpack(fmt, x, env);
    let x = x & fmt.mask();
    match u.class {
        Class::QNaN | Class::SNaN => return process_nan(fmt, u.class, x, env),
        Class::Inf => return fmt.zero(u.sign),
        Class::Zero => {
            env.raise(DZC);
            return fmt.inf(u.sign);
        }
        Class::Finite => {}
    }
    let e_raw = fmt.exp_field(x);
    // |value| < 2^-(bias+2) (i.e. 2^-128 or 2^-1024): the reciprocal overflows.
    let tiny = e_raw == 0 && (x & fmt.frac_mask()) < (1u64 << (fmt.f - 2));
    if tiny {
        let to_inf = match env.rounding() {
            Rounding::PosInf => !u.sign,
            Rounding::NegInf => u.sign,
            Rounding::Zero => false,
            _ => true,
        };
        env.raise(OFC | IXC);
        return if to_inf {
            fmt.inf(u.sign)
        } else {
            fmt.max_normal(u.sign)
        };
    }
    if env.fz() && e_raw >= (fmt.bias() as u64 * 2 - 1) {
        // |value| >= 2^126 (2^1022): result flushed to zero.
        env.raise(UFC);
        return fmt.zero(u.sign);
    }
    let mut fraction = (x & fmt.frac_mask()) << (52 - fmt.f);
    let mut exp = e_raw as i64;
    if exp == 0 {
        if fraction >> 51 & 1 == 0 {
            exp = -1;
            fraction = (fraction << 2) & ((1u64 << 52) - 1);
        } else {
            fraction = (fraction << 1) & ((1u64 << 52) - 1);
        }
    }
    let scaled = (1 << 8) | (fraction >> 44);
    let mut result_exp = if fmt.n == 32 { 253 - exp } else { 2045 - exp };
    let estimate = recip_estimate(scaled);
    let mut fraction = (estimate & 0xff) << 44;
    if result_exp == 0 {
        fraction = (1u64 << 51) | (fraction >> 1);
    } else if result_exp == -1 {
        fraction = (1u64 << 50) | (fraction >> 2);
        result_exp = 0;
    }
    fmt.zero(u.sign) | ((result_exp as u64) << fmt.f) | (fraction >> (52 - fmt.f))
}

/// `FPRSqrtEstimate` (FRSQRTE) for single and double precision.
pub fn rsqrt_estimate_fp(fmt: Fmt, x: u64, env: &mut Env) -> u64 {
    let u = unpack(fmt, x, env);
    let x = x & fmt.mask();
    match u.class {
        Class::QNaN | Class::SNaN => return process_nan(fmt, u.class, x, env),
        Class::Zero => {
            env.raise(DZC);
            return fmt.inf(u.sign);
        }
        _ if u.sign => {
            env.raise(IOC);
            return fmt.default_nan();
        }
        Class::Inf => return fmt.zero(false),
        Class::Finite => {}
    }
    let mut fraction = (x & fmt.frac_mask()) << (52 - fmt.f);
    let mut exp = fmt.exp_field(x) as i64;
    if exp == 0 {
        while fraction >> 51 & 1 == 0 {
            fraction <<= 1;
            exp -= 1;
        }
        fraction = (fraction << 1) & ((1u64 << 52) - 1);
    }
    let scaled = if exp & 1 == 0 {
        (1 << 8) | (fraction >> 44)
    } else {
        (1 << 7) | (fraction >> 45)
    };
    let result_exp = if fmt.n == 32 {
        (380 - exp) / 2
    } else {
        (3068 - exp) / 2
    };
    let estimate = recip_sqrt_estimate(scaled);
    ((result_exp as u64) << fmt.f) | ((estimate & 0xff) << (fmt.f - 8))
}

/// `FPRecpX` (FRECPX).
pub fn recpx(fmt: Fmt, x: u64, env: &mut Env) -> u64 {
    let u = unpack(fmt, x, env);
    let x = x & fmt.mask();
    if u.is_nan() {
        return process_nan(fmt, u.class, x, env);
    }
    let e = fmt.exp_field(x);
    let sign = fmt.zero(u.sign);
    if e == 0 {
        sign | ((fmt.exp_max() - 1) << fmt.f)
    } else {
        sign | ((!e & fmt.exp_max()) << fmt.f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(fpcr: u64) -> Env {
        Env::new(fpcr)
    }

    #[test]
    fn add_basic() {
        let mut e = env(0);
        let r = add(D, 1.5f64.to_bits(), 2.25f64.to_bits(), false, &mut e);
        assert_eq!(f64::from_bits(r), 3.75);
        assert_eq!(e.flags, 0);
        let r = add(
            S,
            1.0f32.to_bits() as u64,
            1e-10f32.to_bits() as u64,
            false,
            &mut e,
        );
        assert_eq!(r, 1.0f32.to_bits() as u64);
        assert_eq!(e.flags, IXC);
    }

    #[test]
    fn matches_host_round_to_nearest() {
        // xorshift-driven comparison against the host's IEEE arithmetic (round to nearest).
        let mut s = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for _ in 0..20000 {
            let (a, b, c) = (next(), next(), next());
            let (fa, fb, fc) = (f64::from_bits(a), f64::from_bits(b), f64::from_bits(c));
            let mut e = env(0);
            let check = |r: u64, h: f64| {
                if h.is_nan() {
                    assert!(f64::from_bits(r).is_nan());
                } else {
                    assert_eq!(r, h.to_bits(), "{fa:e} {fb:e} {fc:e}");
                }
            };
            check(add(D, a, b, false, &mut e), fa + fb);
            check(add(D, a, b, true, &mut e), fa - fb);
            check(mul(D, a, b, false, &mut e), fa * fb);
            check(div(D, a, b, &mut e), fa / fb);
            check(sqrt(D, a, &mut e), fa.sqrt());
            check(muladd(D, c, a, b, &mut e), fa.mul_add(fb, fc));
            let (ga, gb, gc) = (
                f32::from_bits(a as u32),
                f32::from_bits(b as u32),
                f32::from_bits(c as u32),
            );
            let checks = |r: u64, h: f32| {
                if h.is_nan() {
                    assert!(f32::from_bits(r as u32).is_nan());
                } else {
                    assert_eq!(r, h.to_bits() as u64, "{ga:e} {gb:e} {gc:e}");
                }
            };
            let (a, b, c) = (a & 0xffff_ffff, b & 0xffff_ffff, c & 0xffff_ffff);
            checks(add(S, a, b, false, &mut e), ga + gb);
            checks(mul(S, a, b, false, &mut e), ga * gb);
            checks(div(S, a, b, &mut e), ga / gb);
            checks(sqrt(S, a, &mut e), ga.sqrt());
            checks(muladd(S, c, a, b, &mut e), ga.mul_add(gb, gc));
            checks(
                convert(D, S, fa.to_bits(), Rounding::TieEven, &mut e),
                fa as f32,
            );
            check(convert(S, D, a, Rounding::TieEven, &mut e), ga as f64);
        }
    }

    #[test]
    fn conversions() {
        let mut e = env(0);
        assert_eq!(
            to_fixed(D, 2.5f64.to_bits(), 0, false, 32, Rounding::TieEven, &mut e),
            2
        );
        assert_eq!(
            to_fixed(
                D,
                (-2.5f64).to_bits(),
                0,
                false,
                32,
                Rounding::TieAway,
                &mut e
            ),
            (-3i32) as u32 as u64
        );
        assert_eq!(
            to_fixed(D, 1e20f64.to_bits(), 0, false, 32, Rounding::Zero, &mut e),
            0x7fff_ffff
        );
        assert_eq!(e.flags, IXC | IOC);
        let mut e = env(0);
        assert_eq!(
            to_fixed(D, f64::NAN.to_bits(), 0, true, 64, Rounding::Zero, &mut e),
            0
        );
        assert_eq!(e.flags, IOC);
        assert_eq!(
            from_fixed(D, u64::MAX, 64, 0, false, Rounding::TieEven, &mut e),
            (-1.0f64).to_bits()
        );
        assert_eq!(
            from_fixed(S, u64::MAX, 64, 0, true, Rounding::TieEven, &mut e),
            1.8446744e19f32.to_bits() as u64
        );
        assert_eq!(
            from_fixed(D, 1 << 63, 64, 0, false, Rounding::TieEven, &mut e),
            (i64::MIN as f64).to_bits()
        );
    }
}

#[cfg(test)]
mod isqrt_tests {
    #[test]
    fn isqrt_exact() {
        let mut s = 0x2545_f491_4f6c_dd1du64;
        for i in 0..100_000u128 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let n = ((s as u128) << 64 | i) >> (s % 64);
            let n = n & ((1u128 << 127) - 1);
            let (r, exact) = super::isqrt(n);
            assert!(r * r <= n && (r + 1) * (r + 1) > n, "{n}");
            assert_eq!(exact, r * r == n);
        }
        for n in [0u128, 1, 2, 3, 4, (1 << 126) - 1, 1 << 126, (1 << 127) - 1] {
            let (r, _) = super::isqrt(n);
            assert!(r * r <= n && (r + 1) * (r + 1) > n, "{n}");
        }
    }
}
