//! Writes Signet's CRDs as YAML, one file per kind, to `charts/signet/crds/` (or the folder
//! given as the first argument), and the API reference generated from them to
//! `docs/reference.md`.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/signet/crds"));
    std::fs::create_dir_all(&dir)?;
    for crd in signet_crds::crd::all() {
        let path = dir.join(signet_crds::crd::file_name(&crd));
        std::fs::write(&path, signet_crds::crd::to_yaml(&crd))?;
        println!("wrote {}", path.display());
    }
    let reference = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/reference.md");
    std::fs::write(
        &reference,
        signet_crds::reference::markdown(&signet_crds::crd::all()),
    )?;
    println!("wrote {}", reference.display());
    Ok(())
}
