//! The profile file format, merging, instruction counts and summaries.

use std::collections::BTreeMap;

use vmc_profiles::{
    hex, sha256, BlockCount, BlockKey, IndirectSite, Profile, ProfileError, SiteKind,
    FORMAT_VERSION, MAGIC,
};

fn guest() -> [u8; 32] {
    sha256(b"guest binary")
}

fn block(p: &mut Profile, pc: u64, insns: u32, count: u64, taken: u64) {
    p.blocks
        .insert(BlockKey { pc, insns }, BlockCount { count, taken });
}

/// A profile with something in every field, including extreme values.
fn sample() -> Profile {
    let mut p = Profile::new(guest(), "kernel-été");
    p.runs = 3;
    block(&mut p, 0x40_1000, 4, 10, 7);
    block(&mut p, 0x40_1000, 9, 2, 0);
    block(&mut p, 0x40_1010, 3, 1_000_000, 999_999);
    block(&mut p, u64::MAX - 3, 1, u64::MAX, 0);
    p.edges.insert((0x40_1000, 0x40_1010), 10);
    p.edges.insert((0x40_1000, 0x40_0ff0), 3); // backwards
    p.edges.insert((0x40_1010, 0), 1);
    p.indirect.insert(
        0x40_100c,
        IndirectSite {
            kind: SiteKind::Call,
            targets: BTreeMap::from([(0x40_2000, 5), (0x10, 1), (u64::MAX, 2)]),
        },
    );
    p.indirect.insert(
        0x40_2040,
        IndirectSite {
            kind: SiteKind::Return,
            targets: BTreeMap::from([(0x40_1010, 5)]),
        },
    );
    p.indirect.insert(
        0x40_3000,
        IndirectSite {
            kind: SiteKind::Jump,
            targets: BTreeMap::new(),
        },
    );
    p.entries.extend([0, 0x40_1000, 0x40_1010, u64::MAX]);
    p.calls.insert(0x40_2000, 5);
    p.calls.insert(0x40_1000, 1);
    p
}

/// Replaces the trailer with the correct digest of everything before it.
fn reseal(bytes: &mut Vec<u8>) {
    bytes.truncate(bytes.len() - 32);
    let digest = sha256(bytes);
    bytes.extend_from_slice(&digest);
}

#[test]
fn round_trip() {
    let p = sample();
    let bytes = p.encode();
    assert_eq!(bytes[..8], MAGIC);
    assert_eq!(bytes[8..12], FORMAT_VERSION.to_le_bytes());
    let q = Profile::decode(&bytes).unwrap();
    assert_eq!(q, p);
    assert_eq!(q.encode(), bytes);

    let empty = Profile::new([0; 32], "");
    assert_eq!(Profile::decode(&empty.encode()).unwrap(), empty);
}

#[test]
fn deterministic_regardless_of_insertion_order() {
    let a = sample();
    let mut b = Profile::new(guest(), "kernel-été");
    b.runs = 3;
    b.calls.insert(0x40_1000, 1);
    b.entries.extend([u64::MAX, 0x40_1010, 0x40_1000, 0]);
    for (&pc, site) in a.indirect.iter().rev() {
        b.indirect.insert(pc, site.clone());
    }
    for (&e, &n) in a.edges.iter().rev() {
        b.edges.insert(e, n);
    }
    for (&k, &c) in a.blocks.iter().rev() {
        b.blocks.insert(k, c);
    }
    b.calls.insert(0x40_2000, 5);
    assert_eq!(a.encode(), b.encode());
}

#[test]
fn every_truncation_is_refused() {
    let bytes = sample().encode();
    for len in 0..bytes.len() {
        let err = Profile::decode(&bytes[..len]).unwrap_err();
        if len < 44 {
            assert!(matches!(err, ProfileError::Truncated), "{len}: {err}");
        } else {
            assert!(matches!(err, ProfileError::Checksum), "{len}: {err}");
        }
    }
}

#[test]
fn every_flipped_byte_is_refused() {
    let mut p = Profile::new(guest(), "g");
    block(&mut p, 0x1000, 2, 5, 1);
    p.edges.insert((0x1000, 0x1008), 4);
    p.calls.insert(0x2000, 1);
    let bytes = p.encode();
    for i in 0..bytes.len() {
        for bit in [0x01, 0x80] {
            let mut bad = bytes.clone();
            bad[i] ^= bit;
            let err = Profile::decode(&bad).unwrap_err();
            let expected = match i {
                0..8 => matches!(err, ProfileError::NotAProfile),
                8..12 => matches!(err, ProfileError::Version { .. }),
                _ => matches!(err, ProfileError::Checksum),
            };
            assert!(expected, "byte {i}: {err}");
        }
    }
}

