//! Input from forms, validated at the boundary into types that cannot hold
//! invalid values. Each `parse` error is a sentence for the form field.

/// A login name: 1-32 characters from letters, digits, `.`, `_`, `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let ok = (1..=32).contains(&raw.len())
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err("use 1-32 letters, digits, '.', '_' or '-'".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password: 10-1024 characters.
#[derive(Clone, PartialEq, Eq)]
pub struct NewPassword(String);

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(..)")
    }
}

impl NewPassword {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.chars().count() {
            0..10 => Err("use at least 10 characters".into()),
            10..=1024 => Ok(Self(raw.to_owned())),
            _ => Err("use at most 1024 characters".into()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A display name for a server, blueprint or overlay: 1-64 printable
/// characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            Err("give it a name".into())
        } else if raw.chars().count() > 64 {
            Err("use at most 64 characters".into())
        } else if raw.chars().any(char::is_control) {
            Err("control characters are not allowed".into())
        } else {
            Ok(Self(raw.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The in-game server name (`hostname` cvar): it is written inside double
/// quotes in server.cfg, so quotes, `;` and control characters are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hostname(String);

impl Hostname {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            Err("give the server a name players see".into())
        } else if raw.chars().count() > 64 {
            Err("use at most 64 characters".into())
        } else if raw.chars().any(|c| c.is_control() || c == '"' || c == ';') {
            Err("quotes, ';' and control characters are not allowed".into())
        } else {
            Ok(Self(raw.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An optional port from a form: empty means "pick one".
pub fn parse_optional_port(raw: &str) -> Result<Option<u16>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    match raw.parse::<u16>() {
        Ok(port) if port >= 1024 => Ok(Some(port)),
        _ => Err("use a port from 1024 to 65535, or leave it empty".into()),
    }
}

/// Launch arguments as typed, split like a POSIX shell would:
/// `+hostname "My Cool Server"` is two arguments. Plain words (what older
/// versions stored) split as before. Each argument must pass the spec's
/// check; unbalanced quotes are refused rather than guessed at.
pub fn parse_arguments(raw: &str) -> Result<Vec<String>, String> {
    // Browsers send line breaks as CRLF; between words they are spaces.
    let words = shlex::split(&raw.replace("\r\n", "\n")).ok_or_else(|| {
        "a quote is not closed (or a backslash ends the line); close it, or escape it with a backslash".to_owned()
    })?;
    for word in &words {
        left4me_host::spec::check_argument(word)?;
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_each_kind() {
        assert!(Username::parse(" alice ").is_ok());
        assert!(Username::parse("a b").is_err());
        assert!(Username::parse("").is_err());
        assert!(NewPassword::parse("short").is_err());
        assert!(NewPassword::parse("long enough!").is_ok());
        assert!(DisplayName::parse("  ").is_err());
        assert!(DisplayName::parse("Coop #1").is_ok());
        assert!(Hostname::parse("My \"quoted\" server").is_err());
        assert!(Hostname::parse("a;quit").is_err());
        assert_eq!(Hostname::parse(" Friends ").unwrap().as_str(), "Friends");
        assert_eq!(parse_optional_port(""), Ok(None));
        assert_eq!(parse_optional_port("27020"), Ok(Some(27020)));
        assert!(parse_optional_port("80").is_err());
        assert_eq!(
            parse_arguments("+map c1m1_hotel\r\n -tickrate 100").unwrap(),
            ["+map", "c1m1_hotel", "-tickrate", "100"]
        );
        assert_eq!(
            parse_arguments(r#"+hostname "My Cool Server" +sv_tags 'a b'"#).unwrap(),
            ["+hostname", "My Cool Server", "+sv_tags", "a b"]
        );
        assert!(
            parse_arguments("+hostname \"My")
                .unwrap_err()
                .contains("quote")
        );
        assert!(
            parse_arguments("-port 27016")
                .unwrap_err()
                .contains("set by left4me")
        );
    }
}
