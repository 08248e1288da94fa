//! Script overlays: saving a script and queueing its build, rebuilding
//! from scratch, running a build job's host side, and the example
//! scripts left4me ships (embedded here, and in the package under
//! `/usr/share/left4me/scripts/`), which admins add as shared overlays
//! from the page or with `left4me overlays seed DIR`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use left4me_host::events::Ctx;
use left4me_host::layout::StateRoot;
use left4me_host::sandbox::Sandbox;
use left4me_host::scripts::{ScriptBuild, ScriptError, build_script_overlay};
use left4me_host::versions::VersionInfo;
use left4me_store::{Overlay, ScriptEdit, ScriptRun, Store};

use crate::config::Config;
use crate::domain::DisplayName;
use crate::runner::Actor as Requester;
use crate::spec_builder::overlay_path;

/// The sandbox script builds run in, and what they must not see.
#[derive(Debug, Clone)]
pub struct ScriptBuilder {
    sandbox: Arc<dyn Sandbox>,
    /// The database's folder when it is not in the state root (which the
    /// sandbox hides anyway).
    hidden: Vec<PathBuf>,
}

impl ScriptBuilder {
    pub fn new(config: &Config) -> Self {
        let database = config.database_path();
        let hidden = database
            .parent()
            .filter(|dir| !dir.starts_with(&config.root))
            .map(Path::to_path_buf)
            .into_iter()
            .collect();
        Self {
            sandbox: Arc::from(config.sandbox()),
            hidden,
        }
    }

    /// Runs a build of overlay `overlay_id` on this (blocking) thread; a
    /// new version is published only when the script succeeds.
    pub fn build(
        &self,
        root: &StateRoot,
        overlay_id: i64,
        run: &ScriptRun,
        build_id: String,
        ctx: &Ctx<'_>,
    ) -> Result<VersionInfo, ScriptError> {
        let build = ScriptBuild {
            overlay: &overlay_path(overlay_id),
            script: &run.script,
            from_scratch: run.from_scratch,
            build_id,
            hidden: &self.hidden,
        };
        build_script_overlay(root, self.sandbox.as_ref(), &build, ctx)
    }
}

/// The longest script the panel keeps (a build script, not a payload).
pub const SCRIPT_LIMIT: usize = 256 * 1024;
/// The longest description, in characters.
pub const DESCRIPTION_LIMIT: usize = 300;

/// The example scripts in `deploy/scripts/`: file stem and text.
const BUNDLED: [(&str, &str); 2] = [
    (
        "sourcemod-metamod",
        include_str!("../../../deploy/scripts/sourcemod-metamod.sh"),
    ),
    (
        "tickrate-100",
        include_str!("../../../deploy/scripts/tickrate-100.sh"),
    ),
];

/// A script a user entered, checked: line ends made Unix ones (bash
/// reads a `\r` as part of the command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptText {
    pub script: String,
    pub description: String,
}

/// What is wrong with an entered script, by form field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptInputError {
    #[error("write a script: it builds the overlay")]
    EmptyScript,
    #[error("the script is longer than {} KiB", SCRIPT_LIMIT / 1024)]
    LongScript,
    #[error("one line of at most {DESCRIPTION_LIMIT} characters")]
    BadDescription,
}

impl ScriptInputError {
    /// The form field it concerns.
    pub fn field(&self) -> &'static str {
        match self {
            Self::EmptyScript | Self::LongScript => "script",
            Self::BadDescription => "description",
        }
    }
}

impl ScriptText {
    /// Every mistake, so the form names them all at once.
    pub fn parse(script: &str, description: &str) -> Result<Self, Vec<ScriptInputError>> {
        let script = script.replace("\r\n", "\n");
        let description = description.trim();
        let mut errors = Vec::new();
        if script.trim().is_empty() {
            errors.push(ScriptInputError::EmptyScript);
        } else if script.len() > SCRIPT_LIMIT {
            errors.push(ScriptInputError::LongScript);
        }
        if description.contains(['\n', '\r']) || description.chars().count() > DESCRIPTION_LIMIT {
            errors.push(ScriptInputError::BadDescription);
        }
        if errors.is_empty() {
            Ok(Self {
                script,
                description: description.to_owned(),
            })
        } else {
            Err(errors)
        }
    }
}

