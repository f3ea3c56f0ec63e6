//! The AOT image format (map encoding, trailer, metadata checks), the cache key and the
//! region partition, without running anything.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use vmc_compiler::aot::discover::discover;
use vmc_compiler::aot::image::{self, check_meta, Image, ImageError, Map, Meta, RegionEntry};
use vmc_compiler::aot::sign::{SigningKey, TrustedKeys};
use vmc_compiler::aot::{cache, translate};
use vmc_compiler::ir::{BranchKind, Op};

fn sample_map() -> Map {
    Map {
        regions: vec![
            RegionEntry {
                pc: 0x40_0000,
                code: 0,
                guest_insns: 12,
                ranges: vec![(0x40_0000, 0x40_0030)],
            },
            RegionEntry {
                pc: 0x40_1000,
                code: 0x140,
                guest_insns: 3,
                ranges: vec![(0x40_1000, 0x40_100c), (0x40_2000, 0x40_2004)],
            },
        ],
        slots: vec![0x40_0000, 0x40_1000, 0x40_5000],
        imports: vec!["vmc_rt_load".into(), "vmc_helper_fadd".into()],
    }
}

#[test]
fn map_round_trips_and_corrupt_maps_are_errors() {
    let map = sample_map();
    let bytes = map.encode();
    assert_eq!(Map::decode(&bytes).unwrap(), map);
    // Every truncation and every single-byte change is either an error or a valid map; never
    // a panic or a huge allocation.
    for n in 0..bytes.len() {
        assert!(
            Map::decode(&bytes[..n]).is_err(),
            "truncated at {n} accepted"
        );
    }
    for i in 0..bytes.len() {
        for x in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] ^= x;
            let _ = Map::decode(&b);
        }
    }
    // A count claiming more items than the section holds.
    let mut huge = bytes.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(Map::decode(&huge), Err(ImageError::Map(_))));
    // An import name that is not UTF-8.
    let mut bad_name = bytes.clone();
    let last = bad_name.len() - 1;
    bad_name[last] = 0xff;
    let e = Map::decode(&bad_name).unwrap_err();
    assert!(e.to_string().contains("UTF-8"), "{e}");
}

#[test]
fn signature_trailer_guards_the_contents() {
    let key = SigningKey::from_seed([9; 32]);
    let trusted = TrustedKeys::of(&[key.public()]);
    assert!(matches!(Image::parse(b""), Err(ImageError::TooShort(0))));
    assert!(matches!(
        Image::parse(&[0u8; 128]),
        Err(ImageError::NoTrailer)
    ));
    let sealed = image::seal(b"not really an object".to_vec(), &key);
    assert!(Image::looks_like_image(&sealed));
    assert_eq!(Image::verify(&sealed, &trusted).unwrap(), key.public());
    // The signature is right, so the object parser is what refuses it.
    assert!(matches!(
        Image::open(&sealed, &trusted),
        Err(ImageError::Object(_))
    ));
    // Any changed byte, in the contents or the trailer, breaks the signature.
    for i in [3, sealed.len() - image::TRAILER + 1, sealed.len() - 20] {
        let mut tampered = sealed.clone();
        tampered[i] ^= 1;
        assert!(
            matches!(
                Image::verify(&tampered, &trusted),
                Err(ImageError::BadSignature)
            ),
            "byte {i}"
        );
    }
    // Signed by another key: authentic, but not trusted.
    let other = SigningKey::from_seed([10; 32]);
    let resigned = image::seal(b"not really an object".to_vec(), &other);
    let e = Image::verify(&resigned, &trusted).unwrap_err();
    assert!(
        matches!(&e, ImageError::UntrustedKey { fingerprint } if *fingerprint == other.public().fingerprint()),
        "{e}"
    );
    // An image of the earlier format (digest trailer anyone can recompute) is unsigned.
    let mut old = b"not really an object".to_vec();
    old.extend([0u8; 16]);
    old.extend(b"VMCAOT02");
    assert!(Image::looks_like_image(&old));
    assert!(matches!(Image::parse(&old), Err(ImageError::Unsigned)));
    assert!(matches!(
        Image::verify(&old, &trusted),
        Err(ImageError::Unsigned)
    ));
}

