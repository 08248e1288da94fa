//! The spec contract (`spec.yaml`): port, arguments, config lines and the
//! ordered overlay list of one instance.
//!
//! Files are parsed into a position-carrying tree first so every complaint
//! names the file, line and column it is about. Files written by the Python
//! predecessor (`yaml.safe_dump` of the same four keys) load unchanged.

use std::fmt;
use std::path::{Path, PathBuf};

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, MarkedSequenceNode};
use marked_yaml::{LoaderOptions, Node, Span};

use crate::layer::OverlayPath;
use crate::layout::StateRoot;

/// The kernel stacks at most 500 lower layers; one is the installation.
pub const MAX_OVERLAYS: usize = 499;

/// A game port in 1024-65535 (UDP for the game, TCP for RCON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Port(u16);

impl Port {
    pub fn new(port: u16) -> Result<Self, String> {
        if port >= 1024 {
            Ok(Self(port))
        } else {
            Err(format!("port {port} is out of range; use 1024-65535"))
        }
    }

    fn parse(raw: &str) -> Result<Self, String> {
        let value: u32 = raw
            .parse()
            .map_err(|_| format!("port {raw:?} is not a number; use 1024-65535"))?;
        u16::try_from(value)
            .map_err(|_| format!("port {value} is out of range; use 1024-65535"))
            .and_then(Self::new)
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An alias under which an overlay's `server.cfg` is staged as
/// `server_<alias>.cfg`: `[a-z0-9_]{1,64}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Alias(String);

impl Alias {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!(
                "alias {raw:?} is invalid; use 1-64 characters from a-z, 0-9 and '_'"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// File name of the staged copy: `server_<alias>.cfg`.
    pub fn staged_cfg_name(&self) -> String {
        format!("server_{}.cfg", self.0)
    }
}

/// One entry of the overlay list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayRef {
    pub path: OverlayPath,
    pub alias: Option<Alias>,
}

/// A validated spec. Construct with [`Spec::new`] or [`Spec::load`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    port: Port,
    arguments: Vec<String>,
    config: Vec<String>,
    overlays: Vec<OverlayRef>,
}

/// A problem with a spec built in code (no file position to name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid spec: {0}")]
pub struct InvalidSpec(pub String);

/// Where the server listens: left4me sets it (the unit's `ExecStart` and
/// the built-in supervisor's command line), and another value would make
/// the server listen where nobody looks. Repeating what left4me passes
/// anyway (`-game left4dead2`) or what guides give `srcds_run`
/// (`-norestart`, which the engine ignores) is harmless and allowed, so
/// specs written from srcds guides keep loading.
const RESERVED_ARGUMENTS: &[&str] = &["-port", "+hostport", "-ip", "+ip"];

/// Checks one launch argument: not empty, one line, not one of those
/// left4me sets. Spaces are fine: each argument reaches the game as one
/// argv entry under both supervisors.
pub fn check_argument(arg: &str) -> Result<(), String> {
    if arg.is_empty() {
        Err("argument is empty; remove it".into())
    } else if RESERVED_ARGUMENTS
        .iter()
        .any(|r| r.eq_ignore_ascii_case(arg))
    {
        Err(format!(
            "argument {arg} is set by left4me (address and port come from the server's settings); remove it"
        ))
    } else if arg.chars().any(char::is_control) {
        // A NUL cannot be in an argv entry at all, and instance.env is one
        // line per setting.
        Err(format!(
            "argument {arg:?} contains a control character (a line break, tab or NUL); launch arguments are plain text on one line"
        ))
    } else {
        Ok(())
    }
}

fn check_config_line(line: &str) -> Result<(), String> {
    if line.chars().any(|c| c == '\n' || c == '\r' || c == '\0') {
        Err(format!(
            "config line {line:?} contains a line break; put each line in its own list item"
        ))
    } else {
        Ok(())
    }
}

fn check_overlay_list(overlays: &[OverlayRef]) -> Result<(), (usize, String)> {
    if overlays.len() > MAX_OVERLAYS {
        return Err((
            MAX_OVERLAYS,
            format!(
                "{} overlays listed; the kernel stacks at most {MAX_OVERLAYS} overlays on top of the installation",
                overlays.len()
            ),
        ));
    }
    for (i, entry) in overlays.iter().enumerate() {
        for earlier in &overlays[..i] {
            if earlier.path == entry.path {
                return Err((
                    i,
                    format!(
                        "overlay {:?} is listed twice; list each overlay once",
                        entry.path.as_str()
                    ),
                ));
            }
            if let (Some(a), Some(b)) = (&earlier.alias, &entry.alias)
                && a == b
            {
                return Err((
                    i,
                    format!(
                        "alias {:?} is used twice; give each overlay its own alias",
                        a.as_str()
                    ),
                ));
            }
        }
    }
    Ok(())
}

impl Spec {
    pub fn new(
        port: Port,
        arguments: Vec<String>,
        config: Vec<String>,
        overlays: Vec<OverlayRef>,
    ) -> Result<Self, InvalidSpec> {
        for arg in &arguments {
            check_argument(arg).map_err(InvalidSpec)?;
        }
        for line in &config {
            check_config_line(line).map_err(InvalidSpec)?;
        }
        check_overlay_list(&overlays).map_err(|(_, msg)| InvalidSpec(msg))?;
        Ok(Self {
            port,
            arguments,
            config,
            overlays,
        })
    }

