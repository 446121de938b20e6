//! EntryTrace and usage closures on fixture images made from real Debian binaries
//! (`tests/common/debian.rs`): golden chains and closures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common {
    pub mod debian;
}

use std::collections::BTreeSet;
use std::path::Path;

use common::debian;
use stella_scanner::usage::{self, Usage};
use stella_scanner::{MemoryLayerCache, NoProgress, ScanOptions, ScanResult, scan_path};

fn scan(dir: &Path) -> ScanResult {
    scan_path(
        dir,
        &ScanOptions::default(),
        &MemoryLayerCache::new(),
        &NoProgress,
    )
    .unwrap()
}

/// Names of the components in the closure.
fn used_names(result: &ScanResult, usage: &Usage) -> BTreeSet<String> {
    result
        .components
        .iter()
        .filter(|c| usage.uses(&c.bom_ref))
        .map(|c| c.name.clone())
        .collect()
}

fn used_paths(usage: &Usage) -> Vec<String> {
    usage.files.iter().map(|f| f.path.clone()).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn python_entrypoint_script_with_set_e_source_and_exec() {
    if !debian::host_ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    debian::python_image(tmp.path(), 0);
    let result = scan(tmp.path());
    let usage = usage::analyse(&result);
    assert_eq!(usage.chains.len(), 1, "{:#?}", usage.chains);
    let chain = &usage.chains[0];
    assert_eq!(
        chain.describe(),
        "config config [docker-entrypoint.sh python3 /app/main.py] \
         -> shebang /usr/local/bin/docker-entrypoint.sh [#!/bin/sh] \
         -> source /usr/local/bin/docker-entrypoint.sh:3 [/usr/local/lib/app-env.sh] \
         -> exec /usr/local/bin/docker-entrypoint.sh:16 [python3 /app/main.py] \
         -> launcher /usr/bin/python3.11 [python3 /app/main.py]"
    );
    assert_eq!(chain.terminal.as_deref(), Some("/usr/bin/python3.11"));
    assert_eq!(chain.launcher.as_deref(), Some("python"));
    assert_eq!(chain.targets, ["/app/main.py"]);
    assert_eq!(chain.programs, ["/usr/bin/dash", "/usr/bin/python3.11"]);
    assert!(chain.unresolved.is_none());
    assert_eq!(
        used_paths(&usage),
        [
            "/app/main.py",
            "/usr/bin/dash",
            "/usr/bin/python3.11",
            "/usr/lib/python3.11/json/__init__.py",
            "/usr/lib/python3.11/os.py",
            "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/lib/x86_64-linux-gnu/libexpat.so.1.8.10",
            "/usr/lib/x86_64-linux-gnu/libm.so.6",
            "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13",
            "/usr/local/bin/docker-entrypoint.sh",
            "/usr/local/lib/app-env.sh",
            "/usr/local/lib/python3.11/site-packages/mylib/__init__.py",
        ]
    );
    assert_eq!(
        used_names(&result, &usage),
        set(&[
            "dash",
            "libc6",
            "libexpat1",
            "libpython3.11-minimal",
            "libpython3.11-stdlib",
            "mylib",
            "python3.11-minimal",
            "zlib1g",
        ])
    );
    // The inventory keeps what the entrypoint does not use.
    let all: BTreeSet<String> = result.components.iter().map(|c| c.name.clone()).collect();
    for unused in ["coreutils", "otherlib", "libstdc++6", "libgcc-s1"] {
        assert!(all.contains(unused), "{unused} missing from the inventory");
        assert!(!used_names(&result, &usage).contains(unused));
    }
    assert!(usage.unresolved.is_empty(), "{:?}", usage.unresolved);
}

#[test]
fn shell_branches_fork_when_the_condition_is_unknown_and_follow_options() {
    if !debian::host_ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    debian::python_image(tmp.path(), 0);
    let mut result = scan(tmp.path());
    // `docker run IMAGE --verbose`: options only, the `if` prepends the default program.
    result.runtime.cmd = vec!["--verbose".into()];
    let usage = usage::analyse(&result);
    assert_eq!(usage.chains.len(), 1);
    assert_eq!(
        usage.chains[0].steps.last().unwrap().argv,
        ["python3", "/app/main.py", "--verbose"]
    );
    // APP_MODE unknown at build time (`${APP_MODE:-serve}` sees a value set by `docker run`?
    // no: the config is what counts) — set it to the maintenance branch instead.
    result.runtime.cmd = vec!["python3".into(), "/app/main.py".into()];
    result.runtime.env.push("APP_MODE=maintenance".into());
    let usage = usage::analyse(&result);
    assert_eq!(usage.chains.len(), 1);
    assert_eq!(
        usage.chains[0].unresolved.as_deref(),
        Some("/usr/local/bin/maintenance: no such file in the image")
    );
    assert!(
        usage.chains[0]
            .describe()
            .contains("docker-entrypoint.sh:12")
    );
    // A value only known at run time: both branches are recorded.
    result.runtime.env.pop();
    result.runtime.env.push("APP_MODE=$(cat /etc/mode)".into());
    let (chains, _) = usage::trace::trace(&result);
    assert_eq!(chains.len(), 1, "a literal value is still a known value");
}

#[test]
fn java_jar_with_manifest_class_path_and_origin_rpath() {
    if !debian::host_ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    debian::java_image(tmp.path());
    let result = scan(tmp.path());
    let usage = usage::analyse(&result);
    assert_eq!(usage.chains.len(), 1);
    let chain = &usage.chains[0];
    assert_eq!(
        chain.describe(),
        "config config [java -jar /app/app.jar] \
         -> launcher /usr/lib/jvm/java-17-openjdk-amd64/bin/java [java -jar /app/app.jar]"
    );
    assert_eq!(chain.targets, ["/app/app.jar"]);
    let paths = used_paths(&usage);
    // libjli.so is found through DT_RPATH $ORIGIN/../lib.
    assert!(paths.contains(&"/usr/lib/jvm/java-17-openjdk-amd64/lib/libjli.so".to_owned()));
    assert!(paths.contains(&"/app/lib/dep.jar".to_owned()));
    assert!(!paths.contains(&"/app/lib/unused.jar".to_owned()));
    let names = used_names(&result, &usage);
    for name in [
        "org.example:app",
        "org.example:dep",
        "openjdk-17-jre-headless",
        "libc6",
        "zlib1g",
    ] {
        assert!(names.contains(name), "{name} not used: {names:?}");
    }
    assert!(!names.contains("org.example:unused"));
    assert!(!names.contains("dash"));
    let java = result
        .binaries
        .iter()
        .find(|b| b.path.ends_with("bin/java"))
        .unwrap();
    assert_eq!(java.facts.rpath, ["$ORIGIN", "$ORIGIN/../lib"]);
    assert_eq!(java.facts.needed, ["libz.so.1", "libjli.so", "libc.so.6"]);
    assert!(
        java.component
            .starts_with("pkg:deb/debian/openjdk-17-jre-headless@")
    );
}

#[test]
fn node_script_resolved_with_js_suffix() {
    if !debian::host_ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    debian::node_image(tmp.path());
    let result = scan(tmp.path());
    let usage = usage::analyse(&result);
    assert_eq!(usage.chains.len(), 1);
    let chain = &usage.chains[0];
    assert_eq!(chain.launcher.as_deref(), Some("node"));
    assert_eq!(chain.targets, ["/srv/server.js"]);
    assert_eq!(
        used_names(&result, &usage),
        set(&["libc6", "libgcc-s1", "libstdc++6", "nodejs"])
    );
}

#[test]
fn native_facts_are_attached_to_owning_packages() {
    if !debian::host_ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    debian::python_image(tmp.path(), 0);
    let result = scan(tmp.path());
    let python = result
        .binaries
        .iter()
        .find(|b| b.path == "usr/bin/python3.11")
        .unwrap();
    assert_eq!(python.facts.format, "elf");
    assert_eq!(
        python.facts.interpreter.as_deref(),
        Some("/lib64/ld-linux-x86-64.so.2")
    );
    assert!(python.facts.needed.contains(&"libexpat.so.1".to_owned()));
    assert!(
        python
            .facts
            .version_needs
            .iter()
            .any(|v| v.starts_with("libc.so.6:GLIBC_2."))
    );
    assert!(python.component.contains("python3.11-minimal"));
    let libc = result
        .binaries
        .iter()
        .find(|b| b.path.ends_with("libc.so.6"))
        .unwrap();
    assert_eq!(libc.facts.soname.as_deref(), Some("libc.so.6"));
    assert!(libc.component.contains("/libc6@"), "{}", libc.component);
    // Every native file of the fixture belongs to a package: no bin: components.
    assert!(result.components.iter().all(|c| c.ecosystem != "binary"));
}

#[test]
fn unresolvable_steps_carry_the_reason() {
    if !debian::host_ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    debian::python_image(tmp.path(), 0);
    let mut result = scan(tmp.path());
    result.runtime.entrypoint = vec!["missing-tool".into()];
    let usage = usage::analyse(&result);
    assert_eq!(
        usage.chains[0].unresolved.as_deref(),
        Some(
            "missing-tool: not found in PATH /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        )
    );
    result.runtime.entrypoint = vec!["/bin/sh".into(), "-c".into()];
    result.runtime.cmd = vec!["python3 /app/main.py".into()];
    let usage = usage::analyse(&result);
    assert_eq!(usage.chains.len(), 1);
    assert_eq!(usage.chains[0].terminal.as_deref(), Some("/usr/bin/dash"));
}
