//! The native analyzer on real PE and Mach-O files built by real toolchains (MinGW-w64 with a
//! `windres` version resource; clang + `ld64.lld`), committed in `tests/data/scanner/native/`
//! with the sources and `build.sh` that made them: exact linkage facts, the `bin:` component a
//! scan makes of them, and damaged copies (looping resource trees, oversized lengths,
//! truncation) that must give a named problem and never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use stella_scanner::analyzer::native::{NativeAnalyzer, NativeFacts, parse_native, read_native};
use stella_scanner::analyzer::peversion::{
    PeVersionInfo, VersionInfoError, VersionInfoLimits, parse_version_info,
};
use stella_scanner::{Analyzer, MemoryLayerCache, NoProgress, ScanOptions, scan_path};

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/scanner/native")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Scans a one-layer OCI image made of `layer`.
fn scan_layer(layer: stella_scanner::fixture::LayerBuilder) -> stella_scanner::ScanResult {
    let tmp = tempfile::tempdir().unwrap();
    stella_scanner::fixture::write_oci_layout(
        tmp.path(),
        &stella_scanner::RuntimeConfig::default(),
        &[layer.finish().unwrap()],
    )
    .unwrap();
    scan_path(
        tmp.path(),
        &ScanOptions::default(),
        &MemoryLayerCache::new(),
        &NoProgress,
    )
    .unwrap()
}

fn strings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn hello_version() -> PeVersionInfo {
    PeVersionInfo {
        fixed_file_version: Some("1.2.3.4".into()),
        fixed_product_version: Some("1.2.0.0".into()),
        language: Some("040904b0".into()),
        strings: strings(&[
            ("CompanyName", "Stella Ops Test Fixtures"),
            ("FileDescription", "Stella hello library"),
            ("FileVersion", "1.2.3.4"),
            ("InternalName", "stella-hello"),
            ("LegalCopyright", "CC0-1.0"),
            ("OriginalFilename", "stella-hello.dll"),
            ("ProductName", "Stella Hello"),
            ("ProductVersion", "1.2.0"),
        ]),
    }
}

#[test]
fn mingw_dll_imports_and_version_resource() {
    let facts = parse_native(&fixture("stella-hello.dll")).unwrap().unwrap();
    assert_eq!(
        facts,
        NativeFacts {
            format: "pe".into(),
            kind: "shared-library".into(),
            needed: vec![
                "KERNEL32.dll".into(),
                "msvcrt.dll".into(),
                "USER32.dll".into()
            ],
            pe_version: Some(hello_version()),
            ..NativeFacts::default()
        }
    );
    let version = facts.pe_version.unwrap();
    assert_eq!(version.component_name().as_deref(), Some("Stella Hello"));
    // Syft keeps the greater of ProductVersion (1.2.0) and FileVersion (1.2.3.4).
    assert_eq!(version.component_version().as_deref(), Some("1.2.3.4"));
}

#[test]
fn ld64_lld_executable_dylibs_rpaths_and_min_os() {
    let facts = parse_native(&fixture("stella-greet")).unwrap().unwrap();
    assert_eq!(
        facts,
        NativeFacts {
            format: "macho".into(),
            kind: "executable".into(),
            needed: vec![
                "@rpath/libstella.1.dylib".into(),
                "/usr/lib/libSystem.B.dylib".into()
            ],
            rpath: vec!["@executable_path/../lib".into(), "/opt/stella/lib".into()],
            interpreter: Some("/usr/lib/dyld".into()),
            min_os: Some("macos 11.0.0".into()),
            sdk: Some("12.1.0".into()),
            ..NativeFacts::default()
        }
    );
}

#[test]
fn ld64_lld_dylib_install_name() {
    let facts = parse_native(&fixture("libstella.1.dylib"))
        .unwrap()
        .unwrap();
    assert_eq!(
        facts,
        NativeFacts {
            format: "macho".into(),
            kind: "shared-library".into(),
            needed: vec!["/usr/lib/libSystem.B.dylib".into()],
            soname: Some("@rpath/libstella.1.dylib".into()),
            min_os: Some("macos 11.0.0".into()),
            sdk: Some("11.0.0".into()),
            ..NativeFacts::default()
        }
    );
}