#[test]
fn specific_errors() {
    let bytes = sample().encode();

    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert!(matches!(
        Profile::decode(&bad),
        Err(ProfileError::NotAProfile)
    ));

    let mut bad = bytes.clone();
    bad[8..12].copy_from_slice(&2u32.to_le_bytes());
    reseal(&mut bad);
    let err = Profile::decode(&bad).unwrap_err();
    assert!(matches!(
        err,
        ProfileError::Version {
            found: 2,
            expected: 1
        }
    ));
    assert_eq!(
        err.to_string(),
        "profile format version 2, this build reads version 1"
    );

    // Valid digest, malformed bodies.
    let corrupt = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut bad = Profile::new(guest(), "g").encode();
        bad.truncate(bad.len() - 32);
        edit(&mut bad);
        bad.extend_from_slice(&[0; 32]);
        reseal(&mut bad);
        match Profile::decode(&bad) {
            Err(ProfileError::Corrupt(msg)) => msg,
            other => panic!("expected Corrupt, got {other:?}"),
        }
    };
    assert!(corrupt(&|b| b.push(0)).contains("after the end"));
    assert!(corrupt(&|b| {
        b.pop();
    })
    .contains("past the end"));
    // Name "g" -> invalid UTF-8.
    assert!(corrupt(&|b| b[12 + 32 + 1] = 0xff).contains("UTF-8"));
    // Block count 1 with a block far larger than the file.
    assert!(corrupt(&|b| b[12 + 32 + 3] = 0x7f).contains("exceeds the file"));
    // One block, then an overflowing varint.
    assert!(corrupt(&|b| {
        b.truncate(12 + 32 + 3);
        b.push(1);
        b.extend_from_slice(&[0xff; 10]);
        b.extend_from_slice(&[0; 5]);
    })
    .contains("overflows"));
    // Two entries out of order (second delta 0).
    assert!(corrupt(&|b| {
        b.truncate(b.len() - 2);
        b.extend_from_slice(&[2, 5, 0, 0]);
    })
    .contains("out of order"));
    // One indirect site of kind 3.
    assert!(corrupt(&|b| {
        b.truncate(b.len() - 3);
        b.extend_from_slice(&[1, 0x10, 3, 0, 0, 0]);
    })
    .contains("kind"));
}

