//! Maven versions, ordered as Maven's `ComparableVersion` orders them (Maven 3.9 / 4 rules,
//! including MNG-5568, MNG-6572, MNG-6964, MNG-7644 and MNG-7714).

use std::cmp::Ordering;

use super::{VersionError, VersionScheme, compare_digit_runs};

/// Maven `ComparableVersion` ordering.
#[derive(Debug, Clone, Copy)]
pub struct Maven;

/// One parsed item. Numbers keep their digits (leading zeroes stripped) so any length compares.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Number(String),
    Text(String),
    /// A qualifier directly followed by digits (`alpha1`, `sp-1`): string part and digit part.
    Combination(String, Box<Item>),
    List(Vec<Item>),
}

const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
const RELEASE_INDEX: &str = "5";

fn text_item(value: &str, followed_by_digit: bool) -> String {
    let value = if followed_by_digit && value.len() == 1 {
        match value {
            "a" => "alpha",
            "b" => "beta",
            "m" => "milestone",
            other => other,
        }
    } else {
        value
    };
    if value == "cr" { "rc" } else { value }.to_owned()
}

fn comparable_qualifier(qualifier: &str) -> String {
    if matches!(qualifier, "ga" | "final" | "release") {
        return RELEASE_INDEX.to_owned();
    }
    match QUALIFIERS.iter().position(|q| *q == qualifier) {
        Some(index) => index.to_string(),
        None => format!("{}-{qualifier}", QUALIFIERS.len()),
    }
}

fn number(digits: &str) -> Item {
    let stripped = digits.trim_start_matches('0');
    Item::Number(if stripped.is_empty() { "0" } else { stripped }.to_owned())
}

fn is_digit(c: char) -> bool {
    c.is_numeric()
}

fn combination(value: &str) -> Item {
    let index = value.find(is_digit).unwrap_or(0);
    let (text, digits) = value.split_at(index);
    Item::Combination(
        text_item(text, true),
        Box::new(parse_item(false, true, digits)),
    )
}

fn parse_item(is_combination: bool, is_digit_run: bool, buffer: &str) -> Item {
    if is_combination {
        combination(&buffer.replace('-', ""))
    } else if is_digit_run {
        number(buffer)
    } else {
        Item::Text(text_item(buffer, false))
    }
}

impl Item {
    fn is_null(&self) -> bool {
        match self {
            Item::Number(n) => n == "0",
            Item::Text(t) => t.is_empty(),
            Item::Combination(..) => false,
            Item::List(items) => items.is_empty(),
        }
    }

    fn compare(&self, other: Option<&Item>) -> Ordering {
        use Ordering::{Greater, Less};
        match self {
            Item::Number(value) => match other {
                None => {
                    if value == "0" {
                        Ordering::Equal
                    } else {
                        Greater
                    }
                }
                Some(Item::Number(o)) => compare_digit_runs(value, o),
                Some(_) => Greater,
            },
            Item::Text(value) => match other {
                None => comparable_qualifier(value).as_str().cmp(RELEASE_INDEX),
                Some(Item::Number(_)) | Some(Item::List(_)) => Less,
                Some(Item::Text(o)) => comparable_qualifier(value).cmp(&comparable_qualifier(o)),
                Some(Item::Combination(text, _)) => {
                    match self.compare(Some(&Item::Text(text.clone()))) {
                        Ordering::Equal => Less,
                        ordering => ordering,
                    }
                }
            },
            Item::Combination(text, digits) => match other {
                None => Item::Text(text.clone()).compare(None),
                Some(Item::Number(_)) | Some(Item::List(_)) => Less,
                Some(Item::Text(_)) => match Item::Text(text.clone()).compare(other) {
                    Ordering::Equal => Greater,
                    ordering => ordering,
                },
                Some(Item::Combination(other_text, other_digits)) => {
                    match Item::Text(text.clone()).compare(Some(&Item::Text(other_text.clone()))) {
                        Ordering::Equal => digits.compare(Some(other_digits)),
                        ordering => ordering,
                    }
                }
            },
            Item::List(items) => match other {
                None => items
                    .iter()
                    .map(|item| item.compare(None))
                    .find(|o| *o != Ordering::Equal)
                    .unwrap_or(Ordering::Equal),
                Some(Item::Number(_)) => Less,
                Some(Item::Text(_)) | Some(Item::Combination(..)) => Greater,
                Some(Item::List(others)) => {
                    let length = items.len().max(others.len());
                    for index in 0..length {
                        let ordering = match (items.get(index), others.get(index)) {
                            (None, None) => Ordering::Equal,
                            (None, Some(right)) => right.compare(None).reverse(),
                            (Some(left), right) => left.compare(right),
                        };
                        if ordering != Ordering::Equal {
                            return ordering;
                        }
                    }
                    Ordering::Equal
                }
            },
        }
    }
}

