//! The usage view: what the image's entrypoint runs and loads.
//!
//! [`analyse`] traces the entrypoint ([`trace`]), then closes over what the programs of each
//! chain load: the ELF `DT_NEEDED` closure resolved like `ld.so` (`DT_RPATH` when there is no
//! `DT_RUNPATH`, `LD_LIBRARY_PATH` from the config, `DT_RUNPATH`, `ld.so.conf` with its
//! `include`s, the default directories), each object's `PT_INTERP`; for Python, the modules the
//! target imports (top-level names mapped to files on `sys.path`, then to the OS package listing
//! the file or the distribution whose `top_level.txt`/`RECORD` provides the name); for Java, the
//! jars (`-jar`, `-cp`, manifest `Class-Path`). Every file used is mapped to its component; those
//! components get `usedByEntrypoint=true`. Everything is computed from the layer fragments: no
//! layer is read again.

pub mod shell;
pub mod trace;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::Serialize;

use crate::ScanResult;
use crate::layer::EntryKind;
pub use trace::{Chain, Step};

/// Most files in one usage closure.
const MAX_CLOSURE_FILES: usize = 100_000;

/// A file the entrypoint uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsedFile {
    /// Absolute path.
    pub path: String,
    /// Why it is used (`program`, `script`, `needed by /usr/bin/x`, `interpreter of …`,
    /// `import yaml`, `jar`, `class path of …`).
    pub why: String,
    /// bom-refs of the components it belongs to (a fat jar holds several), sorted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<String>,
}

/// The usage view of a scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Entry chains.
    pub chains: Vec<Chain>,
    /// Whether chains were left out because of the limits (branches, steps).
    pub truncated: bool,
    /// Files used, sorted by path.
    pub files: Vec<UsedFile>,
    /// bom-refs of the components in the closure, sorted.
    pub components: BTreeSet<String>,
    /// What could not be resolved (a library not found, an import not on `sys.path`), sorted.
    pub unresolved: Vec<String>,
}

impl Usage {
    /// Whether a component (by bom-ref) is in the closure.
    pub fn uses(&self, bom_ref: &str) -> bool {
        self.components.contains(bom_ref)
    }
}

struct Closure<'a> {
    scan: &'a ScanResult,
    files: BTreeMap<String, String>,
    unresolved: BTreeSet<String>,
    env: BTreeMap<String, String>,
    ld_dirs: Vec<String>,
}

fn dir_of(path: &str) -> &str {
    path.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

/// Directories from `etc/ld.so.conf` and its `include`d files (globs), in order.
fn ld_conf_dirs(scan: &ScanResult) -> Vec<String> {
    fn read(scan: &ScanResult, path: &str, depth: usize, out: &mut Vec<String>) {
        if depth > 8 {
            return;
        }
        let Some(text) = scan
            .path_result(path)
            .and_then(|r| r.script.clone())
            .and_then(|s| s.config)
        else {
            return;
        };
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if let Some(pattern) = line.strip_prefix("include") {
                let pattern = pattern.trim();
                let absolute = if pattern.starts_with('/') {
                    pattern.to_owned()
                } else {
                    format!("/etc/{pattern}")
                };
                let (dir, glob) = absolute.rsplit_once('/').unwrap_or(("", &absolute));
                let Ok(resolved) = scan.view.resolve(dir) else {
                    continue;
                };
                for name in scan.view.children(&resolved) {
                    if trace::glob_match(glob, name) {
                        read(scan, &format!("{resolved}/{name}"), depth + 1, out);
                    }
                }
            } else {
                for dir in line.split([':', ',', ' ', '\t']).filter(|d| !d.is_empty()) {
                    out.push(dir.to_owned());
                }
            }
        }
    }
    let mut dirs = Vec::new();
    if let Ok(resolved) = scan.view.resolve("etc/ld.so.conf") {
        read(scan, &resolved, 0, &mut dirs);
    }
    dirs
}

