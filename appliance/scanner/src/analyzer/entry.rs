//! Entry analyzer: keeps what EntryTrace needs from files it cannot re-read later: the text of
//! shell scripts, the shebang of every script, the top-level imports of Python files outside
//! the interpreter's library directories, and a jar manifest's `Main-Class`/`Class-Path`.
//!
//! These facts live in the layer fragment (so a usage view of a cached image reads no layer);
//! each shell text is at most [`MAX_SCRIPT_BYTES`].

use std::io::{Cursor, Read};

use serde::{Deserialize, Serialize};

use super::{Analyzer, AnalyzerOutput, FileInfo};

/// Largest script kept (entrypoint scripts are a few KiB).
pub const MAX_SCRIPT_BYTES: u64 = 256 << 10;
/// Largest jar manifest read.
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// Facts about a script or program text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptFacts {
    /// The `#!` line without `#!`, trimmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shebang: Option<String>,
    /// The text of a shell script (shebang naming a POSIX shell, or a `.sh` file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// Top-level modules a Python file imports (`import a.b` gives `a`), sorted; relative
    /// imports are left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub python_imports: Vec<String>,
    /// Top-level modules a Python distribution provides (its `top_level.txt`, else the first
    /// path components of its `RECORD`), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub python_provides: Vec<String>,
    /// A configuration file kept verbatim (`etc/ld.so.conf`, `etc/ld.so.conf.d/*.conf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

/// A jar manifest's entry point.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JarFacts {
    /// `Main-Class`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_class: Option<String>,
    /// `Class-Path` entries (relative to the jar's directory).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_path: Vec<String>,
}

/// Collects entry facts.
#[derive(Debug, Clone, Copy)]
pub struct EntryAnalyzer;

/// Shells whose scripts EntryTrace parses.
pub const SHELLS: &[&str] = &["sh", "bash", "dash", "ash", "ksh", "mksh", "busybox"];

/// The program a shebang runs: `/usr/bin/env python3 -u` gives `python3`.
pub fn shebang_program(shebang: &str) -> Option<&str> {
    let mut words = shebang.split_whitespace();
    let first = words.next()?;
    let name = first.rsplit('/').next().unwrap_or(first);
    if name == "env" {
        return words.find(|w| !w.starts_with('-') && !w.contains('='));
    }
    Some(first)
}

fn is_shell(program: &str) -> bool {
    let name = program.rsplit('/').next().unwrap_or(program);
    SHELLS.contains(&name)
}

fn is_python(program: &str) -> bool {
    let name = program.rsplit('/').next().unwrap_or(program);
    name.starts_with("python") || name == "pypy3"
}

fn in_python_library(path: &str) -> bool {
    path.contains("/site-packages/")
        || path.contains("/dist-packages/")
        || path.contains("lib/python2")
        || path.contains("lib/python3")
}

/// Top-level modules imported by a Python source (`import x.y as z`, `from x.y import z`),
/// skipping relative imports and text inside triple-quoted strings. Sorted, deduplicated.
pub fn python_imports(source: &str) -> Vec<String> {
    let mut imports = Vec::new();
    let mut in_string: Option<&str> = None;
    for raw in source.lines() {
        let line = raw.trim();
        if let Some(quote) = in_string {
            if line.contains(quote) {
                in_string = None;
            }
            continue;
        }
        for quote in ["\"\"\"", "'''"] {
            if line.matches(quote).count() % 2 == 1 {
                in_string = Some(quote);
            }
        }
        if in_string.is_some() && !line.starts_with("import ") && !line.starts_with("from ") {
            continue;
        }
        let line = line.split('#').next().unwrap_or("");
        if let Some(rest) = line.strip_prefix("import ") {
            for part in rest.split(',') {
                let module = part.split_whitespace().next().unwrap_or("");
                push_module(&mut imports, module);
            }
        } else if let Some(rest) = line.strip_prefix("from ") {
            let module = rest.split_whitespace().next().unwrap_or("");
            if rest.split_whitespace().nth(1) == Some("import") {
                push_module(&mut imports, module);
            }
        }
    }
    imports.sort();
    imports.dedup();
    imports
}

fn push_module(imports: &mut Vec<String>, module: &str) {
    if module.starts_with('.') {
        return;
    }
    let top = module.split('.').next().unwrap_or("");
    if !top.is_empty() && top.chars().all(|c| c.is_alphanumeric() || c == '_') {
        imports.push(top.to_owned());
    }
}

