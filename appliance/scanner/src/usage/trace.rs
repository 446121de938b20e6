//! EntryTrace: from the image config's `Entrypoint`/`Cmd`/`Env`/`WorkingDir` to the program that
//! ends up running, through `PATH` lookups in the merged filesystem, shebangs, shell scripts
//! (interpreted statically: variables, `set --`, `shift`, `.`/`source`, functions, `if`/`case`
//! with conditions decided when their values are known, forked when not) and launchers
//! (`java -jar`/`-cp`, `node script`, `python -m mod`/`file.py`, gunicorn/uvicorn-style wrappers).
//!
//! Nothing is guessed: a step that cannot be followed ends its chain with the reason.

use std::collections::BTreeMap;

use serde::Serialize;

use super::shell::{self, Command, Part, Word};
use crate::ScanResult;
use crate::analyzer::entry::{SHELLS, shebang_program};
use crate::layer::EntryKind;

/// `PATH` when the image sets none (the Docker default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Most chains recorded (branches of scripts whose conditions are unknown).
pub const MAX_CHAINS: usize = 16;
/// Deepest exec/source nesting followed.
pub const MAX_DEPTH: usize = 16;
/// Most shell commands interpreted in one trace.
const MAX_STEPS: usize = 20_000;

/// One step of an entry chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// `config` (the image config), `exec`, `run` (last command of a script), `source`,
    /// `shebang`, `launcher`.
    pub kind: String,
    /// Where the step happens: `/path/to/script:LINE`, a program path, or `config`.
    pub at: String,
    /// The command as expanded.
    pub argv: Vec<String>,
}

/// One way the entrypoint can run, from the config to the terminal program.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Chain {
    /// Steps in order.
    pub steps: Vec<Step>,
    /// Programs executed along the chain (interpreters of scripts included), absolute.
    pub programs: Vec<String>,
    /// Scripts read along the chain (executed or sourced), absolute.
    pub scripts: Vec<String>,
    /// The terminal program, absolute, when resolved.
    pub terminal: Option<String>,
    /// `java`, `node` or `python` when the terminal program is a launcher.
    pub launcher: Option<String>,
    /// What the launcher runs: a jar, a script, a class path entry (absolute paths).
    pub targets: Vec<String>,
    /// Python modules named on the command line (`-m mod`, `module:app`).
    pub modules: Vec<String>,
    /// Why the chain could not be followed to its end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unresolved: Option<String>,
}

impl Chain {
    /// One line: `config → /a.sh:3 exec → /usr/bin/java (-jar /app.jar)`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .steps
            .iter()
            .map(|s| format!("{} {} [{}]", s.kind, s.at, s.argv.join(" ")))
            .collect();
        if let Some(reason) = &self.unresolved {
            parts.push(format!("unresolved: {reason}"));
        }
        parts.join(" -> ")
    }
}

#[derive(Debug, Clone)]
struct Path {
    env: BTreeMap<String, Option<String>>,
    cwd: String,
    positional: Option<Vec<String>>,
    script: String,
    functions: BTreeMap<String, Vec<Command>>,
    chain: Chain,
    last_external: Option<(Vec<String>, String)>,
    depth: usize,
}

struct Tracer<'a> {
    scan: &'a ScanResult,
    chains: Vec<Chain>,
    steps: usize,
    dropped: bool,
}

fn join(cwd: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{}/{path}", cwd.trim_end_matches('/'))
    }
}

