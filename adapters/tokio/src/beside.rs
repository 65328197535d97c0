//! Where the files a transfer keeps beside its target go: the target's
//! folder (`.` for a bare name) and the name the hidden files are made from.

use std::path::Path;

/// The folder holding `target` and its file name (`download` when it has
/// none), for the temporary and partial files written beside it.
pub(crate) fn folder_and_name(target: &Path) -> (&Path, String) {
    let folder = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".into());
    (folder, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_name_lives_in_the_current_folder() {
        assert_eq!(
            folder_and_name(Path::new("a.bin")),
            (Path::new("."), "a.bin".into())
        );
        assert_eq!(
            folder_and_name(Path::new("d/a.bin")),
            (Path::new("d"), "a.bin".into())
        );
        assert_eq!(folder_and_name(Path::new("/")).1, "download");
    }
}
