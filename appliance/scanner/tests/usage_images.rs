//! EntryTrace and usage closures on fixture images made from real Debian binaries
//! (`stella_scanner::fixture::debian`): golden chains and closures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

use stella_scanner::fixture::debian;
use stella_scanner::usage::{self, Usage};
use stella_scanner::{MemoryLayerCache, NoProgress, ScanOptions, ScanResult, scan_path};

/// Whether the host has the files the fixtures copy: a loud SKIP when not, a failure under CI.
fn ready() -> bool {
    let missing = debian::missing_host_files();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "fixture host files missing under CI: {missing:?}"
    );
    eprintln!("SKIP: host files for the Debian fixture images are missing: {missing:?}");
    false
}

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
    if !ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    debian::python_image(tmp.path(), 0).unwrap();
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
fn shell_conditions_decided_from_known_values() {
    if !ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    debian::python_image(tmp.path(), 0).unwrap();
    let mut result = scan(tmp.path());
    // `docker run IMAGE --verbose`: options only, the `if` prepends the default program.
    result.runtime.cmd = vec!["--verbose".into()];
    let usage = usage::analyse(&result);
    assert_eq!(usage.chains.len(), 1);
    assert_eq!(
        usage.chains[0].steps.last().unwrap().argv,
        ["python3", "/app/main.py", "--verbose"]
    );
    // APP_MODE from the config selects the `case` arm, whose program is missing: the chain
    // stops there with the reason, at the script line.
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
}