#[test]
fn read_and_write_name_the_file() {
    let dir = std::env::temp_dir().join(format!("vmc-profiles-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("p.vmcprof");
    let p = sample();
    p.write(&path).unwrap();
    assert_eq!(Profile::read(&path).unwrap(), p);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "temporary file left"
    );

    std::fs::write(&path, b"hello").unwrap();
    let msg = Profile::read(&path).unwrap_err().to_string();
    assert_eq!(msg, format!("{}: truncated profile", path.display()));
    let msg = Profile::read(&dir.join("missing")).unwrap_err().to_string();
    assert!(msg.contains("missing") && !msg.contains('\n'), "{msg}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn guest_check() {
    let p = sample();
    p.check_guest(&guest()).unwrap();
    let other = sha256(b"other");
    let msg = p.check_guest(&other).unwrap_err().to_string();
    assert_eq!(
        msg,
        format!(
            "profile is for guest binary sha256 {}, not {}",
            hex(&guest()),
            hex(&other)
        )
    );
}

#[test]
fn merge_sums_and_refuses_another_guest() {
    let mut a = Profile::new(guest(), "a");
    block(&mut a, 0x1000, 4, 10, 3);
    a.edges.insert((0x1000, 0x2000), 10);
    a.entries.insert(0x1000);
    a.calls.insert(0x2000, 10);
    a.indirect.insert(
        0x100c,
        IndirectSite {
            kind: SiteKind::Call,
            targets: BTreeMap::from([(0x2000, 10)]),
        },
    );
    let mut b = Profile::new(guest(), "b");
    block(&mut b, 0x1000, 4, u64::MAX, 1);
    block(&mut b, 0x3000, 1, 1, 0);
    b.edges.insert((0x1000, 0x2000), 5);
    b.entries.insert(0x3000);
    b.indirect.insert(
        0x100c,
        IndirectSite {
            kind: SiteKind::Call,
            targets: BTreeMap::from([(0x2000, 1), (0x4000, 2)]),
        },
    );

    let mut m = a.clone();
    m.merge(&b).unwrap();
    assert_eq!(m.guest_name, "a");
    assert_eq!(m.runs, 2);
    assert_eq!(
        m.blocks[&BlockKey {
            pc: 0x1000,
            insns: 4
        }],
        BlockCount {
            count: u64::MAX,
            taken: 4
        }
    );
    assert_eq!(
        m.blocks[&BlockKey {
            pc: 0x3000,
            insns: 1
        }]
            .count,
        1
    );
    assert_eq!(m.edges[&(0x1000, 0x2000)], 15);
    assert_eq!(m.entries.len(), 2);
    assert_eq!(m.calls[&0x2000], 10);
    assert_eq!(
        m.indirect[&0x100c].targets,
        BTreeMap::from([(0x2000, 11), (0x4000, 2)])
    );

    let c = Profile::new(sha256(b"other"), "c");
    assert!(matches!(
        m.clone().merge(&c),
        Err(ProfileError::GuestMismatch { .. })
    ));

    let mut d = Profile::new(guest(), "d");
    d.indirect.insert(
        0x100c,
        IndirectSite {
            kind: SiteKind::Jump,
            targets: BTreeMap::new(),
        },
    );
    let before = m.clone();
    assert!(matches!(
        m.merge(&d),
        Err(ProfileError::SiteKindMismatch { pc: 0x100c, .. })
    ));
    assert_eq!(m, before, "a refused merge changes nothing");
}

#[test]
fn insn_counts_sum_overlapping_blocks() {
    let mut p = Profile::new(guest(), "g");
    block(&mut p, 0x1000, 4, 10, 0);
    block(&mut p, 0x1008, 4, 5, 0);
    let c = p.insn_counts();
    let got: Vec<u64> = (0..8).map(|i| c.count(0x1000 + 4 * i)).collect();
    assert_eq!(got, [10, 10, 15, 15, 5, 5, 0, 0]);
    assert_eq!(c.count(0xffc), 0);
    assert_eq!(c.count(0), 0);
    assert_eq!(c.count(u64::MAX), 0);
    assert_eq!(c.executed_insns(), 6);
    assert_eq!(c.dynamic_insns(), 60);
}

#[test]
fn insn_counts_many_blocks() {
    let mut p = Profile::new(guest(), "g");
    for i in 0..100_000u64 {
        block(&mut p, 0x10_0000 + 8 * i, 4, i % 7, 0);
    }
    let c = p.insn_counts();
    // Instruction j of the range is covered by block j/2 and, if j >= 2, block j/2 - 1.
    for j in [0u64, 1, 2, 3, 1001, 199_999, 200_001] {
        let expected =
            (j / 2 % 7) * u64::from(j / 2 < 100_000) + if j >= 2 { (j / 2 - 1) % 7 } else { 0 };
        assert_eq!(c.count(0x10_0000 + 4 * j), expected, "insn {j}");
    }
    let dynamic: u64 = p
        .blocks
        .iter()
        .map(|(k, c)| u64::from(k.insns) * c.count)
        .sum();
    assert_eq!(c.dynamic_insns(), dynamic);
}

#[test]
fn summary_orders_and_reports() {
    let mut p = Profile::new(guest(), "bench");
    block(&mut p, 0x1000, 2, 100, 0); // 200
    block(&mut p, 0x2000, 10, 30, 0); // 300, hottest
    block(&mut p, 0x3000, 4, 50, 0); // 200, tie with 0x1000: lower pc first
    block(&mut p, 0x4000, 1, 1, 0); // 1
    p.calls.insert(0x2000, 30);
    p.calls.insert(0x3004, 50);
    let s = p.summary(3);
    let pcs: Vec<u64> = s.hot_blocks.iter().map(|b| b.pc).collect();
    assert_eq!(pcs, [0x2000, 0x1000, 0x3000]);
    assert_eq!(s.dynamic_insns, 701);
    assert_eq!(s.executed_insns, 17);
    assert!((s.hot_blocks[0].share - 300.0 / 701.0).abs() < 1e-12);
    assert_eq!((s.blocks, s.calls, s.runs), (4, 2, 1));

    // Functions: 0x1000 (lowest pc), 0x2000, 0x3004; 0x3000 belongs to 0x2000.
    let f: Vec<(u64, u64, u64)> = s
        .hot_functions
        .iter()
        .map(|h| (h.entry, h.calls, h.dynamic_insns))
        .collect();
    assert_eq!(f, [(0x2000, 30, 350), (0x1000, 0, 200), (0x3004, 50, 151)]);

    let text = s.to_string();
    assert!(text.contains("0x2000"), "{text}");
    assert!(text.contains("42.8%"), "{text}");
    assert!(text.contains(&hex(&guest())));
    let first_row = text
        .lines()
        .skip_while(|l| !l.contains("insns"))
        .nth(1)
        .unwrap();
    assert!(first_row.trim_start().starts_with("0x2000"), "{text}");

    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["hot_blocks"][0]["pc"], 0x2000);
    assert_eq!(json["guest_sha256"], hex(&guest()));
    assert_eq!(p.summary(1).hot_functions.len(), 1);
}

#[test]
fn profile_serializes_to_json() {
    let json = serde_json::to_value(sample()).unwrap();
    assert_eq!(json["guest_sha256"], hex(&guest()));
    assert_eq!(json["blocks"][0]["pc"], 0x40_1000);
    assert_eq!(json["edges"][0]["to"], 0x40_0ff0);
    assert_eq!(json["indirect"]["4198412"]["kind"], "Call");
}

/// xorshift64*, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Small, medium or extreme values.
    fn value(&mut self) -> u64 {
        match self.below(4) {
            0 => self.below(16),
            1 => self.below(1 << 20),
            2 => 0x40_0000 + 4 * self.below(1 << 16),
            _ => self.next(),
        }
    }
}

