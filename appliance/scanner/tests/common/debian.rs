//! Fixture images made from real files of this Debian machine (binaries, libraries, the dpkg
//! database entries that own them): a Python image with a `set -e` entrypoint script that
//! sources a file and `exec`s, a `java -jar` image and a Node image, all on one shared base.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::Path;

use stella_scanner::RuntimeConfig;
use stella_scanner::digest::Digest;
use stella_scanner::fixture::{LayerBuilder, write_oci_layout};

const MULTIARCH: &str = "usr/lib/x86_64-linux-gnu";

/// Host files every fixture needs; when one is missing the caller skips (or fails under CI).
pub const REQUIRED: &[&str] = &[
    "/usr/bin/python3.11",
    "/usr/bin/dash",
    "/usr/lib/jvm/java-17-openjdk-amd64/bin/java",
    "/usr/lib/jvm/java-17-openjdk-amd64/lib/libjli.so",
    "/usr/bin/node",
    "/var/lib/dpkg/status",
];

/// Whether the host has the files; prints a loud SKIP line when not (and panics under CI).
pub fn host_ready() -> bool {
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("fixture host files missing under CI: {missing:?}");
    }
    eprintln!("SKIP: host files for the Debian fixture images are missing: {missing:?}");
    false
}

/// dpkg `status` paragraphs for `packages` and their `info/*.list` files, from the host.
fn dpkg_db(packages: &[&str]) -> (String, Vec<(String, Vec<u8>)>) {
    let status = fs::read_to_string("/var/lib/dpkg/status").unwrap();
    let wanted: BTreeSet<&str> = packages.iter().copied().collect();
    let mut out = String::new();
    for paragraph in status.split("\n\n") {
        let name = paragraph
            .lines()
            .find_map(|l| l.strip_prefix("Package: "))
            .unwrap_or("");
        if wanted.contains(name) {
            out.push_str(paragraph.trim_end());
            out.push_str("\n\n");
        }
    }
    let mut lists = Vec::new();
    for package in packages {
        for name in [format!("{package}:amd64.list"), format!("{package}.list")] {
            let path = Path::new("/var/lib/dpkg/info").join(&name);
            if let Ok(bytes) = fs::read(&path) {
                lists.push((format!("var/lib/dpkg/info/{name}"), bytes));
            }
        }
    }
    (out, lists)
}

fn add_dpkg(layer: &mut LayerBuilder, packages: &[&str]) {
    let (status, lists) = dpkg_db(packages);
    layer
        .file("var/lib/dpkg/status", status.as_bytes(), 0o644)
        .unwrap();
    for (path, bytes) in lists {
        layer.file(&path, &bytes, 0o644).unwrap();
    }
}

/// Copies a host library by its link name, with the versioned file it points to.
fn add_lib(layer: &mut LayerBuilder, name: &str) {
    let host = Path::new("/").join(MULTIARCH).join(name);
    let meta = fs::symlink_metadata(&host).unwrap();
    if meta.file_type().is_symlink() {
        let target = fs::read_link(&host).unwrap();
        let target = target.to_str().unwrap();
        layer
            .symlink(&format!("{MULTIARCH}/{name}"), target)
            .unwrap();
        add_lib(layer, target);
    } else {
        layer
            .host_file(&format!("{MULTIARCH}/{name}"), &host)
            .unwrap();
    }
}

const BASE_PACKAGES: &[&str] = &[
    "libc6",
    "zlib1g",
    "libexpat1",
    "dash",
    "coreutils",
    "libstdc++6",
    "libgcc-s1",
];