    pub fn port(&self) -> Port {
        self.port
    }
    pub fn arguments(&self) -> &[String] {
        &self.arguments
    }
    pub fn config(&self) -> &[String] {
        &self.config
    }
    /// Overlays in list order: the first wins over later ones.
    pub fn overlays(&self) -> &[OverlayRef] {
        &self.overlays
    }

    /// The `server.cfg` text: the config lines, one per line.
    pub fn server_cfg(&self) -> String {
        let mut text = self.config.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        text
    }

    /// Reads and validates a spec file, including that every overlay exists
    /// as a directory under `root`'s `overlays/`.
    pub fn load(path: &Path, root: &StateRoot) -> Result<Self, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|e| SpecError {
            file: path.to_owned(),
            line: 0,
            column: 0,
            message: format!("cannot read spec file: {e}"),
        })?;
        Self::parse(&text, path, Some(root))
    }

    /// Parses spec text. `origin` names the file in errors. With a root, the
    /// overlays must exist below it.
    pub fn parse(text: &str, origin: &Path, root: Option<&StateRoot>) -> Result<Self, SpecError> {
        Parser { file: origin }.parse(text, root)
    }

    /// Serialises to YAML that [`Spec::parse`] and the predecessor accept.
    /// Strings are double-quoted JSON strings, which YAML reads verbatim.
    pub fn to_yaml(&self) -> String {
        fn quote(s: &str) -> String {
            serde_json::to_string(s).expect("strings always serialise")
        }
        let mut out = format!("port: {}\n", self.port);
        let mut list = |key: &str, items: &[String]| {
            if items.is_empty() {
                out.push_str(&format!("{key}: []\n"));
            } else {
                out.push_str(&format!("{key}:\n"));
                for item in items {
                    out.push_str(&format!("- {}\n", quote(item)));
                }
            }
        };
        list("arguments", &self.arguments);
        list("config", &self.config);
        if self.overlays.is_empty() {
            out.push_str("overlays: []\n");
        } else {
            out.push_str("overlays:\n");
            for o in &self.overlays {
                match &o.alias {
                    None => out.push_str(&format!("- {}\n", quote(o.path.as_str()))),
                    Some(alias) => out.push_str(&format!(
                        "- path: {}\n  alias: {}\n",
                        quote(o.path.as_str()),
                        quote(alias.as_str())
                    )),
                }
            }
        }
        out
    }
}

/// A spec file problem, located in the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SpecError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is the file as a whole.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

const KEYS: &str = "port, arguments, config, overlays";

struct Parser<'a> {
    file: &'a Path,
}

