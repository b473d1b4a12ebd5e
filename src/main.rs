//! The `tickwire` binary: see `tickwire --help`.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