/// Layer 0: merged-usr symlinks, libc and friends, dash as /bin/sh, ld.so.conf, os-release,
/// dpkg entries, and an unused program (`ls`).
pub fn base_layer() -> Vec<u8> {
    let mut layer = LayerBuilder::new();
    for (link, target) in [
        ("bin", "usr/bin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
        ("sbin", "usr/sbin"),
    ] {
        layer.symlink(link, target).unwrap();
    }
    layer
        .symlink(
            "usr/lib64/ld-linux-x86-64.so.2",
            "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        )
        .unwrap();
    for lib in [
        "ld-linux-x86-64.so.2",
        "libc.so.6",
        "libm.so.6",
        "libz.so.1",
        "libexpat.so.1",
        "libdl.so.2",
        "libpthread.so.0",
        "libstdc++.so.6",
        "libgcc_s.so.1",
    ] {
        add_lib(&mut layer, lib);
    }
    layer
        .host_file("usr/bin/dash", Path::new("/usr/bin/dash"))
        .unwrap();
    layer.symlink("usr/bin/sh", "dash").unwrap();
    layer
        .host_file("usr/bin/ls", Path::new("/usr/bin/ls"))
        .unwrap();
    layer
        .host_file("etc/ld.so.conf", Path::new("/etc/ld.so.conf"))
        .unwrap();
    let mut confs: Vec<_> = fs::read_dir("/etc/ld.so.conf.d")
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    confs.sort();
    for conf in confs {
        let name = conf.file_name().unwrap().to_str().unwrap().to_owned();
        layer
            .host_file(&format!("etc/ld.so.conf.d/{name}"), &conf)
            .unwrap();
    }
    layer
        .host_file("etc/os-release", Path::new("/etc/os-release"))
        .unwrap();
    add_dpkg(&mut layer, BASE_PACKAGES);
    layer.finish().unwrap()
}

fn with_base(extra: &[&str]) -> Vec<&'static str> {
    let mut all: Vec<&'static str> = BASE_PACKAGES.to_vec();
    for e in extra {
        all.push(Box::leak(e.to_string().into_boxed_str()));
    }
    all
}

/// Layer 1 of the Python image: python3.11 with two stdlib modules and their packages.
pub fn python_runtime_layer() -> Vec<u8> {
    let mut layer = LayerBuilder::new();
    layer
        .host_file("usr/bin/python3.11", Path::new("/usr/bin/python3.11"))
        .unwrap();
    layer.symlink("usr/bin/python3", "python3.11").unwrap();
    for module in ["os.py", "json/__init__.py", "json/decoder.py", "shutil.py"] {
        layer
            .host_file(
                &format!("usr/lib/python3.11/{module}"),
                &Path::new("/usr/lib/python3.11").join(module),
            )
            .unwrap();
    }
    add_dpkg(
        &mut layer,
        &with_base(&[
            "python3.11-minimal",
            "libpython3.11-minimal",
            "libpython3.11-stdlib",
        ]),
    );
    layer.finish().unwrap()
}

/// The entrypoint script: `set -e`, a sourced file, a `case`, an `if` on `$1`, `exec "$@"`.
pub const ENTRYPOINT_SH: &str = r#"#!/bin/sh
set -e
. /usr/local/lib/app-env.sh

# Options only: run the default program with them.
if [ "${1#-}" != "$1" ]; then
	set -- python3 /app/main.py "$@"
fi

case "$APP_MODE" in
	maintenance)
		exec /usr/local/bin/maintenance "$@"
		;;
esac

exec "$@"
"#;

const APP_ENV_SH: &str =
    "# sourced by docker-entrypoint.sh\nAPP_MODE=\"${APP_MODE:-serve}\"\nexport APP_HOME=/app\n";

const MAIN_PY: &str = "import json\nimport os\nfrom mylib import greet\n\n\ndef main():\n    print(json.dumps(greet(os.getcwd())))\n\n\nif __name__ == \"__main__\":\n    main()\n";

fn dist(layer: &mut LayerBuilder, site: &str, name: &str, version: &str, module: &str) {
    let dist = format!("{site}/{name}-{version}.dist-info");
    layer
        .file(
            &format!("{dist}/METADATA"),
            format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nLicense: MIT\n")
                .as_bytes(),
            0o644,
        )
        .unwrap();
    layer
        .file(
            &format!("{dist}/RECORD"),
            format!("{module}/__init__.py,,\n{name}-{version}.dist-info/METADATA,,\n").as_bytes(),
            0o644,
        )
        .unwrap();
    layer
        .file(
            &format!("{dist}/top_level.txt"),
            format!("{module}\n").as_bytes(),
            0o644,
        )
        .unwrap();
    layer
        .file(
            &format!("{site}/{module}/__init__.py"),
            b"def greet(x):\n    return {'hello': x}\n",
            0o644,
        )
        .unwrap();
}

/// Layer 2 of the Python image: the entrypoint script, the sourced file, the application and
/// two distributions (one imported, one not). `variant` changes the unused distribution's
/// version (for diffs).
pub fn python_app_layer(variant: u32) -> Vec<u8> {
    let mut layer = LayerBuilder::new();
    layer
        .file(
            "usr/local/bin/docker-entrypoint.sh",
            ENTRYPOINT_SH.as_bytes(),
            0o755,
        )
        .unwrap();
    layer
        .file("usr/local/lib/app-env.sh", APP_ENV_SH.as_bytes(), 0o644)
        .unwrap();
    layer
        .file("app/main.py", MAIN_PY.as_bytes(), 0o644)
        .unwrap();
    let site = "usr/local/lib/python3.11/site-packages";
    dist(&mut layer, site, "mylib", "1.0.0", "mylib");
    let other = if variant == 0 { "2.0.0" } else { "2.1.0" };
    dist(&mut layer, site, "otherlib", other, "otherlib");
    if variant > 0 {
        dist(&mut layer, site, "newlib", "0.1.0", "newlib");
    }
    layer.finish().unwrap()
}

