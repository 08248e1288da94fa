//! Real overlayfs mounts. These need root (CAP_SYS_ADMIN); without it they
//! fail loudly rather than skip.

use std::fs;
use std::path::{Path, PathBuf};

use left4me_host::layer::{Layer, OverlayPath};
use left4me_host::layout::StateRoot;
use left4me_host::mount::{self, MountApi, MountError, MountState, OverlaySpec};

fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test mounts overlayfs and must run as root (CI runs it as root); it does not skip"
    );
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: StateRoot,
}

impl Fixture {
    fn new() -> Self {
        require_root();
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::new(dir.path()).unwrap();
        root.ensure().unwrap();
        // Every stack ends with the installation's first layer.
        fs::create_dir_all(root.layer(&Layer::Installation(1))).unwrap();
        Self { _dir: dir, root }
    }

    fn overlay(&self, name: &str, files: &[(&str, &str)]) -> Layer {
        let path = OverlayPath::parse(name).unwrap();
        write_files(&self.root.overlay(&path), files);
        Layer::Overlay(path)
    }

    fn spec(&self, lowers: Vec<Layer>) -> OverlaySpec {
        let rt = Path::new("runtime/t");
        for d in ["upper", "work", "merged"] {
            fs::create_dir_all(self.root.path().join(rt).join(d)).unwrap();
        }
        OverlaySpec {
            lowers,
            upper: rt.join("upper"),
            work: rt.join("work"),
            target: rt.join("merged"),
        }
    }

    fn merged(&self) -> PathBuf {
        self.root.path().join("runtime/t/merged")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = mount::unmount(&self.merged());
    }
}

