//! YAML as fortisync reads and writes it (manifests, simulator scenarios, the CRDs), through
//! serde-saphyr, the maintained YAML crate kube already depends on.
//!
//! serde-saphyr's defaults also read YAML 1.1 spellings: `yes`/`no`/`on`/`off` as booleans,
//! `0755` as octal, `1_000` as a number. fortisync always read YAML 1.2 (serde_yaml did), where
//! those stay strings, so a country code `NO` or a comment `on` in a manifest keeps its meaning.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why a text is not the YAML expected (names the line and column, and the field when typed).
pub type Error = serde_saphyr::Error;

/// Why a value cannot be written as YAML.
pub type SerializeError = serde_saphyr::SerializeError;

/// The reading rules: YAML 1.2 core scalars, duplicate keys refused (serde-saphyr's default).
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
    }
}

/// Parses one YAML (or JSON) document into `T`.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    serde_saphyr::from_str_with_options(text, options())
}

/// The documents of a multi-document stream in order, as JSON values (what the Kubernetes types
/// deserialize from). Empty documents are left out; after a syntax error the stream ends with
/// that error, since nothing after it can be trusted.
pub fn documents(text: &str) -> Vec<Result<Value, Error>> {
    let mut reader = std::io::Cursor::new(text.as_bytes());
    serde_saphyr::read_with_options(&mut reader, options()).collect()
}

/// Writes one value as a YAML document. Strings that a YAML 1.1 reader (kubectl, helm) would
/// take for another type are quoted (serde-saphyr's default); multi-line strings are literal
/// blocks, and long ones stay on one line instead of being folded, so a CRD's descriptions and
/// CEL rules read as they are written.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, SerializeError> {
    let options = serde_saphyr::ser_options! { folded_wrap_chars: usize::MAX };
    serde_saphyr::to_string_with_options(value, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_1_1_spellings_stay_strings() {
        let v: Value =
            from_str("a: no\nb: on\nc: 0755\nd: 1_000\ne: true\nf: 7.4.3\n").expect("yaml");
        assert_eq!(
            v,
            serde_json::json!({"a": "no", "b": "on", "c": "0755", "d": "1_000", "e": true, "f": "7.4.3"})
        );
    }

    #[test]
    fn documents_come_in_order_without_the_empty_ones() {
        let docs: Vec<Value> = documents("a: 1\n---\n---\nb: 2\n")
            .into_iter()
            .collect::<Result<_, _>>()
            .expect("yaml");
        assert_eq!(
            docs,
            [serde_json::json!({"a": 1}), serde_json::json!({"b": 2})]
        );
    }

    #[test]
    fn a_syntax_error_ends_the_stream() {
        let docs = documents("a: 1\n---\nkind: [\n");
        assert_eq!(docs.len(), 2);
        assert!(docs[0].is_ok());
        assert!(docs[1].is_err());
    }

    #[test]
    fn a_duplicate_key_is_refused() {
        assert!(from_str::<Value>("a: 1\na: 2\n").is_err());
    }

    #[test]
    fn strings_that_would_read_as_other_types_are_quoted_when_written() {
        let v = serde_json::json!({"s": ["yes", "no", "on", "1.0", "null", "~", "0755", ""]});
        let text = to_string(&v).expect("written");
        assert_eq!(from_str::<Value>(&text).expect("read back"), v);
        // kubectl and helm read YAML 1.1, where a bare `yes` or `on` is a boolean.
        for word in ["yes", "no", "on"] {
            assert!(
                text.contains(&format!("\"{word}\"")),
                "{word} unquoted in {text}"
            );
        }
    }
}
