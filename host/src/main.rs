//! The `host` binary: see `annvil_host::cli` for the commands.

fn main() -> std::process::ExitCode {
    annvil_host::cli::main()
}
