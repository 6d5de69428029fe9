//! A YAML tree that remembers where every value came from (line and column), built from
//! yaml-rust2's event stream. serde-based loaders drop locations; errors need them.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A position in the file, 1-based.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub line: usize,
    pub col: usize,
}

impl Span {
    fn from_marker(m: Marker) -> Self {
        // yaml-rust2 reports 1-based lines and 0-based columns.
        Span {
            line: m.line(),
            col: m.col() + 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    /// A scalar's text; `quoted` scalars are always strings.
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// A value and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

impl Node {
    /// What kind of YAML value this is, for error messages.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "nothing",
            Value::Scalar { .. } => "a scalar",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// A syntax error with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntaxError {
    pub span: Span,
    pub message: String,
}

enum Frame {
    Seq {
        span: Span,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        span: Span,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

/// At most this many values, aliases expanded: a graph needs a few thousand; a "billion laughs"
/// file (aliases of aliases) would need billions.
pub const MAX_VALUES: usize = 100_000;

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    /// Anchored values and how many values each holds (itself included).
    anchors: HashMap<usize, (Node, usize)>,
    error: Option<SyntaxError>,
    /// Values built so far, aliases counted at their expanded size.
    values: usize,
    /// `values` when each open frame started.
    starts: Vec<usize>,
    documents: usize,
}

impl Builder {
    fn push(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }

    /// A value is complete; `size` is how many values it holds (itself included).
    fn finish(&mut self, node: Node, anchor: usize, size: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        self.push(node);
    }

    fn fail(&mut self, span: Span, message: String) {
        if self.error.is_none() {
            self.error = Some(SyntaxError { span, message });
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let span = Span::from_marker(mark);
        if self.error.is_some() {
            // Nothing more is built (a bomb stops here), but the parser still checks the syntax.
            return;
        }
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                self.values += 1;
                let quoted = style != TScalarStyle::Plain;
                let value = if !quoted && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL") {
                    Value::Null
                } else {
                    Value::Scalar { text, quoted }
                };
                self.finish(Node { value, span }, anchor, 1);
                if self.values > MAX_VALUES {
                    self.fail(span, format!("more than {MAX_VALUES} values in one file"));
                }
            }
            Event::SequenceStart(anchor, _) => {
                self.values += 1;
                self.starts.push(self.values);
                self.stack.push(Frame::Seq {
                    span,
                    anchor,
                    items: Vec::new(),
                });
            }
            Event::MappingStart(anchor, _) => {
                self.values += 1;
                self.starts.push(self.values);
                self.stack.push(Frame::Map {
                    span,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq { span, anchor, items }) => {
                    let size = self.values + 1 - self.starts.pop().unwrap_or(self.values);
                    self.finish(
                        Node {
                            value: Value::Seq(items),
                            span,
                        },
                        anchor,
                        size,
                    );
                }
                Some(Frame::Map {
                    span, anchor, entries, ..
                }) => {
                    // A block mapping's start marker can sit past its first key; point at the key.
                    let span = entries.first().map_or(span, |(k, _)| k.span.min(span));
                    let size = self.values + 1 - self.starts.pop().unwrap_or(self.values);
                    self.finish(
                        Node {
                            value: Value::Map(entries),
                            span,
                        },
                        anchor,
                        size,
                    );
                }
                None => {}
            },
            Event::Alias(id) => match self.anchors.get(&id).map(|(_, size)| *size) {
                Some(size) if self.values + size > MAX_VALUES => self.fail(
                    span,
                    format!("aliases expand this file to more than {MAX_VALUES} values (aliases of aliases?)"),
                ),
                Some(size) => {
                    self.values += size;
                    if let Some((node, _)) = self.anchors.get(&id).cloned() {
                        self.push(Node { span, ..node });
                    }
                }
                None => {
                    self.fail(span, "alias to an unknown anchor".into());
                    self.push(Node {
                        value: Value::Null,
                        span,
                    });
                }
            },
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    self.fail(
                        span,
                        "a second YAML document (after `---`): a file holds one graph or map".into(),
                    );
                }
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

/// Where byte `offset` of `text` is (1-based line and column, in characters; CR LF, LF and a
/// lone CR end a line, as in YAML).
pub fn locate(text: &str, offset: usize) -> Span {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let mut line = 1;
    let mut start = 0;
    let mut i = 0;
    while i < before.len() {
        match before[i] {
            b'\n' => {
                line += 1;
                start = i + 1;
            }
            b'\r' if before.get(i + 1) != Some(&b'\n') => {
                line += 1;
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let col = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    Span { line, col }
}

/// Parses one YAML document. `Ok(None)` for an empty file. A leading byte-order mark is
/// skipped; a NUL byte, a second document and aliases that expand past [`MAX_VALUES`] are
/// refused.
pub fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some(at) = text.find('\0') {
        return Err(SyntaxError {
            span: locate(text, at),
            message: "a NUL byte: this is not a text file (or it is damaged)".into(),
        });
    }
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, true).map_err(|e| SyntaxError {
        span: Span::from_marker(*e.marker()),
        message: e.info().to_string(),
    })?;
    if let Some(err) = builder.error {
        return Err(err);
    }
    Ok(builder.root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_positions() {
        let root = parse("a: 1\nb:\n  - x\n  - 'y'\n").unwrap().unwrap();
        let Value::Map(entries) = root.value else {
            panic!("not a map")
        };
        assert_eq!(entries[0].0.span, Span { line: 1, col: 1 });
        assert_eq!(entries[0].1.span, Span { line: 1, col: 4 });
        let Value::Seq(items) = &entries[1].1.value else {
            panic!("not a seq")
        };
        assert_eq!(items[1].span, Span { line: 4, col: 5 });
        assert_eq!(
            items[1].value,
            Value::Scalar {
                text: "y".into(),
                quoted: true
            }
        );
    }

    #[test]
    fn reports_syntax_errors_with_position() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.span.line >= 1, "{err:?}");
        assert!(!err.message.is_empty());
    }

    #[test]
    fn refuses_alias_bombs_nul_and_second_documents() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let err = parse(&bomb).unwrap_err();
        assert!(err.message.contains("aliases expand"), "{err:?}");
        assert_eq!(err.span.line, 5, "{err:?}");
        let err = parse("a: 1\nb: x\0y\n").unwrap_err();
        assert_eq!(
            (err.span, err.message.contains("NUL")),
            (Span { line: 2, col: 5 }, true)
        );
        let err = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(
            err.message.contains("second YAML document") && err.span.line == 2,
            "{err:?}"
        );
        assert!(parse("---\na: 1\n").is_ok(), "one document with an explicit start");
        assert!(
            parse("\u{feff}a: 1\n").unwrap().is_some(),
            "a byte-order mark is skipped"
        );
        assert_eq!(locate("ab\rcd\r\nef", 8), Span { line: 3, col: 2 });
    }

    #[test]
    fn resolves_aliases() {
        let root = parse("a: &x {q: 1}\nb: *x\n").unwrap().unwrap();
        let Value::Map(entries) = root.value else {
            panic!("not a map")
        };
        assert!(matches!(entries[1].1.value, Value::Map(_)));
    }
}
