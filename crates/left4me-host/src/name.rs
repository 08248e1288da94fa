//! Instance names: the one identifier that reaches paths, unit names and the
//! mount helper, so it is validated once, here, and carried as a type.

use std::fmt;
use std::str::FromStr;

/// A validated instance name: `^[a-z0-9][a-z0-9_-]{0,63}$`.
///
/// The same pattern is what the polkit rule allows for
/// `left4me-server@NAME.service`, so a valid name is always a valid unit
/// instance and a single path component.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid instance name {0:?}: use 1-64 characters from a-z, 0-9, '_' and '-', starting with a letter or digit"
)]
pub struct InvalidInstanceName(pub String);

impl InstanceName {
    pub fn parse(raw: &str) -> Result<Self, InvalidInstanceName> {
        let bytes = raw.as_bytes();
        let valid = matches!(bytes.first(), Some(b'a'..=b'z' | b'0'..=b'9'))
            && bytes.len() <= 64
            && bytes
                .iter()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'));
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidInstanceName(raw.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for InstanceName {
    type Err = InvalidInstanceName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for InstanceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for InstanceName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_pattern() {
        for ok in ["a", "0", "my-server_2", &"a".repeat(64)] {
            assert_eq!(InstanceName::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "-a",
            "_a",
            "A",
            "a.b",
            "a/b",
            "..",
            "a b",
            "é",
            &"a".repeat(65),
        ] {
            let err = InstanceName::parse(bad).unwrap_err();
            assert!(err.to_string().contains("invalid instance name"), "{bad}");
        }
    }
}
