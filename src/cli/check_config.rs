use std::path::Path;
use std::process::ExitCode;

/// Arguments of `heatscaler check-config`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the effective configuration (defaults filled in; secrets shown as their source).
    #[arg(long)]
    print: bool,
}

pub fn run(path: &Path, args: Args) -> anyhow::Result<ExitCode> {
    match heatscaler_daemon::config::load(path) {
        Ok(config) => {
            if args.print {
                print!("{}", heatscaler_core::yaml::to_string(&config)?);
            }
            println!("{}: valid ({} node group(s))", path.display(), config.node_groups.len());
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprintln!("{errors}");
            Ok(ExitCode::FAILURE)
        }
    }
}