#[test]
fn metadata_checks_name_what_differs() {
    let meta = Meta::new(b"guest", "g", 0x40_0000, 0);
    let host = image::host_features();
    check_meta(&meta, &host).expect("own metadata is compatible");
    let mut m = meta.clone();
    m.compiler_version = "vmc 0.0.0-other".into();
    let e = check_meta(&m, &host).unwrap_err();
    assert!(e.to_string().contains("vmc 0.0.0-other"), "{e}");
    let mut m = meta.clone();
    m.cpu_state_abi += 1;
    assert!(matches!(check_meta(&m, &host), Err(ImageError::Abi { .. })));
    let mut m = meta.clone();
    m.layout.pie_base += 0x1000;
    assert!(matches!(check_meta(&m, &host), Err(ImageError::Layout)));
    let mut m = meta.clone();
    m.host_features.push("has_imaginary_feature".into());
    let e = check_meta(&m, &host).unwrap_err();
    assert!(e.to_string().contains("has_imaginary_feature"), "{e}");
    let mut m = meta;
    m.host_isa = "riscv64".into();
    assert!(matches!(
        check_meta(&m, &host),
        Err(ImageError::HostIsa(..))
    ));
}

#[test]
fn cache_key_covers_guest_and_options() {
    let a = cache::key(b"guest one", "");
    assert_eq!(a, cache::key(b"guest one", ""));
    assert_ne!(a, cache::key(b"guest two", ""));
    assert_ne!(a, cache::key(b"guest one", "profile=abc"));
    // Length-prefixed parts: moving bytes between parts changes the key.
    assert_ne!(cache::key(b"ab", "c"), cache::key(b"a", "bc"));
}

/// Every discovered block is in exactly one region, each region has a single entry: a branch
/// from outside a region only ever targets a region head.
#[test]
fn partition_gives_regions_entered_only_at_their_entries() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/guests/build");
    for name in ["bytecode-O2", "sort_search-O0"] {
        let Ok(elf) = std::fs::read(dir.join(name)) else {
            println!("SKIPPED: {name} not built (tests/guests/build.sh)");
            continue;
        };
        let disc = discover(&elf).unwrap();
        let regions = translate::partition(&disc);
        let mut region_of = HashMap::new();
        let mut heads = HashSet::new();
        for (r, blocks) in regions.iter().enumerate() {
            assert!(!blocks.is_empty());
            assert!(blocks.len() <= translate::MAX_REGION_BLOCKS);
            heads.insert(disc.blocks[blocks[0]].pc);
            for &b in blocks {
                assert!(
                    region_of.insert(disc.blocks[b].pc, r).is_none(),
                    "{name}: block {:#x} in two regions",
                    disc.blocks[b].pc
                );
            }
        }
        assert_eq!(
            region_of.len(),
            disc.blocks.len(),
            "{name}: blocks left out"
        );
        // Secondary entries: continuations inside their region, each in one region only.
        let entries = translate::entries(&disc, &regions);
        let mut entered = HashSet::new();
        for (r, es) in entries.iter().enumerate() {
            for e in es {
                assert_eq!(region_of.get(e), Some(&r), "{name}: entry {e:#x} outside");
                assert!(
                    !heads.contains(e) && entered.insert(*e),
                    "{name}: {e:#x} twice"
                );
            }
        }
        // Every entry point of the program heads a region or is a secondary entry of one,
        // except jump-table targets that are internal to their switch's region.
        let tables: HashSet<u64> = disc
            .jump_tables
            .iter()
            .flat_map(|t| t.targets.iter().copied())
            .collect();
        for e in &disc.entries {
            if region_of.contains_key(e) && !tables.contains(e) {
                assert!(
                    heads.contains(e) || entered.contains(e),
                    "{name}: entry {e:#x} is not a head or a secondary entry"
                );
            }
        }
        // Blocks never overlap.
        for w in disc.blocks.windows(2) {
            assert!(
                w[0].guest_range().end <= w[1].pc,
                "{name}: {:#x} overlaps",
                w[0].pc
            );
        }
        let table_of: HashMap<u64, &Vec<u64>> = disc
            .jump_tables
            .iter()
            .map(|t| (t.branch, &t.targets))
            .collect();
        for b in &disc.blocks {
            let mut succ = Vec::new();
            match b.ops.last() {
                Some(Op::Jump {
                    target,
                    kind: BranchKind::Jump,
                }) => succ.push(*target),
                Some(Op::Branch {
                    taken, fallthrough, ..
                }) => succ.extend([*taken, *fallthrough]),
                Some(Op::JumpReg { .. }) => {
                    if let Some(t) = b.last_insn_pc().and_then(|pc| table_of.get(&pc)) {
                        succ.extend(t.iter().copied());
                    }
                }
                _ => {}
            }
            for t in succ {
                if let Some(&rt) = region_of.get(&t) {
                    assert!(
                        rt == region_of[&b.pc] || heads.contains(&t),
                        "{name}: {:#x} enters region {rt} at {t:#x}, not its head",
                        b.pc
                    );
                }
            }
        }
        println!(
            "{name}: {} blocks in {} regions with {} secondary entries ({} jump tables kept internal)",
            disc.blocks.len(),
            regions.len(),
            entered.len(),
            disc.jump_tables.len()
        );
    }
}