/// A script whose branch depends on a value known only at run time: every branch is a chain.
#[test]
fn unknown_conditions_fork_and_functions_loops_and_set_are_followed() {
    if !ready() {
        return;
    }
    let script = r#"#!/bin/bash
set -eu
MODE="$(cat /etc/mode)"
run() {
    exec "$@"
}
for helper in /usr/local/lib/*.sh; do
    . "$helper"
done
if [ "$MODE" = "java" ]; then
    run /usr/bin/missing-java -jar /app.jar
fi
set -- python3 /app/main.py
run "$@"
"#;
    let mut app = stella_scanner::fixture::LayerBuilder::new();
    app.file("usr/local/bin/start", script.as_bytes(), 0o755)
        .unwrap();
    app.file(
        "usr/local/lib/a.sh",
        b"A=1
",
        0o644,
    )
    .unwrap();
    app.file(
        "app/main.py",
        b"import os
",
        0o644,
    )
    .unwrap();
    app.symlink("usr/bin/bash", "dash").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    stella_scanner::fixture::write_oci_layout(
        tmp.path(),
        &stella_scanner::RuntimeConfig {
            entrypoint: vec!["start".into()],
            ..stella_scanner::RuntimeConfig::default()
        },
        &[
            debian::base_layer().unwrap(),
            debian::python_runtime_layer().unwrap(),
            app.finish().unwrap(),
        ],
    )
    .unwrap();
    let result = scan(tmp.path());
    let usage = usage::analyse(&result);
    let described: Vec<String> = usage.chains.iter().map(|c| c.describe()).collect();
    assert_eq!(usage.chains.len(), 2, "{described:#?}");
    assert_eq!(
        usage.chains[0].unresolved.as_deref(),
        Some("/usr/bin/missing-java: no such file in the image")
    );
    assert!(described[0].contains("source /usr/local/bin/start:8 [/usr/local/lib/a.sh]"));
    assert!(
        described[0].contains("exec /usr/local/bin/start:5 [/usr/bin/missing-java -jar /app.jar]")
    );
    assert!(usage.chains[1].unresolved.is_none(), "{described:#?}");
    assert!(described[1].contains("exec /usr/local/bin/start:5 [python3 /app/main.py]"));
    assert_eq!(
        usage.chains[1].terminal.as_deref(),
        Some("/usr/bin/python3.11")
    );
    // bash is a symlink to dash here: the interpreter program is what the link resolves to.
    assert_eq!(usage.chains[1].programs[0], "/usr/bin/dash");
}

#[test]
fn java_jar_with_manifest_class_path_and_origin_rpath() {
    if !ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    debian::java_image(tmp.path()).unwrap();
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
    if !ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    debian::node_image(tmp.path()).unwrap();
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
    if !ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    debian::python_image(tmp.path(), 0).unwrap();
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
    if !ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    debian::python_image(tmp.path(), 0).unwrap();
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

fn validator(schema_file: &str) -> jsonschema::Validator {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/scanner/schemas");
    let load = |name: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join(name)).unwrap()).unwrap()
    };
    let registry = jsonschema::Registry::new()
        .add(
            "http://cyclonedx.org/schema/spdx.schema.json",
            load("spdx.schema.json"),
        )
        .unwrap()
        .add(
            "http://cyclonedx.org/schema/jsf-0.82.schema.json",
            load("jsf-0.82.schema.json"),
        )
        .unwrap()
        .prepare()
        .unwrap();
    jsonschema::options()
        .offline()
        .with_registry(&registry)
        .should_validate_formats(true)
        .build(&load(schema_file))
        .unwrap()
}

fn assert_valid(validator: &jsonschema::Validator, bytes: &[u8], what: &str) {
    let value: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} is not schema-valid:\n{}",
        errors.join("\n")
    );
}

#[test]
fn usage_view_sboms_are_schema_valid_narrower_and_list_the_chain() {
    if !ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    debian::python_image(tmp.path(), 0).unwrap();
    let result = scan(tmp.path());
    let usage = usage::analyse(&result);
    let cdx = result.render_sbom("cdx-json", Some(&usage)).unwrap();
    let spdx = result.render_sbom("spdx-json", Some(&usage)).unwrap();
    assert_valid(&validator("bom-1.6.schema.json"), &cdx, "usage CycloneDX");
    assert_valid(&validator("spdx-2.3.schema.json"), &spdx, "usage SPDX");
    let inventory = result.render_sbom("cdx-json", None).unwrap();
    assert_eq!(inventory, result.to_cyclonedx_json().unwrap());
    let doc: serde_json::Value = serde_json::from_slice(&cdx).unwrap();
    let components = doc["components"].as_array().unwrap();
    assert_eq!(components.len(), usage.components.len());
    assert!(components.len() < result.components.len());
    for component in components {
        let props = component["properties"].as_array().unwrap();
        assert!(
            props
                .iter()
                .any(|p| p["name"] == "stella:usedByEntrypoint" && p["value"] == "true")
        );
    }
    let image_props = doc["metadata"]["component"]["properties"]
        .as_array()
        .unwrap();
    let step = |j: usize| {
        image_props
            .iter()
            .find(|p| p["name"] == format!("stella:entrytrace:0:step:{j}"))
            .map(|p| p["value"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        step(3).as_deref(),
        Some("exec /usr/local/bin/docker-entrypoint.sh:16 python3 /app/main.py")
    );
    assert_ne!(
        doc["serialNumber"],
        serde_json::from_slice::<serde_json::Value>(&inventory).unwrap()["serialNumber"]
    );
    // Same input, same bytes; the protobuf form of the usage view is produced too.
    assert_eq!(cdx, result.render_sbom("cdx-json", Some(&usage)).unwrap());
    assert!(
        !result
            .render_sbom("cdx-pb", Some(&usage))
            .unwrap()
            .is_empty()
    );
    assert!(result.render_sbom("yaml", None).is_err());
}

#[test]
fn bom_index_round_trips_a_real_scan_with_layers_and_usage() {
    if !ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    debian::python_image(tmp.path(), 0).unwrap();
    let result = scan(tmp.path());
    let usage = usage::analyse(&result);
    let index = stella_scanner::bomindex::BomIndex::build(&result, Some(&usage));
    let bytes = index.to_bytes();
    let back = stella_scanner::bomindex::read(&bytes).unwrap();
    assert_eq!(back, index);
    assert_eq!(bytes, back.to_bytes(), "byte-identical after a round trip");
    assert_eq!(back.components.len(), result.components.len());
    assert_eq!(
        back.used_by_entrypoint.len() as usize,
        usage.components.len()
    );
    for component in &result.components {
        assert_eq!(
            back.used_by_entrypoint(&component.bom_ref),
            usage.uses(&component.bom_ref)
        );
        assert_eq!(back.layer_of(&component.bom_ref), Some(&component.layer));
    }
    // Layer 2 (the application) introduced exactly the three Python distributions.
    let top: Vec<&str> = back
        .components_in_layer(2)
        .map(|c| c.bom_ref.as_str())
        .collect();
    assert_eq!(
        top,
        [
            "pkg:pypi/mylib@1.0.0",
            "pkg:pypi/oldlib@0.9.0",
            "pkg:pypi/otherlib@2.0.0"
        ]
    );
}

/// The closure of a Python program that runs `otherlib`: the interpreter, its libraries and
/// the module's distribution.
fn otherlib_closure() -> BTreeSet<String> {
    set(&[
        "libc6",
        "libexpat1",
        "otherlib",
        "python3.11-minimal",
        "zlib1g",
    ])
}

/// `python -m MODULE` runs a module from site-packages: the chain names the module's file as
/// the target, and the closure takes the distribution that owns it (and what it imports), not
/// the ones only the script entrypoint imports.
#[test]
fn python_dash_m_resolves_the_module_through_site_packages() {
    if !ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    debian::python_image(tmp.path(), 0).unwrap();
    let mut result = scan(tmp.path());
    result.runtime.entrypoint = Vec::new();
    result.runtime.cmd = vec!["python3".into(), "-m".into(), "otherlib".into()];
    let usage = usage::analyse(&result);
    assert_eq!(usage.chains.len(), 1, "{:#?}", usage.chains);
    let chain = &usage.chains[0];
    assert!(chain.unresolved.is_none(), "{:?}", chain.unresolved);
    assert_eq!(chain.launcher.as_deref(), Some("python"));
    assert_eq!(chain.terminal.as_deref(), Some("/usr/bin/python3.11"));
    assert_eq!(used_names(&result, &usage), otherlib_closure());
}

/// A WSGI/ASGI server script (`gunicorn MODULE:APP`) is a launcher: the closure takes the
/// interpreter its shebang names and the application module's distribution.
#[test]
fn gunicorn_wrapper_resolves_the_application_module() {
    if !ready() {
        return;
    }
    let mut server = stella_scanner::fixture::LayerBuilder::new();
    server
        .file(
            "usr/local/bin/gunicorn",
            b"#!/usr/bin/python3\nimport sys\nfrom gunicorn.app.wsgiapp import run\nsys.exit(run())\n",
            0o755,
        )
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    stella_scanner::fixture::write_oci_layout(
        tmp.path(),
        &stella_scanner::RuntimeConfig {
            cmd: vec![
                "gunicorn".into(),
                "-b".into(),
                "0.0.0.0:8000".into(),
                "otherlib:app".into(),
            ],
            env: vec!["PATH=/usr/local/bin:/usr/bin:/bin".into()],
            ..stella_scanner::RuntimeConfig::default()
        },
        &[
            debian::base_layer().unwrap(),
            debian::python_runtime_layer().unwrap(),
            debian::python_app_layer(0).unwrap(),
            server.finish().unwrap(),
        ],
    )
    .unwrap();
    let result = scan(tmp.path());
    let usage = usage::analyse(&result);
    assert_eq!(usage.chains.len(), 1, "{:#?}", usage.chains);
    let chain = &usage.chains[0];
    assert!(chain.unresolved.is_none(), "{:?}", chain.unresolved);
    assert_eq!(
        chain.describe(),
        "config config [gunicorn -b 0.0.0.0:8000 otherlib:app] \
         -> shebang /usr/local/bin/gunicorn [#!/usr/bin/python3] \
         -> launcher /usr/bin/python3.11 [/usr/bin/python3 /usr/local/bin/gunicorn -b 0.0.0.0:8000 otherlib:app]"
    );
    assert_eq!(chain.targets, ["/usr/local/bin/gunicorn"]);
    // The bind address is not a module; `otherlib:app` is, and only it joins the closure.
    assert_eq!(used_names(&result, &usage), otherlib_closure());
}