fn random_profile(rng: &mut Rng) -> Profile {
    let name: String = (0..rng.below(12))
        .map(|_| ['a', 'z', '-', 'é', '€'][rng.below(5) as usize])
        .collect();
    let mut p = Profile::new(sha256(&rng.next().to_le_bytes()), &name);
    p.runs = rng.value();
    for _ in 0..rng.below(50) {
        let pc = rng.value();
        block(&mut p, pc, rng.value() as u32, rng.value(), rng.value());
    }
    for _ in 0..rng.below(50) {
        p.edges.insert((rng.value(), rng.value()), rng.value());
    }
    for _ in 0..rng.below(10) {
        let kind = [SiteKind::Jump, SiteKind::Call, SiteKind::Return][rng.below(3) as usize];
        let targets = (0..rng.below(5))
            .map(|_| (rng.value(), rng.value()))
            .collect();
        p.indirect
            .insert(rng.value(), IndirectSite { kind, targets });
    }
    for _ in 0..rng.below(20) {
        p.entries.insert(rng.value());
    }
    for _ in 0..rng.below(20) {
        p.calls.insert(rng.value(), rng.value());
    }
    p
}

#[test]
fn random_profiles_round_trip() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..500 {
        let p = random_profile(&mut rng);
        let bytes = p.encode();
        assert_eq!(Profile::decode(&bytes).unwrap(), p);
        // Nothing derived from an arbitrary profile panics.
        let _ = p.summary(5).to_string();
    }
}

#[test]
fn merge_is_commutative_and_associative() {
    let mut rng = Rng(42);
    for _ in 0..100 {
        let g = sha256(b"g");
        let mut ps: Vec<Profile> = (0..3)
            .map(|_| {
                let mut p = random_profile(&mut rng);
                p.guest_sha256 = g;
                p.guest_name = "g".into();
                // Sites at one address must agree on their kind across profiles.
                for site in p.indirect.values_mut() {
                    site.kind = SiteKind::Jump;
                }
                p
            })
            .collect();
        // Share some keys so that sums happen.
        let shared = ps[0].clone();
        ps[1].blocks.extend(shared.blocks);
        ps[2].edges.extend(shared.edges);
        let (a, b, c) = (&ps[0], &ps[1], &ps[2]);

        let mut ab = a.clone();
        ab.merge(b).unwrap();
        let mut ba = b.clone();
        ba.merge(a).unwrap();
        assert_eq!(ab, ba);

        let mut ab_c = ab.clone();
        ab_c.merge(c).unwrap();
        let mut bc = b.clone();
        bc.merge(c).unwrap();
        let mut a_bc = a.clone();
        a_bc.merge(&bc).unwrap();
        assert_eq!(ab_c, a_bc);
    }
}

#[test]
fn resealed_random_mutations_never_panic() {
    let mut rng = Rng(7);
    for _ in 0..300 {
        let bytes = random_profile(&mut rng).encode();
        for _ in 0..20 {
            let mut bad = bytes.clone();
            for _ in 0..=rng.below(3) {
                let i = 12 + rng.below(bad.len() as u64 - 44) as usize;
                match rng.below(3) {
                    0 => bad[i] = rng.next() as u8,
                    1 => {
                        bad.remove(i);
                    }
                    _ => bad.insert(i, rng.next() as u8),
                }
            }
            reseal(&mut bad);
            // The encoding is canonical: whatever decodes re-encodes to the same bytes.
            if let Ok(p) = Profile::decode(&bad) {
                assert_eq!(p.encode(), bad);
            }
        }
    }
}