/// A script to add as an overlay: its name from the file's stem, its
/// description from a `# description: ...` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub name: DisplayName,
    pub description: String,
    pub script: String,
}

impl Example {
    /// Refused (saying why) when the stem is no overlay name.
    pub fn new(stem: &str, script: &str) -> Result<Self, String> {
        let name = DisplayName::parse(stem).map_err(|why| format!("{stem:?}: {why}"))?;
        let description = script
            .lines()
            .find_map(|l| l.trim().strip_prefix("# description:"))
            .unwrap_or_default()
            .trim()
            .to_owned();
        Ok(Self {
            name,
            description,
            script: script.to_owned(),
        })
    }
}

/// The examples built into this binary.
pub fn bundled() -> Vec<Example> {
    BUNDLED
        .iter()
        .map(|(stem, script)| Example::new(stem, script).expect("a bundled example's name"))
        .collect()
}

/// The `*.sh` files of `dir`, by name; a file whose name is no overlay
/// name is an error that names it.
pub fn examples_in(dir: &Path) -> std::io::Result<Vec<Example>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "sh") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let stem = path.file_stem().unwrap_or_default().to_string_lossy();
            Example::new(&stem, &std::fs::read_to_string(path)?)
                .map_err(|why| std::io::Error::new(std::io::ErrorKind::InvalidData, why))
        })
        .collect()
}

/// What seeding did.
#[derive(Debug, Default)]
pub struct Seeded {
    pub created: Vec<Overlay>,
    /// Names of the examples a script overlay already had: left as they are.
    pub kept: Vec<String>,
}

/// Adds each example as a shared script overlay owned by `owner_id`,
/// unless a script overlay of its name exists (which is left alone, so
/// seeding twice changes nothing). Nothing is built: an admin reads a
/// script before it runs on the host.
pub async fn seed(
    store: &Store,
    requester: Requester<'_>,
    owner_id: i64,
    examples: &[Example],
) -> left4me_store::Result<Seeded> {
    let mut seeded = Seeded::default();
    for example in examples {
        let edit = ScriptEdit {
            script: &example.script,
            description: &example.description,
            from_previous: false,
        };
        // Each with its activity line, in one transaction.
        let mut write = store.write().await?;
        match write
            .seed_script_overlay(owner_id, example.name.as_str(), edit)
            .await?
        {
            Some(overlay) => {
                let detail = format!("created script overlay {} from an example", overlay.name);
                write
                    .record_activity(
                        requester.id(),
                        requester.name(),
                        None,
                        "overlay.create",
                        &detail,
                    )
                    .await?;
                write.commit().await?;
                seeded.created.push(overlay);
            }
            None => seeded.kept.push(example.name.as_str().to_owned()),
        }
    }
    Ok(seeded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_examples_name_and_describe_themselves() {
        let examples = bundled();
        let names: Vec<&str> = examples.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["sourcemod-metamod", "tickrate-100"]);
        for e in &examples {
            assert!(!e.description.is_empty(), "{}", e.name.as_str());
            assert!(
                e.script.contains("set -euo pipefail"),
                "{}",
                e.name.as_str()
            );
        }
        assert_eq!(Example::new("x", "echo").unwrap().description, "");
        assert!(
            Example::new(" ", "echo").is_err(),
            "a stem that is no overlay name"
        );
    }

    #[test]
    fn entered_scripts_get_unix_line_ends_and_every_mistake_is_named() {
        let text = ScriptText::parse("echo a\r\necho b\r\n", "  tick  ").unwrap();
        assert_eq!(text.script, "echo a\necho b\n");
        assert_eq!(text.description, "tick");
        assert_eq!(
            ScriptText::parse(" \n", "two\nlines"),
            Err(vec![
                ScriptInputError::EmptyScript,
                ScriptInputError::BadDescription
            ])
        );
        let long = "#".repeat(SCRIPT_LIMIT + 1);
        assert_eq!(
            ScriptText::parse(&long, ""),
            Err(vec![ScriptInputError::LongScript])
        );
    }
}
