//! Layers of an instance's overlay stack: named overlays and, at the
//! bottom, the layers of one version of the shared installation.

use std::fmt;

/// A path below `overlays/`, relative and made of plain components.
///
/// Components are limited to `[A-Za-z0-9._-]` and may not start with a dot,
/// so the path can never escape the overlays directory, never needs quoting
/// in a mount option string, and never contains the `:` that separates
/// layers in `instance.env`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OverlayPath(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidOverlayPath {
    #[error("overlay path is empty")]
    Empty,
    #[error("overlay path {0:?} is absolute; give it relative to the overlays directory")]
    Absolute(String),
    #[error(
        "overlay path {0:?} contains '..'; overlay paths must stay inside the overlays directory"
    )]
    ParentComponent(String),
    #[error(
        "overlay path {0:?} has an invalid component; use letters, digits, '.', '_' and '-', not starting with '.'"
    )]
    BadComponent(String),
    #[error("overlay path {0:?} is longer than 200 bytes")]
    TooLong(String),
}

impl OverlayPath {
    pub fn parse(raw: &str) -> Result<Self, InvalidOverlayPath> {
        if raw.is_empty() {
            return Err(InvalidOverlayPath::Empty);
        }
        if raw.starts_with('/') {
            return Err(InvalidOverlayPath::Absolute(raw.to_owned()));
        }
        if raw.len() > 200 {
            return Err(InvalidOverlayPath::TooLong(raw.to_owned()));
        }
        // A trailing slash is harmless and common when typed by hand.
        let trimmed = raw.strip_suffix('/').unwrap_or(raw);
        for component in trimmed.split('/') {
            if component == ".." {
                return Err(InvalidOverlayPath::ParentComponent(raw.to_owned()));
            }
            let ok = !component.is_empty()
                && !component.starts_with('.')
                && component
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !ok {
                return Err(InvalidOverlayPath::BadComponent(raw.to_owned()));
            }
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OverlayPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One lower layer of an instance, top to bottom in a stack.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Layer {
    /// An overlay's working copy itself (instance.env files written
    /// before overlays were versioned).
    Overlay(OverlayPath),
    /// A published snapshot of an overlay (`overlay-versions/PATH/v/N`).
    OverlayVersion(OverlayPath, crate::versions::Version),
    /// One layer of the installation's versions (`installation/v/N`).
    Installation(crate::versions::Version),
}

impl Layer {
    pub fn is_installation(&self) -> bool {
        matches!(self, Layer::Installation(_))
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layer::Overlay(path) => write!(f, "overlays/{path}"),
            Layer::OverlayVersion(path, version) => {
                write!(f, "overlay-versions/{path}/v/{version}")
            }
            Layer::Installation(version) => write!(f, "installation/v/{version}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_relative_paths() {
        assert_eq!(OverlayPath::parse("12").unwrap().as_str(), "12");
        assert_eq!(
            OverlayPath::parse("workshop/123.v2/").unwrap().as_str(),
            "workshop/123.v2"
        );
    }

    #[test]
    fn rejects_escapes_and_odd_characters() {
        use InvalidOverlayPath::*;
        assert_eq!(OverlayPath::parse(""), Err(Empty));
        assert!(matches!(OverlayPath::parse("/etc"), Err(Absolute(_))));
        assert!(matches!(
            OverlayPath::parse("a/../b"),
            Err(ParentComponent(_))
        ));
        assert!(matches!(OverlayPath::parse(".."), Err(ParentComponent(_))));
        for bad in ["a//b", "./a", ".hidden", "a:b", "a,b", "a b", "a\\b"] {
            assert!(
                matches!(OverlayPath::parse(bad), Err(BadComponent(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            OverlayPath::parse(&"a".repeat(201)),
            Err(TooLong(_))
        ));
    }
}
