//! The merged filesystem view: layers applied bottom-up with OCI whiteout
//! semantics, so the view equals what a container runtime shows. Each path
//! remembers the layer that last wrote it and the unbroken run of layers that
//! wrote it since it last appeared.

use std::collections::BTreeMap;

use crate::layer::{EntryKind, LayerEntry};

/// Most symlinks followed while resolving one path (as Linux's `ELOOP` limit).
pub const MAX_SYMLINK_HOPS: usize = 40;

/// One path in the merged view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewEntry {
    /// What the path is in the final view.
    pub kind: EntryKind,
    /// Index (bottom = 0) of the layer that last wrote the path.
    pub layer: usize,
    /// Layers that wrote the path since it last came into existence, oldest first
    /// (ends with `layer`). A deletion clears the history.
    pub writers: Vec<usize>,
}

/// The union of the layers seen so far.
#[derive(Debug, Clone, Default)]
pub struct MergedView {
    entries: BTreeMap<String, ViewEntry>,
}

/// Why a path could not be resolved in the view.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// No such path.
    #[error("{0}: not found in the image")]
    NotFound(String),
    /// Too many symlinks.
    #[error("{0}: more than {MAX_SYMLINK_HOPS} symbolic links")]
    TooManyLinks(String),
    /// A path component that must be a directory is a file.
    #[error("{0}: not a directory")]
    NotADirectory(String),
}

fn remove_subtree(entries: &mut BTreeMap<String, ViewEntry>, dir: &str, keep_dir: bool) {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let doomed: Vec<String> = if prefix.is_empty() {
        entries.keys().cloned().collect()
    } else {
        entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect()
    };
    for key in doomed {
        entries.remove(&key);
    }
    if !keep_dir && !dir.is_empty() {
        entries.remove(dir);
    }
}

impl MergedView {
    /// An empty view.
    pub fn new() -> MergedView {
        MergedView::default()
    }

    /// Applies the entries of layer `layer_index` on top of the view: first its
    /// whiteouts and opaque markers (which act on lower layers only), then its
    /// additions.
    pub fn apply_layer(&mut self, layer_index: usize, layer_entries: &[LayerEntry]) {
        for entry in layer_entries {
            match entry.kind {
                EntryKind::Whiteout => remove_subtree(&mut self.entries, &entry.path, false),
                EntryKind::Opaque => remove_subtree(&mut self.entries, &entry.path, true),
                _ => {}
            }
        }
        for entry in layer_entries {
            if matches!(entry.kind, EntryKind::Whiteout | EntryKind::Opaque) {
                continue;
            }
            let is_dir = matches!(entry.kind, EntryKind::Dir { .. });
            let previous = self.entries.get(&entry.path).cloned();
            let mut writers = Vec::new();
            if let Some(previous) = previous {
                let previous_is_dir = matches!(previous.kind, EntryKind::Dir { .. });
                if previous_is_dir && !is_dir {
                    // A file replacing a directory hides everything below it.
                    remove_subtree(&mut self.entries, &entry.path, true);
                }
                if previous_is_dir == is_dir {
                    writers = previous.writers;
                }
            }
            writers.push(layer_index);
            self.entries.insert(
                entry.path.clone(),
                ViewEntry {
                    kind: entry.kind.clone(),
                    layer: layer_index,
                    writers,
                },
            );
        }
    }

