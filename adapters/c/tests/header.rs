//! `include/naslink.h` is generated from the sources by cbindgen and
//! checked in; this test regenerates it and fails when the checked-in copy
//! is stale. `NASLINK_BLESS=1` writes the new header instead.

use std::path::Path;

#[test]
fn checked_in_header_matches_the_sources() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("UTF-8 header");
    let path = dir.join("include/naslink.h");
    if std::env::var_os("NASLINK_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write header");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "adapters/c/include/naslink.h is stale: run \
         NASLINK_BLESS=1 cargo test -p naslink-capi --test header and commit it"
    );
}
