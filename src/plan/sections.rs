//! A reader for the TOML that `[[workload]]` sections are written in, and a serde
//! deserializer over what it reads: the fast path's parser for the bulk of a plan file.
//!
//! It reads a subset of TOML exactly: bare and quoted keys, dotted keys, `[table]` and
//! `[[array]]` headers, single-line basic and literal strings, decimal integers,
//! booleans, arrays and single-line inline tables, comments. At anything else (a
//! multi-line string, a float, a date, a header that reopens a table, a duplicate key,
//! a character TOML forbids) it gives up, and the caller parses that part with `toml`.
//! So it never reads a text differently from `toml`, only sooner: a section is read
//! into its final shape in one pass, without the general parser's tokens, events,
//! spans and hashed tables (see `benches/RESULTS.md`). The tests below hold it to
//! `toml` on every example, on hand-written edge cases, and on thousands of random
//! mutations of real sections.

use std::borrow::Cow;
use std::fmt;

use serde::de::value::{CowStrDeserializer, MapDeserializer, SeqDeserializer};
use serde::de::{self, Deserializer, IntoDeserializer, Visitor};

/// A value read from a section.
#[derive(Debug, PartialEq)]
pub(super) enum Val<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Bool(bool),
    /// Items, and whether `[[header]]`s made it (only such an array may grow).
    Array(Vec<Val<'a>>, bool),
    Table(Table<'a>),
}

/// How a table came to be, which decides what may add to it later.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Made {
    /// By its own `[header]` or `[[header]]`: only its own key/value lines add to it.
    Header,
    /// By the path of a deeper header: TOML lets a later header define it; this reader
    /// gives up instead.
    Implicit,
    /// By dotted keys: more dotted keys of the same table may add to it.
    Dotted,
    /// Inline (`{ ... }`): complete as written.
    Inline,
}

/// A table: keys in the order written (few per table, so searched in order).
#[derive(Debug, PartialEq)]
pub(super) struct Table<'a> {
    pub(super) entries: Vec<(Cow<'a, str>, Val<'a>)>,
    made: Made,
    /// Where its `[[header]]` starts and ends, for an element of an array of tables.
    pub(super) header: Option<(usize, usize)>,
}

impl<'a> Table<'a> {
    fn new(made: Made) -> Self {
        Self {
            // A workload's table holds a handful of keys; grown once, not three times.
            entries: Vec::with_capacity(if made == Made::Header { 8 } else { 0 }),
            made,
            header: None,
        }
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut Val<'a>> {
        self.entries
            .iter_mut()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Takes the value at `key` out of the table.
    pub(super) fn remove(&mut self, key: &str) -> Option<Val<'a>> {
        let at = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(at).1)
    }

    /// The table a dotted key's parent part names: an existing table its own dotted keys
    /// made, or a new one.
    fn dotted(&mut self, key: Cow<'a, str>) -> Option<&mut Table<'a>> {
        let at = match self.entries.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                self.entries
                    .push((key, Val::Table(Table::new(Made::Dotted))));
                self.entries.len() - 1
            }
        };
        match &mut self.entries[at].1 {
            Val::Table(t) if t.made == Made::Dotted => Some(t),
            _ => None,
        }
    }

    /// Adds `key = value`; a key already there is a duplicate (TOML forbids it).
    fn insert(&mut self, key: Cow<'a, str>, value: Val<'a>) -> Option<()> {
        if self.entries.iter().any(|(k, _)| *k == key) {
            return None;
        }
        self.entries.push((key, value));
        Some(())
    }
}

