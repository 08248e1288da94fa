//! `instance.env`: what a supervisor needs to run an instance, in a format
//! both a systemd `EnvironmentFile=` and the predecessor understand.
//!
//! ```text
//! L4D2_PORT=27015
//! L4D2_ARGS="+map c1m1_hotel +hostname 'My Cool Server'"
//! L4D2_LOWERDIRS=/var/lib/left4me/overlays/1:/var/lib/left4me/installation/v/2:/var/lib/left4me/installation/v/1
//! ```
//!
//! `L4D2_ARGS` holds the arguments as POSIX shell words, so one with a
//! space stays one argument; the predecessor's plain space-separated words
//! read the same. The game's command line is built from the parsed list
//! (`supervisor::game_command`), never by systemd from the raw value.

use std::path::Path;

use crate::layer::{Layer, OverlayPath};
use crate::layout::StateRoot;
use crate::spec::{Port, Spec};
use crate::versions::Version;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceEnv {
    pub port: Port,
    pub arguments: Vec<String>,
    /// Top to bottom; the installation's layers are last.
    pub lowers: Vec<Layer>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct InstanceEnvError {
    pub file: String,
    pub message: String,
}

impl InstanceEnv {
    /// The spec's overlays, each as the snapshot version in `overlays`
    /// (in the spec's order), on the layers of `installation` (a version's
    /// stack, top first).
    pub fn from_spec(spec: &Spec, overlays: &[Version], installation: &[Version]) -> Self {
        let mut lowers: Vec<Layer> = spec
            .overlays()
            .iter()
            .zip(overlays)
            .map(|(o, v)| Layer::OverlayVersion(o.path.clone(), *v))
            .collect();
        lowers.extend(installation.iter().copied().map(Layer::Installation));
        Self {
            port: spec.port(),
            arguments: spec.arguments().to_vec(),
            lowers,
        }
    }

    pub fn render(&self, root: &StateRoot) -> String {
        let lowers: Vec<String> = self
            .lowers
            .iter()
            .map(|l| root.layer(l).display().to_string())
            .collect();
        format!(
            "L4D2_PORT={}\nL4D2_ARGS={}\nL4D2_LOWERDIRS={}\n",
            self.port,
            quote(
                &shlex::try_join(self.arguments.iter().map(String::as_str))
                    .expect("spec arguments hold no NUL (checked by check_argument)")
            ),
            lowers.join(":")
        )
    }

    /// Parses the file, mapping each lower directory back to a layer below
    /// `root`; anything outside `overlays/` and `installation/v/` is
    /// refused.
    pub fn parse(text: &str, file: &Path, root: &StateRoot) -> Result<Self, InstanceEnvError> {
        let fail = |message: String| InstanceEnvError {
            file: file.display().to_string(),
            message,
        };
        let (mut port, mut args, mut lowers) = (None, None, None);
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(fail(format!("line {line:?} is not KEY=VALUE")));
            };
            let value = unquote(value.trim());
            match key.trim() {
                "L4D2_PORT" => {
                    let n: u16 = value
                        .parse()
                        .map_err(|_| fail(format!("L4D2_PORT {value:?} is not a port")))?;
                    port = Some(Port::new(n).map_err(fail)?);
                }
                "L4D2_ARGS" => {
                    args = Some(shlex::split(&value).ok_or_else(|| {
                        fail(format!(
                            "L4D2_ARGS {value:?} has an unbalanced quote or a trailing backslash"
                        ))
                    })?);
                }
                "L4D2_LOWERDIRS" => {
                    let layers = value
                        .split(':')
                        .map(|dir| layer_of(dir, root).map_err(&fail))
                        .collect::<Result<Vec<_>, _>>()?;
                    lowers = Some(layers);
                }
                _ => {}
            }
        }
        let lowers: Vec<Layer> = lowers.ok_or_else(|| fail("L4D2_LOWERDIRS is missing".into()))?;
        let overlays = lowers.iter().take_while(|l| !l.is_installation()).count();
        if overlays == lowers.len() || lowers[overlays..].iter().any(|l| !l.is_installation()) {
            return Err(fail(
                "L4D2_LOWERDIRS must end with the installation's layers".into(),
            ));
        }
        Ok(Self {
            port: port.ok_or_else(|| fail("L4D2_PORT is missing".into()))?,
            arguments: args.unwrap_or_default(),
            lowers,
        })
    }

    pub fn load(file: &Path, root: &StateRoot) -> Result<Self, InstanceEnvError> {
        let text = std::fs::read_to_string(file).map_err(|e| InstanceEnvError {
            file: file.display().to_string(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, file, root)
    }
}

pub(crate) fn layer_of(dir: &str, root: &StateRoot) -> Result<Layer, String> {
    let path = Path::new(dir);
    // Written before the installation was versioned: that tree became
    // version 1 (`versions::adopt_flat_installation`).
    if path == root.installation() {
        return Ok(Layer::Installation(1));
    }
    if let Some(version) = path
        .strip_prefix(root.installation().join("v"))
        .ok()
        .and_then(Path::to_str)
        .and_then(|n| n.parse().ok())
    {
        return Ok(Layer::Installation(version));
    }
    if let Some(layer) = path
        .strip_prefix(root.overlay_versions_root())
        .ok()
        .and_then(|rest| {
            let version = rest.file_name()?.to_str()?.parse().ok()?;
            let base = rest.parent()?;
            (base.file_name()? == "v").then_some(())?;
            let overlay = OverlayPath::parse(base.parent()?.to_str()?).ok()?;
            Some(Layer::OverlayVersion(overlay, version))
        })
    {
        return Ok(layer);
    }
    path.strip_prefix(root.overlays())
        .ok()
        .and_then(Path::to_str)
        .and_then(|rel| OverlayPath::parse(rel).ok())
        .map(Layer::Overlay)
        .ok_or_else(|| {
            format!(
                "lower directory {dir:?} is neither the installation nor below {}",
                root.overlays().display()
            )
        })
}

/// Double-quotes a value for systemd's `EnvironmentFile=`, which strips the
/// quotes and honours backslash escapes inside them.
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Reverses [`quote`]; unquoted values (the predecessor's) pass through.
fn unquote(value: &str) -> String {
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return value.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Alias, OverlayRef};

    #[test]
    fn renders_and_parses_back() {
        let root = StateRoot::new("/var/lib/left4me").unwrap();
        let spec = Spec::new(
            Port::new(27016).unwrap(),
            vec![
                "+map".into(),
                "c1m1_hotel".into(),
                "+sv_tags=\"x$y\"".into(),
                "+hostname".into(),
                "My Cool Server".into(),
                "#not-a-comment".into(),
            ],
            vec![],
            vec![OverlayRef {
                path: OverlayPath::parse("ws/1").unwrap(),
                alias: Some(Alias::parse("a").unwrap()),
            }],
        )
        .unwrap();
        let env = InstanceEnv::from_spec(&spec, &[3], &[2, 1]);
        let text = env.render(&root);
        assert_eq!(
            text,
            "L4D2_PORT=27016\nL4D2_ARGS=\"+map c1m1_hotel '+sv_tags=\\\"x\\$y\\\"' +hostname 'My Cool Server' '#not-a-comment'\"\nL4D2_LOWERDIRS=/var/lib/left4me/overlay-versions/ws/1/v/3:/var/lib/left4me/installation/v/2:/var/lib/left4me/installation/v/1\n"
        );
        assert_eq!(
            InstanceEnv::parse(&text, Path::new("e"), &root).unwrap(),
            env
        );
    }

    #[test]
    fn reads_the_predecessors_unquoted_file() {
        let root = StateRoot::new("/var/lib/left4me").unwrap();
        let text = "L4D2_PORT=27015\nL4D2_ARGS=+map c1m1_hotel\nL4D2_LOWERDIRS=/var/lib/left4me/overlays/3:/var/lib/left4me/installation\n";
        let env = InstanceEnv::parse(text, Path::new("e"), &root).unwrap();
        assert_eq!(env.arguments, ["+map", "c1m1_hotel"]);
        // The flat installation of old became version 1.
        assert_eq!(env.lowers[1], Layer::Installation(1));
    }

    #[test]
    fn refuses_unbalanced_quotes() {
        let root = StateRoot::new("/var/lib/left4me").unwrap();
        let text = "L4D2_PORT=27015\nL4D2_ARGS=\"+hostname 'x\"\nL4D2_LOWERDIRS=/var/lib/left4me/installation\n";
        let err = InstanceEnv::parse(text, Path::new("e"), &root).unwrap_err();
        assert!(err.message.contains("unbalanced quote"), "{err}");
    }

    #[test]
    fn refuses_layers_outside_the_root() {
        let root = StateRoot::new("/var/lib/left4me").unwrap();
        for dirs in [
            "/etc:/var/lib/left4me/installation",
            "/var/lib/left4me/overlays/../../../etc:/var/lib/left4me/installation",
            "/var/lib/left4me/overlays/1",
        ] {
            let text = format!("L4D2_PORT=27015\nL4D2_LOWERDIRS={dirs}\n");
            assert!(
                InstanceEnv::parse(&text, Path::new("e"), &root).is_err(),
                "{dirs}"
            );
        }
    }
}
