//! The fnos emulator (under construction).

/// Command-line flags of `naslink-sim fnos`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run the emulator from the command line until interrupted.
pub async fn run_cli(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("the fnos emulator is not implemented yet")
}