impl Closure<'_> {
    fn add(&mut self, resolved: &str, why: String) -> bool {
        let absolute = format!("/{resolved}");
        if self.files.contains_key(&absolute) || self.files.len() >= MAX_CLOSURE_FILES {
            return false;
        }
        self.files.insert(absolute, why);
        true
    }

    fn regular(&self, absolute: &str) -> Option<String> {
        let resolved = self.scan.view.resolve(absolute).ok()?;
        match &self.scan.view.get(&resolved)?.kind {
            EntryKind::File { .. } | EntryKind::Hardlink { .. } => Some(resolved),
            _ => None,
        }
    }

    /// The ELF closure of `root` (root-relative): `DT_NEEDED` resolved like `ld.so`, and `PT_INTERP`.
    fn elf(&mut self, root: &str) {
        let Some(root_facts) = self.scan.path_result(root).and_then(|r| r.native.clone()) else {
            return;
        };
        let exe_rpath: Vec<String> = if root_facts.runpath.is_empty() {
            expand_origin(&root_facts.rpath, root)
        } else {
            Vec::new()
        };
        let mut queue: VecDeque<String> = VecDeque::from([root.to_owned()]);
        let mut seen: BTreeSet<String> = BTreeSet::from([root.to_owned()]);
        while let Some(object) = queue.pop_front() {
            let Some(facts) = self
                .scan
                .path_result(&object)
                .and_then(|r| r.native.clone())
            else {
                continue;
            };
            if facts.format != "elf" {
                continue;
            }
            if let Some(interp) = &facts.interpreter {
                match self.regular(interp) {
                    Some(found) => {
                        if seen.insert(found.clone()) {
                            self.add(&found, format!("interpreter of /{object}"));
                            queue.push_back(found);
                        }
                    }
                    None => {
                        self.unresolved
                            .insert(format!("/{object}: interpreter {interp} not in the image"));
                    }
                }
            }
            let mut dirs: Vec<String> = Vec::new();
            if facts.runpath.is_empty() {
                dirs.extend(expand_origin(&facts.rpath, &object));
                dirs.extend(exe_rpath.iter().cloned());
            }
            if let Some(paths) = self.env.get("LD_LIBRARY_PATH") {
                dirs.extend(
                    paths
                        .split([':', ';'])
                        .filter(|d| !d.is_empty())
                        .map(str::to_owned),
                );
            }
            dirs.extend(expand_origin(&facts.runpath, &object));
            dirs.extend(self.ld_dirs.iter().cloned());
            for default in ["/lib", "/usr/lib", "/lib64", "/usr/lib64"] {
                dirs.push(default.to_owned());
            }
            for needed in &facts.needed {
                let found = if needed.contains('/') {
                    self.regular(needed)
                } else {
                    dirs.iter().find_map(|dir| {
                        let candidate =
                            self.regular(&format!("{}/{needed}", dir.trim_end_matches('/')))?;
                        // ld.so skips objects of another format; a non-object is skipped too.
                        let native = self.scan.path_result(&candidate)?.native.clone()?;
                        (native.format == "elf").then_some(candidate)
                    })
                };
                match found {
                    Some(found) => {
                        if seen.insert(found.clone()) {
                            self.add(&found, format!("{needed} needed by /{object}"));
                            queue.push_back(found);
                        }
                    }
                    None => {
                        self.unresolved
                            .insert(format!("/{object}: needed {needed} not found"));
                    }
                }
            }
        }
    }

    /// `sys.path` directories in the image for a Python chain: the script's directory (or the
    /// working directory for `-m`), `PYTHONPATH`, then every `lib/pythonX.Y` with its
    /// `lib-dynload`, `site-packages` and `dist-packages`, and `lib/python3/dist-packages`.
    fn python_path(&self, first: &str) -> Vec<String> {
        let mut dirs = vec![first.to_owned()];
        if let Some(paths) = self.env.get("PYTHONPATH") {
            dirs.extend(
                paths
                    .split(':')
                    .filter(|d| !d.is_empty())
                    .map(str::to_owned),
            );
        }
        for prefix in ["usr/lib", "usr/local/lib"] {
            let Ok(resolved) = self.scan.view.resolve(prefix) else {
                continue;
            };
            for name in self.scan.view.children(&resolved) {
                if name.starts_with("python") {
                    let base = format!("/{resolved}/{name}");
                    for sub in ["", "/lib-dynload", "/site-packages", "/dist-packages"] {
                        dirs.push(format!("{base}{sub}"));
                    }
                }
            }
        }
        dirs
    }

    /// Finds module `name` (top-level) on `sys.path`: `name/__init__.py`, `name.py`,
    /// `name.*.so`, `name/` (namespace package).
    fn find_module(&self, dirs: &[String], name: &str) -> Option<String> {
        for dir in dirs {
            let Ok(resolved) = self.scan.view.resolve(dir) else {
                continue;
            };
            for candidate in [format!("{name}/__init__.py"), format!("{name}.py")] {
                if let Some(found) = self.regular(&format!("/{resolved}/{candidate}")) {
                    return Some(found);
                }
            }
            let children = self.scan.view.children(&resolved);
            if let Some(so) = children.iter().find(|c| {
                c.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('.') && rest.ends_with(".so"))
            }) {
                return Some(format!("{resolved}/{so}"));
            }
            if children.contains(&name)
                && self
                    .scan
                    .view
                    .resolve(&format!("{resolved}/{name}"))
                    .is_ok()
            {
                let dir = format!("{resolved}/{name}");
                if self
                    .scan
                    .view
                    .children(&dir)
                    .iter()
                    .any(|c| c.ends_with(".py"))
                {
                    return Some(dir);
                }
            }
        }
        None
    }

    fn python(&mut self, chain: &Chain) {
        let first_dir = chain
            .targets
            .first()
            .map(|t| dir_of(t).to_owned())
            .unwrap_or_else(|| "/".to_owned());
        let dirs = self.python_path(&first_dir);
        let mut imports: BTreeSet<String> = BTreeSet::new();
        for target in &chain.targets {
            let resolved = target.trim_start_matches('/');
            self.add(resolved, "python script".into());
            if let Some(script) = self
                .scan
                .path_result(resolved)
                .and_then(|r| r.script.clone())
            {
                imports.extend(script.python_imports);
            }
        }
        for module in &chain.modules {
            let top = module.split('.').next().unwrap_or(module);
            imports.insert(top.to_owned());
            // The module file itself, for its own imports.
            let relative = module.replace('.', "/");
            for dir in &dirs {
                for candidate in [
                    format!("{dir}/{relative}.py"),
                    format!("{dir}/{relative}/__main__.py"),
                    format!("{dir}/{relative}/__init__.py"),
                ] {
                    if let Some(found) = self.regular(&candidate) {
                        if let Some(script) =
                            self.scan.path_result(&found).and_then(|r| r.script.clone())
                        {
                            imports.extend(script.python_imports);
                        }
                        self.add(&found, format!("python module {module}"));
                    }
                }
            }
        }
        for name in imports {
            match self.find_module(&dirs, &name) {
                Some(found) => {
                    self.add(&found, format!("import {name}"));
                }
                None => {
                    self.unresolved.insert(format!(
                        "import {name}: not found on sys.path (built into the interpreter, or missing)"
                    ));
                }
            }
        }
    }

    fn java(&mut self, chain: &Chain) {
        let mut queue: VecDeque<String> = chain
            .targets
            .iter()
            .map(|t| t.trim_start_matches('/').to_owned())
            .collect();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        while let Some(jar) = queue.pop_front() {
            if !seen.insert(jar.clone()) || seen.len() > 10_000 {
                continue;
            }
            self.add(&jar, "jar".to_owned());
            let Some(facts) = self.scan.path_result(&jar).and_then(|r| r.jar.clone()) else {
                continue;
            };
            for entry in &facts.class_path {
                let absolute = if entry.starts_with('/') {
                    entry.clone()
                } else {
                    format!("/{}/{entry}", dir_of(&jar))
                };
                match self.regular(&absolute) {
                    Some(found) => {
                        if !seen.contains(&found) {
                            self.files
                                .entry(format!("/{found}"))
                                .or_insert_with(|| format!("Class-Path of /{jar}"));
                            queue.push_back(found);
                        }
                    }
                    None => {
                        self.unresolved
                            .insert(format!("/{jar}: Class-Path entry {entry} not in the image"));
                    }
                }
            }
        }
    }
}