fn base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Glob match (`*`, `?`, `[…]`, `\x`) of the whole text.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some('?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some('[') => {
                let Some(close) = p.iter().skip(2).position(|c| *c == ']').map(|i| i + 2) else {
                    return t.first() == Some(&'[') && go(&p[1..], &t[1..]);
                };
                let Some(c) = t.first() else {
                    return false;
                };
                let mut set = &p[1..close];
                let negate = matches!(set.first(), Some('!' | '^'));
                if negate {
                    set = &set[1..];
                }
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == '-' {
                        hit |= set[i] <= *c && *c <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == *c;
                        i += 1;
                    }
                }
                hit != negate && go(&p[close + 1..], &t[1..])
            }
            Some('\\') if p.len() > 1 => t.first() == Some(&p[1]) && go(&p[2..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    if p.len() * t.len() > 1 << 20 {
        return false;
    }
    go(&p, &t)
}

impl Tracer<'_> {
    fn is_file(&self, resolved: &str) -> Option<bool> {
        match &self.scan.view.get(resolved)?.kind {
            EntryKind::File { mode, .. } => Some(mode & 0o111 != 0),
            EntryKind::Hardlink { target } => match &self.scan.view.get(target)?.kind {
                EntryKind::File { mode, .. } => Some(mode & 0o111 != 0),
                _ => None,
            },
            _ => None,
        }
    }

    fn is_dir(&self, path: &str) -> bool {
        match self.scan.view.resolve(path) {
            Ok(resolved) => match self.scan.view.get(&resolved) {
                Some(entry) => matches!(entry.kind, EntryKind::Dir { .. }),
                None => resolved.is_empty() || !self.scan.view.children(&resolved).is_empty(),
            },
            Err(_) => false,
        }
    }

    /// Resolves an absolute path to a regular file (root-relative), following symlinks.
    fn file(&self, absolute: &str) -> Option<String> {
        let resolved = self.scan.view.resolve(absolute).ok()?;
        self.is_file(&resolved)?;
        Some(resolved)
    }

    /// Finds a program like `execvp`: a name with `/` relative to `cwd`, else through `PATH`.
    fn locate(&self, name: &str, path: &Path) -> Result<String, String> {
        if name.is_empty() {
            return Err("empty program name".into());
        }
        if name.contains('/') {
            let absolute = join(&path.cwd, name);
            return match self.file(&absolute) {
                Some(resolved) => Ok(resolved),
                None => Err(format!("{absolute}: no such file in the image")),
            };
        }
        let search = match path.env.get("PATH") {
            Some(Some(value)) => value.clone(),
            Some(None) => return Err(format!("{name}: PATH is not known statically")),
            None => DEFAULT_PATH.to_owned(),
        };
        for dir in search.split(':') {
            let dir = if dir.is_empty() { "." } else { dir };
            let candidate = join(&join(&path.cwd, dir), name);
            if let Ok(resolved) = self.scan.view.resolve(&candidate)
                && self.is_file(&resolved) == Some(true)
            {
                return Ok(resolved);
            }
        }
        Err(format!("{name}: not found in PATH {search}"))
    }

    fn finish(&mut self, mut chain: Chain, unresolved: Option<String>) {
        if self.chains.len() >= MAX_CHAINS {
            self.dropped = true;
            return;
        }
        chain.unresolved = unresolved;
        self.chains.push(chain);
    }

    /// Runs `argv` as a new process image (`execve` from a shell, or the config's command).
    fn follow(&mut self, mut path: Path, argv: Vec<String>) {
        path.depth += 1;
        if path.depth > MAX_DEPTH {
            self.finish(
                path.chain,
                Some(format!("exec chain deeper than {MAX_DEPTH}")),
            );
            return;
        }
        let Some(program) = argv.first().cloned() else {
            self.finish(path.chain, Some("empty command".into()));
            return;
        };
        let resolved = match self.locate(&program, &path) {
            Ok(resolved) => resolved,
            Err(reason) => {
                self.finish(path.chain, Some(reason));
                return;
            }
        };
        let absolute = format!("/{resolved}");
        let facts = self.scan.path_result(&resolved);
        let script = facts.as_ref().and_then(|f| f.script.clone());
        let native = facts.as_ref().and_then(|f| f.native.clone());
        // Python application wrappers name a module on their command line.
        if matches!(
            base(&program),
            "gunicorn" | "uvicorn" | "hypercorn" | "daphne" | "granian"
        ) {
            path.chain.modules.extend(
                argv.iter()
                    .skip(1)
                    .filter_map(|arg| wsgi_module(arg))
                    .map(str::to_owned),
            );
        }
        if let Some(shebang) = script.as_ref().and_then(|s| s.shebang.clone()) {
            path.chain.scripts.push(absolute.clone());
            let Some(interpreter) = shebang_program(&shebang).map(str::to_owned) else {
                self.finish(path.chain, Some(format!("{absolute}: empty shebang")));
                return;
            };
            let mut words: Vec<String> = shebang.split_whitespace().map(str::to_owned).collect();
            if base(words.first().map(String::as_str).unwrap_or("")) == "env" {
                // Record env itself as a program, then look the interpreter up in PATH.
                if let Ok(env) = self.locate(&words[0], &path) {
                    path.chain.programs.push(format!("/{env}"));
                }
                words = words
                    .into_iter()
                    .skip(1)
                    .skip_while(|w| w.starts_with('-') || w.contains('='))
                    .collect();
            }
            let interpreter_path = match self.locate(&interpreter, &path) {
                Ok(found) => found,
                Err(reason) => {
                    self.finish(
                        path.chain,
                        Some(format!("{absolute}: interpreter {reason}")),
                    );
                    return;
                }
            };
            path.chain.programs.push(format!("/{interpreter_path}"));
            path.chain.steps.push(Step {
                kind: "shebang".into(),
                at: absolute.clone(),
                argv: vec![format!("#!{shebang}")],
            });
            let is_shell = SHELLS.contains(&base(&interpreter));
            if is_shell {
                let Some(text) = script.and_then(|s| s.shell) else {
                    self.finish(
                        path.chain,
                        Some(format!("{absolute}: script text not kept")),
                    );
                    return;
                };
                path.positional = Some(argv.into_iter().skip(1).collect());
                path.script = absolute.clone();
                self.run_script(path, &absolute, &text);
                return;
            }
            let mut new_argv = words;
            new_argv.push(absolute);
            new_argv.extend(argv.into_iter().skip(1));
            self.launch(path, format!("/{interpreter_path}"), new_argv);
            return;
        }
        path.chain.programs.push(absolute.clone());
        if native.is_none() {
            path.chain.terminal = Some(absolute.clone());
            self.finish(
                path.chain,
                Some(format!(
                    "{absolute}: neither a native object file nor a script with a shebang"
                )),
            );
            return;
        }
        self.launch(path, absolute, argv);
    }

    /// A native program runs: record it as the terminal and resolve launcher targets.
    fn launch(&mut self, mut path: Path, program: String, argv: Vec<String>) {
        if !path.chain.programs.contains(&program) {
            path.chain.programs.push(program.clone());
        }
        path.chain.terminal = Some(program.clone());
        let name = argv.first().map(|a| base(a).to_owned()).unwrap_or_default();
        let real = base(&program).to_owned();
        let kind = [name.as_str(), real.as_str()].into_iter().find_map(|n| {
            if n == "java" {
                Some("java")
            } else if n == "node" || n == "nodejs" {
                Some("node")
            } else if n.starts_with("python") || n == "pypy3" {
                Some("python")
            } else {
                None
            }
        });
        let Some(kind) = kind else {
            self.finish(path.chain, None);
            return;
        };
        path.chain.launcher = Some(kind.to_owned());
        path.chain.steps.push(Step {
            kind: "launcher".into(),
            at: program,
            argv: argv.clone(),
        });
        let args: Vec<&str> = argv.iter().skip(1).map(String::as_str).collect();
        let outcome = match kind {
            "java" => self.java(&mut path, &args),
            "node" => self.node(&mut path, &args),
            _ => self.python(&mut path, &args),
        };
        self.finish(path.chain, outcome.err());
    }

    fn target_file(&self, path: &Path, name: &str) -> Result<String, String> {
        let absolute = join(&path.cwd, name);
        self.file(&absolute)
            .map(|resolved| format!("/{resolved}"))
            .ok_or_else(|| format!("{absolute}: no such file in the image"))
    }

    fn java(&self, path: &mut Path, args: &[&str]) -> Result<(), String> {
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            match *arg {
                "-jar" => {
                    let jar = iter.next().ok_or("java -jar without a jar")?;
                    let jar = self.target_file(path, jar)?;
                    path.chain.targets.push(jar);
                    return Ok(());
                }
                "-cp" | "-classpath" | "--class-path" => {
                    let cp = iter.next().ok_or("java -cp without a class path")?;
                    for entry in cp.split(':').filter(|e| !e.is_empty()) {
                        if let Some(dir) = entry.strip_suffix("/*").or(entry.strip_suffix("*")) {
                            let dir = join(&path.cwd, if dir.is_empty() { "." } else { dir });
                            let Ok(resolved) = self.scan.view.resolve(&dir) else {
                                return Err(format!("class path directory {dir} not in the image"));
                            };
                            for child in self.scan.view.children(&resolved) {
                                if child.ends_with(".jar") || child.ends_with(".JAR") {
                                    path.chain.targets.push(format!("/{resolved}/{child}"));
                                }
                            }
                        } else {
                            path.chain.targets.push(self.target_file(path, entry)?);
                        }
                    }
                }
                "-p" | "--module-path" | "--add-opens" | "--add-exports" | "--add-modules" => {
                    iter.next();
                }
                "-m" | "--module" => return Ok(()),
                other if other.starts_with('-') => {}
                _ => return Ok(()), // the main class
            }
        }
        if path.chain.targets.is_empty() {
            return Err("java without -jar or -cp: no application to follow".into());
        }
        Ok(())
    }

    fn node(&self, path: &mut Path, args: &[&str]) -> Result<(), String> {
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            match *arg {
                "-r" | "--require" | "--loader" | "--import" | "--env-file" => {
                    iter.next();
                }
                "-e" | "--eval" | "-p" | "--print" => {
                    return Err("node runs inline code (-e/-p): no script to follow".into());
                }
                other if other.starts_with('-') => {}
                script => {
                    let candidates = [
                        script.to_owned(),
                        format!("{script}.js"),
                        format!("{script}/index.js"),
                    ];
                    for candidate in candidates {
                        if let Ok(found) = self.target_file(path, &candidate) {
                            path.chain.targets.push(found);
                            return Ok(());
                        }
                    }
                    return Err(format!(
                        "{}: node script not in the image",
                        join(&path.cwd, script)
                    ));
                }
            }
        }
        Err("node without a script (a REPL)".into())
    }

    fn python(&self, path: &mut Path, args: &[&str]) -> Result<(), String> {
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            match *arg {
                "-m" => {
                    let module = iter.next().ok_or("python -m without a module")?;
                    path.chain.modules.push((*module).to_owned());
                    return Ok(());
                }
                "-c" => return Err("python runs inline code (-c): no module to follow".into()),
                "-W" | "-X" | "-Q" => {
                    iter.next();
                }
                other if other.starts_with('-') => {}
                file => {
                    path.chain.targets.push(self.target_file(path, file)?);
                    return Ok(());
                }
            }
        }
        if path.chain.modules.is_empty() {
            Err("python without a script or module (a REPL)".into())
        } else {
            Ok(())
        }
    }

    fn run_script(&mut self, mut path: Path, file: &str, text: &str) {
        let commands = match shell::parse(text) {
            Ok(commands) => commands,
            Err(error) => {
                self.finish(
                    path.chain,
                    Some(format!(
                        "{file}:{}: cannot parse: {}",
                        error.line, error.reason
                    )),
                );
                return;
            }
        };
        path.last_external = None;
        for ended in self.run_list(&commands, vec![path]) {
            self.end_of_script(ended);
        }
    }

    /// A script ran to its end without `exec`: its last external command is what keeps running.
    fn end_of_script(&mut self, mut path: Path) {
        match path.last_external.take() {
            Some((argv, at)) => {
                path.chain.steps.push(Step {
                    kind: "run".into(),
                    at,
                    argv: argv.clone(),
                });
                self.follow(path, argv);
            }
            None => {
                let script = path.script.clone();
                self.finish(
                    path.chain,
                    Some(format!("{script}: ends without exec or a command to run")),
                );
            }
        }
    }

    fn run_list(&mut self, commands: &[Command], mut paths: Vec<Path>) -> Vec<Path> {
        for command in commands {
            let mut next = Vec::new();
            for path in paths {
                next.extend(self.run(command, path));
            }
            if next.len() > MAX_CHAINS {
                next.truncate(MAX_CHAINS);
                self.dropped = true;
            }
            paths = next;
            if paths.is_empty() {
                break;
            }
        }
        paths
    }

    fn at(path: &Path, line: usize) -> String {
        format!("{}:{line}", path.script)
    }

    fn run(&mut self, command: &Command, mut path: Path) -> Vec<Path> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            self.dropped = true;
            return Vec::new();
        }
        match command {
            Command::Simple {
                line,
                assigns,
                words,
            } => self.simple(path, *line, assigns, words),
            Command::If {
                branches,
                otherwise,
                ..
            } => {
                let mut out = Vec::new();
                for (condition, body) in branches {
                    match self.condition(condition, &path) {
                        Some(true) => {
                            out.extend(self.run_list(body, vec![path]));
                            return out;
                        }
                        Some(false) => {}
                        None => out.extend(self.run_list(body, vec![path.clone()])),
                    }
                }
                match otherwise {
                    Some(body) => out.extend(self.run_list(body, vec![path])),
                    None => out.push(path),
                }
                out
            }
            Command::Case { word, arms, .. } => {
                let value = expand_string(word, &path);
                let mut out = Vec::new();
                for (patterns, body) in arms {
                    let mut decided = Some(false);
                    for pattern in patterns {
                        match (&value, pattern_text(pattern, &path)) {
                            (Some(value), Some(pattern)) => {
                                if glob_match(&pattern, value) {
                                    decided = Some(true);
                                    break;
                                }
                            }
                            _ => decided = None,
                        }
                    }
                    match decided {
                        Some(true) => {
                            out.extend(self.run_list(body, vec![path]));
                            return out;
                        }
                        Some(false) => {}
                        None => out.extend(self.run_list(body, vec![path.clone()])),
                    }
                }
                out.push(path);
                out
            }
            Command::Loop {
                variable,
                items,
                body,
                ..
            } => {
                // Items known and few: run the body for each; else the body may run once
                // with the variable unknown, or not at all.
                if let (Some(variable), Some(items)) = (variable, items) {
                    let mut values = Vec::new();
                    let mut known = true;
                    for item in items {
                        match self.expand_glob(item, &path) {
                            Some(fields) => values.extend(fields),
                            None => known = false,
                        }
                    }
                    if known && values.len() <= 8 {
                        let mut paths = vec![path];
                        for value in values {
                            for p in &mut paths {
                                p.env.insert(variable.clone(), Some(value.clone()));
                            }
                            paths = self.run_list(body, paths);
                        }
                        return paths;
                    }
                    path.env.insert(variable.clone(), None);
                }
                let mut out = vec![path.clone()];
                out.extend(self.run_list(body, vec![path]));
                out
            }
            Command::Group { body, .. } => self.run_list(body, vec![path]),
            Command::Function { name, body, .. } => {
                path.functions.insert(name.clone(), body.clone());
                vec![path]
            }
            Command::AndOr { parts, .. } => {
                let Some((first, rest)) = parts.split_first() else {
                    return vec![path];
                };
                let mut paths = self.run(first, path);
                for part in rest {
                    let mut next = paths.clone();
                    for p in paths {
                        next.extend(self.run(part, p));
                    }
                    next.truncate(MAX_CHAINS);
                    paths = next;
                }
                paths
            }
            Command::Pipeline { parts, .. } => {
                // Each part runs in a subshell: its externals run, nothing else persists.
                if let Some(Command::Simple { line, words, .. }) = parts.last()
                    && let Some(argv) = expand_words(words, &path)
                {
                    path.last_external = Some((argv, Self::at(&path, *line)));
                }
                vec![path]
            }
            Command::Other { inner, .. } => {
                let last = path.last_external.clone();
                let mut out = self.run(inner, path);
                for p in &mut out {
                    p.last_external.clone_from(&last);
                }
                out
            }
        }
    }

    fn expand_glob(&self, word: &Word, path: &Path) -> Option<Vec<String>> {
        let fields = expand_word(word, path)?;
        let globbing = word.0.iter().any(
            |p| matches!(p, Part::Lit { text, quoted: false } if text.contains(['*', '?', '['])),
        );
        if !globbing {
            return Some(fields);
        }
        let mut out = Vec::new();
        for field in fields {
            let absolute = join(&path.cwd, &field);
            let (dir, pattern) = absolute.rsplit_once('/').unwrap_or(("", &absolute));
            if dir.contains(['*', '?', '[']) {
                return None;
            }
            let Ok(resolved) = self
                .scan
                .view
                .resolve(if dir.is_empty() { "/" } else { dir })
            else {
                out.push(field);
                continue;
            };
            let mut matched: Vec<String> = self
                .scan
                .view
                .children(&resolved)
                .into_iter()
                .filter(|name| !name.starts_with('.') && glob_match(pattern, name))
                .map(|name| format!("{dir}/{name}"))
                .collect();
            if matched.is_empty() {
                out.push(field);
            } else {
                matched.sort();
                out.extend(matched);
            }
        }
        Some(out)
    }

    /// Decides `[ … ]`/`test …`/`true`/`false` when every operand is known.
    fn condition(&self, condition: &[Command], path: &Path) -> Option<bool> {
        let [Command::Simple { words, assigns, .. }] = condition else {
            return None;
        };
        if !assigns.is_empty() {
            return None;
        }
        let argv = expand_words(words, path)?;
        let (name, args) = argv.split_first()?;
        let mut args: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
        match name.as_str() {
            "true" | ":" => return Some(true),
            "false" => return Some(false),
            "[" => {
                if args.pop() != Some("]") {
                    return None;
                }
            }
            "test" => {}
            _ => return None,
        }
        let mut negate = false;
        if args.first() == Some(&"!") {
            negate = true;
            args.remove(0);
        }
        let value = match args.as_slice() {
            [] => false,
            [s] => !s.is_empty(),
            ["-n", s] => !s.is_empty(),
            ["-z", s] => s.is_empty(),
            ["-e" | "-a", p] => self.scan.view.resolve(&join(&path.cwd, p)).is_ok(),
            ["-f" | "-r" | "-s", p] => self.file(&join(&path.cwd, p)).is_some(),
            ["-x", p] => self
                .scan
                .view
                .resolve(&join(&path.cwd, p))
                .ok()
                .and_then(|r| self.is_file(&r))
                .unwrap_or(false),
            ["-d", p] => self.is_dir(&join(&path.cwd, p)),
            [a, "=" | "==", b] => a == b,
            [a, "!=", b] => a != b,
            [a, op @ ("-eq" | "-ne" | "-lt" | "-le" | "-gt" | "-ge"), b] => {
                let (a, b) = (a.parse::<i64>().ok()?, b.parse::<i64>().ok()?);
                match *op {
                    "-eq" => a == b,
                    "-ne" => a != b,
                    "-lt" => a < b,
                    "-le" => a <= b,
                    "-gt" => a > b,
                    _ => a >= b,
                }
            }
            _ => return None,
        };
        Some(value != negate)
    }

    fn simple(
        &mut self,
        mut path: Path,
        line: usize,
        assigns: &[(String, Word)],
        words: &[Word],
    ) -> Vec<Path> {
        if words.is_empty() {
            for (name, value) in assigns {
                let value = expand_string(value, &path);
                path.env.insert(name.clone(), value);
            }
            return vec![path];
        }
        let name = match words.first().map(|w| expand_word(w, &path)) {
            Some(Some(fields)) if !fields.is_empty() => fields[0].clone(),
            Some(Some(_)) => return vec![path],
            _ => {
                // `$(…)` or unknown as the command name: whatever it runs is not known.
                if words.len() == 1 || path.last_external.is_none() {
                    path.last_external = None;
                }
                return vec![path];
            }
        };
        let argv = expand_words(words, &path);
        let at = Self::at(&path, line);
        match name.as_str() {
            "exec" => {
                let Some(argv) = argv else {
                    let raw = words.len();
                    path.chain.steps.push(Step {
                        kind: "exec".into(),
                        at,
                        argv: vec![format!("<{raw} words not known statically>")],
                    });
                    self.finish(
                        path.chain,
                        Some("exec of words that cannot be expanded statically".into()),
                    );
                    return Vec::new();
                };
                let args: Vec<String> = argv
                    .into_iter()
                    .skip(1)
                    .skip_while(|a| a == "--" || a == "-a" || a == "-c" || a == "-l")
                    .collect();
                if args.is_empty() {
                    return vec![path]; // `exec >file`: redirection only
                }
                path.chain.steps.push(Step {
                    kind: "exec".into(),
                    at,
                    argv: args.clone(),
                });
                for (name, value) in assigns {
                    let value = expand_string(value, &path);
                    path.env.insert(name.clone(), value);
                }
                self.follow(path, args);
                Vec::new()
            }
            "." | "source" => {
                let Some(file) = argv.as_ref().and_then(|a| a.get(1)).cloned() else {
                    self.finish(
                        path.chain,
                        Some(format!("{at}: sourced file not known statically")),
                    );
                    return Vec::new();
                };
                let found = if file.contains('/') {
                    self.file(&join(&path.cwd, &file))
                } else {
                    self.locate(&file, &path)
                        .ok()
                        .or_else(|| self.file(&join(&path.cwd, &file)))
                };
                let Some(found) = found else {
                    // `.` of a missing file aborts a POSIX shell.
                    self.finish(
                        path.chain,
                        Some(format!("{at}: sourced file {file} not in the image")),
                    );
                    return Vec::new();
                };
                let absolute = format!("/{found}");
                let text = self
                    .scan
                    .path_result(&found)
                    .and_then(|r| r.script.clone())
                    .and_then(|s| s.shell);
                let Some(text) = text else {
                    self.finish(
                        path.chain,
                        Some(format!(
                            "{at}: sourced file {absolute} is not a kept shell script"
                        )),
                    );
                    return Vec::new();
                };
                path.chain.steps.push(Step {
                    kind: "source".into(),
                    at,
                    argv: vec![absolute.clone()],
                });
                if !path.chain.scripts.contains(&absolute) {
                    path.chain.scripts.push(absolute.clone());
                }
                path.depth += 1;
                if path.depth > MAX_DEPTH {
                    self.finish(
                        path.chain,
                        Some(format!("source nesting deeper than {MAX_DEPTH}")),
                    );
                    return Vec::new();
                }
                let commands = match shell::parse(&text) {
                    Ok(commands) => commands,
                    Err(error) => {
                        self.finish(
                            path.chain,
                            Some(format!(
                                "{absolute}:{}: cannot parse: {}",
                                error.line, error.reason
                            )),
                        );
                        return Vec::new();
                    }
                };
                let outer = std::mem::replace(&mut path.script, absolute);
                let mut out = self.run_list(&commands, vec![path]);
                for p in &mut out {
                    p.script.clone_from(&outer);
                    p.depth = p.depth.saturating_sub(1);
                }
                out
            }
            "set" => {
                if let Some(argv) = &argv {
                    if let Some(position) = argv.iter().position(|a| a == "--") {
                        path.positional = Some(argv[position + 1..].to_vec());
                    }
                } else if words.iter().any(|w| w.literal().as_deref() == Some("--")) {
                    path.positional = None;
                }
                vec![path]
            }
            "shift" => {
                let n = argv
                    .as_ref()
                    .and_then(|a| a.get(1))
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(1);
                if let Some(positional) = &mut path.positional {
                    positional.drain(..n.min(positional.len()));
                }
                vec![path]
            }
            "export" | "readonly" | "local" | "declare" | "typeset" => {
                for word in words.iter().skip(1) {
                    let raw = word.literal();
                    if let Some(raw) = &raw
                        && !raw.contains('=')
                    {
                        continue;
                    }
                    match expand_string(word, &path) {
                        Some(text) => {
                            if let Some((name, value)) = text.split_once('=') {
                                path.env.insert(name.to_owned(), Some(value.to_owned()));
                            }
                        }
                        None => {
                            // NAME=$(…): the name is known, the value is not.
                            if let Some(Part::Lit { text, .. }) = word.0.first()
                                && let Some((name, _)) = text.split_once('=')
                            {
                                path.env.insert(name.to_owned(), None);
                            }
                        }
                    }
                }
                vec![path]
            }
            "unset" => {
                for name in argv.iter().flatten().skip(1) {
                    path.env.remove(name);
                }
                vec![path]
            }
            "cd" => {
                match argv.as_ref().and_then(|a| a.get(1)) {
                    Some(dir) => path.cwd = join(&path.cwd, dir),
                    None => path.cwd = "/root".into(),
                }
                vec![path]
            }
            "exit" => {
                // This branch stops here; nothing runs after it.
                Vec::new()
            }
            ":" | "true" | "false" | "echo" | "printf" | "test" | "[" | "trap" | "umask"
            | "wait" | "read" | "return" | "ulimit" | "command" | "type" | "hash" | "eval"
            | "getopts" | "break" | "continue" | "alias" | "unalias" | "times" | "jobs" => {
                vec![path]
            }
            other => {
                if let Some(body) = path.functions.get(other).cloned() {
                    if path.depth > MAX_DEPTH {
                        self.finish(path.chain, Some("function nesting too deep".into()));
                        return Vec::new();
                    }
                    let saved = path.positional.clone();
                    path.positional = argv.map(|a| a.into_iter().skip(1).collect());
                    path.depth += 1;
                    let mut out = self.run_list(&body, vec![path]);
                    for p in &mut out {
                        p.positional.clone_from(&saved);
                        p.depth = p.depth.saturating_sub(1);
                    }
                    return out;
                }
                path.last_external = argv.map(|argv| (argv, at));
                vec![path]
            }
        }
    }
}

