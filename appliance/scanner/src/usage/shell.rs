//! A parser for the POSIX shell subset that container entrypoint scripts use: simple commands
//! with assignments and redirections, `;`/newline lists, `&&`/`||`, pipelines, `if`/`elif`/`else`,
//! `case`, `for`/`while`/`until` loops, `{ }` and `( )` groups, function definitions, here-documents,
//! and words with `'…'`, `"…"`, `\`, `$NAME`, `${NAME}`, `${NAME:-default}` (and the other
//! `${NAME op word}` forms), `$(…)` and `` `…` `` (kept opaque: EntryTrace cannot run them).
//!
//! The crates that parse shell were checked: `conch-parser` is unmaintained and `brush-parser`
//! (maintained) pulls `insta`, `cached`, `bon` and `peg` into the appliance at run time, so this
//! module parses the subset itself; every error names the line. Never panics (fuzzed).

/// Deepest nesting of compound commands and substitutions accepted.
pub const MAX_NESTING: usize = 64;

/// A parse failure, with the 1-based line where it happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ShellError {
    /// 1-based line.
    pub line: usize,
    /// What was wrong.
    pub reason: String,
}

/// A piece of a word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Literal text; `quoted` when it came from quotes (no field splitting or globbing).
    Lit {
        /// The text.
        text: String,
        /// Whether it was quoted.
        quoted: bool,
    },
    /// `$NAME`, `${NAME}`, `$1`, `$@`, `${NAME:-word}` ...
    Param {
        /// Parameter name (`HOME`, `1`, `@`, `#`).
        name: String,
        /// Operator and its word (`:-`, `-`, `:=`, `=`, `:+`, `+`, `:?`, `?`, `#`, `##`, `%`, `%%`).
        op: Option<(String, Word)>,
        /// `${#NAME}`.
        length: bool,
        /// Inside double quotes.
        quoted: bool,
    },
    /// `$(…)` or `` `…` ``: kept as text.
    Command(String),
    /// `$((…))`: kept as text.
    Arith(String),
}

/// A shell word.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Word(pub Vec<Part>);

impl Word {
    /// The word's text when it is made of literals only.
    pub fn literal(&self) -> Option<String> {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Lit { text, .. } => out.push_str(text),
                _ => return None,
            }
        }
        Some(out)
    }
}

/// A command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `NAME=value … word word …`.
    Simple {
        /// 1-based line.
        line: usize,
        /// Leading assignments.
        assigns: Vec<(String, Word)>,
        /// The command words.
        words: Vec<Word>,
    },
    /// `if … then … elif … else … fi`.
    If {
        /// 1-based line.
        line: usize,
        /// (condition, body) for `if` and each `elif`.
        branches: Vec<(Vec<Command>, Vec<Command>)>,
        /// `else` body.
        otherwise: Option<Vec<Command>>,
    },
    /// `case WORD in pattern|pattern) … ;; esac`.
    Case {
        /// 1-based line.
        line: usize,
        /// The word matched.
        word: Word,
        /// Arms: patterns and body.
        arms: Vec<(Vec<Word>, Vec<Command>)>,
    },
    /// `for NAME in WORDS; do …; done`, `while …; do …; done`, `until …`.
    Loop {
        /// 1-based line.
        line: usize,
        /// `for` variable, if a `for` loop.
        variable: Option<String>,
        /// `for` words (`None`: `"$@"`); the condition of `while`/`until` is in `condition`.
        items: Option<Vec<Word>>,
        /// `while`/`until` condition.
        condition: Vec<Command>,
        /// Body.
        body: Vec<Command>,
    },
    /// `{ …; }` or `( … )`.
    Group {
        /// 1-based line.
        line: usize,
        /// Whether it is a subshell.
        subshell: bool,
        /// Body.
        body: Vec<Command>,
    },
    /// `name() body` or `function name body`.
    Function {
        /// 1-based line.
        line: usize,
        /// Name.
        name: String,
        /// Body.
        body: Vec<Command>,
    },
    /// `a && b || c`: the first runs, each later one may or may not.
    AndOr {
        /// 1-based line.
        line: usize,
        /// The commands, in order.
        parts: Vec<Command>,
    },
    /// `a | b`.
    Pipeline {
        /// 1-based line.
        line: usize,
        /// The commands.
        parts: Vec<Command>,
    },
    /// `! cmd`, or `cmd &`: runs, its status is not used.
    Other {
        /// 1-based line.
        line: usize,
        /// The command.
        inner: Box<Command>,
    },
}

