//! SQL `LIKE` patterns, compiled once into a regular expression (the `regex` crate).

use regex::Regex;

/// A compiled `LIKE` pattern: `%` matches any run of characters (none included), `_`
/// exactly one, `\` makes the next character literal; the whole text must match.
#[derive(Debug, Clone)]
pub(crate) struct LikePattern {
    regex: Regex,
}

impl LikePattern {
    /// Compiles `pattern`; an error says why it is not one (a `\` at its end).
    pub(crate) fn new(pattern: &str) -> Result<LikePattern, String> {
        let mut translated = String::with_capacity(pattern.len() + 8);
        translated.push_str("(?s)\\A");
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            match c {
                '%' => translated.push_str(".*"),
                '_' => translated.push('.'),
                '\\' => match chars.next() {
                    Some(escaped) => translated.push_str(&regex::escape(&escaped.to_string())),
                    None => {
                        return Err(format!(
                            "the LIKE pattern {pattern:?} ends with the escape character `\\`"
                        ))
                    }
                },
                other => translated.push_str(&regex::escape(&other.to_string())),
            }
        }
        translated.push_str("\\z");
        let regex = Regex::new(&translated)
            .map_err(|error| format!("the LIKE pattern {pattern:?} does not compile: {error}"))?;
        Ok(LikePattern { regex })
    }

    /// Whether `text` matches.
    #[inline]
    pub(crate) fn matches(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_matches_as_sql_does() {
        let cases = [
            ("COHU%", "COHUTTA", true),
            ("COHU%", "cohutta", false),
            ("%TTA", "COHUTTA", true),
            ("C_HUTTA", "COHUTTA", true),
            ("C_HUTTA", "CHUTTA", false),
            ("%", "", true),
            ("_", "", false),
            ("a.c", "abc", false),
            ("100\\%", "100%", true),
            ("100\\%", "1000", false),
            ("a%b", "a\nb", true),
            ("[x]", "[x]", true),
        ];
        for (pattern, text, expected) in cases {
            let like = LikePattern::new(pattern).unwrap();
            assert_eq!(like.matches(text), expected, "{text:?} LIKE {pattern:?}");
        }
        assert!(LikePattern::new("abc\\").is_err());
    }
}
