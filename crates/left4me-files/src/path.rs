//! `RelPath`: the only way a path reaches the filesystem code. It is
//! validated once, as text, so the rest of the crate never has to wonder
//! about `..`, absolute paths or odd bytes. (Symlinks are a property of the
//! disk, not of the text; those are refused when resolving, see `overlay`.)

use std::fmt;

use crate::error::FilesError;

/// Longest accepted component, the usual `NAME_MAX`.
pub const MAX_NAME_BYTES: usize = 255;
/// Longest accepted path; far below `PATH_MAX`, and plenty for game files.
pub const MAX_PATH_BYTES: usize = 1024;

/// A validated path relative to the overlay root.
///
/// '/'-separated, no leading '/', no empty, `.` or `..` components, no NUL,
/// no backslash, no control characters, each component at most 255 bytes,
/// the whole at most 1024 bytes. The empty path is the root itself; it is
/// accepted only where a directory is meant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct RelPath(String);

impl RelPath {
    /// Validates user input. `""` and `"/"` are the root.
    pub fn parse(path: &str) -> Result<Self, FilesError> {
        if path.is_empty() || path == "/" {
            return Ok(Self::root());
        }
        validate(path).map_err(|reason| FilesError::InvalidPath {
            path: path.to_owned(),
            reason: reason.to_owned(),
        })?;
        Ok(Self(path.to_owned()))
    }

    /// The overlay directory itself.
    pub fn root() -> Self {
        Self(String::new())
    }

    /// The path as given, without leading '/'; `""` for the root.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends one name. `name` must be a single component: a '/' in it is
    /// refused, so a form field meant for a name cannot reach elsewhere.
    pub fn join(&self, name: &str) -> Result<Self, FilesError> {
        let joined = self.joined_text(name);
        let reason = if name.contains('/') {
            Err("a name cannot contain '/'")
        } else {
            validate(&joined)
        };
        reason.map_err(|reason| FilesError::InvalidPath {
            path: joined.clone(),
            reason: reason.to_owned(),
        })?;
        Ok(Self(joined))
    }

    /// Appends a whole relative path (e.g. an archive entry below a target
    /// directory); only the total length can make this fail.
    pub fn join_path(&self, rest: &RelPath) -> Result<Self, FilesError> {
        if rest.is_root() {
            return Ok(self.clone());
        }
        let joined = self.joined_text(rest.as_str());
        validate(&joined).map_err(|reason| FilesError::InvalidPath {
            path: joined.clone(),
            reason: reason.to_owned(),
        })?;
        Ok(Self(joined))
    }

    /// The containing directory; `None` for the root.
    pub fn parent(&self) -> Option<RelPath> {
        if self.is_root() {
            return None;
        }
        Some(match self.0.rsplit_once('/') {
            Some((parent, _)) => Self(parent.to_owned()),
            None => Self::root(),
        })
    }

    /// The last component; `None` for the root.
    pub fn file_name(&self) -> Option<&str> {
        if self.is_root() {
            return None;
        }
        Some(self.0.rsplit('/').next().unwrap_or(&self.0))
    }

    /// The components, in order; empty for the root.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|c| !c.is_empty())
    }

    /// Every non-root prefix, shortest first, ending with `self`.
    pub(crate) fn prefixes(&self) -> Vec<RelPath> {
        let mut out = Vec::new();
        let mut current = Self::root();
        for name in self.components() {
            current = Self(current.joined_text(name));
            out.push(current.clone());
        }
        out
    }

    /// Whether `self` lies strictly inside `dir`.
    pub fn is_inside(&self, dir: &RelPath) -> bool {
        if dir.is_root() {
            return !self.is_root();
        }
        self.0
            .strip_prefix(dir.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
    }

    /// The name and containing directory of a non-root path; the root is
    /// refused with `what` ("write", "remove", ...) in the message.
    pub(crate) fn split_parent(&self, what: &str) -> Result<(RelPath, &str), FilesError> {
        match (self.parent(), self.file_name()) {
            (Some(parent), Some(name)) => Ok((parent, name)),
            _ => Err(FilesError::invalid(
                self,
                format!("cannot {what} the overlay directory itself"),
            )),
        }
    }

    /// The path with `/` separators, as text for the filesystem calls; the
    /// root is `.`.
    pub(crate) fn as_fs_path(&self) -> &str {
        if self.is_root() { "." } else { &self.0 }
    }

    fn joined_text(&self, name: &str) -> String {
        if self.is_root() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.0)
        }
    }
}

