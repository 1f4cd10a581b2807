#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    fortisync::cli::main()
}
