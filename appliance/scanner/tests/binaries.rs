//! Go and Rust binary analyzers on real object files: the running test binary
//! (built by rustc, no audit data) and ELF files written with `object` that
//! carry a `.go.buildinfo` or cargo-auditable `.dep-v0` section.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;

use object::write::Object;
use object::{Architecture, BinaryFormat, Endianness, SectionKind};
use stella_scanner::Analyzer;
use stella_scanner::analyzer::gobinary::{GoAnalyzer, parse_go_binary};
use stella_scanner::analyzer::rustbin::{RustAnalyzer, RustBinary, parse_rust_binary};

fn elf_with_section(name: &[u8], data: &[u8]) -> Vec<u8> {
    let mut object = Object::new(BinaryFormat::Elf, Architecture::X86_64, Endianness::Little);
    let text = object.add_section(Vec::new(), b".text".to_vec(), SectionKind::Text);
    object.set_section_data(text, vec![0xc3u8; 64], 16);
    let section = object.add_section(Vec::new(), name.to_vec(), SectionKind::ReadOnlyData);
    object.set_section_data(section, data.to_vec(), 16);
    object.write().unwrap()
}

fn varstr(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut len = s.len();
    while len >= 0x80 {
        out.push(u8::try_from(len & 0x7f).unwrap() | 0x80);
        len >>= 7;
    }
    out.push(u8::try_from(len).unwrap());
    out.extend_from_slice(s.as_bytes());
    out
}

#[test]
fn this_test_binary_is_an_unaudited_rust_binary() {
    let bytes = std::fs::read("/proc/self/exe").unwrap();
    assert_eq!(parse_rust_binary(&bytes).unwrap(), RustBinary::Unaudited);
    let output = RustAnalyzer.analyze("usr/bin/tool", &bytes);
    let component = &output.components[0];
    assert_eq!(component.ecosystem, "binary");
    assert_eq!(component.properties.get("stella:sha256").unwrap().len(), 64);
    assert!(component.purl.is_none());
    // Not a Go binary.
    assert_eq!(parse_go_binary(&bytes).unwrap(), None);
}

#[test]
fn cargo_auditable_section_in_an_elf_file() {
    let json = br#"{"packages":[{"name":"tool","version":"1.2.3","source":"local","root":true,"dependencies":[1]},{"name":"serde","version":"1.0.200","source":"crates.io"}]}"#;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(json).unwrap();
    let elf = elf_with_section(b".dep-v0", &encoder.finish().unwrap());
    let output = RustAnalyzer.analyze("usr/bin/tool", &elf);
    let purls: Vec<String> = output
        .components
        .iter()
        .map(|c| c.purl.as_ref().unwrap().render().unwrap())
        .collect();
    assert_eq!(
        purls,
        vec!["pkg:cargo/tool@1.2.3", "pkg:cargo/serde@1.0.200"]
    );
    // A damaged section is an unknown, not a panic.
    let broken = elf_with_section(b".dep-v0", b"\x78\x9cnot zlib");
    assert_eq!(
        RustAnalyzer.analyze("usr/bin/tool", &broken).unknowns.len(),
        1
    );
}

#[test]
fn go_buildinfo_section_in_an_elf_file() {
    let mut blob = b"\xff Go buildinf:".to_vec();
    blob.push(8);
    blob.push(2);
    blob.resize(32, 0);
    blob.extend(varstr("go1.22.4"));
    let sentinel = "0123456789abcdef";
    blob.extend(varstr(&format!(
        "{sentinel}path\texample.com/cmd/app\nmod\texample.com/app\tv1.4.0\th1:x=\ndep\tgolang.org/x/net\tv0.25.0\th1:y=\nbuild\tGOOS=linux\n{sentinel}"
    )));
    let elf = elf_with_section(b".go.buildinfo", &blob);
    let output = GoAnalyzer.analyze("usr/local/bin/app", &elf);
    let purls: Vec<String> = output
        .components
        .iter()
        .map(|c| c.purl.as_ref().unwrap().render().unwrap())
        .collect();
    assert_eq!(
        purls,
        vec![
            "pkg:golang/example.com/app@v1.4.0",
            "pkg:golang/golang.org/x/net@v0.25.0",
            "pkg:golang/stdlib@1.22.4"
        ]
    );
}
