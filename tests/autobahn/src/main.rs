//! Autobahn fuzzingserver client driver (under construction).

fn main() {
    eprintln!("naslink-autobahn: driver not implemented yet");
    std::process::exit(2);
}
