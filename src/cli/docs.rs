//! `heatscaler completions SHELL` and `heatscaler man`: shell completion
//! scripts and man pages generated from the command-line definition itself,
//! so they never drift from it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;

/// Arguments of `heatscaler completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionArgs {
    /// The shell to complete for; the script goes to standard output, e.g.
    /// `heatscaler completions bash > /usr/share/bash-completion/completions/heatscaler`.
    shell: clap_complete::Shell,
}

/// Arguments of `heatscaler man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write heatscaler.8 and one page per subcommand (heatscaler-run.8, ...)
    /// into this directory instead of printing heatscaler.8 to standard output.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// The section of the pages: a system daemon's (the unit's `Documentation=man:heatscaler(8)`).
pub const MAN_SECTION: &str = "8";

pub fn completions(args: CompletionArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = super::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "heatscaler", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

pub fn man(args: ManArgs) -> anyhow::Result<ExitCode> {
    let cmd = super::Cli::command();
    match args.dir {
        None => {
            let mut out = std::io::stdout().lock();
            render(&cmd, &mut out).context("write the man page")?;
            out.flush().context("write the man page")?;
        }
        Some(dir) => write_pages(&cmd, &dir)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn render(cmd: &clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
    clap_mangen::Man::new(cmd.clone()).section(MAN_SECTION).render(out)
}

/// `heatscaler.8`, then `heatscaler-SUB.8` for each subcommand (named as
/// `man heatscaler-run` finds them).
fn write_pages(cmd: &clap::Command, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let write = |name: &str, cmd: &clap::Command| -> anyhow::Result<()> {
        let path = dir.join(format!("{name}.{MAN_SECTION}"));
        let mut buf = Vec::new();
        render(cmd, &mut buf)?;
        std::fs::write(&path, buf).with_context(|| format!("write {}", path.display()))
    };
    write("heatscaler", cmd)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("heatscaler-{}", sub.get_name());
        // Synopsis `heatscaler run ...`, title `heatscaler-run`.
        let page = sub.clone().display_name(name.clone()).bin_name(format!("heatscaler {}", sub.get_name()));
        write(&name, &page)?;
    }
    Ok(())
}