/// The Python image's runtime config.
pub fn python_runtime() -> RuntimeConfig {
    RuntimeConfig {
        entrypoint: vec!["docker-entrypoint.sh".into()],
        cmd: vec!["python3".into(), "/app/main.py".into()],
        env: vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            "LANG=C.UTF-8".into(),
        ],
        working_dir: Some("/app".into()),
        user: None,
    }
}

/// Writes the Python image (3 layers; `variant` changes the top layer only).
pub fn python_image(dir: &Path, variant: u32) -> Digest {
    write_oci_layout(
        dir,
        &python_runtime(),
        &[
            base_layer(),
            python_runtime_layer(),
            python_app_layer(variant),
        ],
    )
    .unwrap()
}

fn jar(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options: zip::write::SimpleFileOptions =
        zip::write::SimpleFileOptions::default().last_modified_time(zip::DateTime::default());
    for (name, text) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(text.as_bytes()).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// Writes the Java image: base, the JDK's `java` launcher with `libjli.so` (found through
/// `$ORIGIN/../lib`), and an application jar whose manifest `Class-Path` names a dependency.
pub fn java_image(dir: &Path) -> Digest {
    let jdk = "usr/lib/jvm/java-17-openjdk-amd64";
    let mut runtime = LayerBuilder::new();
    runtime
        .host_file(
            &format!("{jdk}/bin/java"),
            &Path::new("/").join(jdk).join("bin/java"),
        )
        .unwrap();
    runtime
        .host_file(
            &format!("{jdk}/lib/libjli.so"),
            &Path::new("/").join(jdk).join("lib/libjli.so"),
        )
        .unwrap();
    runtime
        .symlink("etc/alternatives/java", &format!("/{jdk}/bin/java"))
        .unwrap();
    runtime
        .symlink("usr/bin/java", "/etc/alternatives/java")
        .unwrap();
    add_dpkg(&mut runtime, &with_base(&["openjdk-17-jre-headless"]));
    let mut app = LayerBuilder::new();
    let manifest =
        "Manifest-Version: 1.0\r\nMain-Class: org.example.Main\r\nClass-Path: lib/dep.jar\r\n\r\n";
    app.file(
        "app/app.jar",
        &jar(&[
            ("META-INF/MANIFEST.MF", manifest),
            (
                "META-INF/maven/org.example/app/pom.properties",
                "groupId=org.example\nartifactId=app\nversion=1.0.0\n",
            ),
        ]),
        0o644,
    )
    .unwrap();
    for (name, version) in [("dep", "2.3.4"), ("unused", "9.9.9")] {
        app.file(
            &format!("app/lib/{name}.jar"),
            &jar(&[
                ("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\n\r\n"),
                (
                    &format!("META-INF/maven/org.example/{name}/pom.properties"),
                    &format!("groupId=org.example\nartifactId={name}\nversion={version}\n"),
                ),
            ]),
            0o644,
        )
        .unwrap();
    }
    write_oci_layout(
        dir,
        &RuntimeConfig {
            entrypoint: vec!["java".into(), "-jar".into(), "/app/app.jar".into()],
            cmd: Vec::new(),
            env: vec!["PATH=/usr/local/bin:/usr/bin:/bin".into()],
            working_dir: Some("/app".into()),
            user: None,
        },
        &[
            base_layer(),
            runtime.finish().unwrap(),
            app.finish().unwrap(),
        ],
    )
    .unwrap()
}

/// Writes the Node image: base, `/usr/bin/node` from the host, `node server.js` in `/srv`.
pub fn node_image(dir: &Path) -> Digest {
    let mut runtime = LayerBuilder::new();
    runtime
        .host_file("usr/bin/node", Path::new("/usr/bin/node"))
        .unwrap();
    add_dpkg(&mut runtime, &with_base(&["nodejs"]));
    let mut app = LayerBuilder::new();
    app.file(
        "srv/server.js",
        b"const http = require('http');\nhttp.createServer((q, s) => s.end('ok')).listen(8080);\n",
        0o644,
    )
    .unwrap();
    write_oci_layout(
        dir,
        &RuntimeConfig {
            entrypoint: Vec::new(),
            cmd: vec!["node".into(), "server".into()],
            env: Vec::new(),
            working_dir: Some("/srv".into()),
            user: None,
        },
        &[
            base_layer(),
            runtime.finish().unwrap(),
            app.finish().unwrap(),
        ],
    )
    .unwrap()
}
