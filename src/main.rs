//! The `s3imap` binary: everything lives in the library; see `s3imap --help`.

fn main() {
    std::process::exit(s3imap::cli::main());
}