#[test]
fn lipo_universal_executable_reads_every_slice() {
    let facts = parse_native(&fixture("stella-greet-universal"))
        .unwrap()
        .unwrap();
    let thin = parse_native(&fixture("stella-greet")).unwrap().unwrap();
    // Both slices link the same libraries; the first (x86_64) slice gives the rest.
    assert_eq!(
        facts,
        NativeFacts {
            architectures: vec!["x86_64".into(), "arm64".into()],
            ..thin
        }
    );
}

#[test]
fn java_class_file_is_not_a_universal_binary() {
    // 0xCAFEBABE, minor 0, major 52 (Java 8): the "architecture count" would be 52.
    let class =
        b"\xca\xfe\xba\xbe\x00\x00\x00\x34\x00\x10\x0a\x00\x03\x00\x0d\x07\x00\x0e".repeat(4);
    assert_eq!(parse_native(&class), Ok(None));
    // A universal header whose slice runs past the file is a named error.
    let mut universal = fixture("stella-greet-universal");
    universal.truncate(20_000);
    let error = parse_native(&universal).unwrap_err();
    assert!(error.starts_with("Mach-O universal slice 0"), "{error}");
}

/// The unowned DLL becomes a `bin:` component named and versioned from its version resource;
/// the unowned Mach-O files keep their file names. Every file's facts are in `binaries`.
#[test]
fn scan_names_unowned_pe_from_its_version_resource() {
    let dll = fixture("stella-hello.dll");
    let mut layer = stella_scanner::fixture::LayerBuilder::new();
    layer
        .file("opt/win/stella-hello.dll", &dll, 0o644)
        .unwrap()
        .file("opt/mac/bin/stella-greet", &fixture("stella-greet"), 0o755)
        .unwrap()
        .file(
            "opt/mac/lib/libstella.1.dylib",
            &fixture("libstella.1.dylib"),
            0o755,
        )
        .unwrap();
    let result = scan_layer(layer);
    let dll_sha = stella_scanner::Digest::of_bytes(&dll).hex().to_owned();
    let component = result
        .components
        .iter()
        .find(|c| c.bom_ref == format!("bin:{dll_sha}"))
        .expect("a bin: component for the DLL");
    assert_eq!(
        (component.name.as_str(), component.version.as_str()),
        ("Stella Hello", "1.2.3.4")
    );
    assert!(component.purl.is_none());
    assert_eq!(component.evidence, ["/opt/win/stella-hello.dll"]);
    let pe_properties: BTreeMap<&str, &str> = component
        .properties
        .iter()
        .filter(|(k, _)| k.starts_with("stella:pe."))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        pe_properties,
        BTreeMap::from([
            ("stella:pe.companyName", "Stella Ops Test Fixtures"),
            ("stella:pe.fileDescription", "Stella hello library"),
            ("stella:pe.fileVersion", "1.2.3.4"),
            ("stella:pe.fixedFileVersion", "1.2.3.4"),
            ("stella:pe.fixedProductVersion", "1.2.0.0"),
            ("stella:pe.internalName", "stella-hello"),
            ("stella:pe.legalCopyright", "CC0-1.0"),
            ("stella:pe.originalFilename", "stella-hello.dll"),
            ("stella:pe.productName", "Stella Hello"),
            ("stella:pe.productVersion", "1.2.0"),
        ])
    );
    let binaries: BTreeMap<&str, (&str, &str)> = result
        .binaries
        .iter()
        .map(|b| {
            let component = result
                .components
                .iter()
                .find(|c| c.bom_ref == b.component)
                .unwrap();
            (
                b.path.as_str(),
                (b.facts.format.as_str(), component.name.as_str()),
            )
        })
        .collect();
    assert_eq!(
        binaries,
        BTreeMap::from([
            ("opt/mac/bin/stella-greet", ("macho", "stella-greet")),
            (
                "opt/mac/lib/libstella.1.dylib",
                ("macho", "libstella.1.dylib")
            ),
            ("opt/win/stella-hello.dll", ("pe", "Stella Hello")),
        ])
    );
    assert!(result.unknowns.is_empty(), "{:?}", result.unknowns);
}

