//! The `air` command with the built-in predictor kinds.

fn main() -> std::process::ExitCode {
    air_cli::main_with(air_cli::Registry::builtin())
}
