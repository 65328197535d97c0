//! Build-time settings: the NAS URL and credentials come from the
//! environment of the build (never from the source), and the board build
//! gets its linker scripts.

fn main() {
    for var in [
        "NASLINK_URL",
        "NASLINK_USER",
        "NASLINK_PASSWORD",
        "NASLINK_TOKEN",
        "NASLINK_POLL_SECS",
        "NASLINK_TLS_PIN_SHA256",
        "NASLINK_TLS_INSECURE",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    if std::env::var_os("CARGO_FEATURE_BOARD").is_some() {
        println!("cargo:rustc-link-arg-bins=--nmagic");
        println!("cargo:rustc-link-arg-bins=-Tlink.x");
        println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    }
}
