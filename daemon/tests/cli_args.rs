//! The command-line definition itself: clap's consistency checks, global flags in either
//! position, and which source flags count as given on the command line.
#![allow(clippy::unwrap_used)]
use clap::{CommandFactory, FromArgMatches};
use routewarden::cli::journal::ExplicitSource;
use routewarden::cli::{Cli, Command, JournalCommand, Output};

fn parse(args: &[&str]) -> (Cli, ExplicitSource) {
    let m = Cli::command().try_get_matches_from(args).unwrap();
    let explicit = ExplicitSource::from_matches(m.subcommand_matches("journal").unwrap());
    (Cli::from_arg_matches(&m).unwrap(), explicit)
}

#[test]
fn the_command_line_definition_passes_clap_debug_assert() {
    Cli::command().debug_assert();
}

#[test]
fn global_journal_flags_work_before_and_after_the_subcommand() {
    for args in [
        &["routewarden", "journal", "-o", "json", "--dir", "/j", "summary"][..],
        &["routewarden", "journal", "summary", "-o", "json", "--dir", "/j"][..],
    ] {
        let (cli, explicit) = parse(args);
        let Command::Journal(j) = cli.command else { panic!("not journal: {args:?}") };
        assert_eq!(j.output, Output::Json, "{args:?}");
        assert_eq!(j.dir.to_str(), Some("/j"), "{args:?}");
        assert!(matches!(j.command, JournalCommand::Summary));
        assert!(explicit.dir && !explicit.admin, "{args:?}");
    }
}

#[test]
fn a_defaulted_dir_does_not_count_as_given() {
    let (_, explicit) = parse(&["routewarden", "journal", "--admin", "http://127.0.0.1:9443", "events", "--follow"]);
    assert!(explicit.admin && !explicit.dir);
}

#[test]
fn run_defaults_to_the_loopback_admin_address() {
    let m = Cli::command().try_get_matches_from(["routewarden", "run"]).unwrap();
    let Command::Run(args) = Cli::from_arg_matches(&m).unwrap().command else { panic!() };
    assert!(args.admin_addr.ip().is_loopback());
}

#[test]
fn the_readme_documents_every_run_flag_with_its_environment_variable() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let cli = Cli::command();
    let run = cli.find_subcommand("run").unwrap();
    let mut undocumented = Vec::new();
    for arg in run.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if long == "help" || long == "version" {
            continue;
        }
        let row = readme.lines().find(|l| l.starts_with(&format!("| `--{long}` |")));
        match (row, arg.get_env()) {
            (None, _) => undocumented.push(format!("--{long}: no row in the README's flag table")),
            (Some(row), Some(env)) if !row.contains(&format!("`{}`", env.to_string_lossy())) => {
                undocumented.push(format!("--{long}: its row does not name {}", env.to_string_lossy()))
            }
            _ => {}
        }
    }
    assert!(undocumented.is_empty(), "{undocumented:#?}");
}