/// Removes trailing null items the way `ListItem.normalize` does, depth first.
fn normalize(items: &mut Vec<Item>) {
    for item in items.iter_mut() {
        if let Item::List(inner) = item {
            normalize(inner);
        }
    }
    let mut index = items.len();
    while index > 0 {
        index -= 1;
        if !items[index].is_null() {
            continue;
        }
        let remove = match items.get(index + 1) {
            None => true,
            Some(Item::Text(_)) => true,
            Some(Item::List(next)) => {
                matches!(
                    next.first(),
                    Some(Item::Combination(..)) | Some(Item::Text(_))
                )
            }
            Some(_) => false,
        };
        if remove {
            items.remove(index);
        }
    }
}

/// A list being built, with the path of nested lists from the root.
struct Builder {
    root: Vec<Item>,
    /// Indices to follow from the root to the current list.
    path: Vec<usize>,
}

impl Builder {
    fn current(&mut self) -> &mut Vec<Item> {
        let mut list = &mut self.root;
        for &index in &self.path {
            list = match &mut list[index] {
                Item::List(inner) => inner,
                // The path only ever points at lists it created.
                _ => unreachable_list(),
            };
        }
        list
    }

    fn push(&mut self, item: Item) {
        self.current().push(item);
    }

    fn open_list(&mut self) {
        let list = self.current();
        list.push(Item::List(Vec::new()));
        let index = list.len() - 1;
        self.path.push(index);
    }
}

#[allow(clippy::panic)]
fn unreachable_list() -> ! {
    // Builder::path holds only indices of `Item::List` entries pushed by `open_list`.
    panic!("maven version builder path points at a non-list item")
}

fn parse(version: &str) -> Item {
    let lower = version.to_lowercase();
    let chars: Vec<(usize, char)> = lower.char_indices().collect();
    let mut builder = Builder {
        root: Vec::new(),
        path: Vec::new(),
    };
    let mut is_digit_run = false;
    let mut is_combination = false;
    let mut start = 0usize;
    for (position, &(offset, c)) in chars.iter().enumerate() {
        let next_offset = chars.get(position + 1).map_or(lower.len(), |(o, _)| *o);
        if c == '.' {
            if offset == start {
                builder.push(Item::Number("0".into()));
            } else {
                builder.push(parse_item(
                    is_combination,
                    is_digit_run,
                    &lower[start..offset],
                ));
            }
            is_combination = false;
            start = next_offset;
        } else if c == '-' {
            if offset == start {
                builder.push(Item::Number("0".into()));
            } else {
                if !is_digit_run
                    && next_offset < lower.len()
                    && chars.get(position + 1).is_some_and(|(_, n)| is_digit(*n))
                {
                    is_combination = true;
                    continue;
                }
                builder.push(parse_item(
                    is_combination,
                    is_digit_run,
                    &lower[start..offset],
                ));
            }
            start = next_offset;
            if !builder.current().is_empty() {
                builder.open_list();
            }
            is_combination = false;
        } else if c.is_ascii_digit() {
            if !is_digit_run && offset > start {
                is_combination = true;
                if !builder.current().is_empty() {
                    builder.open_list();
                }
            }
            is_digit_run = true;
        } else {
            if is_digit_run && offset > start {
                builder.push(parse_item(is_combination, true, &lower[start..offset]));
                start = offset;
                builder.open_list();
                is_combination = false;
            }
            is_digit_run = false;
        }
    }
    if lower.len() > start {
        if !is_digit_run && !builder.current().is_empty() {
            builder.open_list();
        }
        let item = parse_item(is_combination, is_digit_run, &lower[start..]);
        builder.push(item);
    }
    let mut root = builder.root;
    normalize(&mut root);
    Item::List(root)
}

impl VersionScheme for Maven {
    fn id(&self) -> &'static str {
        "maven"
    }

    fn compare(&self, a: &str, b: &str) -> Result<Ordering, VersionError> {
        if a.trim().is_empty() || b.trim().is_empty() {
            let empty = if a.trim().is_empty() { a } else { b };
            return Err(VersionError::new("maven", empty, "empty version"));
        }
        Ok(parse(a).compare(Some(&parse(b))))
    }
}
