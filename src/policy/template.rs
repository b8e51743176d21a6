//! The admin's message in a rule (`message = "{user}: idle for {limit}..."`): parsed once,
//! when the policy is read, by [`Template::parse`] — the one parser `logoffd --check` and
//! the daemon share — and filled at each warning by [`Template::fill`], which cannot fail.
//!
//! Syntax: `{name}` is a placeholder (one of [`Field::ALL`]'s names), `{{` and `}}` are
//! literal braces; any other `{` or `}` is an error with its position. Nothing in the text
//! can make filling panic: a template that parsed is a list of literal pieces and fields.

use std::fmt;

/// A placeholder of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    User,
    Rule,
    Reason,
    Limit,
    Left,
    At,
    Session,
    /// What happens at the deadline: `logged off`, `disconnected`.
    Action,
}

impl Field {
    pub const ALL: [Field; 8] = [
        Field::User,
        Field::Rule,
        Field::Reason,
        Field::Limit,
        Field::Left,
        Field::At,
        Field::Session,
        Field::Action,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::User => "user",
            Field::Rule => "rule",
            Field::Reason => "reason",
            Field::Limit => "limit",
            Field::Left => "left",
            Field::At => "at",
            Field::Session => "session",
            Field::Action => "action",
        }
    }

    fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(Field),
}

/// A parsed message template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// Why a template does not parse, and where (a byte offset into its text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Template {
    /// Parses `text`: every `{` and `}` must be a placeholder's or doubled.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|&(_, n)| n == '{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().is_some_and(|&(_, n)| n == '}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => {
                    return Err(TemplateError {
                        offset: at,
                        message: "the message has a '}' without its '{' (write }} for a brace)"
                            .into(),
                    });
                }
                '{' => {
                    let rest = &text[at + 1..];
                    let Some(close) = rest
                        .find(['}', '{'])
                        .filter(|&i| rest[i..].starts_with('}'))
                    else {
                        return Err(TemplateError {
                            offset: at,
                            message: "the message has a '{' without its '}' (write {{ for a \
                                      brace)"
                                .into(),
                        });
                    };
                    let name = &rest[..close];
                    let field = Field::from_name(name).ok_or_else(|| TemplateError {
                        offset: at,
                        message: format!(
                            "the message names {{{name}}}, which is not one of {}",
                            Field::ALL.map(|f| format!("{{{}}}", f.name())).join(", ")
                        ),
                    })?;
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field(field));
                    // Skip the name and its '}': all of it is ASCII or was matched above.
                    for _ in 0..name.chars().count() + 1 {
                        chars.next();
                    }
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template { parts })
    }

    /// The text with each field's value from `value`.
    pub fn fill(&self, value: impl Fn(Field) -> String) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Field(f) => out.push_str(&value(*f)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn filled(text: &str) -> Result<String, TemplateError> {
        Template::parse(text).map(|t| t.fill(|f| format!("<{}>", f.name())))
    }

    #[test]
    fn placeholders_and_braces() {
        assert_eq!(
            filled("{user} {{literal}} {left}").as_deref(),
            Ok("<user> {literal} <left>")
        );
        assert_eq!(filled("").as_deref(), Ok(""));
        assert_eq!(filled("é{at}日").as_deref(), Ok("é<at>日"));
        assert_eq!(filled("{action}").as_deref(), Ok("<action>"));
    }

    /// Regression (issue 17, item 5): a lone `}` passed `--check` and then panicked the
    /// daemon at its first warning. Each of these is refused with its position.
    #[test]
    fn unbalanced_braces_and_unknown_names_are_refused_with_their_place() {
        for (text, offset, says) in [
            ("}", 0, "'}' without"),
            ("bye }", 4, "'}' without"),
            ("{user", 0, "'{' without"),
            ("{", 0, "'{' without"),
            ("{us{er}", 0, "'{' without"),
            ("{nope}", 0, "{nope}"),
            ("é{usr}", 2, "{usr}"),
            ("{}", 0, "{}"),
        ] {
            let e = Template::parse(text).expect_err(text);
            assert_eq!(e.offset, offset, "{text}: {e}");
            assert!(e.message.contains(says), "{text}: {e}");
        }
    }

    /// Seeds of the property test below that once mattered, kept as a corpus.
    const CORPUS: &[&str] = &[
        "}",
        "}}",
        "}}}",
        "{{",
        "{{{",
        "{}}",
        "{{}",
        "{user}}",
        "{{user}",
        "{user}}}",
        "é}",
        "}é",
        "{é}",
        "{\u{0}}",
        "{user}{left}{",
        "x{{{user}}}y",
    ];

    #[test]
    fn the_corpus_never_panics() {
        for text in CORPUS {
            let _ = filled(text);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// No text can panic the parser or the filling, and what parses fills to text
        /// with no placeholder left: every brace in it was written doubled.
        #[test]
        fn any_text_parses_or_is_refused_and_never_panics(text in any::<String>()) {
            if let Ok(out) = filled(&text) {
                let braces = text.matches(['{', '}']).count();
                let fields = out.matches('<').count() - text.matches('<').count();
                prop_assert!(braces >= fields * 2);
            }
        }

        #[test]
        fn brace_heavy_text_never_panics(text in "[{}a-z\u{e9}]{0,24}") {
            let _ = filled(&text);
        }
    }
}