impl Command {
    /// The line the command starts on.
    pub fn line(&self) -> usize {
        match self {
            Command::Simple { line, .. }
            | Command::If { line, .. }
            | Command::Case { line, .. }
            | Command::Loop { line, .. }
            | Command::Group { line, .. }
            | Command::Function { line, .. }
            | Command::AndOr { line, .. }
            | Command::Pipeline { line, .. }
            | Command::Other { line, .. } => *line,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(Word, String),
    Op(&'static str),
    Newline,
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    pending_heredocs: Vec<(String, bool)>,
    _src: &'a str,
}

const OPERATORS: &[&str] = &[
    ";;", "&&", "||", ">>", "<<-", "<<", ">&", "<&", ">|", "<>", ";", "&", "|", "(", ")", "<", ">",
];

fn err<T>(line: usize, reason: impl Into<String>) -> Result<T, ShellError> {
    Err(ShellError {
        line,
        reason: reason.into(),
    })
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }
    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn tokens(mut self) -> Result<Vec<(Tok, usize)>, ShellError> {
        let mut out = Vec::new();
        loop {
            // Blanks, line continuations, comments.
            while let Some(c) = self.peek() {
                if c == ' ' || c == '\t' || c == '\r' {
                    self.bump();
                } else if c == '\\' && self.peek_at(1) == Some('\n') {
                    self.bump();
                    self.bump();
                } else if c == '#' {
                    while let Some(c) = self.peek() {
                        if c == '\n' {
                            break;
                        }
                        self.bump();
                    }
                } else {
                    break;
                }
            }
            let line = self.line;
            let Some(c) = self.peek() else {
                break;
            };
            if c == '\n' {
                self.bump();
                out.push((Tok::Newline, line));
                self.read_heredocs()?;
                continue;
            }
            if let Some(op) = OPERATORS.iter().find(|op| {
                op.chars()
                    .enumerate()
                    .all(|(i, oc)| self.peek_at(i) == Some(oc))
            }) {
                for _ in 0..op.chars().count() {
                    self.bump();
                }
                out.push((Tok::Op(op), line));
                if *op == "<<" || *op == "<<-" {
                    self.skip_blanks();
                    let (word, raw) = self.word(0)?;
                    let delimiter = word.literal().unwrap_or(raw.clone());
                    let delimiter = delimiter.replace(['\'', '"', '\\'], "");
                    self.pending_heredocs.push((delimiter, *op == "<<-"));
                    out.push((Tok::Word(word, raw), line));
                }
                continue;
            }
            let (word, raw) = self.word(0)?;
            out.push((Tok::Word(word, raw), line));
        }
        if !self.pending_heredocs.is_empty() {
            return err(self.line, "here-document without its body");
        }
        Ok(out)
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.bump();
        }
    }

    fn read_heredocs(&mut self) -> Result<(), ShellError> {
        let pending = std::mem::take(&mut self.pending_heredocs);
        for (delimiter, strip_tabs) in pending {
            let start = self.line;
            loop {
                if self.peek().is_none() {
                    return err(start, format!("here-document not closed by {delimiter:?}"));
                }
                let mut text = String::new();
                while let Some(c) = self.bump() {
                    if c == '\n' {
                        break;
                    }
                    text.push(c);
                }
                let text = if strip_tabs {
                    text.trim_start_matches('\t')
                } else {
                    text.as_str()
                };
                if text.trim_end_matches('\r') == delimiter {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Reads one word (stops at blanks, newlines and operator characters outside quotes).
    fn word(&mut self, depth: usize) -> Result<(Word, String), ShellError> {
        if depth > MAX_NESTING {
            return err(self.line, "nesting too deep");
        }
        let start = self.pos;
        let mut parts: Vec<Part> = Vec::new();
        let mut lit = String::new();
        let flush = |parts: &mut Vec<Part>, lit: &mut String, quoted: bool| {
            if !lit.is_empty() {
                parts.push(Part::Lit {
                    text: std::mem::take(lit),
                    quoted,
                });
            }
        };
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\r' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>' => break,
                '\\' => {
                    self.bump();
                    match self.bump() {
                        Some('\n') | None => {}
                        Some(escaped) => {
                            flush(&mut parts, &mut lit, false);
                            parts.push(Part::Lit {
                                text: escaped.to_string(),
                                quoted: true,
                            });
                        }
                    }
                }
                '\'' => {
                    flush(&mut parts, &mut lit, false);
                    let line = self.line;
                    self.bump();
                    let mut text = String::new();
                    loop {
                        match self.bump() {
                            Some('\'') => break,
                            Some(c) => text.push(c),
                            None => return err(line, "unterminated single quote"),
                        }
                    }
                    parts.push(Part::Lit { text, quoted: true });
                }
                '"' => {
                    flush(&mut parts, &mut lit, false);
                    let line = self.line;
                    self.bump();
                    let mut text = String::new();
                    loop {
                        match self.peek() {
                            None => return err(line, "unterminated double quote"),
                            Some('"') => {
                                self.bump();
                                break;
                            }
                            Some('\\') => {
                                self.bump();
                                match self.bump() {
                                    Some(c @ ('$' | '`' | '"' | '\\')) => text.push(c),
                                    Some('\n') => {}
                                    Some(c) => {
                                        text.push('\\');
                                        text.push(c);
                                    }
                                    None => return err(line, "unterminated double quote"),
                                }
                            }
                            Some('$') | Some('`') => {
                                if let Some(part) = self.dollar(true, depth)? {
                                    if !text.is_empty() {
                                        parts.push(Part::Lit {
                                            text: std::mem::take(&mut text),
                                            quoted: true,
                                        });
                                    }
                                    parts.push(part);
                                } else {
                                    text.push('$');
                                }
                            }
                            Some(_) => {
                                if let Some(c) = self.bump() {
                                    text.push(c);
                                }
                            }
                        }
                    }
                    // An empty "" still makes a (quoted, empty) field.
                    parts.push(Part::Lit { text, quoted: true });
                }
                '$' | '`' => {
                    flush(&mut parts, &mut lit, false);
                    match self.dollar(false, depth)? {
                        Some(part) => parts.push(part),
                        None => lit.push('$'),
                    }
                }
                _ => {
                    self.bump();
                    lit.push(c);
                }
            }
        }
        flush(&mut parts, &mut lit, false);
        let raw: String = self.chars[start..self.pos].iter().collect();
        if parts.is_empty() && raw.is_empty() {
            return err(self.line, format!("unexpected character {:?}", self.peek()));
        }
        Ok((Word(parts), raw))
    }

    /// Reads a `$…` or backquote construct at the cursor. `None`: a lone `$`, consumed.
    fn dollar(&mut self, quoted: bool, depth: usize) -> Result<Option<Part>, ShellError> {
        let line = self.line;
        if self.peek() == Some('`') {
            self.bump();
            let mut text = String::new();
            loop {
                match self.bump() {
                    Some('`') => break,
                    Some('\\') => {
                        if let Some(c) = self.bump() {
                            text.push(c);
                        }
                    }
                    Some(c) => text.push(c),
                    None => return err(line, "unterminated backquote"),
                }
            }
            return Ok(Some(Part::Command(text)));
        }
        self.bump(); // '$'
        match self.peek() {
            Some('(') => {
                let arith = self.peek_at(1) == Some('(');
                self.bump();
                let text = self.balanced('(', ')', line)?;
                if arith {
                    Ok(Some(Part::Arith(text)))
                } else {
                    Ok(Some(Part::Command(text)))
                }
            }
            Some('{') => {
                self.bump();
                let body = self.balanced('{', '}', line)?;
                parse_braced(&body, quoted, line, depth).map(Some)
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let mut name = String::new();
                while let Some(c) = self.peek() {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        name.push(c);
                        self.bump();
                    } else {
                        break;
                    }
                }
                Ok(Some(Part::Param {
                    name,
                    op: None,
                    length: false,
                    quoted,
                }))
            }
            Some(c) if c.is_ascii_digit() || "@*#?$!-".contains(c) => {
                self.bump();
                Ok(Some(Part::Param {
                    name: c.to_string(),
                    op: None,
                    length: false,
                    quoted,
                }))
            }
            _ => Ok(None),
        }
    }

    /// Text up to the matching `close` (the opening one is consumed), quotes respected.
    fn balanced(&mut self, open: char, close: char, line: usize) -> Result<String, ShellError> {
        let mut level = 1usize;
        let mut text = String::new();
        let mut quote: Option<char> = None;
        loop {
            let Some(c) = self.bump() else {
                return err(line, format!("missing {close:?}"));
            };
            match quote {
                Some(q) => {
                    if c == '\\' && q == '"' {
                        text.push(c);
                        if let Some(n) = self.bump() {
                            text.push(n);
                        }
                        continue;
                    }
                    if c == q {
                        quote = None;
                    }
                }
                None => {
                    if c == '\'' || c == '"' {
                        quote = Some(c);
                    } else if c == '\\' {
                        text.push(c);
                        if let Some(n) = self.bump() {
                            text.push(n);
                        }
                        continue;
                    } else if c == open {
                        level += 1;
                    } else if c == close {
                        level -= 1;
                        if level == 0 {
                            return Ok(text);
                        }
                    }
                }
            }
            text.push(c);
        }
    }
}

fn parse_braced(body: &str, quoted: bool, line: usize, depth: usize) -> Result<Part, ShellError> {
    let (length, body) = match body.strip_prefix('#') {
        Some(rest) if !rest.is_empty() => (true, rest),
        _ => (false, body),
    };
    let name_len = if body
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || "@*#?$!-".contains(c))
    {
        1
    } else {
        body.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .count()
    };
    if name_len == 0 {
        return err(line, format!("bad substitution ${{{body}}}"));
    }
    let name: String = body.chars().take(name_len).collect();
    let rest: String = body.chars().skip(name_len).collect();
    if rest.is_empty() {
        return Ok(Part::Param {
            name,
            op: None,
            length,
            quoted,
        });
    }
    let op = [
        "##", "%%", ":-", ":=", ":+", ":?", "-", "=", "+", "?", "#", "%",
    ]
    .into_iter()
    .find(|op| rest.starts_with(op));
    let Some(op) = op else {
        return err(line, format!("unsupported substitution ${{{body}}}"));
    };
    let operand = &rest[op.len()..];
    let mut lexer = Lexer {
        chars: operand.chars().collect(),
        pos: 0,
        line,
        pending_heredocs: Vec::new(),
        _src: operand,
    };
    // The operand is one word (blanks kept literally).
    let mut parts = Vec::new();
    while lexer.peek().is_some() {
        match lexer.peek() {
            Some(c @ (' ' | '\t' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>')) => {
                lexer.bump();
                parts.push(Part::Lit {
                    text: c.to_string(),
                    quoted,
                });
            }
            _ => {
                let (word, _) = lexer.word(depth + 1)?;
                parts.extend(word.0);
            }
        }
    }
    Ok(Part::Param {
        name,
        op: Some((op.to_owned(), Word(parts))),
        length,
        quoted,
    })
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    depth: usize,
}

fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Parser {
    fn line(&self) -> usize {
        self.toks
            .get(self.pos)
            .or_else(|| self.toks.last())
            .map(|(_, l)| *l)
            .unwrap_or(1)
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }
    fn peek_word(&self) -> Option<&str> {
        match self.peek() {
            Some(Tok::Word(_, raw)) => Some(raw.as_str()),
            _ => None,
        }
    }
    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }
    fn skip_newlines(&mut self) {
        while matches!(self.peek(), Some(Tok::Newline)) {
            self.pos += 1;
        }
    }
    fn expect_word(&mut self, word: &str) -> Result<(), ShellError> {
        self.skip_newlines();
        if self.peek_word() == Some(word) {
            self.pos += 1;
            Ok(())
        } else {
            err(self.line(), format!("expected `{word}`"))
        }
    }

    /// Commands until one of `stops` (reserved words) or `)`/`;;`/end.
    fn list(&mut self, stops: &[&str]) -> Result<Vec<Command>, ShellError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return err(self.line(), "nesting too deep");
        }
        let mut commands = Vec::new();
        loop {
            while matches!(self.peek(), Some(Tok::Newline)) || self.is_op(";") || self.is_op("&") {
                self.pos += 1;
            }
            match self.peek() {
                None => break,
                Some(Tok::Op(")" | ";;")) => break,
                Some(Tok::Word(_, raw)) if stops.contains(&raw.as_str()) => break,
                _ => {}
            }
            let command = self.and_or()?;
            if self.is_op("&") {
                self.pos += 1;
                commands.push(Command::Other {
                    line: command.line(),
                    inner: Box::new(command),
                });
            } else {
                commands.push(command);
            }
        }
        self.depth -= 1;
        Ok(commands)
    }

    fn and_or(&mut self) -> Result<Command, ShellError> {
        let line = self.line();
        let mut parts = vec![self.pipeline()?];
        while self.is_op("&&") || self.is_op("||") {
            self.pos += 1;
            self.skip_newlines();
            parts.push(self.pipeline()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Command::AndOr { line, parts }
        })
    }

    fn pipeline(&mut self) -> Result<Command, ShellError> {
        let line = self.line();
        let negated = self.peek_word() == Some("!");
        if negated {
            self.pos += 1;
        }
        let mut parts = vec![self.command()?];
        while self.is_op("|") {
            self.pos += 1;
            self.skip_newlines();
            parts.push(self.command()?);
        }
        let command = if parts.len() == 1 {
            parts.remove(0)
        } else {
            Command::Pipeline { line, parts }
        };
        Ok(if negated {
            Command::Other {
                line,
                inner: Box::new(command),
            }
        } else {
            command
        })
    }

    fn redirections(&mut self) -> Result<(), ShellError> {
        loop {
            // An IO number (`2>`) is lexed as a word; it is dropped with its operator.
            let is_redirect = |t: Option<&Tok>| matches!(t, Some(Tok::Op(o)) if ["<", ">", ">>", "<<", "<<-", ">&", "<&", ">|", "<>"].contains(o));
            if is_redirect(self.peek()) {
                self.pos += 1;
                match self.peek() {
                    Some(Tok::Word(..)) => self.pos += 1,
                    _ => return err(self.line(), "redirection without a target"),
                }
            } else {
                return Ok(());
            }
        }
    }

    fn command(&mut self) -> Result<Command, ShellError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return err(self.line(), "nesting too deep");
        }
        let line = self.line();
        let command = match self.peek_word() {
            Some("if") => {
                self.pos += 1;
                let mut branches = Vec::new();
                let condition = self.list(&["then"])?;
                self.expect_word("then")?;
                let body = self.list(&["elif", "else", "fi"])?;
                branches.push((condition, body));
                let mut otherwise = None;
                loop {
                    match self.peek_word() {
                        Some("elif") => {
                            self.pos += 1;
                            let condition = self.list(&["then"])?;
                            self.expect_word("then")?;
                            let body = self.list(&["elif", "else", "fi"])?;
                            branches.push((condition, body));
                        }
                        Some("else") => {
                            self.pos += 1;
                            otherwise = Some(self.list(&["fi"])?);
                        }
                        Some("fi") => {
                            self.pos += 1;
                            break;
                        }
                        _ => return err(line, "`if` without `fi`"),
                    }
                }
                Command::If {
                    line,
                    branches,
                    otherwise,
                }
            }
            Some("case") => {
                self.pos += 1;
                let word = match self.peek() {
                    Some(Tok::Word(word, _)) => word.clone(),
                    _ => return err(line, "`case` without a word"),
                };
                self.pos += 1;
                self.expect_word("in")?;
                let mut arms = Vec::new();
                loop {
                    self.skip_newlines();
                    if self.peek_word() == Some("esac") {
                        self.pos += 1;
                        break;
                    }
                    if self.is_op("(") {
                        self.pos += 1;
                    }
                    let mut patterns = Vec::new();
                    loop {
                        match self.peek() {
                            Some(Tok::Word(word, _)) => {
                                patterns.push(word.clone());
                                self.pos += 1;
                            }
                            _ => return err(self.line(), "`case` pattern expected"),
                        }
                        if self.is_op("|") {
                            self.pos += 1;
                        } else {
                            break;
                        }
                    }
                    if !self.is_op(")") {
                        return err(self.line(), "`)` expected after a case pattern");
                    }
                    self.pos += 1;
                    let body = self.list(&["esac"])?;
                    arms.push((patterns, body));
                    if self.is_op(";;") {
                        self.pos += 1;
                    } else if self.peek_word() != Some("esac") {
                        return err(self.line(), "`;;` or `esac` expected");
                    }
                }
                Command::Case { line, word, arms }
            }
            Some("for") => {
                self.pos += 1;
                let variable = match self.peek_word() {
                    Some(name) if is_name(name) => name.to_owned(),
                    _ => return err(line, "`for` without a variable name"),
                };
                self.pos += 1;
                let mut items = None;
                if self.peek_word() == Some("in") {
                    self.pos += 1;
                    let mut words = Vec::new();
                    while let Some(Tok::Word(word, _)) = self.peek() {
                        words.push(word.clone());
                        self.pos += 1;
                    }
                    items = Some(words);
                }
                while self.is_op(";") || matches!(self.peek(), Some(Tok::Newline)) {
                    self.pos += 1;
                }
                let body = self.do_group()?;
                Command::Loop {
                    line,
                    variable: Some(variable),
                    items,
                    condition: Vec::new(),
                    body,
                }
            }
            Some("while" | "until") => {
                self.pos += 1;
                let condition = self.list(&["do"])?;
                let body = self.do_group()?;
                Command::Loop {
                    line,
                    variable: None,
                    items: None,
                    condition,
                    body,
                }
            }
            Some("{") => {
                self.pos += 1;
                let body = self.list(&["}"])?;
                self.expect_word("}")?;
                Command::Group {
                    line,
                    subshell: false,
                    body,
                }
            }
            Some("function") => {
                self.pos += 1;
                let name = match self.peek_word() {
                    Some(name) => name.to_owned(),
                    None => return err(line, "`function` without a name"),
                };
                self.pos += 1;
                if self.is_op("(") {
                    self.pos += 1;
                    if !self.is_op(")") {
                        return err(line, "`)` expected");
                    }
                    self.pos += 1;
                }
                self.skip_newlines();
                let body = vec![self.command()?];
                Command::Function { line, name, body }
            }
            _ if self.is_op("(") => {
                self.pos += 1;
                let body = self.list(&[])?;
                if !self.is_op(")") {
                    return err(line, "`(` without `)`");
                }
                self.pos += 1;
                Command::Group {
                    line,
                    subshell: true,
                    body,
                }
            }
            Some(name)
                if is_name(name)
                    && matches!(self.toks.get(self.pos + 1), Some((Tok::Op("("), _)))
                    && matches!(self.toks.get(self.pos + 2), Some((Tok::Op(")"), _))) =>
            {
                let name = name.to_owned();
                self.pos += 3;
                self.skip_newlines();
                let body = vec![self.command()?];
                Command::Function { line, name, body }
            }
            _ => self.simple(line)?,
        };
        self.redirections()?;
        self.depth -= 1;
        Ok(command)
    }

    fn do_group(&mut self) -> Result<Vec<Command>, ShellError> {
        self.expect_word("do")?;
        let body = self.list(&["done"])?;
        self.expect_word("done")?;
        Ok(body)
    }

    fn simple(&mut self, line: usize) -> Result<Command, ShellError> {
        let mut assigns = Vec::new();
        let mut words: Vec<Word> = Vec::new();
        loop {
            self.redirections()?;
            let Some(Tok::Word(word, raw)) = self.peek() else {
                break;
            };
            // An IO number directly before a redirection operator.
            if raw.chars().all(|c| c.is_ascii_digit())
                && matches!(self.toks.get(self.pos + 1), Some((Tok::Op(o), _)) if o.starts_with('<') || o.starts_with('>'))
            {
                self.pos += 1;
                continue;
            }
            if words.is_empty()
                && let Some((name, _)) = raw.split_once('=')
                && is_name(name)
            {
                let value = assignment_value(word, name.len());
                assigns.push((name.to_owned(), value));
                self.pos += 1;
                continue;
            }
            words.push(word.clone());
            self.pos += 1;
        }
        if assigns.is_empty() && words.is_empty() {
            return err(
                line,
                format!("syntax error near {:?}", self.peek_token_text()),
            );
        }
        Ok(Command::Simple {
            line,
            assigns,
            words,
        })
    }

    fn peek_token_text(&self) -> String {
        match self.peek() {
            Some(Tok::Word(_, raw)) => raw.clone(),
            Some(Tok::Op(op)) => (*op).to_owned(),
            Some(Tok::Newline) => "newline".into(),
            None => "end of file".into(),
        }
    }
}

