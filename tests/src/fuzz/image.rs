//! The `image` target: AOT images translated and signed once at start with the fuzzer's
//! trusted key, mutated, then resealed as an attacker would (signed with another key: every
//! one must be refused, else a [`Outcome::Mismatch`]), or with the trusted key (an authentic
//! but malformed image: the parser and loader after verification must cope), or left with
//! their old or a cut trailer; then checked and loaded by [`check_and_load`] as `vmrun IMAGE`
//! does, and run bounded when the mutation left the code, map and metadata intact (image
//! code is trusted native code: running changed code would test nothing but the
//! authentication, which [`check_and_load`] is where it happens).

use std::sync::Arc;

use vmc_compiler::aot::image::{self, Image};
use vmc_compiler::aot::sign::{SigningKey, TrustedKeys};
use vmc_compiler::aot::translate::{translate, Options};
use vmc_runtime::aot::AotCode;

use super::{mutate, Fuzzer, Outcome, Rng};

/// One seed image and the byte ranges worth mutating.
struct Seed {
    bytes: Vec<u8>,
    /// (start, end) of: the ELF header, the section headers, the metadata, the map, the
    /// code, and the whole object.
    ranges: Vec<(usize, usize)>,
}

/// The seed images.
pub struct ImageFuzzer {
    seeds: Vec<Seed>,
}

/// The key the fuzzer's images are signed with, and the only one [`check_and_load`] trusts.
fn trusted_key() -> SigningKey {
    SigningKey::from_seed([0x5a; 32])
}

/// An attacker's key: images it seals must never load.
fn attacker_key() -> SigningKey {
    SigningKey::from_seed([0xa5; 32])
}

/// Whether `bytes` carry a signature by the attacker's key.
fn sealed_by_attacker(bytes: &[u8]) -> bool {
    Image::verify(bytes, &TrustedKeys::of(&[attacker_key().public()])).is_ok()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

impl ImageFuzzer {
    /// Translates the seed guests (the demo and a small generated program).
    pub fn new() -> Result<ImageFuzzer, String> {
        let guests: Vec<(&str, Vec<u8>)> = vec![
            ("demo", super::DEMO_ELF.to_vec()),
            ("generated", super::insn::sample_elf(1)),
        ];
        let mut seeds = Vec::new();
        for (name, elf) in guests {
            for return_prediction in [false, true] {
                let opts = Options {
                    jobs: 1,
                    return_prediction,
                    key: Some(Arc::new(trusted_key())),
                    ..Options::default()
                };
                let out = translate(&elf, name, &opts).map_err(|e| format!("{name}: {e}"))?;
                let bytes = out.image;
                let img = Image::parse(&bytes).map_err(|e| format!("{name}: {e}"))?;
                let object = bytes.len() - image::TRAILER;
                let shoff = mutate::get(&bytes, 40, 8) as usize;
                let mut ranges = vec![(0, 64), (shoff.min(object), object), (0, object)];
                let code = (img.code_offset, img.code_offset + img.code.len());
                ranges.push(code);
                let map = img.map.encode();
                if let Some(at) = find(&bytes[..object], &map) {
                    ranges.push((at, at + map.len()));
                }
                if let Some(at) = find(&bytes[..object], b"{\"format_version\"") {
                    let end = bytes[at..object]
                        .iter()
                        .position(|&b| b == 0)
                        .map_or(object, |n| at + n);
                    ranges.push((at, end));
                }
                seeds.push(Seed { bytes, ranges });
            }
        }
        Ok(ImageFuzzer { seeds })
    }
}

/// Everything `vmrun IMAGE` does with an image before running it: verify its signature
/// against the trusted keys, parse, check and map its code.
pub fn check_and_load(bytes: &[u8]) -> Result<(Image<'_>, AotCode), String> {
    let trusted = TrustedKeys::of(&[trusted_key().public()]);
    let img = Image::open(bytes, &trusted).map_err(|e| e.to_string())?;
    let code = vmc_runtime::aot::load(&img, None).map_err(|e| e.to_string())?;
    Ok((img, code))
}

impl Fuzzer for ImageFuzzer {
    fn input(&self, r: &mut Rng, _case: u64) -> Vec<u8> {
        let seed = &self.seeds[r.below(self.seeds.len() as u64) as usize];
        let object = seed.bytes.len() - image::TRAILER;
        let mut data = seed.bytes[..object].to_vec();
        for _ in 0..1 + r.below(3) {
            let (lo, hi) = r.pick(&seed.ranges);
            mutate::bytes(r, &mut data, lo, hi);
        }
        // Most images are resealed by the attacker; some by the trusted key (authentic but
        // malformed); the rest keep the old trailer or lose part of it.
        match r.below(8) {
            0 => {
                data.extend_from_slice(&seed.bytes[object..]);
                data
            }
            1 => {
                let mut d = image::seal(data, &attacker_key());
                let n = r.below(d.len() as u64 + 1) as usize;
                d.truncate(n);
                d
            }
            2..=4 => image::seal(data, &trusted_key()),
            _ => image::seal(data, &attacker_key()),
        }
    }

    fn run(&self, input: &[u8], r: &mut Rng, _case: u64) -> Outcome {
        let Ok((img, code)) = check_and_load(input) else {
            return Outcome::Refused;
        };
        if sealed_by_attacker(input) {
            return Outcome::Mismatch("an image signed by an untrusted key was loaded".into());
        }
        // Run only what the translator wrote: code, map and metadata of a seed.
        let intact = self.seeds.iter().any(|s| {
            Image::parse(&s.bytes)
                .is_ok_and(|o| o.code == img.code && o.map == img.map && o.meta == img.meta)
        });
        if !intact {
            return Outcome::Ran;
        }
        let rp = img.meta.return_prediction;
        super::elf::run_guest(img.guest, r, Some(Arc::new(code)), rp)
    }
}
