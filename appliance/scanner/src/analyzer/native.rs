//! Native analyzer: linkage facts of ELF, PE and Mach-O files read with the `object` crate
//! (ELF `DT_NEEDED`, `DT_SONAME`, `DT_RPATH`/`DT_RUNPATH`, `PT_INTERP`, required symbol
//! versions; PE imported DLLs and version resource (`peversion.rs`); Mach-O
//! `LC_LOAD_DYLIB` (and its weak/re-export/lazy/upward kin), `LC_ID_DYLIB`, `LC_RPATH`,
//! `LC_LOAD_DYLINKER`, `LC_BUILD_VERSION`/`LC_VERSION_MIN_*`, in thin and universal files).
//!
//! The facts are stored per path in the layer fragment; the composer attaches them to the
//! component owning the file (an OS package) or to a `bin:{sha256}` component, and the usage
//! closure resolves `DT_NEEDED` like `ld.so` from them without reading the layer again.

use object::read::elf::{Dyn as _, FileHeader, ProgramHeader as _};
use object::read::macho::{FatArch, LoadCommandVariant, MachHeader, MachOFatFile};
use object::read::pe::{ImageNtHeaders, PeFile};
use object::{Endianness, FileKind, Object as _};
use serde::{Deserialize, Serialize};

use super::peversion::{PeVersionInfo, VersionInfoLimits, parse_version_info, version_resource};
use super::{Analyzer, AnalyzerOutput, FileInfo};

/// Most `DT_NEEDED`/imports/version entries kept per file (a hostile file cannot grow the fragment).
pub const MAX_NATIVE_ENTRIES: usize = 4096;

/// What a native object file says about its linkage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativeFacts {
    /// `elf`, `pe` or `macho`.
    pub format: String,
    /// `executable`, `shared-library` (ELF `ET_DYN` with a SONAME or without an interpreter),
    /// `pie-executable`, `relocatable`, `other`.
    pub kind: String,
    /// sha256 of the file (hex), filled in by the layer reader from the bytes it hashed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sha256: String,
    /// Libraries required, in file order (ELF `DT_NEEDED`, PE DLL names, Mach-O dylib paths).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needed: Vec<String>,
    /// ELF `DT_SONAME` or Mach-O `LC_ID_DYLIB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soname: Option<String>,
    /// ELF `DT_RPATH` entries (split at `:`, `$ORIGIN` kept verbatim) or Mach-O `LC_RPATH`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rpath: Vec<String>,
    /// ELF `DT_RUNPATH` entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runpath: Vec<String>,
    /// ELF `PT_INTERP` or Mach-O `LC_LOAD_DYLINKER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreter: Option<String>,
    /// Required symbol versions (`libc.so.6:GLIBC_2.34`), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub version_needs: Vec<String>,
    /// Mach-O minimum OS (`LC_BUILD_VERSION` or `LC_VERSION_MIN_*`): `macos 11.0.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_os: Option<String>,
    /// Mach-O SDK version the file was built against (`12.1.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk: Option<String>,
    /// Architectures of a universal (fat) Mach-O file, in file order (`x86_64`, `arm64`); empty
    /// for a thin file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
    /// PE version resource (`VS_VERSIONINFO`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pe_version: Option<PeVersionInfo>,
}

/// Linkage facts plus the problems met in parts that are not needed for them (a broken PE
/// version resource): the facts are kept and each problem becomes an unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeRead {
    /// The facts.
    pub facts: NativeFacts,
    /// What could not be read, for the unknowns.
    pub problems: Vec<String>,
}