fn expand_origin(paths: &[String], object: &str) -> Vec<String> {
    let origin = format!("/{}", dir_of(object));
    paths
        .iter()
        .map(|p| p.replace("${ORIGIN}", &origin).replace("$ORIGIN", &origin))
        .collect()
}

/// Maps used files to components: native files by their attachment, then the OS package whose
/// file list names the path (directly or through symlinks), then components whose evidence is
/// the file (a jar) or whose distribution provides the module (Python).
fn components_of(
    scan: &ScanResult,
    files: &BTreeMap<String, String>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let by_path: BTreeMap<&str, &str> = scan
        .binaries
        .iter()
        .map(|b| (b.path.as_str(), b.component.as_str()))
        .collect();
    let wanted: BTreeSet<String> = files
        .keys()
        .map(|p| p.trim_start_matches('/').to_owned())
        .collect();
    for path in &wanted {
        if let Some(component) = by_path.get(path.as_str()) {
            out.entry(path.clone())
                .or_default()
                .insert((*component).to_owned());
        }
    }
    // OS packages: list entries resolved through the view (Debian lists `/lib/…` on merged-usr).
    let names: BTreeSet<&str> = wanted
        .iter()
        .map(|p| p.rsplit('/').next().unwrap_or(p))
        .collect();
    let mut by_package: BTreeMap<&str, &str> = BTreeMap::new();
    for component in &scan.components {
        if matches!(component.ecosystem.as_str(), "deb" | "apk" | "rpm") {
            by_package
                .entry(component.name.as_str())
                .or_insert(component.bom_ref.as_str());
        }
    }
    for (listed, package) in crate::result::owned_entries(scan, &names) {
        let resolved = scan.view.resolve(&listed).unwrap_or(listed);
        for candidate in [resolved.clone(), format!("{resolved}/__init__.py")] {
            if wanted.contains(&candidate)
                && !out.contains_key(&candidate)
                && let Some(bom_ref) = by_package.get(package.as_str())
            {
                out.entry(candidate)
                    .or_default()
                    .insert((*bom_ref).to_owned());
            }
        }
    }
    // Components whose evidence is the file itself or a member of it (jars, fat jars, the Go
    // and Rust modules compiled into a binary): they run when the file runs, also when an OS
    // package owns the file.
    let mut by_evidence: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for component in &scan.components {
        for evidence in &component.evidence {
            let file = evidence.split("!/").next().unwrap_or(evidence);
            let file = file.trim_start_matches('/');
            if wanted.contains(file) {
                by_evidence
                    .entry(file.to_owned())
                    .or_default()
                    .insert(component.bom_ref.clone());
            }
        }
    }
    for (file, refs) in by_evidence {
        out.entry(file).or_default().extend(refs);
    }
    // Python distributions: top-level names provided, keyed by site directory.
    let mut provided: BTreeMap<(String, String), String> = BTreeMap::new();
    for component in scan.components.iter().filter(|c| c.ecosystem == "pypi") {
        for evidence in &component.evidence {
            let dist_dir = dir_of(evidence.trim_start_matches('/'));
            let site = dir_of(dist_dir).to_owned();
            for file in ["top_level.txt", "RECORD"] {
                let path = format!("{dist_dir}/{file}");
                if let Some(script) = scan.path_result(&path).and_then(|r| r.script.clone()) {
                    for name in script.python_provides {
                        provided
                            .entry((site.clone(), name))
                            .or_insert_with(|| component.bom_ref.clone());
                    }
                }
            }
        }
    }
    for path in &wanted {
        if out.contains_key(path) {
            continue;
        }
        // `site/name/__init__.py`, `site/name.py`, `site/name.cpython-311.so`, `site/name`.
        let mut parts: Vec<&str> = path.split('/').collect();
        if parts.last() == Some(&"__init__.py") {
            parts.pop();
        }
        let Some(last) = parts.pop() else {
            continue;
        };
        let name = last.split('.').next().unwrap_or(last);
        let site = parts.join("/");
        if let Some(bom_ref) = provided.get(&(site, name.to_owned())) {
            out.entry(path.clone()).or_default().insert(bom_ref.clone());
        }
    }
    out
}

