//! `naslink`: the command-line program for NAS owners.
//!
//! **Not implemented yet**: it arrives with the tokio adapter. Running it
//! today says so and exits with status 2 instead of pretending to work.

fn main() {
    eprintln!("naslink: the command-line program is not implemented yet (see README.md)");
    std::process::exit(2);
}