/// Reads `text` as a TOML document, or `None` where it holds anything outside the subset
/// (including anything TOML rejects). `base` is added to the header offsets recorded.
pub(super) fn parse(text: &str, base: usize) -> Option<Table<'_>> {
    let mut p = Parser {
        text,
        b: text.as_bytes(),
        i: 0,
    };
    let mut root = Table::new(Made::Header);
    // The header path of the table key/value lines go to.
    let mut current: Vec<Cow<'_, str>> = Vec::new();
    loop {
        p.skip_ws();
        match p.peek() {
            None => return Some(root),
            Some(b'\n' | b'\r' | b'#') => p.line_end()?,
            Some(b'[') => {
                let start = p.i;
                let array = p.b.get(p.i + 1) == Some(&b'[');
                p.i += if array { 2 } else { 1 };
                let path = p.key_path()?;
                p.skip_ws();
                let close: &[u8] = if array { b"]]" } else { b"]" };
                if !p.b[p.i..].starts_with(close) {
                    return None;
                }
                p.i += close.len();
                let header = (base + start, base + p.i);
                p.line_end()?;
                let (last, parents) = path.split_last()?;
                let parent = open(&mut root, parents, true)?;
                if array {
                    let mut table = Table::new(Made::Header);
                    table.header = Some(header);
                    match parent.get_mut(last) {
                        None => parent
                            .entries
                            .push((last.clone(), Val::Array(vec![Val::Table(table)], true))),
                        Some(Val::Array(items, true)) => items.push(Val::Table(table)),
                        Some(_) => return None,
                    }
                } else {
                    parent.insert(last.clone(), Val::Table(Table::new(Made::Header)))?;
                }
                current = path;
            }
            Some(_) => {
                let table = open(&mut root, &current, false)?;
                p.key_value(table)?;
                p.line_end()?;
            }
        }
    }
}

/// The table at `path` from `root`, through the last element of each array of tables on
/// the way. With `create`, missing tables on the way are made (as a header's path
/// makes them); tables made by dotted keys or inline are never entered.
fn open<'t, 'a>(
    root: &'t mut Table<'a>,
    path: &[Cow<'a, str>],
    create: bool,
) -> Option<&'t mut Table<'a>> {
    let mut table = root;
    for key in path {
        if create && table.get_mut(key).is_none() {
            table
                .entries
                .push((key.clone(), Val::Table(Table::new(Made::Implicit))));
        }
        table = match table.get_mut(key)? {
            Val::Table(t) if matches!(t.made, Made::Header | Made::Implicit) => t,
            Val::Array(items, true) => match items.last_mut()? {
                Val::Table(t) => t,
                _ => return None,
            },
            _ => return None,
        };
    }
    Some(table)
}

/// The bytes of a bare key: ASCII letters and digits, `_` and `-`.
const BARE: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        c += 1;
    }
    table
};