/// Reads `META-INF/MANIFEST.MF` of a jar.
pub fn parse_jar_manifest(bytes: &[u8]) -> Result<Option<JarFacts>, String> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| format!("jar: {e}"))?;
    let Ok(member) = archive.by_name("META-INF/MANIFEST.MF") else {
        return Ok(None);
    };
    let mut text = String::new();
    member
        .take(MAX_MANIFEST_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| format!("jar manifest: {e}"))?;
    // Manifest continuation lines start with one space and continue the previous value verbatim.
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(rest) = line.strip_prefix(' ') {
            if let Some((_, value)) = fields.last_mut() {
                value.push_str(rest);
            }
        } else if let Some((key, value)) = line.split_once(':') {
            fields.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let facts = JarFacts {
        main_class: get("Main-Class").filter(|v| !v.is_empty()),
        class_path: get("Class-Path")
            .map(|v| v.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
    };
    Ok((facts.main_class.is_some() || !facts.class_path.is_empty()).then_some(facts))
}

/// Reads the script facts of a file's bytes, `None` when it is not a script of interest.
pub fn parse_script(path: &str, bytes: &[u8]) -> Option<ScriptFacts> {
    let text = std::str::from_utf8(bytes).ok()?;
    let shebang = text
        .strip_prefix("#!")
        .map(|rest| rest.lines().next().unwrap_or("").trim().to_owned());
    let program = shebang.as_deref().and_then(shebang_program);
    let shell = match program {
        Some(program) => is_shell(program),
        None => path.ends_with(".sh"),
    };
    let python = match program {
        Some(program) => is_python(program),
        None => path.ends_with(".py"),
    };
    if shebang.is_none() && !shell && !python {
        return None;
    }
    Some(ScriptFacts {
        shell: shell.then(|| text.to_owned()),
        python_imports: if python {
            python_imports(text)
        } else {
            Vec::new()
        },
        shebang,
        ..ScriptFacts::default()
    })
}

fn is_ld_config(path: &str) -> bool {
    path == "etc/ld.so.conf" || path.starts_with("etc/ld.so.conf.d/")
}

fn is_python_dist_file(path: &str) -> bool {
    path.ends_with(".dist-info/top_level.txt")
        || path.ends_with(".egg-info/top_level.txt")
        || path.ends_with(".dist-info/RECORD")
}

/// Top-level module names of a distribution from its `top_level.txt` or `RECORD`.
pub fn python_provides(path: &str, text: &str) -> Vec<String> {
    let mut names: Vec<String> = if path.ends_with("top_level.txt") {
        text.lines()
            .map(|l| l.trim().replace('/', "."))
            .filter(|l| !l.is_empty())
            .map(|l| l.split('.').next().unwrap_or("").to_owned())
            .collect()
    } else {
        text.lines()
            .filter_map(|line| line.split(',').next())
            .filter_map(|file| {
                let first = file.trim_matches('"').split('/').next()?;
                if first.ends_with(".dist-info")
                    || first.ends_with(".data")
                    || first == ".."
                    || first == "__pycache__"
                    || first.is_empty()
                {
                    return None;
                }
                let module = first
                    .strip_suffix(".py")
                    .map(str::to_owned)
                    .or_else(|| {
                        (first.ends_with(".so") || first.ends_with(".pyd"))
                            .then(|| first.split('.').next().unwrap_or("").to_owned())
                    })
                    .or_else(|| (!first.contains('.')).then(|| first.to_owned()))?;
                Some(module)
            })
            .collect()
    };
    names.retain(|n| !n.is_empty() && n.chars().all(|c| c.is_alphanumeric() || c == '_'));
    names.sort();
    names.dedup();
    names
}

fn is_archive(path: &str) -> bool {
    path.ends_with(".jar") || path.ends_with(".war")
}

impl Analyzer for EntryAnalyzer {
    fn id(&self) -> &'static str {
        "entry"
    }
    fn version(&self) -> u32 {
        1
    }
    fn wants(&self, file: &FileInfo<'_>) -> bool {
        if is_archive(file.path) {
            return true;
        }
        if (is_ld_config(file.path) || is_python_dist_file(file.path)) && file.size <= 4 << 20 {
            return true;
        }
        file.size <= MAX_SCRIPT_BYTES
            && (file.is_executable()
                || file.path.ends_with(".sh")
                || (file.path.ends_with(".py") && !in_python_library(file.path)))
    }
    fn analyze(&self, path: &str, bytes: &[u8]) -> AnalyzerOutput {
        if is_archive(path) {
            // Jar content problems are the java analyzer's to report.
            return AnalyzerOutput {
                jar: parse_jar_manifest(bytes).ok().flatten(),
                ..AnalyzerOutput::default()
            };
        }
        if is_ld_config(path) || is_python_dist_file(path) {
            let text = String::from_utf8_lossy(bytes);
            let facts = if is_ld_config(path) {
                ScriptFacts {
                    config: Some(text.into_owned()),
                    ..ScriptFacts::default()
                }
            } else {
                ScriptFacts {
                    python_provides: python_provides(path, &text),
                    ..ScriptFacts::default()
                }
            };
            return AnalyzerOutput {
                script: Some(facts),
                ..AnalyzerOutput::default()
            };
        }
        if bytes.len() as u64 > MAX_SCRIPT_BYTES || bytes.starts_with(b"\x7fELF") {
            return AnalyzerOutput::default();
        }
        AnalyzerOutput {
            script: parse_script(path, bytes),
            ..AnalyzerOutput::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_programs() {
        assert_eq!(shebang_program("/bin/sh -e"), Some("/bin/sh"));
        assert_eq!(
            shebang_program("/usr/bin/env -S python3 -u"),
            Some("python3")
        );
        assert_eq!(shebang_program("/usr/bin/env"), None);
    }

    #[test]
    fn python_import_names() {
        let source = "import os, sys as s\nfrom flask.app import Flask\nfrom . import x\n\"\"\"\nimport nope\n\"\"\"\n  import yaml  # c\n";
        assert_eq!(python_imports(source), ["flask", "os", "sys", "yaml"]);
    }

    #[test]
    fn scripts_by_shebang() {
        let facts = parse_script("usr/local/bin/run", b"#!/bin/sh\nexec x\n").unwrap();
        assert_eq!(facts.shebang.as_deref(), Some("/bin/sh"));
        assert!(facts.shell.is_some());
        let facts = parse_script("app/x", b"#!/usr/bin/env python3\nimport flask\n").unwrap();
        assert!(facts.shell.is_none());
        assert_eq!(facts.python_imports, ["flask"]);
        assert!(parse_script("usr/bin/data", b"plain text").is_none());
    }
}
