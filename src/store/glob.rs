//! Redis glob patterns, as SCAN MATCH reads them: `*`, `?`, `[abc]`,
//! `[^a-z]` and `\` escapes, with Redis's treatment of malformed patterns.

/// One pattern element.
#[derive(Debug)]
enum Token {
    /// `*`: any run of bytes.
    Star,
    /// `?`: any one byte.
    Any,
    /// A literal byte (possibly `\`-escaped in the pattern).
    Byte(u8),
    /// `[...]`: one byte in (or, negated, not in) the set.
    Class {
        negated: bool,
        items: Vec<ClassItem>,
    },
}

#[derive(Debug)]
enum ClassItem {
    Byte(u8),
    Range(u8, u8),
}

fn tokenize(pattern: &[u8]) -> Vec<Token> {
    let mut tokens = Vec::with_capacity(pattern.len());
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'*' => {
                if !matches!(tokens.last(), Some(Token::Star)) {
                    tokens.push(Token::Star);
                }
            }
            b'?' => tokens.push(Token::Any),
            b'[' => {
                i += 1;
                let negated = pattern.get(i) == Some(&b'^');
                if negated {
                    i += 1;
                }
                let mut items = Vec::new();
                // Like Redis: an unterminated class takes the rest of the pattern.
                while i < pattern.len() && pattern[i] != b']' {
                    let rest = pattern.len() - i;
                    if pattern[i] == b'\\' && rest >= 2 {
                        i += 1;
                        items.push(ClassItem::Byte(pattern[i]));
                    } else if rest >= 3 && pattern[i + 1] == b'-' {
                        let (a, b) = (pattern[i], pattern[i + 2]);
                        items.push(ClassItem::Range(a.min(b), a.max(b)));
                        i += 2;
                    } else {
                        items.push(ClassItem::Byte(pattern[i]));
                    }
                    i += 1;
                }
                tokens.push(Token::Class { negated, items });
            }
            b'\\' if i + 1 < pattern.len() => {
                i += 1;
                tokens.push(Token::Byte(pattern[i]));
            }
            byte => tokens.push(Token::Byte(byte)),
        }
        i += 1;
    }
    tokens
}

impl Token {
    /// Whether this single-byte token matches `byte` (never called on `Star`).
    fn matches(&self, byte: u8) -> bool {
        match self {
            Token::Star | Token::Any => true,
            Token::Byte(b) => *b == byte,
            Token::Class { negated, items } => {
                let found = items.iter().any(|item| match *item {
                    ClassItem::Byte(b) => b == byte,
                    ClassItem::Range(lo, hi) => (lo..=hi).contains(&byte),
                });
                found != *negated
            }
        }
    }
}

/// Whether `subject` matches the Redis glob `pattern`.
///
/// Every token but `*` consumes exactly one byte, so backtracking to the
/// last `*` alone is complete, and the match runs in O(pattern × subject)
/// at worst, never exponentially.
pub(crate) fn matches(pattern: &str, subject: &str) -> bool {
    let tokens = tokenize(pattern.as_bytes());
    let subject = subject.as_bytes();
    let (mut t, mut s) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while s < subject.len() {
        match tokens.get(t) {
            Some(Token::Star) => {
                backtrack = Some((t, s));
                t += 1;
            }
            Some(token) if token.matches(subject[s]) => {
                t += 1;
                s += 1;
            }
            _ => match backtrack {
                Some((star, from)) => {
                    backtrack = Some((star, from + 1));
                    t = star + 1;
                    s = from + 1;
                }
                None => return false,
            },
        }
    }
    tokens[t..].iter().all(|token| matches!(token, Token::Star))
}

/// `literal` with every glob-special character escaped, so that as a
/// pattern it matches exactly itself.
pub(crate) fn escape(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len() + 4);
    for c in literal.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '-') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{escape, matches};

    #[test]
    fn redis_glob_semantics() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "abc", true),
            ("a*", "abc", true),
            ("a*c", "abxc", true),
            ("a*c", "abxd", false),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h[b-a]llo", "hallo", true),
            ("h[a-b]llo", "hcllo", false),
            ("h\\*llo", "h*llo", true),
            ("h\\*llo", "hello", false),
            ("[]a", "a", false),
            ("[^]a", "xa", true),
            ("a[\\]]b", "a]b", true),
            ("abc\\", "abc\\", true),
            ("[abc", "b", true),
            ("**a**", "xxa", true),
            ("/a/*", "/a/b/client", true),
            ("/a/*", "/ab", false),
            ("a*b*c*d", "aXbYcZd", true),
            (
                "a*a*a*a*a*b",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                false,
            ),
        ];
        for &(pattern, subject, expected) in cases {
            assert_eq!(
                matches(pattern, subject),
                expected,
                "{pattern:?} vs {subject:?}"
            );
        }
    }

    #[test]
    fn escaped_literal_matches_only_itself() {
        for literal in ["/a*b/", "/[x]/", "/q?/", "/back\\slash/", "/^-/", "/plain/"] {
            let pattern = escape(literal);
            assert!(matches(&pattern, literal), "{pattern:?}");
        }
        assert!(!matches(&escape("/a*/"), "/abc/"));
        assert!(!matches(&escape("/a?/"), "/ab/"));
        assert!(!matches(&escape("/[ab]/"), "/a/"));
    }
}