    /// Names directly inside directory `dir` (root-relative, no symlink resolution), sorted.
    pub fn children(&self, dir: &str) -> Vec<&str> {
        let dir = dir.trim_matches('/');
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut names: Vec<&str> = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, _)| k.get(prefix.len()..)?.split('/').next())
            .filter(|name| !name.is_empty())
            .collect();
        names.dedup();
        names
    }

    /// The entry at exactly `path` (no symlink resolution).
    pub fn get(&self, path: &str) -> Option<&ViewEntry> {
        self.entries.get(path.trim_start_matches('/'))
    }

    /// All paths, sorted.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &ViewEntry)> {
        self.entries.iter()
    }

    /// Number of paths.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the view is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Resolves `path` (absolute or root-relative) following symlinks in every
    /// component, the way the kernel would inside a chroot of the image: `..`
    /// at the root stays at the root, absolute link targets restart at the
    /// image root, and nothing ever leaves the image. Returns the final
    /// root-relative path (empty for the root itself).
    pub fn resolve(&self, path: &str) -> Result<String, ResolveError> {
        let mut pending: Vec<String> = path
            .split('/')
            .rev()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let mut resolved: Vec<String> = Vec::new();
        let mut hops = 0usize;
        while let Some(component) = pending.pop() {
            match component.as_str() {
                "." => continue,
                ".." => {
                    resolved.pop();
                    continue;
                }
                _ => {}
            }
            resolved.push(component);
            let current = resolved.join("/");
            let Some(entry) = self.entries.get(&current) else {
                // Directories implied by deeper entries need not have their own entry.
                let prefix = format!("{current}/");
                let implied = self
                    .entries
                    .range(prefix.clone()..)
                    .next()
                    .is_some_and(|(k, _)| k.starts_with(&prefix));
                if implied {
                    continue;
                }
                return Err(ResolveError::NotFound(path.to_owned()));
            };
            match &entry.kind {
                EntryKind::Symlink { target } => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(ResolveError::TooManyLinks(path.to_owned()));
                    }
                    resolved.pop();
                    if target.starts_with('/') {
                        resolved.clear();
                    }
                    for part in target.split('/').rev().filter(|s| !s.is_empty()) {
                        pending.push(part.to_owned());
                    }
                }
                EntryKind::Dir { .. } => {}
                _ if !pending.is_empty() => {
                    return Err(ResolveError::NotADirectory(path.to_owned()));
                }
                _ => {}
            }
        }
        Ok(resolved.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> LayerEntry {
        LayerEntry {
            path: path.into(),
            kind: EntryKind::File {
                size: 1,
                mode: 0o644,
            },
        }
    }
    fn dir(path: &str) -> LayerEntry {
        LayerEntry {
            path: path.into(),
            kind: EntryKind::Dir { mode: 0o755 },
        }
    }
    fn link(path: &str, target: &str) -> LayerEntry {
        LayerEntry {
            path: path.into(),
            kind: EntryKind::Symlink {
                target: target.into(),
            },
        }
    }
    fn whiteout(path: &str) -> LayerEntry {
        LayerEntry {
            path: path.into(),
            kind: EntryKind::Whiteout,
        }
    }
    fn opaque(path: &str) -> LayerEntry {
        LayerEntry {
            path: path.into(),
            kind: EntryKind::Opaque,
        }
    }

    #[test]
    fn whiteout_removes_file_and_subtree() {
        let mut view = MergedView::new();
        view.apply_layer(0, &[dir("a"), file("a/x"), file("a/y"), file("b")]);
        view.apply_layer(1, &[whiteout("a"), file("c")]);
        assert!(view.get("a").is_none() && view.get("a/x").is_none());
        assert!(view.get("b").is_some() && view.get("c").is_some());
    }

    #[test]
    fn opaque_dir_hides_lower_contents_only() {
        let mut view = MergedView::new();
        view.apply_layer(0, &[dir("d"), file("d/old")]);
        view.apply_layer(1, &[opaque("d"), dir("d"), file("d/new")]);
        assert!(view.get("d/old").is_none());
        assert_eq!(view.get("d/new").unwrap().layer, 1);
        assert!(view.get("d").is_some());
    }

    #[test]
    fn whiteout_does_not_delete_same_layer_addition() {
        let mut view = MergedView::new();
        view.apply_layer(0, &[file("f")]);
        view.apply_layer(1, &[whiteout("f"), file("f")]);
        let entry = view.get("f").unwrap();
        assert_eq!(entry.writers, vec![1], "history restarts after a deletion");
    }

    #[test]
    fn rewrite_keeps_history_and_file_over_dir_hides_children() {
        let mut view = MergedView::new();
        view.apply_layer(0, &[file("f"), dir("d"), file("d/x")]);
        view.apply_layer(1, &[file("f"), file("d")]);
        assert_eq!(view.get("f").unwrap().writers, vec![0, 1]);
        assert!(view.get("d/x").is_none());
    }

    #[test]
    fn symlinks_resolve_inside_root_only() {
        let mut view = MergedView::new();
        view.apply_layer(
            0,
            &[
                dir("usr"),
                dir("usr/lib"),
                file("usr/lib/libc.so"),
                link("lib", "usr/lib"),
                link("escape", "../../../../usr/lib/libc.so"),
                link("abs", "/lib/libc.so"),
                link("loop1", "loop2"),
                link("loop2", "loop1"),
            ],
        );
        assert_eq!(view.resolve("/lib/libc.so").unwrap(), "usr/lib/libc.so");
        assert_eq!(view.resolve("escape").unwrap(), "usr/lib/libc.so");
        assert_eq!(view.resolve("abs").unwrap(), "usr/lib/libc.so");
        assert_eq!(
            view.resolve("/../../etc/passwd"),
            Err(ResolveError::NotFound("/../../etc/passwd".into()))
        );
        assert!(matches!(
            view.resolve("loop1"),
            Err(ResolveError::TooManyLinks(_))
        ));
    }
}
