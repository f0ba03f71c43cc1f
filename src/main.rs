//! The `review-lsp` binary: everything lives in the library; see [`review_lsp::cli`].

fn main() -> std::process::ExitCode {
    review_lsp::cli::main()
}