fn write_files(dir: &Path, files: &[(&str, &str)]) {
    fs::create_dir_all(dir).unwrap();
    for (rel, content) in files {
        let path = dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
}

fn read(path: PathBuf) -> String {
    fs::read_to_string(path).unwrap()
}

fn precedence_with(api: MountApi) {
    let fx = Fixture::new();
    write_files(
        &fx.root.layer(&Layer::Installation(1)),
        &[
            ("a.txt", "install"),
            ("b.txt", "install"),
            ("c.txt", "install"),
            ("d.txt", "install"),
        ],
    );
    let one = fx.overlay("1", &[("a.txt", "one")]);
    let two = fx.overlay("2", &[("a.txt", "two"), ("b.txt", "two")]);
    let three = fx.overlay(
        "3",
        &[("a.txt", "three"), ("b.txt", "three"), ("c.txt", "three")],
    );
    let spec = fx.spec(vec![one, two, three, Layer::Installation(1)]);
    assert_eq!(
        mount::mount_state(&fx.root, &spec).unwrap(),
        MountState::NotMounted
    );
    mount::mount(&fx.root, &spec, api).unwrap();

    let m = fx.merged();
    assert_eq!(read(m.join("a.txt")), "one", "first overlay wins");
    assert_eq!(read(m.join("b.txt")), "two");
    assert_eq!(read(m.join("c.txt")), "three");
    assert_eq!(
        read(m.join("d.txt")),
        "install",
        "installation is the bottom"
    );
    assert_eq!(
        mount::mount_state(&fx.root, &spec).unwrap(),
        MountState::Ours
    );

    // Writes land in upper, never in a lower layer.
    fs::write(m.join("a.txt"), "written").unwrap();
    assert_eq!(
        read(fx.root.path().join("runtime/t/upper/a.txt")),
        "written"
    );
    assert_eq!(read(fx.root.path().join("overlays/1/a.txt")), "one");

    assert!(mount::unmount(&m).unwrap());
    assert!(!mount::unmount(&m).unwrap(), "second unmount is a no-op");
    assert_eq!(
        mount::mount_state(&fx.root, &spec).unwrap(),
        MountState::NotMounted
    );
}

#[test]
fn layer_precedence_new_api_with_descriptors() {
    precedence_with(MountApi::NewWithFds);
}

#[test]
fn layer_precedence_new_api_with_paths() {
    precedence_with(MountApi::NewWithPaths);
}

#[test]
fn layer_precedence_legacy_mount() {
    precedence_with(MountApi::Legacy);
}

#[test]
fn five_hundred_layers_mount_and_501_are_refused() {
    let fx = Fixture::new();
    write_files(
        &fx.root.layer(&Layer::Installation(1)),
        &[("base.txt", "install")],
    );
    let mut lowers: Vec<Layer> = (0..499)
        .map(|i| fx.overlay(&format!("layer-{i:03}"), &[(&format!("f{i}.txt"), "x")]))
        .collect();
    lowers.push(Layer::Installation(1));
    let spec = fx.spec(lowers.clone());
    mount::mount(&fx.root, &spec, MountApi::Auto).unwrap();
    assert!(fx.merged().join("f0.txt").exists());
    assert!(fx.merged().join("f498.txt").exists());
    assert!(fx.merged().join("base.txt").exists());
    assert_eq!(
        mount::mount_state(&fx.root, &spec).unwrap(),
        MountState::Ours
    );
    mount::unmount(&fx.merged()).unwrap();

    lowers.insert(0, fx.overlay("one-too-many", &[]));
    let err = mount::mount(&fx.root, &fx.spec(lowers), MountApi::Auto).unwrap_err();
    assert!(
        matches!(err, MountError::TooManyLayers { count: 501 }),
        "{err}"
    );
}

#[test]
fn legacy_options_that_do_not_fit_a_page_are_refused_before_the_kernel() {
    let fx = Fixture::new();
    let lowers: Vec<Layer> = (0..200)
        .map(|i| fx.overlay(&format!("a-rather-long-overlay-directory-name-{i:03}"), &[]))
        .collect();
    let spec = fx.spec(lowers);
    let err = mount::mount(&fx.root, &spec, MountApi::Legacy).unwrap_err();
    assert!(matches!(err, MountError::OptionsTooLong { .. }), "{err}");
    assert!(err.to_string().contains("more than the 4095"), "{err}");
    assert_eq!(
        mount::mount_state(&fx.root, &spec).unwrap(),
        MountState::NotMounted
    );
    // The new API takes the same stack.
    mount::mount(&fx.root, &spec, MountApi::Auto).unwrap();
}

#[test]
fn symlinked_layers_are_refused() {
    let fx = Fixture::new();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), fx.root.overlays().join("sneaky")).unwrap();
    let spec = fx.spec(vec![
        Layer::Overlay(OverlayPath::parse("sneaky").unwrap()),
        Layer::Installation(1),
    ]);
    let err = mount::mount(&fx.root, &spec, MountApi::Auto).unwrap_err();
    assert!(matches!(err, MountError::Open { .. }), "{err}");
    assert!(err.to_string().contains("no symlinks"), "{err}");
}

#[test]
fn a_mount_with_other_layers_is_foreign() {
    let fx = Fixture::new();
    let one = fx.overlay("1", &[]);
    let two = fx.overlay("2", &[]);
    let spec = fx.spec(vec![one.clone(), Layer::Installation(1)]);
    mount::mount(&fx.root, &spec, MountApi::Auto).unwrap();
    let other = fx.spec(vec![two, one, Layer::Installation(1)]);
    assert_eq!(
        mount::mount_state(&fx.root, &other).unwrap(),
        MountState::Foreign
    );
}

#[test]
fn kernel_refusals_name_the_step_and_errno() {
    let fx = Fixture::new();
    let one = fx.overlay("1", &[]);
    let mut spec = fx.spec(vec![one, Layer::Installation(1)]);
    // overlayfs wants separate upper and work directories.
    spec.work = spec.upper.clone();
    let err = mount::mount(&fx.root, &spec, MountApi::NewWithFds).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("overlayfs refused the mount: create:"),
        "{text}"
    );
    assert!(text.contains("Invalid argument"), "{text}");
}