/// Computes the usage view of a scan: traces the entrypoint and closes over what it loads.
pub fn analyse(scan: &ScanResult) -> Usage {
    let (chains, truncated) = trace::trace(scan);
    let mut env = BTreeMap::new();
    for pair in &scan.runtime.env {
        if let Some((name, value)) = pair.split_once('=') {
            env.insert(name.to_owned(), value.to_owned());
        }
    }
    let mut closure = Closure {
        scan,
        files: BTreeMap::new(),
        unresolved: BTreeSet::new(),
        env,
        ld_dirs: ld_conf_dirs(scan),
    };
    for chain in &chains {
        for script in &chain.scripts {
            closure.add(script.trim_start_matches('/'), "script".into());
        }
        for program in &chain.programs {
            let resolved = program.trim_start_matches('/').to_owned();
            closure.add(&resolved, "program".into());
            closure.elf(&resolved);
        }
        match chain.launcher.as_deref() {
            Some("python") => closure.python(chain),
            Some("java") => closure.java(chain),
            Some(_) => {
                for target in &chain.targets {
                    closure.add(target.trim_start_matches('/'), "script".into());
                }
            }
            None => {}
        }
        if let Some(reason) = &chain.unresolved {
            closure.unresolved.insert(format!("entry chain: {reason}"));
        }
    }
    let owners = components_of(scan, &closure.files);
    let mut components = BTreeSet::new();
    let files: Vec<UsedFile> = closure
        .files
        .into_iter()
        .map(|(path, why)| {
            let refs: Vec<String> = owners
                .get(path.trim_start_matches('/'))
                .map(|r| r.iter().cloned().collect())
                .unwrap_or_default();
            components.extend(refs.iter().cloned());
            UsedFile {
                path,
                why,
                components: refs,
            }
        })
        .collect();
    Usage {
        chains,
        truncated,
        files,
        components,
        unresolved: closure.unresolved.into_iter().collect(),
    }
}
