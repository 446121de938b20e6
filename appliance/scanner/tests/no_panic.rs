//! Every parser that has a fuzz target (fuzz/fuzz_targets/scanner_*.rs) is fed
//! pseudo-random bytes and truncated / bit-flipped real inputs: errors are
//! fine, panics are not. A cheap stand-in for fuzzing that runs in every CI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::Path;

use stella_scanner::analyzer::{
    apk, dotnet, dpkg, gobinary, maven, native, npm, peversion, python, rpm, rustbin,
};
use stella_scanner::layer::read_layer_tar_bytes;

/// A parser under test, by name.
type Parser = (&'static str, fn(&[u8]));

fn parsers() -> Vec<Parser> {
    vec![
        ("dpkg", |d| drop(dpkg::parse_status(d))),
        ("apk", |d| drop(apk::parse_installed(d))),
        ("rpm header", |d| drop(rpm::parse_header(d))),
        ("rpmdb", |d| drop(rpm::parse_rpmdb_sqlite(d))),
        ("metadata", |d| drop(python::parse_metadata(d))),
        ("package.json", |d| drop(npm::parse_package_json(d))),
        ("pom.properties", |d| drop(maven::parse_pom_properties(d))),
        ("jar", |d| drop(maven::parse_java_archive(d))),
        ("go", |d| drop(gobinary::parse_go_binary(d))),
        ("deps.json", |d| drop(dotnet::parse_deps_json(d))),
        ("rust", |d| drop(rustbin::parse_rust_binary(d))),
        ("layer tar", |d| drop(read_layer_tar_bytes(d))),
        ("native", |d| drop(native::parse_native(d))),
        ("pe version", |d| {
            drop(peversion::parse_version_info(d, &Default::default()))
        }),
        ("bom index", |d| drop(stella_scanner::bomindex::read(d))),
        ("shell", |d| {
            drop(stella_scanner::usage::shell::parse_bytes(d))
        }),
    ]
}

fn layer_tars() -> Vec<Vec<u8>> {
    let blobs = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/scanner/fixture-oci/blobs/sha256");
    let mut tars = Vec::new();
    for entry in std::fs::read_dir(blobs).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let mut tar = Vec::new();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            flate2::read::MultiGzDecoder::new(&bytes[..])
                .read_to_end(&mut tar)
                .unwrap();
        } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            tar = zstd::decode_all(&bytes[..]).unwrap();
        } else if bytes.len() > 512 {
            tar = bytes;
        } else {
            continue;
        }
        if tar.len() < 3 << 20 {
            tars.push(tar);
        }
    }
    tars.sort();
    tars
}

/// A xorshift64 generator: reproducible pseudo-random bytes and positions without a dependency.
fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

#[test]
fn parsers_survive_random_truncated_and_flipped_inputs() {
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15u64);
    let mut inputs: Vec<Vec<u8>> = (0..64)
        .map(|i| {
            (0..(i * 37) % 2048)
                .map(|_| (next() & 0xff) as u8)
                .collect()
        })
        .collect();
    for tar in layer_tars() {
        for cut in [
            0,
            100,
            511,
            512,
            1024,
            tar.len() / 3,
            tar.len() / 2,
            tar.len() - 1,
        ] {
            inputs.push(tar[..cut.min(tar.len())].to_vec());
        }
        for _ in 0..8 {
            let mut flipped = tar.clone();
            let at = (next() as usize) % flipped.len();
            flipped[at] ^= 1 << (next() % 8);
            inputs.push(flipped);
        }
    }
    for (name, parse) in parsers() {
        for input in &inputs {
            let outcome = std::panic::catch_unwind(|| parse(input));
            assert!(
                outcome.is_ok(),
                "{name} panicked on a {}-byte input",
                input.len()
            );
        }
    }
}

/// The native reader and the shell parser on truncated and bit-flipped real inputs: this test
/// binary (an ELF with dynamic section and version needs) and an entrypoint script.
#[test]
fn native_reader_and_shell_parser_survive_damaged_real_inputs() {
    let elf = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    assert!(native::parse_native(&elf).unwrap().is_some());
    let script = br#"#!/bin/sh
set -e
. /etc/env.sh
f() { exec "$@"; }
case "${1:-x}" in -*) set -- app "$@" ;; *) ;; esac
if [ -n "$A" ]; then x=$(date); elif true; then :; else echo `id`; fi
cat <<EOF
$x
EOF
for i in a b; do echo "$i" | tr a b && echo || exit 1; done
f "$@" 2>&1 &
"#;
    assert!(stella_scanner::usage::shell::parse_bytes(script).is_ok());
    let mut next = xorshift(0x2545_f491_4f6c_dd1du64);
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    // The test binary is tens of MB: fewer copies of it.
    for (input, flips) in [(elf.as_slice(), 24), (script.as_slice(), 200)] {
        for cut in [0, 4, 16, 52, 64, 200, 1000, 4096, input.len() / 2] {
            inputs.push(input[..cut.min(input.len())].to_vec());
        }
        for _ in 0..flips {
            let mut flipped = input.to_vec();
            // Headers and dynamic tables sit in the first pages of an ELF.
            let at = (next() as usize) % flipped.len().min(16 << 10);
            flipped[at] ^= 1 << (next() % 8);
            inputs.push(flipped);
        }
    }
    for input in &inputs {
        let outcome = std::panic::catch_unwind(|| {
            drop(native::parse_native(input));
            drop(stella_scanner::usage::shell::parse_bytes(input));
        });
        assert!(outcome.is_ok(), "panicked on a {}-byte input", input.len());
    }
}

/// The native reader on bit-flipped copies of the real PE and Mach-O fixtures, and the
/// `VS_VERSIONINFO` parser on bit-flipped copies of the DLL's version resource.
#[test]
fn native_reader_survives_damaged_pe_and_macho_fixtures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/scanner/native");
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let dll = read("stella-hello.dll");
    let key: Vec<u8> = "VS_VERSION_INFO"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let root = dll.windows(key.len()).position(|w| w == key).unwrap() - 6;
    let length = usize::from(u16::from_le_bytes([dll[root], dll[root + 1]]));
    let block = dll[root..root + length].to_vec();
    assert!(peversion::parse_version_info(&block, &Default::default()).is_ok());
    let mut next = xorshift(0x853c_49e6_748f_ea9bu64);
    let objects = [
        dll,
        read("stella-greet"),
        read("libstella.1.dylib"),
        read("stella-greet-universal"),
    ];
    for input in objects.iter().chain([&block]) {
        for _ in 0..300 {
            let mut flipped = input.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() as usize) % flipped.len();
                flipped[at] ^= 1 << (next() % 8);
            }
            let outcome = std::panic::catch_unwind(|| {
                drop(native::read_native(&flipped));
                drop(peversion::parse_version_info(&flipped, &Default::default()));
            });
            assert!(
                outcome.is_ok(),
                "panicked on a damaged {}-byte input",
                input.len()
            );
        }
    }
}