/// A published .NET app: the DLL its `deps.json` deploys for a NuGet package belongs to that
/// package (its evidence, its native facts), not to a `bin:` component beside it; the same bytes
/// under a name the manifest does not list stay an unidentified binary.
#[test]
fn dotnet_runtime_assemblies_belong_to_their_nuget_package() {
    let dll = fixture("stella-hello.dll");
    let deps = br#"{
      "targets": { ".NETCoreApp,Version=v8.0": {
        "App/1.0.0": { "dependencies": { "Stella.Hello": "1.2.3" }, "runtime": { "App.dll": {} } },
        "Stella.Hello/1.2.3": { "runtime": { "lib/net8.0/Stella.Hello.dll": {} } }
      } },
      "libraries": {
        "App/1.0.0": { "type": "project" },
        "Stella.Hello/1.2.3": { "type": "package", "sha512": "x" }
      }
    }"#;
    let mut layer = stella_scanner::fixture::LayerBuilder::new();
    layer
        .file("app/App.deps.json", deps, 0o644)
        .unwrap()
        .file("app/Stella.Hello.dll", &dll, 0o644)
        .unwrap()
        .file("opt/other/Unlisted.dll", &dll, 0o644)
        .unwrap();
    let result = scan_layer(layer);
    let nuget = result
        .components
        .iter()
        .find(|c| c.ecosystem == "nuget")
        .expect("the NuGet package");
    assert_eq!(nuget.bom_ref, "pkg:nuget/Stella.Hello@1.2.3");
    assert_eq!(
        nuget.evidence,
        ["/app/App.deps.json", "/app/Stella.Hello.dll"]
    );
    let owner = |path: &str| {
        result
            .binaries
            .iter()
            .find(|b| b.path == path)
            .map(|b| b.component.as_str())
            .unwrap_or_else(|| panic!("no native facts for {path}"))
    };
    assert_eq!(owner("app/Stella.Hello.dll"), nuget.bom_ref);
    let dll_sha = stella_scanner::Digest::of_bytes(&dll).hex().to_owned();
    assert_eq!(owner("opt/other/Unlisted.dll"), format!("bin:{dll_sha}"));
    let bin = result
        .components
        .iter()
        .find(|c| c.bom_ref == format!("bin:{dll_sha}"))
        .unwrap();
    assert_eq!(bin.evidence, ["/opt/other/Unlisted.dll"]);
}

// ---- damaged copies of the real DLL ----

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn set_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

/// File offset of the `.rsrc` section of the fixture (it is file-aligned, so resource
/// directory offsets are offsets from here).
fn rsrc_offset(dll: &[u8]) -> usize {
    let pe = usize::try_from(u32_at(dll, 0x3c)).unwrap();
    let sections = u16::from_le_bytes([dll[pe + 6], dll[pe + 7]]);
    let optional = usize::from(u16::from_le_bytes([dll[pe + 20], dll[pe + 21]]));
    let table = pe + 24 + optional;
    (0..usize::from(sections))
        .map(|i| table + i * 40)
        .find(|header| &dll[*header..*header + 6] == b".rsrc\0")
        .map(|header| usize::try_from(u32_at(dll, header + 20)).unwrap())
        .expect(".rsrc section")
}

/// File offset of the first entry of the resource table at `table` (relative to `.rsrc`).
fn first_entry(rsrc: usize, table: u32) -> usize {
    rsrc + usize::try_from(table).unwrap() + 16
}

/// The resource-tree walk in the fixture: type entry, name entry, language entry offsets.
fn resource_entries(dll: &[u8]) -> (usize, [usize; 3]) {
    let rsrc = rsrc_offset(dll);
    let type_entry = first_entry(rsrc, 0);
    assert_eq!(u32_at(dll, type_entry), 16, "RT_VERSION is the only type");
    let name_entry = first_entry(rsrc, u32_at(dll, type_entry + 4) & 0x7fff_ffff);
    let language_entry = first_entry(rsrc, u32_at(dll, name_entry + 4) & 0x7fff_ffff);
    (rsrc, [type_entry, name_entry, language_entry])
}

/// Reads a damaged copy: the imports survive, the version resource is a named problem.
fn version_problem(dll: &[u8]) -> String {
    let read = read_native(dll).unwrap().unwrap();
    assert_eq!(read.facts.needed.len(), 3, "imports are still read");
    assert_eq!(read.facts.pe_version, None);
    assert_eq!(read.problems.len(), 1, "{:?}", read.problems);
    read.problems[0].clone()
}

