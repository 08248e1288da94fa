//! The build ids in steamcmd's Valve KeyValues text: the installed one in
//! `steamapps/appmanifest_222860.acf`, the public one in `app_info_print`.

use std::path::{Path, PathBuf};

use keyvalues_parser::{Obj, Value};

use super::APP_ID;

fn manifest(dir: &Path) -> PathBuf {
    dir.join("steamapps")
        .join(format!("appmanifest_{APP_ID}.acf"))
}

/// The string at `path` below `obj`.
fn lookup(obj: &Obj<'_>, path: &[&str]) -> Option<String> {
    let (first, rest) = path.split_first()?;
    let value = obj.get(*first)?.first()?;
    match (value, rest.is_empty()) {
        (Value::Str(s), true) => Some(s.to_string()),
        (Value::Obj(inner), false) => lookup(inner, rest),
        _ => None,
    }
}

/// The build id of the installed app in `dir`, if steamcmd finished an
/// install there (`StateFlags` 4: fully installed).
pub(super) fn installed_build(dir: &Path) -> Option<String> {
    manifest_build(&std::fs::read_to_string(manifest(dir)).ok()?)
}

/// The build id an app manifest's text names, if fully installed.
pub(super) fn manifest_build(text: &str) -> Option<String> {
    let vdf = keyvalues_parser::parse(text).ok()?.into_vdf();
    let state = vdf.value.get_obj()?;
    if lookup(state, &["StateFlags"])? != "4" {
        return None;
    }
    lookup(state, &["buildid"]).filter(|b| b != "0")
}

/// The public branch's build id in `+app_info_print` output, if the app's
/// section is there (steamcmd sometimes prints none).
pub(super) fn public_build(output: &str) -> Option<String> {
    let start = output.find(&format!("\"{APP_ID}\""))?;
    // Only the app's section: steamcmd goes on printing after it.
    let mut depth = 0usize;
    let mut end = None;
    for (i, c) in output[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    end = Some(start + i + 1);
                    break;
                }
            }
            _ => {}
        }
    }
    let vdf = keyvalues_parser::parse(&output[start..end?])
        .ok()?
        .into_vdf();
    lookup(
        vdf.value.get_obj()?,
        &["depots", "branches", "public", "buildid"],
    )
}

/// The second "Invalid platform" workaround: an appmanifest that says the
/// app needs an update, so steamcmd takes the install as an update.
pub(super) fn seed_manifest(dir: &Path) -> std::io::Result<()> {
    let file = manifest(dir);
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(
        file,
        format!(
            "\"AppState\"\n{{\n\t\"appid\"\t\t\"{APP_ID}\"\n\t\"Universe\"\t\t\"1\"\n\
             \t\"StateFlags\"\t\t\"2\"\n\t\"installdir\"\t\t\"Left 4 Dead 2 Dedicated Server\"\n\
             \t\"buildid\"\t\t\"0\"\n\t\"InstalledDepots\"\n\t{{\n\t}}\n}}\n"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_public_build_from_app_info_print() {
        let output = "Loading Steam API...OK\nAppID : 222860, change number : 1/0\n\
            \"222860\"\n{\n\t\"common\"\n\t{\n\t\t\"name\"\t\t\"Left 4 Dead 2 Dedicated Server\"\n\t}\n\
            \t\"depots\"\n\t{\n\t\t\"branches\"\n\t\t{\n\t\t\t\"public\"\n\t\t\t{\n\
            \t\t\t\t\"buildid\"\t\t\"1002\"\n\t\t\t}\n\t\t}\n\t}\n}\nUnloading Steam API...OK\n";
        assert_eq!(public_build(output).as_deref(), Some("1002"));
        assert_eq!(public_build("Loading Steam API...OK\n"), None);
    }

    #[test]
    fn reads_and_seeds_the_appmanifest() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(installed_build(dir.path()), None);
        seed_manifest(dir.path()).unwrap();
        assert_eq!(installed_build(dir.path()), None, "seeded is not installed");
        std::fs::write(
            manifest(dir.path()),
            "\"AppState\"\n{\n\t\"appid\"\t\"222860\"\n\t\"StateFlags\"\t\"4\"\n\t\"buildid\"\t\"1001\"\n}\n",
        )
        .unwrap();
        assert_eq!(installed_build(dir.path()).as_deref(), Some("1001"));
    }
}