/// Shown as the path text, or "/" for the root, which reads better in a
/// message than an empty string.
impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            f.write_str("/")
        } else {
            f.write_str(&self.0)
        }
    }
}

impl TryFrom<String> for RelPath {
    type Error = FilesError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl<'de> serde::Deserialize<'de> for RelPath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Checks a non-empty path; the error is the reason, for the message.
pub(crate) fn validate(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("the path is empty");
    }
    if path.len() > MAX_PATH_BYTES {
        return Err("the path is longer than 1024 bytes");
    }
    if path.starts_with('/') {
        return Err("absolute paths are not allowed");
    }
    if path.contains('\0') {
        return Err("NUL bytes are not allowed");
    }
    if path.contains('\\') {
        return Err("backslashes are not allowed");
    }
    if path.chars().any(char::is_control) {
        return Err("control characters are not allowed");
    }
    path.split('/').try_for_each(validate_component)
}

fn validate_component(name: &str) -> Result<(), &'static str> {
    match name {
        "" => Err("empty path components ('//' or a trailing '/') are not allowed"),
        "." => Err("'.' is not allowed"),
        ".." => Err("'..' is not allowed"),
        _ if name.len() > MAX_NAME_BYTES => Err("a name is longer than 255 bytes"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(path: &str) -> String {
        match RelPath::parse(path) {
            Err(FilesError::InvalidPath { reason, .. }) => reason,
            other => panic!("{path:?} should be invalid, got {other:?}"),
        }
    }

    #[test]
    fn good_paths_are_accepted_as_given() {
        let long_name = "n".repeat(255);
        let long_path = ["d"; 512].join("/"); // 1023 bytes
        for good in [
            "a",
            "cfg/server.cfg",
            "addons/sourcemod/plugins/x.smx",
            ".hidden",
            "..x",
            "x..",
            "a b/c-d_e.f",
            "ünïcode/ファイル",
            "C:",
            long_name.as_str(),
            long_path.as_str(),
        ] {
            let parsed = RelPath::parse(good).unwrap();
            assert_eq!(parsed.as_str(), good);
            assert!(!parsed.is_root());
        }
    }

    #[test]
    fn root_spellings() {
        for root in ["", "/"] {
            let parsed = RelPath::parse(root).unwrap();
            assert!(parsed.is_root());
            assert_eq!(parsed, RelPath::root());
            assert_eq!(parsed.as_str(), "");
            assert_eq!(parsed.to_string(), "/");
        }
    }

    #[test]
    fn bad_paths_are_refused_with_a_reason() {
        let long_name = "n".repeat(256);
        let long_path = ["d"; 513].join("/"); // 1025 bytes
        let table: &[(&str, &str)] = &[
            ("../x", "'..' is not allowed"),
            ("a/../b", "'..' is not allowed"),
            ("..", "'..' is not allowed"),
            (".", "'.' is not allowed"),
            ("./a", "'.' is not allowed"),
            ("a/./b", "'.' is not allowed"),
            ("/etc/passwd", "absolute paths are not allowed"),
            ("//", "absolute paths are not allowed"),
            ("a//b", "empty path components"),
            ("a/", "empty path components"),
            ("a\\b", "backslashes are not allowed"),
            ("..\\x", "backslashes are not allowed"),
            ("a\0b", "NUL bytes are not allowed"),
            ("a\nb", "control characters are not allowed"),
            ("a\tb", "control characters are not allowed"),
            (&long_name, "longer than 255 bytes"),
            (&long_path, "longer than 1024 bytes"),
        ];
        for (bad, expected) in table {
            let got = reason(bad);
            assert!(got.contains(expected), "{bad:?}: {got:?}");
        }
    }

    #[test]
    fn parent_and_file_name() {
        let p = RelPath::parse("a/b/c.txt").unwrap();
        assert_eq!(p.file_name(), Some("c.txt"));
        let parent = p.parent().unwrap();
        assert_eq!(parent.as_str(), "a/b");
        assert_eq!(parent.parent().unwrap().as_str(), "a");
        assert!(parent.parent().unwrap().parent().unwrap().is_root());
        assert_eq!(RelPath::root().parent(), None);
        assert_eq!(RelPath::root().file_name(), None);
    }

    #[test]
    fn join_takes_exactly_one_valid_name() {
        let dir = RelPath::parse("cfg").unwrap();
        assert_eq!(dir.join("a.cfg").unwrap().as_str(), "cfg/a.cfg");
        assert_eq!(RelPath::root().join("a").unwrap().as_str(), "a");
        for bad in ["", ".", "..", "x/y", "a\\b", "a\0"] {
            assert!(dir.join(bad).is_err(), "{bad:?}");
        }
        let rest = RelPath::parse("x/y").unwrap();
        assert_eq!(dir.join_path(&rest).unwrap().as_str(), "cfg/x/y");
        assert_eq!(dir.join_path(&RelPath::root()).unwrap(), dir);
    }

    #[test]
    fn inside_and_prefixes() {
        let a = RelPath::parse("a").unwrap();
        assert!(RelPath::parse("a/b").unwrap().is_inside(&a));
        assert!(!RelPath::parse("ab").unwrap().is_inside(&a));
        assert!(!a.is_inside(&a));
        assert!(a.is_inside(&RelPath::root()));
        let prefixes: Vec<String> = RelPath::parse("a/b/c")
            .unwrap()
            .prefixes()
            .into_iter()
            .map(|p| p.as_str().to_owned())
            .collect();
        assert_eq!(prefixes, ["a", "a/b", "a/b/c"]);
    }

    #[test]
    fn deserializing_validates() {
        use serde::Deserialize;
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error, StrDeserializer};
        let parse = |text: &str| {
            let de: StrDeserializer<'_, Error> = text.into_deserializer();
            RelPath::deserialize(de)
        };
        assert_eq!(parse("cfg/x").unwrap().as_str(), "cfg/x");
        let err = parse("../x").unwrap_err().to_string();
        assert!(err.contains("'..' is not allowed"), "{err}");
    }
}

