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
            let verdict = format!("{}: valid ({} node group(s))", path.display(), config.node_groups.len());
            if args.print {
                // Standard output is the configuration alone (to pipe or save); the verdict goes beside it.
                print!("{}", heatscaler_core::yaml::to_string(&config)?);
                eprintln!("{verdict}");
            } else {
                println!("{verdict}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprintln!("{errors}");
            Ok(ExitCode::FAILURE)
        }
    }
}