impl Parser<'_> {
    fn error_at(&self, span: &Span, message: impl Into<String>) -> SpecError {
        let (line, column) = span.start().map_or((0, 0), |m| (m.line(), m.column()));
        SpecError {
            file: self.file.to_owned(),
            line,
            column,
            message: message.into(),
        }
    }

    fn parse(&self, text: &str, root: Option<&StateRoot>) -> Result<Spec, SpecError> {
        if text.trim().is_empty() {
            return Err(self.error_at(
                &Span::new_blank(),
                format!("the spec is empty; it needs at least `port` (keys: {KEYS})"),
            ));
        }
        let options = LoaderOptions::default()
            .error_on_duplicate_keys(true)
            // Marks quoted scalars, so `alias: 'null'` is an alias, not null.
            .prevent_coercion(true)
            .toplevel_mapping();
        let node = marked_yaml::parse_yaml_with_options(0, text, options)
            .map_err(|e| self.load_error(&e))?;
        let map = node
            .as_mapping()
            .ok_or_else(|| self.error_at(node.span(), "the spec must be a mapping"))?;

        let mut port = None;
        let mut arguments = Vec::new();
        let mut config = Vec::new();
        let mut overlays = Vec::new();
        let mut overlay_spans = Vec::new();
        for (key, value) in map.iter() {
            match key.as_str() {
                "port" => {
                    let scalar = self.scalar(value, "port")?;
                    port = Some(
                        Port::parse(scalar.as_str())
                            .map_err(|m| self.error_at(scalar.span(), m))?,
                    );
                }
                "arguments" => {
                    for item in self.sequence(value, "arguments")?.iter() {
                        let arg = self.scalar(item, "each argument")?;
                        check_argument(arg.as_str()).map_err(|m| self.error_at(arg.span(), m))?;
                        arguments.push(arg.as_str().to_owned());
                    }
                }
                "config" => {
                    for item in self.sequence(value, "config")?.iter() {
                        let line = self.scalar(item, "each config line")?;
                        check_config_line(line.as_str())
                            .map_err(|m| self.error_at(line.span(), m))?;
                        config.push(line.as_str().to_owned());
                    }
                }
                "overlays" => {
                    for item in self.sequence(value, "overlays")?.iter() {
                        overlays.push(self.overlay(item, root)?);
                        overlay_spans.push(*item.span());
                    }
                }
                other => {
                    return Err(self.error_at(
                        key.span(),
                        format!("unknown key {other:?}; the spec accepts {KEYS}"),
                    ));
                }
            }
        }
        let port = port.ok_or_else(|| SpecError {
            file: self.file.to_owned(),
            line: 1,
            column: 1,
            message: "`port` is missing; add e.g. `port: 27015` (1024-65535)".to_owned(),
        })?;
        check_overlay_list(&overlays).map_err(|(i, m)| self.error_at(&overlay_spans[i], m))?;
        Ok(Spec {
            port,
            arguments,
            config,
            overlays,
        })
    }

    fn load_error(&self, err: &marked_yaml::LoadError) -> SpecError {
        use marked_yaml::LoadError as E;
        let (marker, message) = match err {
            E::TopLevelMustBeMapping(m) => {
                (*m, format!("the spec must be a mapping with keys {KEYS}"))
            }
            E::TopLevelMustBeSequence(m) => (*m, "unexpected top-level sequence".to_owned()),
            E::UnexpectedAnchor(m) => (*m, "YAML anchors are not supported in specs".to_owned()),
            E::MappingKeyMustBeScalar(m) => (*m, "mapping keys must be plain strings".to_owned()),
            E::UnexpectedTag(m) => (*m, "YAML tags are not supported in specs".to_owned()),
            E::ScanError(m, e) => (*m, format!("YAML syntax error: {}", e.info())),
            E::DuplicateKey(inner) => (
                *inner.key.span().start().expect("loader spans have starts"),
                format!("key {:?} appears twice; keep one", inner.key.as_str()),
            ),
        };
        SpecError {
            file: self.file.to_owned(),
            line: marker.line(),
            column: marker.column(),
            message,
        }
    }

    fn scalar<'n>(&self, node: &'n Node, what: &str) -> Result<&'n MarkedScalarNode, SpecError> {
        node.as_scalar()
            .ok_or_else(|| self.error_at(node.span(), format!("{what} must be a single value")))
    }

    fn sequence<'n>(&self, node: &'n Node, key: &str) -> Result<&'n MarkedSequenceNode, SpecError> {
        if let Some(seq) = node.as_sequence() {
            return Ok(seq);
        }
        Err(self.error_at(
            node.span(),
            format!("`{key}` must be a list (`{key}: []` for none, or one `- item` per line)"),
        ))
    }

    fn overlay(&self, node: &Node, root: Option<&StateRoot>) -> Result<OverlayRef, SpecError> {
        let (path_node, alias) = match node {
            Node::Scalar(scalar) => (scalar, None),
            Node::Mapping(map) => self.overlay_mapping(map)?,
            Node::Sequence(seq) => {
                return Err(self.error_at(
                    seq.span(),
                    "an overlay is a path or a mapping `{path: ..., alias: ...}`, not a list",
                ));
            }
        };
        let path = OverlayPath::parse(path_node.as_str())
            .map_err(|e| self.error_at(path_node.span(), e.to_string()))?;
        if let Some(root) = root {
            root.check_overlay(&path)
                .map_err(|m| self.error_at(path_node.span(), m))?;
        }
        Ok(OverlayRef { path, alias })
    }

    fn overlay_mapping<'n>(
        &self,
        map: &'n MarkedMappingNode,
    ) -> Result<(&'n MarkedScalarNode, Option<Alias>), SpecError> {
        let mut path = None;
        let mut alias = None;
        for (key, value) in map.iter() {
            match key.as_str() {
                "path" => path = Some(self.scalar(value, "`path`")?),
                "alias" => {
                    let scalar = self.scalar(value, "`alias`")?;
                    // The predecessor writes `alias: null` for "no alias".
                    let is_null = scalar.may_coerce()
                        && matches!(scalar.as_str(), "" | "~" | "null" | "Null" | "NULL");
                    if !is_null {
                        alias = Some(
                            Alias::parse(scalar.as_str())
                                .map_err(|m| self.error_at(scalar.span(), m))?,
                        );
                    }
                }
                other => {
                    return Err(self.error_at(
                        key.span(),
                        format!("unknown overlay key {other:?}; an overlay accepts path, alias"),
                    ));
                }
            }
        }
        let path = path.ok_or_else(|| {
            self.error_at(
                map.span(),
                "this overlay has no `path`; add `path: <dir under overlays/>`",
            )
        })?;
        Ok((path, alias))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with(overlays: &[&str]) -> (tempfile::TempDir, StateRoot) {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::new(dir.path()).unwrap();
        root.ensure().unwrap();
        for o in overlays {
            std::fs::create_dir_all(root.overlays().join(o)).unwrap();
        }
        (dir, root)
    }

    fn err(text: &str) -> SpecError {
        let (_d, root) = root_with(&["1", "2"]);
        Spec::parse(text, Path::new("spec.yaml"), Some(&root)).unwrap_err()
    }

    #[test]
    fn loads_a_predecessor_file_unchanged() {
        // yaml.safe_dump output: sorted keys, quoted numeric strings,
        // mapping entries with alias and `alias: null`.
        let text = "arguments:\n- +map\n- c1m1_hotel\n- -tickrate\n- 100\nconfig:\n- 'hostname \"Friends #1\"'\n- sv_cheats 0\noverlays:\n- alias: overlay_1\n  path: '1'\n- '2'\nport: 27015\n";
        let (_d, root) = root_with(&["1", "2"]);
        let spec = Spec::parse(text, Path::new("spec.yaml"), Some(&root)).unwrap();
        assert_eq!(spec.port().get(), 27015);
        assert_eq!(spec.arguments(), ["+map", "c1m1_hotel", "-tickrate", "100"]);
        assert_eq!(spec.config(), ["hostname \"Friends #1\"", "sv_cheats 0"]);
        assert_eq!(spec.overlays()[0].path.as_str(), "1");
        assert_eq!(
            spec.overlays()[0].alias.as_ref().unwrap().as_str(),
            "overlay_1"
        );
        assert_eq!(spec.overlays()[1].alias, None);

        let with_null = "port: 27016\noverlays:\n- {path: '2', alias: null}\n";
        let spec = Spec::parse(with_null, Path::new("s"), Some(&root)).unwrap();
        assert_eq!(spec.overlays()[0].alias, None);
        assert!(spec.arguments().is_empty() && spec.config().is_empty());
    }

    #[test]
    fn yaml_round_trip_preserves_everything() {
        let (_d, root) = root_with(&["1", "ws/2"]);
        let spec = Spec::new(
            Port::new(27020).unwrap(),
            vec!["+map".into(), "c2m1_highway".into()],
            vec![
                "hostname \"a: b\" # not a comment".into(),
                "say 'hi'".into(),
            ],
            vec![
                OverlayRef {
                    path: OverlayPath::parse("1").unwrap(),
                    alias: Some(Alias::parse("null").unwrap()),
                },
                OverlayRef {
                    path: OverlayPath::parse("ws/2").unwrap(),
                    alias: None,
                },
            ],
        )
        .unwrap();
        let again = Spec::parse(&spec.to_yaml(), Path::new("s"), Some(&root)).unwrap();
        assert_eq!(again, spec);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let e = err("port: 27015\nprot: 1\n");
        assert_eq!((e.line, e.column), (2, 1));
        assert_eq!(
            e.to_string(),
            "spec.yaml:2:1: unknown key \"prot\"; the spec accepts port, arguments, config, overlays"
        );
    }

    #[test]
    fn rejects_every_bad_input_with_a_hint() {
        let cases: &[(&str, (usize, usize), &str)] = &[
            ("port: 80\n", (1, 7), "out of range; use 1024-65535"),
            ("port: 70000\n", (1, 7), "out of range"),
            ("port: abc\n", (1, 7), "not a number"),
            ("arguments: []\n", (1, 1), "`port` is missing"),
            ("port: 27015\nport: 27016\n", (2, 1), "appears twice"),
            ("port: 27015\narguments: +map\n", (2, 12), "must be a list"),
            (
                "port: 27015\narguments:\n- \"+hostname My\\nServer\"\n",
                (3, 3),
                "contains a control character",
            ),
            (
                "port: 27015\narguments:\n- +map\n- c1m1_hotel\n- -PORT\n- '27099'\n",
                (5, 3),
                "argument -PORT is set by left4me",
            ),
            (
                "port: 27015\nconfig:\n- [a]\n",
                (3, 3),
                "must be a single value",
            ),
            ("port: 27015\noverlays:\n- /etc\n", (3, 3), "is absolute"),
            (
                "port: 27015\noverlays:\n- 1/../../etc\n",
                (3, 3),
                "contains '..'",
            ),
            ("port: 27015\noverlays:\n- '3'\n", (3, 3), "does not exist"),
            (
                "port: 27015\noverlays:\n- {path: '1', alias: Bad}\n",
                (3, 22),
                "alias \"Bad\" is invalid",
            ),
            (
                "port: 27015\noverlays:\n- {path: '1', alias: ''}\n",
                (3, 22),
                "alias \"\" is invalid",
            ),
            (
                "port: 27015\noverlays:\n- {path: '1', alias: a}\n- {path: '2', alias: a}\n",
                (4, 3),
                "alias \"a\" is used twice",
            ),
            (
                "port: 27015\noverlays:\n- '1'\n- '1'\n",
                (4, 3),
                "listed twice",
            ),
            (
                "port: 27015\noverlays:\n- {alias: a}\n",
                (3, 3),
                "has no `path`",
            ),
            (
                "port: 27015\noverlays:\n- {path: '1', weight: 2}\n",
                (3, 15),
                "unknown overlay key",
            ),
            ("- 1\n", (1, 1), "must be a mapping"),
            ("port: [27015\n", (2, 1), "YAML syntax error"),
            ("", (0, 0), "the spec is empty"),
        ];
        for (text, (line, column), needle) in cases {
            let e = err(text);
            assert!(e.message.contains(needle), "{text:?}: {e}");
            assert_eq!((e.line, e.column), (*line, *column), "{text:?}: {e}");
        }
    }

    #[test]
    fn too_many_overlays_is_refused() {
        let names: Vec<String> = (0..=MAX_OVERLAYS).map(|i| i.to_string()).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let (_d, root) = root_with(&refs);
        let mut text = "port: 27015\noverlays:\n".to_owned();
        for n in &names {
            text.push_str(&format!("- '{n}'\n"));
        }
        let e = Spec::parse(&text, Path::new("s"), Some(&root)).unwrap_err();
        assert!(e.message.contains("at most 499 overlays"), "{e}");
    }

    #[test]
    fn built_specs_are_validated_too() {
        let port = Port::new(27015).unwrap();
        assert!(Spec::new(port, vec!["a\0b".into()], vec![], vec![]).is_err());
        assert!(Spec::new(port, vec!["My Cool Server".into()], vec![], vec![]).is_ok());
        assert!(Spec::new(port, vec![], vec!["x\ny".into()], vec![]).is_err());
        assert!(Port::new(1023).is_err());
    }
}