#[cfg(test)]
mod properties {
    use std::path::{Component, Path};

    use proptest::prelude::*;

    use super::*;

    /// Paths as a browser or an archive might name them: parts that are
    /// fine, parts that try to climb, odd separators and bytes.
    fn raw_path() -> impl Strategy<Value = String> {
        let part = prop_oneof![
            Just("maps".to_owned()),
            Just("c1m1.vpk".to_owned()),
            Just("..".to_owned()),
            Just(".".to_owned()),
            Just(String::new()),
            Just("\\..".to_owned()),
            Just("a\0b".to_owned()),
            Just("ü ß".to_owned()),
            "[a-z./\\\\]{1,6}",
        ];
        (any::<bool>(), proptest::collection::vec(part, 0..8)).prop_map(|(absolute, parts)| {
            let joined = parts.join("/");
            if absolute {
                format!("/{joined}")
            } else {
                joined
            }
        })
    }

    proptest! {
        /// What parses never leaves the overlay's directory, and neither
        /// does anything joined to it.
        #[test]
        fn parsed_paths_stay_below_their_root(raw in raw_path(), name in raw_path()) {
            let Ok(path) = RelPath::parse(&raw) else {
                return Ok(());
            };
            let inside = |p: &RelPath| {
                Path::new(p.as_str())
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)))
            };
            prop_assert!(inside(&path), "{:?} from {:?}", path, raw);
            if let Ok(joined) = path.join(&name) {
                prop_assert!(inside(&joined), "{:?}", joined);
                prop_assert!(joined.is_inside(&path), "{:?} left {:?}", joined, path);
            }
        }
    }
}
