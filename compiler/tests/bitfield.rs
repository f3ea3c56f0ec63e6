//! SBFM and UBFM (SBFX/UBFX/SBFIZ/UBFIZ/ASR/LSR/LSL/SXT*/UXT*), translated as two shifts,
//! against a model written from the instructions' definitions: every valid (sf, immr, imms)
//! with random and edge source values, run by the interpreter. (The random differential
//! test compares a sample of them with qemu-aarch64 as well.)

mod common;

use common::{run_interp, Case, Rng};

/// The field's meaning: with `imms >= immr`, bits `imms..=immr` of the source moved to bit
/// 0; otherwise bits `imms..=0` moved to bit `width - immr`; then sign- (SBFM) or
/// zero-extended (UBFM) from the field's top bit, to the operation width.
fn model(signed: bool, bits: u32, immr: u32, imms: u32, src: u64) -> u64 {
    let (field, lsb, len) = if imms >= immr {
        (src >> immr, 0, imms - immr + 1)
    } else {
        (src, bits - immr, imms + 1)
    };
    let field = field & (u64::MAX >> (64 - len));
    let top = lsb + len; // <= bits
    let mut r = field << lsb;
    if signed && (field >> (len - 1)) & 1 == 1 && top < 64 {
        r |= u64::MAX << top;
    }
    r & (u64::MAX >> (64 - bits))
}

#[test]
fn sbfm_and_ubfm_match_their_definition() {
    let mut rng = Rng::new(0x5bf3);
    let edges = [
        0u64,
        1,
        u64::MAX,
        0x8000_0000,
        0x7fff_ffff,
        1 << 63,
        0xffff_ffff,
    ];
    let mut checked = 0;
    for sf in [0u32, 1] {
        let bits = 32 << sf;
        for opc in [0b00u32, 0b10] {
            for immr in 0..bits {
                for imms in 0..bits {
                    // rd = x0, rn = x1.
                    let word = sf << 31
                        | opc << 29
                        | 0b100110 << 23
                        | sf << 22
                        | immr << 16
                        | imms << 10
                        | 1 << 5;
                    for k in 0..4 {
                        let src = match k {
                            0 | 1 => rng.next(),
                            _ => edges[rng.below(edges.len() as u64) as usize],
                        };
                        let mut x = [0u64; 32];
                        x[0] = 0x0123_4567_89ab_cdef;
                        x[1] = src;
                        let case = Case {
                            class: "bitfield",
                            words: vec![word],
                            x,
                            nzcv: 0,
                            buf: None,
                        };
                        let out = run_interp(&case, 0x1000).expect("runs");
                        let want = model(opc == 0, bits, immr, imms, src);
                        assert_eq!(
                            out.x[0], want,
                            "{word:08x} (sf {sf} opc {opc:02b} immr {immr} imms {imms}) of \
                             {src:#x}: got {:#x}, want {want:#x}",
                            out.x[0]
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 4 * 2 * (32 * 32 + 64 * 64));
}