/// The value part of `NAME=value` (drops `NAME=` from the first literal).
fn assignment_value(word: &Word, name_len: usize) -> Word {
    let mut parts = word.0.clone();
    let mut skip = name_len + 1;
    while skip > 0 && !parts.is_empty() {
        match parts.first_mut() {
            Some(Part::Lit { text, .. }) => {
                let chars = text.chars().count();
                if chars <= skip {
                    skip -= chars;
                    parts.remove(0);
                } else {
                    *text = text.chars().skip(skip).collect();
                    skip = 0;
                }
            }
            _ => break,
        }
    }
    Word(parts)
}

/// Parses a script.
pub fn parse(source: &str) -> Result<Vec<Command>, ShellError> {
    let lexer = Lexer {
        chars: source.chars().collect(),
        pos: 0,
        line: 1,
        pending_heredocs: Vec::new(),
        _src: source,
    };
    let toks = lexer.tokens()?;
    let mut parser = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let commands = parser.list(&[])?;
    if parser.pos < parser.toks.len() {
        return err(
            parser.line(),
            format!("unexpected {}", parser.peek_token_text()),
        );
    }
    Ok(commands)
}

/// Parses script bytes (the fuzzing entry point): UTF-8 is required.
pub fn parse_bytes(bytes: &[u8]) -> Result<Vec<Command>, ShellError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ShellError {
        line: 1,
        reason: format!("not UTF-8: {e}"),
    })?;
    parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simple_words(command: &Command) -> Vec<String> {
        match command {
            Command::Simple { words, .. } => words
                .iter()
                .map(|w| w.literal().unwrap_or_else(|| "<expansion>".into()))
                .collect(),
            other => panic!("not simple: {other:?}"),
        }
    }

    #[test]
    fn entrypoint_script() {
        let script = r#"#!/bin/sh
set -e
# comment
. /usr/local/lib/env.sh
if [ "${1#-}" != "$1" ]; then
    set -- nginx "$@"
fi
case "$1" in
  nginx|nginx-debug) echo ok ;;
  *) ;;
esac
start() {
  exec "$@" 2>&1
}
cat <<EOF > /tmp/x
a $b
EOF
exec java ${JAVA_OPTS:-"-Xmx1g"} -jar /app/app.jar
"#;
        let commands = parse(script).unwrap();
        assert_eq!(commands.len(), 7);
        assert_eq!(simple_words(&commands[0]), ["set", "-e"]);
        assert!(matches!(commands[2], Command::If { line: 5, .. }));
        assert!(matches!(commands[3], Command::Case { ref arms, .. } if arms.len() == 2));
        assert!(matches!(commands[4], Command::Function { ref name, .. } if name == "start"));
        let Command::Simple { words, line, .. } = &commands[6] else {
            panic!()
        };
        assert_eq!(*line, 18);
        assert!(
            matches!(&words[2].0[0], Part::Param { name, op: Some((op, _)), .. } if name == "JAVA_OPTS" && op == ":-")
        );
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(parse("echo ok\nif true; then\n").unwrap_err().line, 2);
        assert!(parse("echo 'open").is_err());
        assert!(parse("cat <<EOF\nno end").is_err());
        assert!(parse(&"(".repeat(1000)).is_err());
    }
}