#[test]
fn looping_resource_tree_is_a_named_problem() {
    let mut dll = fixture("stella-hello.dll");
    let (_, [_, _, language_entry]) = resource_entries(&dll);
    // The language entry points back at the root table instead of at the data entry.
    set_u32(&mut dll, language_entry + 4, 0x8000_0000);
    assert_eq!(
        version_problem(&dll),
        "PE version resource: PE resource directory: RT_VERSION entry is a table, not data \
         (a looping resource tree)"
    );
    // And the analyzer keeps the facts and reports the unknown.
    let output = NativeAnalyzer.analyze("opt/win/stella-hello.dll", &dll);
    assert!(output.native.is_some());
    assert_eq!(output.unknowns.len(), 1);
}

#[test]
fn name_level_pointing_at_data_is_a_named_problem() {
    let mut dll = fixture("stella-hello.dll");
    let (_, [type_entry, _, _]) = resource_entries(&dll);
    let table = u32_at(&dll, type_entry + 4);
    set_u32(&mut dll, type_entry + 4, table & 0x7fff_ffff);
    assert!(
        version_problem(&dll).contains("RT_VERSION name level is a data entry, not a table"),
        "{}",
        version_problem(&dll)
    );
}

#[test]
fn oversized_resource_data_entry_is_a_named_problem() {
    let mut dll = fixture("stella-hello.dll");
    let (rsrc, [_, _, language_entry]) = resource_entries(&dll);
    let data_entry = rsrc + usize::try_from(u32_at(&dll, language_entry + 4)).unwrap();
    set_u32(&mut dll, data_entry + 4, 0x7fff_0000);
    let problem = version_problem(&dll);
    assert!(
        problem.starts_with("PE version resource: PE resource directory: RT_VERSION data of 2147418112 bytes runs past its section"),
        "{problem}"
    );
}

#[test]
fn oversized_node_length_is_a_named_problem() {
    let mut dll = fixture("stella-hello.dll");
    let key: Vec<u8> = "VS_VERSION_INFO"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let root = dll.windows(key.len()).position(|w| w == key).unwrap() - 6;
    let real = u16::from_le_bytes([dll[root], dll[root + 1]]);
    dll[root..root + 2].copy_from_slice(&0xfff0u16.to_le_bytes());
    let problem = version_problem(&dll);
    assert!(
        problem.starts_with(
            "PE version resource: VS_VERSIONINFO node at byte 0 claims 65520 bytes, only"
        ),
        "{problem} (real length {real})"
    );
}

#[test]
fn truncated_dll_is_a_named_problem_not_a_panic() {
    let dll = fixture("stella-hello.dll");
    let rsrc = rsrc_offset(&dll);
    // Cut inside the resource section: the imports are before it.
    assert_eq!(
        version_problem(&dll[..rsrc + 0x100]),
        "PE version resource: PE resource directory: the .rsrc data directory does not fit \
         in the file: Invalid data dir virtual address"
    );
    // Every prefix either reads or fails with a message.
    for cut in (0..dll.len()).step_by(61) {
        let _ = read_native(&dll[..cut]);
    }
}

// ---- the VS_VERSIONINFO parser on hand-made trees ----

fn pad4(out: &mut Vec<u8>) {
    out.resize(out.len().next_multiple_of(4), 0);
}

/// One node: header, UTF-16 key, padding, value, padding, children.
fn node(key: &str, value: &[u8], text: bool, children: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![0u8; 6];
    out.extend(key.encode_utf16().chain([0]).flat_map(u16::to_le_bytes));
    pad4(&mut out);
    out.extend_from_slice(value);
    for child in children {
        pad4(&mut out);
        out.extend_from_slice(child);
    }
    let length = u16::try_from(out.len()).unwrap();
    let value_length = if text { value.len() / 2 } else { value.len() };
    out[0..2].copy_from_slice(&length.to_le_bytes());
    out[2..4].copy_from_slice(&u16::try_from(value_length).unwrap().to_le_bytes());
    out[4..6].copy_from_slice(&u16::from(text).to_le_bytes());
    out
}

fn text(value: &str) -> Vec<u8> {
    value
        .encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect()
}