/// Reads native object files.
#[derive(Debug, Clone, Copy)]
pub struct NativeAnalyzer;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn split_paths(value: &[u8]) -> Vec<String> {
    text(value)
        .split(':')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn push_limited(list: &mut Vec<String>, value: String) -> Result<(), String> {
    if list.len() >= MAX_NATIVE_ENTRIES {
        return Err(format!("more than {MAX_NATIVE_ENTRIES} linkage entries"));
    }
    list.push(value);
    Ok(())
}

fn parse_elf<Elf: FileHeader<Endian = Endianness>>(data: &[u8]) -> Result<NativeFacts, String> {
    let header = Elf::parse(data).map_err(|e| format!("ELF header: {e}"))?;
    let endian = header.endian().map_err(|e| format!("ELF header: {e}"))?;
    let mut facts = NativeFacts {
        format: "elf".into(),
        ..NativeFacts::default()
    };
    let e_type = header.e_type(endian);
    let segments = header
        .program_headers(endian, data)
        .map_err(|e| format!("ELF program headers: {e}"))?;
    for segment in segments {
        if let Ok(Some(interp)) = segment.interpreter(endian, data) {
            facts.interpreter = Some(text(interp));
        }
    }
    let sections = header
        .sections(endian, data)
        .map_err(|e| format!("ELF section headers: {e}"))?;
    if let Some((dynamics, link)) = sections
        .dynamic(endian, data)
        .map_err(|e| format!("ELF dynamic section: {e}"))?
    {
        let strings = sections
            .strings(endian, data, link)
            .map_err(|e| format!("ELF dynamic string table: {e}"))?;
        for entry in dynamics {
            let tag = entry.d_tag(endian);
            if tag == object::elf::DT_NULL {
                break;
            }
            let wanted = matches!(
                tag,
                object::elf::DT_NEEDED
                    | object::elf::DT_SONAME
                    | object::elf::DT_RPATH
                    | object::elf::DT_RUNPATH
            );
            if !wanted {
                continue;
            }
            let value = entry
                .string(endian, strings)
                .map_err(|e| format!("ELF dynamic entry {tag}: {e}"))?;
            match tag {
                object::elf::DT_NEEDED => push_limited(&mut facts.needed, text(value))?,
                object::elf::DT_SONAME => facts.soname = Some(text(value)),
                object::elf::DT_RPATH => facts.rpath.extend(split_paths(value)),
                _ => facts.runpath.extend(split_paths(value)),
            }
        }
    }
    if let Some((mut needs, link)) = sections
        .gnu_verneed(endian, data)
        .map_err(|e| format!("ELF version needs: {e}"))?
    {
        let strings = sections
            .strings(endian, data, link)
            .map_err(|e| format!("ELF version string table: {e}"))?;
        while let Some((need, mut auxes)) = needs
            .next()
            .map_err(|e| format!("ELF version needs: {e}"))?
        {
            let file = need
                .file(endian, strings)
                .map_err(|e| format!("ELF version need file: {e}"))?;
            while let Some(aux) = auxes
                .next()
                .map_err(|e| format!("ELF version need entry: {e}"))?
            {
                let name = aux
                    .name(endian, strings)
                    .map_err(|e| format!("ELF version need name: {e}"))?;
                push_limited(
                    &mut facts.version_needs,
                    format!("{}:{}", text(file), text(name)),
                )?;
            }
        }
    }
    facts.version_needs.sort();
    facts.version_needs.dedup();
    facts.kind = match e_type {
        object::elf::ET_EXEC => "executable",
        object::elf::ET_DYN if facts.interpreter.is_some() && facts.soname.is_none() => {
            "pie-executable"
        }
        object::elf::ET_DYN => "shared-library",
        object::elf::ET_REL => "relocatable",
        _ => "other",
    }
    .into();
    Ok(facts)
}

fn parse_pe<Pe: ImageNtHeaders>(data: &[u8]) -> Result<NativeRead, String> {
    let file = PeFile::<Pe>::parse(data).map_err(|e| format!("PE: {e}"))?;
    let mut facts = NativeFacts {
        format: "pe".into(),
        kind: match file.kind() {
            object::ObjectKind::Dynamic => "shared-library",
            object::ObjectKind::Executable => "executable",
            _ => "other",
        }
        .into(),
        ..NativeFacts::default()
    };
    let imports = file.imports().map_err(|e| format!("PE imports: {e}"))?;
    for import in imports {
        let import = import.map_err(|e| format!("PE import: {e}"))?;
        let library = text(import.library());
        if !facts.needed.contains(&library) {
            push_limited(&mut facts.needed, library)?;
        }
    }
    let mut problems = Vec::new();
    match version_resource(&file, data).and_then(|resource| {
        resource
            .map(|bytes| parse_version_info(bytes, &VersionInfoLimits::default()))
            .transpose()
    }) {
        Ok(version) => facts.pe_version = version,
        Err(e) => problems.push(format!("PE version resource: {e}")),
    }
    Ok(NativeRead { facts, problems })
}

/// `macos`, `ios`, … for a Mach-O platform number (`LC_BUILD_VERSION`).
fn macho_platform(platform: u32) -> String {
    match platform {
        1 => "macos".into(),
        2 => "ios".into(),
        3 => "tvos".into(),
        4 => "watchos".into(),
        5 => "bridgeos".into(),
        6 => "maccatalyst".into(),
        7 => "ios-simulator".into(),
        8 => "tvos-simulator".into(),
        9 => "watchos-simulator".into(),
        10 => "driverkit".into(),
        11 => "visionos".into(),
        12 => "visionos-simulator".into(),
        other => format!("platform-{other}"),
    }
}

fn parse_macho<Mach: MachHeader<Endian = Endianness>>(data: &[u8]) -> Result<NativeFacts, String> {
    let header = Mach::parse(data, 0).map_err(|e| format!("Mach-O header: {e}"))?;
    let endian = header.endian().map_err(|e| format!("Mach-O header: {e}"))?;
    let mut facts = NativeFacts {
        format: "macho".into(),
        kind: match header.filetype(endian) {
            object::macho::MH_EXECUTE => "executable",
            object::macho::MH_DYLIB => "shared-library",
            object::macho::MH_OBJECT => "relocatable",
            _ => "other",
        }
        .into(),
        ..NativeFacts::default()
    };
    let mut commands = header
        .load_commands(endian, data, 0)
        .map_err(|e| format!("Mach-O load commands: {e}"))?;
    while let Some(command) = commands
        .next()
        .map_err(|e| format!("Mach-O load command: {e}"))?
    {
        let variant = command
            .variant()
            .map_err(|e| format!("Mach-O load command: {e}"))?;
        let string = |s| {
            command
                .string(endian, s)
                .map(text)
                .map_err(|e| format!("Mach-O load command string: {e}"))
        };
        match variant {
            LoadCommandVariant::Dylib(dylib) => {
                push_limited(&mut facts.needed, string(dylib.dylib.name)?)?;
            }
            LoadCommandVariant::IdDylib(dylib) => facts.soname = Some(string(dylib.dylib.name)?),
            LoadCommandVariant::Rpath(rpath) => {
                push_limited(&mut facts.rpath, string(rpath.path)?)?
            }
            LoadCommandVariant::LoadDylinker(linker) => {
                facts.interpreter = Some(string(linker.name)?);
            }
            LoadCommandVariant::BuildVersion(build, _tools) => {
                let platform = macho_platform(build.platform.get(endian).0);
                facts.min_os = Some(format!("{platform} {}", build.minos.get(endian)));
                facts.sdk = Some(build.sdk.get(endian).to_string());
            }
            LoadCommandVariant::VersionMin(version) if facts.min_os.is_none() => {
                let platform = match command.cmd() {
                    object::macho::LC_VERSION_MIN_IPHONEOS => "ios",
                    object::macho::LC_VERSION_MIN_TVOS => "tvos",
                    object::macho::LC_VERSION_MIN_WATCHOS => "watchos",
                    _ => "macos",
                };
                facts.min_os = Some(format!("{platform} {}", version.version.get(endian)));
                facts.sdk = Some(version.sdk.get(endian).to_string());
            }
            _ => {}
        }
    }
    Ok(facts)
}

/// Most architectures of a universal Mach-O file. Java class files share its `0xCAFEBABE` magic
/// and put their version (45 and up) where the architecture count goes, so a larger count means
/// "not a Mach-O file" (the rule `file(1)` uses).
const MAX_FAT_ARCHES: u32 = 20;

/// `x86_64`, `arm64`, … for a Mach-O CPU type.
fn macho_cpu(cpu: object::macho::CpuType) -> String {
    match cpu {
        object::macho::CPU_TYPE_X86 => "i386".into(),
        object::macho::CPU_TYPE_X86_64 => "x86_64".into(),
        object::macho::CPU_TYPE_ARM => "arm".into(),
        object::macho::CPU_TYPE_ARM64 => "arm64".into(),
        object::macho::CPU_TYPE_ARM64_32 => "arm64_32".into(),
        object::macho::CPU_TYPE_POWERPC => "ppc".into(),
        object::macho::CPU_TYPE_POWERPC64 => "ppc64".into(),
        other => format!("cpu-{:#x}", other.0),
    }
}

/// A universal Mach-O file: the first slice's facts, with the libraries and run paths of the
/// other slices appended (deduplicated) so the closure sees every slice's needs.
fn parse_fat<Fat: FatArch>(data: &[u8]) -> Result<Option<NativeFacts>, String> {
    let count = data
        .get(4..8)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    if count == 0 || count >= MAX_FAT_ARCHES {
        return Ok(None);
    }
    let fat =
        MachOFatFile::<Fat>::parse(data).map_err(|e| format!("Mach-O universal header: {e}"))?;
    let mut merged: Option<NativeFacts> = None;
    let mut architectures = Vec::new();
    for (index, arch) in fat.arches().iter().enumerate() {
        let slice = arch
            .data(data)
            .map_err(|e| format!("Mach-O universal slice {index}: {e}"))?;
        let facts = match FileKind::parse(slice) {
            Ok(FileKind::MachO32) => parse_macho::<object::macho::MachHeader32<Endianness>>(slice)?,
            Ok(FileKind::MachO64) => parse_macho::<object::macho::MachHeader64<Endianness>>(slice)?,
            _ => {
                return Err(format!(
                    "Mach-O universal slice {index} is not a thin Mach-O file"
                ));
            }
        };
        architectures.push(macho_cpu(arch.cputype()));
        match &mut merged {
            None => merged = Some(facts),
            Some(first) => {
                for library in facts.needed {
                    if !first.needed.contains(&library) {
                        push_limited(&mut first.needed, library)?;
                    }
                }
                for path in facts.rpath {
                    if !first.rpath.contains(&path) {
                        push_limited(&mut first.rpath, path)?;
                    }
                }
            }
        }
    }
    Ok(merged.map(|facts| NativeFacts {
        architectures,
        ..facts
    }))
}

/// Reads the linkage facts of a native object file. `Ok(None)` when the bytes are not an
/// ELF, PE or Mach-O (thin or universal) file; `Err` names what is malformed. Never panics.
pub fn parse_native(data: &[u8]) -> Result<Option<NativeFacts>, String> {
    Ok(read_native(data)?.map(|read| read.facts))
}

/// [`parse_native`] plus the problems met in optional parts (see [`NativeRead`]).
pub fn read_native(data: &[u8]) -> Result<Option<NativeRead>, String> {
    let Ok(kind) = FileKind::parse(data) else {
        return Ok(None);
    };
    let complete = |facts| NativeRead {
        facts,
        problems: Vec::new(),
    };
    let read = match kind {
        FileKind::Elf32 => complete(parse_elf::<object::elf::FileHeader32<Endianness>>(data)?),
        FileKind::Elf64 => complete(parse_elf::<object::elf::FileHeader64<Endianness>>(data)?),
        FileKind::Pe32 => parse_pe::<object::pe::ImageNtHeaders32>(data)?,
        FileKind::Pe64 => parse_pe::<object::pe::ImageNtHeaders64>(data)?,
        FileKind::MachO32 => complete(parse_macho::<object::macho::MachHeader32<Endianness>>(
            data,
        )?),
        FileKind::MachO64 => complete(parse_macho::<object::macho::MachHeader64<Endianness>>(
            data,
        )?),
        FileKind::MachOFat32 => match parse_fat::<object::macho::FatArch32>(data)? {
            Some(facts) => complete(facts),
            None => return Ok(None),
        },
        FileKind::MachOFat64 => match parse_fat::<object::macho::FatArch64>(data)? {
            Some(facts) => complete(facts),
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    Ok(Some(read))
}

/// Whether a file name looks like a shared library (`libz.so`, `libz.so.1.3`, `x.dll`, `x.dylib`).
pub fn is_library_name(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.ends_with(".so")
        || name.contains(".so.")
        || name.ends_with(".dll")
        || name.ends_with(".dylib")
}

impl Analyzer for NativeAnalyzer {
    fn id(&self) -> &'static str {
        "native"
    }
    fn version(&self) -> u32 {
        // 2: PE version resources, Mach-O minimum OS and SDK, universal Mach-O files.
        2
    }
    fn wants(&self, file: &FileInfo<'_>) -> bool {
        file.size >= 52
            && (file.is_executable() || is_library_name(file.path) || file.path.ends_with(".exe"))
    }
    fn analyze(&self, _path: &str, bytes: &[u8]) -> AnalyzerOutput {
        match read_native(bytes) {
            Ok(Some(read)) => AnalyzerOutput {
                native: Some(read.facts),
                unknowns: read.problems,
                ..AnalyzerOutput::default()
            },
            Ok(None) => AnalyzerOutput::default(),
            Err(reason) => AnalyzerOutput::unknown(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_an_object_is_none() {
        assert_eq!(parse_native(b"#!/bin/sh\necho hi\n"), Ok(None));
        assert_eq!(parse_native(b""), Ok(None));
    }

    #[test]
    fn library_names() {
        let library_names = ["usr/lib/libz.so.1", "a/b.dll", "libx.so", "x.dylib"];
        assert!(library_names.iter().all(|n| is_library_name(n)));
        assert!(!is_library_name("usr/share/doc/so.txt"));
    }
}