/// Module named by a WSGI/ASGI app spec (`pkg.mod:app`), if the argument is one.
fn wsgi_module(arg: &str) -> Option<&str> {
    let (module, _) = arg.split_once(':')?;
    let valid = !module.is_empty()
        && module.split('.').all(|part| {
            part.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    valid.then_some(module)
}

fn param_value(name: &str, path: &Path) -> Option<Option<String>> {
    match name {
        "@" | "*" => path.positional.as_ref().map(|p| Some(p.join(" "))),
        "#" => path.positional.as_ref().map(|p| Some(p.len().to_string())),
        "0" => Some(Some(path.script.clone())),
        "?" => Some(Some("0".into())),
        "-" => Some(Some(String::new())),
        "$" | "!" => None,
        digits if digits.chars().all(|c| c.is_ascii_digit()) => {
            let index: usize = digits.parse().ok()?;
            let positional = path.positional.as_ref()?;
            Some(positional.get(index.checked_sub(1)?).cloned())
        }
        name => match path.env.get(name) {
            Some(Some(value)) => Some(Some(value.clone())),
            Some(None) => None,
            None => Some(None),
        },
    }
}

/// Applies `${NAME op word}`; `Some(None)` means unset.
fn apply_op(name: &str, op: &str, operand: &Word, path: &Path) -> Option<Option<String>> {
    let value = param_value(name, path)?;
    let operand_text = || expand_string(operand, path);
    match op {
        ":-" | ":=" => match &value {
            Some(v) if !v.is_empty() => Some(value),
            _ => operand_text().map(Some),
        },
        "-" | "=" => match &value {
            Some(_) => Some(value),
            None => operand_text().map(Some),
        },
        ":+" => match &value {
            Some(v) if !v.is_empty() => operand_text().map(Some),
            _ => Some(Some(String::new())),
        },
        "+" => match &value {
            Some(_) => operand_text().map(Some),
            None => Some(Some(String::new())),
        },
        ":?" | "?" => match &value {
            Some(v) if op == "?" || !v.is_empty() => Some(value),
            _ => None, // the shell would stop with an error
        },
        "#" | "##" | "%" | "%%" => {
            let text = value.unwrap_or_default();
            let pattern = pattern_text(operand, path)?;
            let chars: Vec<char> = text.chars().collect();
            let cut = |i: usize, j: usize| chars[i..j].iter().collect::<String>();
            let n = chars.len();
            let result = match op {
                "#" => (0..=n)
                    .find(|&i| glob_match(&pattern, &cut(0, i)))
                    .map(|i| cut(i, n)),
                "##" => (0..=n)
                    .rev()
                    .find(|&i| glob_match(&pattern, &cut(0, i)))
                    .map(|i| cut(i, n)),
                "%" => (0..=n)
                    .rev()
                    .find(|&i| glob_match(&pattern, &cut(i, n)))
                    .map(|i| cut(0, i)),
                _ => (0..=n)
                    .find(|&i| glob_match(&pattern, &cut(i, n)))
                    .map(|i| cut(0, i)),
            };
            Some(Some(result.unwrap_or(text)))
        }
        _ => None,
    }
}

/// A pattern word as glob text (quoted parts escaped).
fn pattern_text(word: &Word, path: &Path) -> Option<String> {
    let mut out = String::new();
    for part in &word.0 {
        match part {
            Part::Lit {
                text,
                quoted: false,
            } => out.push_str(text),
            Part::Lit { text, quoted: true } => {
                for c in text.chars() {
                    if "*?[]\\".contains(c) {
                        out.push('\\');
                    }
                    out.push(c);
                }
            }
            Part::Param { .. } => {
                let fields = expand_word(&Word(vec![part.clone()]), path)?;
                out.push_str(&fields.join(" "));
            }
            Part::Command(_) | Part::Arith(_) => return None,
        }
    }
    Some(out)
}

/// Expands a word to one string (no field splitting), `None` when not statically known.
fn expand_string(word: &Word, path: &Path) -> Option<String> {
    let mut out = String::new();
    for part in &word.0 {
        match part {
            Part::Lit { text, .. } => out.push_str(text),
            Part::Param {
                name, op, length, ..
            } => {
                let value = match op {
                    Some((op, operand)) => apply_op(name, op, operand, path)?,
                    None => param_value(name, path)?,
                };
                let value = value.unwrap_or_default();
                if *length {
                    out.push_str(&value.chars().count().to_string());
                } else {
                    out.push_str(&value);
                }
            }
            Part::Command(_) | Part::Arith(_) => return None,
        }
    }
    Some(out)
}

/// Expands a word to fields (`"$@"` gives one field per positional parameter; unquoted
/// expansions are split at blanks). `None` when not statically known.
fn expand_word(word: &Word, path: &Path) -> Option<Vec<String>> {
    let mut fields: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut has_field = false;
    for part in &word.0 {
        match part {
            Part::Lit { text, quoted } => {
                current.push_str(text);
                has_field |= *quoted || !text.is_empty();
            }
            Part::Param {
                name,
                op: None,
                quoted: true,
                length: false,
            } if name == "@" => {
                let positional = path.positional.as_ref()?;
                for (i, value) in positional.iter().enumerate() {
                    current.push_str(value);
                    if i + 1 < positional.len() {
                        fields.push(std::mem::take(&mut current));
                    }
                    has_field = true;
                }
            }
            Part::Param { quoted, .. } => {
                let value = expand_string(&Word(vec![part.clone()]), path)?;
                if *quoted {
                    current.push_str(&value);
                    has_field = true;
                } else {
                    let mut pieces = value.split_whitespace().peekable();
                    if value.starts_with(char::is_whitespace) && has_field {
                        fields.push(std::mem::take(&mut current));
                        has_field = false;
                    }
                    while let Some(piece) = pieces.next() {
                        current.push_str(piece);
                        has_field = true;
                        if pieces.peek().is_some() {
                            fields.push(std::mem::take(&mut current));
                        }
                    }
                    if value.ends_with(char::is_whitespace) && has_field {
                        fields.push(std::mem::take(&mut current));
                        has_field = false;
                    }
                }
            }
            Part::Command(_) | Part::Arith(_) => return None,
        }
    }
    if has_field {
        fields.push(current);
    }
    Some(fields)
}

fn expand_words(words: &[Word], path: &Path) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for word in words {
        out.extend(expand_word(word, path)?);
    }
    Some(out)
}

/// Traces the image's entrypoint. Returns the chains (at most [`MAX_CHAINS`]) and whether some
/// branches were dropped because of the limits.
pub fn trace(scan: &ScanResult) -> (Vec<Chain>, bool) {
    let runtime = &scan.runtime;
    let mut env: BTreeMap<String, Option<String>> = BTreeMap::new();
    for pair in &runtime.env {
        if let Some((name, value)) = pair.split_once('=') {
            env.insert(name.to_owned(), Some(value.to_owned()));
        }
    }
    let mut argv = runtime.entrypoint.clone();
    argv.extend(runtime.cmd.iter().cloned());
    let mut tracer = Tracer {
        scan,
        chains: Vec::new(),
        steps: 0,
        dropped: false,
    };
    let path = Path {
        env,
        cwd: runtime
            .working_dir
            .clone()
            .unwrap_or_else(|| "/".to_owned()),
        positional: Some(Vec::new()),
        script: String::new(),
        functions: BTreeMap::new(),
        chain: Chain {
            steps: vec![Step {
                kind: "config".into(),
                at: "config".into(),
                argv: argv.clone(),
            }],
            ..Chain::default()
        },
        last_external: None,
        depth: 0,
    };
    if argv.is_empty() {
        tracer.finish(
            path.chain,
            Some("the image config has no Entrypoint or Cmd".into()),
        );
    } else {
        tracer.follow(path, argv);
    }
    let mut chains = tracer.chains;
    chains.dedup();
    (chains, tracer.dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*.sh", "a.sh"));
        assert!(glob_match("-*", "-v"));
        assert!(!glob_match("-*", "nginx"));
        assert!(glob_match("nginx|x", "nginx|x"));
        assert!(glob_match("[a-c]?", "bz"));
        assert!(!glob_match("[!a-c]?", "bz"));
        assert_eq!(wsgi_module("app.main:app"), Some("app.main"));
        assert_eq!(wsgi_module("0.0.0.0:8000"), None);
    }
}