fn version_info(strings: &[Vec<u8>]) -> Vec<u8> {
    let table = node("040904b0", &[], true, strings);
    let file_info = node("StringFileInfo", &[], true, &[table]);
    node("VS_VERSION_INFO", &[], false, &[file_info])
}

#[test]
fn hand_made_tree_without_fixed_info() {
    let block = version_info(&[
        node("ProductName", &text("Tool"), true, &[]),
        node("ProductVersion", &text("2.0"), true, &[]),
    ]);
    let info = parse_version_info(&block, &VersionInfoLimits::default()).unwrap();
    assert_eq!(info.fixed_file_version, None);
    assert_eq!(
        info.strings,
        strings(&[("ProductName", "Tool"), ("ProductVersion", "2.0")])
    );
}

#[test]
fn too_many_strings_hit_the_limit() {
    let many: Vec<Vec<u8>> = (0..20)
        .map(|i| node(&format!("K{i}"), &text("v"), true, &[]))
        .collect();
    let limits = VersionInfoLimits {
        max_strings: 8,
        ..VersionInfoLimits::default()
    };
    assert_eq!(
        parse_version_info(&version_info(&many), &limits),
        Err(VersionInfoError::Limit {
            what: "strings",
            limit: 8
        })
    );
}

#[test]
fn long_value_and_key_hit_the_limits() {
    let limits = VersionInfoLimits {
        max_value_units: 16,
        max_key_units: 16,
        ..VersionInfoLimits::default()
    };
    let long_value = version_info(&[node("Comments", &text(&"x".repeat(40)), true, &[])]);
    assert_eq!(
        parse_version_info(&long_value, &limits)
            .unwrap_err()
            .to_string(),
        "VS_VERSIONINFO exceeds the limit of 16 value characters"
    );
    let long_key = version_info(&[node(&"K".repeat(40), &text("v"), true, &[])]);
    assert_eq!(
        parse_version_info(&long_key, &limits)
            .unwrap_err()
            .to_string(),
        "VS_VERSIONINFO exceeds the limit of 16 key characters"
    );
}

#[test]
fn child_shorter_than_a_header_is_rejected() {
    let mut block = version_info(&[node("ProductName", &text("Tool"), true, &[])]);
    // The string node sits at the end; make its wLength 2.
    let key = text("ProductName");
    let at = block.windows(key.len()).position(|w| w == key).unwrap() - 6;
    block[at..at + 2].copy_from_slice(&2u16.to_le_bytes());
    let err = parse_version_info(&block, &VersionInfoLimits::default()).unwrap_err();
    assert!(
        matches!(err, VersionInfoError::Length { length: 2, .. }),
        "{err}"
    );
}

#[test]
fn wrong_root_and_bad_fixed_info_are_named() {
    let other = node("NOT_VERSION", &[], false, &[]);
    assert_eq!(
        parse_version_info(&other, &VersionInfoLimits::default())
            .unwrap_err()
            .to_string(),
        "not a VS_VERSIONINFO resource: root key is \"NOT_VERSION\""
    );
    let bad_fixed = node("VS_VERSION_INFO", &[0u8; 52], false, &[]);
    assert_eq!(
        parse_version_info(&bad_fixed, &VersionInfoLimits::default())
            .unwrap_err()
            .to_string(),
        "not a VS_VERSIONINFO resource: VS_FIXEDFILEINFO signature 0x00000000"
    );
    for cut in 0..8 {
        assert!(parse_version_info(&other[..cut], &VersionInfoLimits::default()).is_err());
    }
}

#[test]
fn node_budget_stops_a_flood_of_tiny_nodes() {
    let tiny: Vec<Vec<u8>> = (0..300).map(|_| node("", &[], true, &[])).collect();
    let limits = VersionInfoLimits {
        max_nodes: 100,
        ..VersionInfoLimits::default()
    };
    let table = node("040904b0", &[], true, &tiny);
    let file_info = node("StringFileInfo", &[], true, &[table]);
    let block = node("VS_VERSION_INFO", &[], false, &[file_info]);
    assert_eq!(
        parse_version_info(&block, &limits),
        Err(VersionInfoError::Limit {
            what: "nodes",
            limit: 100
        })
    );
}
