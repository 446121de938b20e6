//! Fault injection: `stella import` of the full `../shared/data` kit is SIGKILLed at 20 points
//! spread over its run. After each kill the stores open, hold exactly the previous generation or
//! the new one, and pass the integrity check; a later import from the killed state succeeds.
//! Skips loudly when `../shared/data` is absent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::{repo, stella, stella_kit};
use stella_feeds::FeedStore;
use stella_store::Stores;

const KILLS: u32 = 20;

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

fn import(data: &Path, config: &Path, kit: &Path) -> std::process::Child {
    stella()
        .arg("import")
        .arg(kit)
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .env_remove("STELLA_DATA")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Opens the stores as the next start would, checks integrity, and returns the generation.
fn generation_after_restart(data: &Path) -> u64 {
    let stores = Stores::open(data).unwrap();
    let feeds = FeedStore::open(data, &stores.catalog).unwrap();
    let (generation, _) = feeds
        .check_integrity(&stores.catalog)
        .unwrap()
        .expect("a generation is current");
    let dirs: Vec<String> = std::fs::read_dir(data.join("feeds"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        dirs,
        vec![format!("gen-{generation:010}")],
        "leftovers were not cleaned up"
    );
    generation
}

#[test]
fn sigkill_at_any_point_leaves_the_previous_or_the_new_generation() {
    let shared = repo().join("../shared/data/SOURCES.md");
    if !shared.exists() {
        eprintln!("SKIP: ../shared/data is absent; the import fault-injection test did not run");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let kits = work.path().join("kits");
    let built = Command::new(repo().join("tests/full-corpus-kits"))
        .arg(&kits)
        .arg(stella_kit())
        .status()
        .unwrap();
    assert!(built.success(), "tests/full-corpus-kits failed");
    let config = work.path().join("stella.toml");
    std::fs::write(
        &config,
        format!(
            "[kits]\ntrusted_keys = [{:?}]\n",
            kits.join("kit.pub").display().to_string()
        ),
    )
    .unwrap();

    // The previous generation: the small kit.
    let template = work.path().join("template");
    let status = import(&template, &config, &kits.join("kit-1.tar.zst"))
        .wait()
        .unwrap();
    assert!(status.success());
    assert_eq!(generation_after_restart(&template), 1);

    // How long an undisturbed import of the full corpus takes here.
    let timed = work.path().join("timed");
    copy_dir(&template, &timed);
    let started = Instant::now();
    let status = import(&timed, &config, &kits.join("kit-2.tar.zst"))
        .wait()
        .unwrap();
    let full = started.elapsed();
    assert!(status.success());
    assert_eq!(generation_after_restart(&timed), 2);
    eprintln!("full-corpus import took {full:?}; killing at {KILLS} points across it");

    let mut outcomes = [0u32; 3];
    let mut recovered = false;
    for i in 0..KILLS {
        let data = work.path().join(format!("kill-{i}"));
        copy_dir(&template, &data);
        let mut child = import(&data, &config, &kits.join("kit-2.tar.zst"));
        // Evenly spread over 110% of the measured run, so some kills land after the switch.
        let at = full.mul_f64((f64::from(i) + 0.5) * 1.1 / f64::from(KILLS));
        std::thread::sleep(at);
        let _ = child.kill();
        child.wait().unwrap();
        let generation = generation_after_restart(&data);
        assert!(
            generation == 1 || generation == 2,
            "generation {generation}"
        );
        outcomes[generation as usize] += 1;
        if generation == 1 && !recovered {
            // The next import from the killed state loads the kit.
            let status = import(&data, &config, &kits.join("kit-2.tar.zst"))
                .wait()
                .unwrap();
            assert!(status.success());
            assert_eq!(generation_after_restart(&data), 2);
            recovered = true;
        }
        std::fs::remove_dir_all(&data).unwrap();
    }
    eprintln!(
        "after {KILLS} kills: {} left the previous generation, {} the new one",
        outcomes[1], outcomes[2]
    );
    assert!(
        outcomes[1] > 0,
        "no kill landed before the switch: the test proved nothing"
    );
    assert!(recovered);
}