struct Parser<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.skip_ws();
        (self.peek() == Some(byte)).then(|| self.i += 1)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    /// Spaces, an optional comment, then a line end or the end of the text.
    fn line_end(&mut self) -> Option<()> {
        self.skip_ws();
        if self.peek() == Some(b'#') {
            self.i += 1;
            while let Some(c) = self.peek() {
                if c == b'\n' || c == b'\r' {
                    break;
                }
                // Control characters other than tab are not allowed in comments.
                if (c < 0x20 && c != b'\t') || c == 0x7f {
                    return None;
                }
                self.i += 1;
            }
        }
        match self.peek() {
            None => Some(()),
            Some(b'\n') => {
                self.i += 1;
                Some(())
            }
            Some(b'\r') if self.b.get(self.i + 1) == Some(&b'\n') => {
                self.i += 2;
                Some(())
            }
            _ => None,
        }
    }

    /// `a.b."c"` with optional spaces around the dots.
    fn key_path(&mut self) -> Option<Vec<Cow<'a, str>>> {
        let mut path = Vec::with_capacity(2);
        loop {
            self.skip_ws();
            path.push(self.key()?);
            self.skip_ws();
            if self.peek() == Some(b'.') {
                self.i += 1;
            } else {
                return Some(path);
            }
        }
    }

    fn key(&mut self) -> Option<Cow<'a, str>> {
        match self.peek()? {
            b'"' => self.basic_string(),
            b'\'' => self.literal_string(),
            _ => {
                let start = self.i;
                while self.b.get(self.i).is_some_and(|&c| BARE[usize::from(c)]) {
                    self.i += 1;
                }
                (self.i > start).then(|| Cow::Borrowed(&self.text[start..self.i]))
            }
        }
    }

    /// `key.path = value` into `table`.
    /// Each dotted part is entered as it is read (a line that turns out wrong fails the
    /// whole read, so what it made on the way is never used).
    fn key_value(&mut self, table: &mut Table<'a>) -> Option<()> {
        self.skip_ws();
        let mut key = self.key()?;
        let mut table = table;
        loop {
            self.skip_ws();
            if self.peek() != Some(b'.') {
                break;
            }
            self.i += 1;
            self.skip_ws();
            table = table.dotted(key)?;
            key = self.key()?;
        }
        self.expect(b'=')?;
        self.skip_ws();
        let value = self.value()?;
        table.insert(key, value)
    }

    fn value(&mut self) -> Option<Val<'a>> {
        match self.peek()? {
            b'"' => self.basic_string().map(Val::Str),
            b'\'' => self.literal_string().map(Val::Str),
            b'[' => self.array(),
            b'{' => self.inline_table(),
            b't' if self.b[self.i..].starts_with(b"true") => {
                self.i += 4;
                self.delimited(Val::Bool(true))
            }
            b'f' if self.b[self.i..].starts_with(b"false") => {
                self.i += 5;
                self.delimited(Val::Bool(false))
            }
            b'0'..=b'9' | b'+' | b'-' => self.integer(),
            _ => None,
        }
    }

    /// `value`, if what follows it can end a value (so `truex` or `1.5` are not misread).
    fn delimited(&self, value: Val<'a>) -> Option<Val<'a>> {
        match self.peek() {
            None | Some(b' ' | b'\t' | b'\r' | b'\n' | b',' | b']' | b'}' | b'#') => Some(value),
            _ => None,
        }
    }

    /// A decimal integer: `[+-]` then `0` or a non-zero digit, digits, single `_`s between
    /// digits. Hex, octal, binary, floats, dates and times are left to `toml`.
    fn integer(&mut self) -> Option<Val<'a>> {
        let start = self.i;
        if matches!(self.peek(), Some(b'+' | b'-')) {
            self.i += 1;
        }
        let digits = self.i;
        let mut last_digit = false;
        while let Some(c) = self.peek() {
            match c {
                b'0'..=b'9' => last_digit = true,
                b'_' if last_digit => last_digit = false,
                _ => break,
            }
            self.i += 1;
        }
        let written = &self.text[digits..self.i];
        if !last_digit || (written.len() > 1 && written.starts_with('0')) {
            return None;
        }
        let clean: Cow<'_, str> = if written.contains('_') {
            written.replace('_', "").into()
        } else {
            written.into()
        };
        let negative = self.b[start] == b'-';
        let magnitude: u64 = clean.parse().ok()?;
        let value = if negative {
            0i64.checked_sub_unsigned(magnitude)?
        } else {
            i64::try_from(magnitude).ok()?
        };
        self.delimited(Val::Int(value))
    }

    /// `[ value, ... ]`, over lines, with comments and a trailing comma.
    fn array(&mut self) -> Option<Val<'a>> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.skip_blank()?;
            if self.peek()? == b']' {
                self.i += 1;
                return Some(Val::Array(items, false));
            }
            items.push(self.value()?);
            self.skip_blank()?;
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(Val::Array(items, false));
                }
                _ => return None,
            }
        }
    }

    /// Spaces, line ends and comments, as allowed between an array's items.
    fn skip_blank(&mut self) -> Option<()> {
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b'\n' | b'\r' | b'#') => self.line_end()?,
                _ => return Some(()),
            }
        }
    }

    /// `{ key = value, ... }` on one line (what TOML 1.0 allows; newlines in it are left
    /// to `toml`).
    fn inline_table(&mut self) -> Option<Val<'a>> {
        self.i += 1;
        let mut table = Table::new(Made::Dotted);
        self.skip_ws();
        if self.peek()? != b'}' {
            loop {
                self.key_value(&mut table)?;
                self.skip_ws();
                match self.peek()? {
                    b',' => {
                        self.i += 1;
                        self.skip_ws();
                        if self.peek()? == b'}' {
                            break;
                        }
                    }
                    b'}' => break,
                    _ => return None,
                }
            }
        }
        self.i += 1;
        table.made = Made::Inline;
        Some(Val::Table(table))
    }

    /// `"..."` on one line, escapes decoded; borrowed when it has none.
    fn basic_string(&mut self) -> Option<Cow<'a, str>> {
        if self.b[self.i..].starts_with(b"\"\"\"") {
            return None;
        }
        self.i += 1;
        let start = self.i;
        let mut owned: Option<String> = None;
        let mut run = start;
        loop {
            let c = self.peek()?;
            match c {
                b'"' => {
                    let end = self.i;
                    self.i += 1;
                    return Some(match owned {
                        None => Cow::Borrowed(&self.text[start..end]),
                        Some(mut s) => {
                            s.push_str(&self.text[run..end]);
                            Cow::Owned(s)
                        }
                    });
                }
                b'\\' => {
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(&self.text[run..self.i]);
                    let escape = *self.b.get(self.i + 1)?;
                    let decoded = match escape {
                        b'b' => '\u{8}',
                        b't' => '\t',
                        b'n' => '\n',
                        b'f' => '\u{c}',
                        b'r' => '\r',
                        b'"' => '"',
                        b'\\' => '\\',
                        b'u' => self.unicode(4)?,
                        b'U' => self.unicode(8)?,
                        _ => return None,
                    };
                    s.push(decoded);
                    // `unicode` moved past its digits already.
                    if !matches!(escape, b'u' | b'U') {
                        self.i += 2;
                    }
                    run = self.i;
                }
                c if (c < 0x20 && c != b'\t') || c == 0x7f => return None,
                _ => self.i += 1,
            }
        }
    }

    /// `\uXXXX` or `\UXXXXXXXX` at the cursor: a Unicode scalar value.
    fn unicode(&mut self, len: usize) -> Option<char> {
        let hex = self.text.get(self.i + 2..self.i + 2 + len)?;
        if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
        self.i += 2 + len;
        Some(c)
    }

    /// `'...'` on one line, or `'''...'''` over lines: no escapes.
    fn literal_string(&mut self) -> Option<Cow<'a, str>> {
        if self.b[self.i..].starts_with(b"'''") {
            return self.multi_line_literal();
        }
        self.i += 1;
        let start = self.i;
        loop {
            match self.peek()? {
                b'\'' => {
                    self.i += 1;
                    return Some(Cow::Borrowed(&self.text[start..self.i - 1]));
                }
                c if (c < 0x20 && c != b'\t') || c == 0x7f => return None,
                _ => self.i += 1,
            }
        }
    }

    /// `'''...'''`: a newline right after the opening quotes is not part of it; one or two
    /// quotes may end it before the closing three. A carriage return in it is left to
    /// `toml` (which line end it keeps is its choice).
    fn multi_line_literal(&mut self) -> Option<Cow<'a, str>> {
        self.i += 3;
        if self.peek() == Some(b'\n') {
            self.i += 1;
        }
        let start = self.i;
        loop {
            match self.peek()? {
                b'\'' => {
                    let quotes = self.b[self.i..].iter().take_while(|&&c| c == b'\'').count();
                    if quotes >= 3 {
                        if quotes > 5 {
                            return None;
                        }
                        let end = self.i + quotes - 3;
                        self.i += quotes;
                        return Some(Cow::Borrowed(&self.text[start..end]));
                    }
                    self.i += quotes;
                }
                b'\n' | b'\t' => self.i += 1,
                c if c < 0x20 || c == 0x7f => return None,
                _ => self.i += 1,
            }
        }
    }
}

