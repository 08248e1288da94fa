//! Reading operation input the same way from a page's form (every value
//! text) and from the API's JSON (numbers as numbers): a field the
//! operation parses itself is taken as text either way, so its mistakes
//! are the operation's field errors, said once for both.

use serde::{Deserialize, Deserializer};

/// A text field that JSON may also send as a number or leave out (null
/// and absent read as empty).
pub fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Loose {
        Text(String),
        Integer(i64),
        Float(f64),
    }
    Ok(match Option::<Loose>::deserialize(deserializer)? {
        None => String::new(),
        Some(Loose::Text(text)) => text,
        Some(Loose::Integer(n)) => n.to_string(),
        Some(Loose::Float(n)) => n.to_string(),
    })
}

/// A checkbox: a form sends it (with any value) only when it is ticked,
/// JSON as a boolean. Absent and null read as not ticked.
pub fn checkbox<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    use serde_json::Value;
    Ok(match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => flag,
        Some(_) => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Input {
        #[serde(default, deserialize_with = "text")]
        port: String,
    }

    #[test]
    fn forms_and_json_give_the_same_text() {
        for (form, text) in [
            ("port=27015", "27015"),
            ("port=", ""),
            ("", ""),
            ("port=abc", "abc"),
        ] {
            let input: Input = serde_urlencoded::from_str(form).unwrap();
            assert_eq!(input.port, text, "{form}");
        }
        for (json, text) in [
            (r#"{"port": 27015}"#, "27015"),
            (r#"{"port": "27015"}"#, "27015"),
            (r#"{"port": null}"#, ""),
            (r#"{}"#, ""),
            (r#"{"port": "abc"}"#, "abc"),
        ] {
            let input: Input = serde_json::from_str(json).unwrap();
            assert_eq!(input.port, text, "{json}");
        }
    }

    #[derive(Debug, Deserialize)]
    struct Ticked {
        #[serde(default, deserialize_with = "checkbox")]
        on: bool,
    }

    #[test]
    fn a_checkbox_is_ticked_when_a_form_sends_it_or_json_says_true() {
        for (form, on) in [("on=on", true), ("on=", true), ("", false)] {
            let input: Ticked = serde_urlencoded::from_str(form).unwrap();
            assert_eq!(input.on, on, "{form}");
        }
        for (json, on) in [
            (r#"{"on": true}"#, true),
            (r#"{"on": false}"#, false),
            (r#"{"on": null}"#, false),
            (r#"{}"#, false),
        ] {
            let input: Ticked = serde_json::from_str(json).unwrap();
            assert_eq!(input.on, on, "{json}");
        }
    }
}