/// Deserializing failed: the caller gives up the fast path, and the careful one says why.
#[derive(Debug)]
pub(super) struct Bail;

impl fmt::Display for Bail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not read by the fast path")
    }
}

impl std::error::Error for Bail {}

impl de::Error for Bail {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Bail
    }
}

impl<'de> IntoDeserializer<'de, Bail> for Val<'de> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> Deserializer<'de> for Val<'de> {
    type Error = Bail;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Bail> {
        match self {
            Val::Str(Cow::Borrowed(s)) => visitor.visit_borrowed_str(s),
            Val::Str(Cow::Owned(s)) => visitor.visit_string(s),
            Val::Int(i) => visitor.visit_i64(i),
            Val::Bool(b) => visitor.visit_bool(b),
            Val::Array(items, _) => {
                let mut seq = SeqDeserializer::new(items.into_iter());
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            Val::Table(t) => {
                let mut map = MapDeserializer::new(t.entries.into_iter());
                let value = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(value)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Bail> {
        visitor.visit_some(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Bail> {
        match self {
            // Unit variants, as a plan writes them (`mechanism = "irsa"`).
            Val::Str(s) => {
                CowStrDeserializer::<Bail>::new(s).deserialize_enum(name, variants, visitor)
            }
            _ => Err(Bail),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Bail> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
#[path = "sections_tests.rs"]
mod tests;
